"""Maps for whole arrays: batching with a progress bar. (The cached ``maps`` stage
lives in `salbench.pipeline.maps`.)"""

from __future__ import annotations

import numpy as np

from salbench.batching import batch_slices
from salbench.progress import tqdm
from salbench.saliency import registry

# Parameters that may hold one value per sample; `compute_maps` slices them per batch.
PER_SAMPLE_PARAMS = ("target",)


def _slice_params(params: dict, n: int, s: slice) -> dict:
    out = dict(params)
    for k in PER_SAMPLE_PARAMS:
        v = out.get(k)
        if v is not None and np.ndim(v) == 1:
            if len(v) != n:
                raise registry.MethodParameterError(f"{k} has {len(v)} values for {n} images")
            out[k] = np.asarray(v)[s]
    return out


def compute_maps(model, x, method: str, batch_size: int = 64, progress: bool = True, **params) -> np.ndarray:
    """Maps float32 (N, H, W) for an array `x` (N, H, W, 1) in batches of `batch_size`.

    Same checks and parameters as `salbench.saliency.explain`; a per-sample `target`
    (N ints) is sliced per batch. NaN/Inf maps raise `NonFiniteMapError` with the
    samples' indices into `x`. Maps do not depend on `batch_size` (random methods seed
    per image from its content).
    """
    from salbench.saliency import run_method

    m = registry.get(method)
    full = registry.check_params(m, params)  # fail before the first batch
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    n = len(x)
    if n == 0:
        raise ValueError("x is empty")
    out = None
    with tqdm(total=n, desc=method, unit="img", disable=not progress, leave=False) as bar:
        for s in batch_slices(n, batch_size):
            maps = run_method(m, model, x[s], _slice_params(full, n, s), sample_ids=np.arange(s.start, s.stop))
            if out is None:
                out = np.empty((n,) + maps.shape[1:], dtype=np.float32)
            out[s] = maps
            bar.update(s.stop - s.start)
    return out
