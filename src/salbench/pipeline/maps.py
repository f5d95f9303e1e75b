"""The maps stage: saliency maps of a model variant for holdout images, cached per
(variant, method, parameters, split, images), and the resources some methods need
(PatternNet's patterns, DeepSHAP's background).

Method parameters come from the registry (`Entry.profile_params`, `Entry.resources`),
never from name checks here. A map entry's cache key holds the method's own
`version`, so changing one method rebuilds only its maps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from salbench import cache, config, paths, seeding
from salbench.batching import batch_slices
from salbench.config import BACKGROUNDS, Profile
from salbench.data import store
from salbench.papers import BUDDING_METHODS
from salbench.pipeline.models import ModelSet, ModelVariant
from salbench.pipeline.selection import SPLIT
from salbench.saliency import compute_maps, pattern, registry

PATTERN_STAGE = "patterns"
# Bump when fitting changes the patterns a model gets.
PATTERN_VERSION = 1
MAPS_STAGE = "maps"
MAPS_FILE = "maps.npy"
INDICES_FILE = "indices.npy"
# Budding et al.'s Figure 1 columns, in the paper's order.
BUDDING_FIGURE = BUDDING_METHODS
PATTERN_READ_BATCH = 64


def jsonable(value):
    """A JSON-able, machine-independent stand-in for a parameter value: arrays by
    shape, dtype and SHA-256; paths inside the cache by their path relative to it."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"array_sha256": hashlib.sha256(a.tobytes()).hexdigest(), "shape": list(a.shape),
                "dtype": str(a.dtype)}
    if isinstance(value, Path):
        try:
            return f"cache:{value.resolve().relative_to(paths.cache_dir()).as_posix()}"
        except ValueError:
            return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def maps_key(model_key: str, method: str, params: dict, split: str, indices) -> str:
    """Cache key of the maps of (model, method and its version, complete parameters, split, indices)."""
    m = registry.get(method)
    full = registry.check_params(m, params)
    idx = [int(i) for i in np.asarray(indices).ravel()]
    return config.config_hash("maps", m.version, str(model_key), method, jsonable(full), str(split), idx)


def cached_maps(model_key: str, model, x, method: str, *, split: str, indices, batch_size: int = 64,
                progress: bool = True, load_model: Callable | None = None, **params) -> np.ndarray:
    """`salbench.saliency.compute_maps` through the ``maps`` cache stage; `x` holds
    images `indices` of `split`. `batch_size` and `progress` do not enter the key.
    `load_model` (instead of `model`): called only when the maps must be computed, so a
    cached rerun loads no network (a third of a cached 06_trust was spent loading them)."""
    idx = np.asarray(indices).ravel()
    if len(idx) != len(x):
        raise ValueError(f"{len(idx)} indices for {len(x)} images")
    m = registry.get(method)
    full = registry.check_params(m, params)
    key = maps_key(model_key, method, full, split, idx)

    def build(tmp: Path) -> dict:
        net = model if load_model is None else load_model()
        maps = compute_maps(net, x, method, batch_size=batch_size, progress=progress, **full)
        np.save(tmp / MAPS_FILE, maps)
        np.save(tmp / INDICES_FILE, idx.astype(np.int64))
        return {"shape": list(maps.shape)}

    meta = {"model_key": str(model_key), "method": method, "method_version": m.version, "params": jsonable(full),
            "split": str(split), "n_images": int(len(idx))}
    path = cache.cached(stage=MAPS_STAGE, key=key, build=build, meta=meta)
    maps = np.load(path / MAPS_FILE)
    if maps.shape[0] != len(idx):
        raise cache.CacheError(f"{path}: holds {maps.shape[0]} maps for {len(idx)} images; delete the entry")
    return maps


# ---------------------------------------------------------------------- resources


def patterns_path(profile: Profile, models: ModelSet, variant: ModelVariant) -> Path:
    """PatternNet patterns of the variant, fitted on its background's first
    `saliency.pattern_n_images` training images and cached."""
    s = profile.saliency
    model_key = models.key(variant)
    key = config.config_hash("patterns", PATTERN_VERSION, model_key, s.pattern_n_images, s.pattern_chunk_dtype)

    def build(tmp: Path):
        model = models.model(variant)
        with store.open_split(profile, "train") as tr:
            n = min(s.pattern_n_images, len(tr))
            batches = (tr.x(variant.background, sl) for sl in batch_slices(n, PATTERN_READ_BATCH))
            fitted = pattern.fit_patterns(model, batches, chunk_dtype=s.pattern_chunk_dtype)
        fitted.save(tmp / "patterns.npz")
        return {"model_key": model_key, "n_images": n}

    return cache.cached(PATTERN_STAGE, key, build) / "patterns.npz"


def shap_background(profile: Profile, background: str) -> np.ndarray:
    """DeepSHAP's background: `saliency.shap_background` training images drawn with the
    saliency stage's own random stream (sorted indices, balanced by construction)."""
    with store.open_split(profile, "train") as tr:
        rng = seeding.stage_rng(profile.seed, "saliency/shap_background")
        idx = np.sort(rng.choice(len(tr), size=min(profile.saliency.shap_background, len(tr)), replace=False))
        return tr.x(background, idx)


def method_params(profile: Profile, models: ModelSet, variant: ModelVariant, method: str) -> dict:
    """The method's parameters for this profile: its profile settings and resources."""
    m = registry.get(method)
    params = m.params_from_profile(profile)
    for param, resource in m.resources.items():
        if resource == "patterns":
            params[param] = patterns_path(profile, models, variant)
        elif resource == "shap_background":
            params[param] = shap_background(profile, variant.background)
        else:
            raise ValueError(f"method {method!r} needs resource {resource!r}, which no stage provides")
    return params


# ---------------------------------------------------------------------- maps


def holdout_images(profile: Profile, background: str, indices) -> np.ndarray:
    """Holdout images in the order of `indices` (h5py reads sorted indices)."""
    indices = np.asarray(indices)
    with store.open_split(profile, SPLIT) as ho:
        x = ho.x(background, np.sort(indices))
    return x[np.argsort(np.argsort(indices))]


def maps_for(profile: Profile, models: ModelSet, variant: ModelVariant, method: str, indices,
             progress: bool = True) -> np.ndarray:
    """Maps (len(indices), H, W) of holdout `indices` for one model variant and method.
    A model-free method (Sobel, random) ignores the variant's weights."""
    m = registry.get(method)
    params = method_params(profile, models, variant, method)
    x = holdout_images(profile, variant.background, indices)
    # Loaded after the resources (fitting patterns may have assigned another variant's
    # weights), and only on a cache miss.
    load = (lambda: models.model(variant)) if m.needs_model else None
    # Model-free maps are keyed by the variant too: it names the data and background.
    return cached_maps(models.key(variant), None, x, method, split=SPLIT, indices=indices,
                       batch_size=profile.saliency.batch_size, progress=progress, load_model=load, **params)


def variant_for(models: ModelSet, background: str, method: str) -> ModelVariant:
    """The model a method explains by default: the selected classifier, or the U-Net
    for the ``unet`` baseline."""
    return models.trained(background, "unet" if method == "unet" else "classifier")


def other_methods() -> list[str]:
    """Every registered method not in Budding et al.'s Figure 1, in registry order."""
    return [m for m in registry.METHODS if m not in BUDDING_FIGURE]


def all_methods() -> list[str]:
    return [*BUDDING_FIGURE, *other_methods()]


def all_maps(profile: Profile, models: ModelSet, methods, indices, progress: bool = True) -> dict:
    """{(background, method): maps} of the default model of each method."""
    return {(bg, m): maps_for(profile, models, variant_for(models, bg, m), m, indices, progress)
            for bg in BACKGROUNDS for m in methods}


def summary(maps: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """One row per (background, method): shape, dtype, finiteness and sign of the maps."""
    rows = []
    for (background, method), a in maps.items():
        rows.append({"background": background, "method": method, "shape": "x".join(map(str, a.shape)),
                     "dtype": str(a.dtype), "finite": bool(np.isfinite(a).all()),
                     "has_negative": bool((a < 0).any()), "signed_method": registry.get(method).signed})
    return pd.DataFrame(rows)


def figure_rows(profile: Profile, models: ModelSet, methods, indices) -> tuple[list, dict, dict]:
    """Rows (background x image) and maps for `plots.saliency_grid`."""
    indices = np.sort(np.asarray(indices))
    rows, maps = [], {m: [] for m in methods}
    for background in BACKGROUNDS:
        with store.open_split(profile, SPLIT) as ho:
            x, gt, y = ho.x(background, indices), ho.gt(indices), ho.y(indices)
        for k in range(len(indices)):
            rows.append((f"{background} class {y[k] + 1}", x[k, ..., 0], gt[k]))
        for m in methods:
            maps[m].extend(list(maps_for(profile, models, variant_for(models, background, m), m, indices)))
    signed = {m: registry.get(m).signed for m in methods}
    return rows, maps, signed


def saliency_figure(profile: Profile, models: ModelSet, methods, indices):
    """Budding et al.'s Figure 1 layout for `methods` on `indices` (one image per class)."""
    from salbench import plots

    rows, fig_maps, signed = figure_rows(profile, models, methods, indices)
    return plots.saliency_grid(rows, fig_maps, signed)
