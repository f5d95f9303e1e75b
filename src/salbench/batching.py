"""One way to walk an array in chunks: `batch_slices` and `map_batches`."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np


def batch_slices(n: int, batch_size: int, start: int = 0) -> Iterator[slice]:
    """Consecutive slices covering ``range(start, n)``, at most `batch_size` long."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    for i in range(start, n, batch_size):
        yield slice(i, min(i + batch_size, n))


def map_batches(fn: Callable[[np.ndarray], np.ndarray], x, batch_size: int, on_batch=None) -> np.ndarray:
    """``fn`` over `x` in chunks of `batch_size`, concatenated along axis 0.

    `on_batch(s)` (e.g. a progress bar's update) is called after each chunk `s`."""
    n = len(x)
    if n == 0:
        raise ValueError("x is empty")
    out = None
    for s in batch_slices(n, batch_size):
        part = np.asarray(fn(x[s]))
        if out is None:
            out = np.empty((n,) + part.shape[1:], dtype=part.dtype)
        out[s] = part
        if on_batch is not None:
            on_batch(s)
    return out
