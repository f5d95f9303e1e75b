"""Maps for whole arrays: batching with a progress bar, and the cached ``maps`` stage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from salbench import cache, config
from salbench.saliency import registry

# Bump when a method's implementation changes its output, so cached maps rebuild.
MAPS_VERSION = 1
# Parameters that may hold one value per sample; `compute_maps` slices them per batch.
PER_SAMPLE_PARAMS = ("target",)
MAPS_FILE = "maps.npy"
INDICES_FILE = "indices.npy"


def _slice_params(params: dict, n: int, start: int, stop: int) -> dict:
    out = dict(params)
    for k in PER_SAMPLE_PARAMS:
        v = out.get(k)
        if v is not None and np.ndim(v) == 1:
            if len(v) != n:
                raise registry.MethodParameterError(f"{k} has {len(v)} values for {n} images")
            out[k] = np.asarray(v)[start:stop]
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
    out = None
    with tqdm(total=n, desc=method, unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            maps = run_method(m, model, x[start:stop], _slice_params(full, n, start, stop),
                              sample_ids=np.arange(start, stop))
            if out is None:
                out = np.empty((n,) + maps.shape[1:], dtype=np.float32)
            out[start:stop] = maps
            bar.update(stop - start)
    if out is None:
        raise ValueError("x is empty")
    return out


def jsonable(value):
    """A JSON-able stand-in for a parameter value (arrays by shape, dtype and SHA-256)."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"array_sha256": hashlib.sha256(a.tobytes()).hexdigest(), "shape": list(a.shape),
                "dtype": str(a.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def maps_key(model_key: str, method: str, params: dict, split: str, indices) -> str:
    """Cache key of the maps of (model, method, complete parameters, split, indices)."""
    m = registry.get(method)
    full = registry.check_params(m, params)
    idx = [int(i) for i in np.asarray(indices).ravel()]
    return config.config_hash("maps", MAPS_VERSION, str(model_key), method, jsonable(full), str(split), idx)


def cached_maps(model_key: str, model, x, method: str, *, split: str, indices, batch_size: int = 64,
                progress: bool = True, **params) -> np.ndarray:
    """`compute_maps` through the ``maps`` cache stage; `x` holds images `indices` of `split`.

    The entry (``build/cache/maps/<key>/maps.npy`` and ``indices.npy``) is keyed by
    `model_key` (the hash identifying the trained model), the method, its complete
    parameters (defaults filled in; arrays by content hash), the split and the indices.
    `batch_size` and `progress` do not enter the key.
    """
    idx = np.asarray(indices).ravel()
    if len(idx) != len(x):
        raise ValueError(f"{len(idx)} indices for {len(x)} images")
    full = registry.check_params(registry.get(method), params)
    key = maps_key(model_key, method, full, split, idx)

    def build(tmp: Path) -> dict:
        maps = compute_maps(model, x, method, batch_size=batch_size, progress=progress, **full)
        np.save(tmp / MAPS_FILE, maps)
        np.save(tmp / INDICES_FILE, idx.astype(np.int64))
        return {"shape": list(maps.shape)}

    meta = {"model_key": str(model_key), "method": method, "params": jsonable(full), "split": str(split),
            "n_images": int(len(idx)), "maps_version": MAPS_VERSION}
    path = cache.cached(stage="maps", key=key, build=build, meta=meta)
    return np.load(path / MAPS_FILE)


def pair_grayscale(a_batch, percentile: float = 99.0) -> np.ndarray:
    """PAIR's ``VisualizeImageGrayscale`` per map (Arun et al.'s post-processing).

    For each (H, W) map: |a|, then (|a| - min) / (p - min) clipped to [0, 1], with p the
    `percentile`-th percentile of |a|. A map with p == min (e.g. constant) becomes zeros
    instead of PAIR's NaN.
    """
    a = np.abs(np.asarray(a_batch, dtype=np.float64))
    flat = a.reshape(len(a), -1)
    vmax = np.percentile(flat, percentile, axis=1)
    vmin = flat.min(axis=1)
    span = (vmax - vmin)[:, None]
    safe = np.where(span > 0, span, 1.0)
    out = np.where(span > 0, np.clip((flat - vmin[:, None]) / safe, 0.0, 1.0), 0.0)
    return out.reshape(a.shape).astype(np.float32)
