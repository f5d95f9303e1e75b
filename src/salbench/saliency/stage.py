"""The saliency stage of the pipeline: which images are explained, with which model
and parameters, cached per (model, method, parameters, split, indices).

Importing this module (through `salbench.saliency`) puts the process in graph mode,
so models are loaded here, after the switch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from salbench import cache, config, seeding
from salbench.config import Profile
from salbench.data import store
from salbench.models import architectures, training
from salbench.saliency import cached_maps, pattern, registry

SPLIT = "holdout"
PATTERN_STAGE = "patterns"
# Methods that need the training data (PatternNet patterns, DeepSHAP background).
PATTERN_METHODS = ("patternnet", "patternattribution")


def explained_indices(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Holdout indices explained: the first n class-2 images (odd indices) and the first
    n class-1 images (even indices), n = saliency.n_images."""
    n = profile.saliency.n_images
    return 2 * np.arange(n) + 1, 2 * np.arange(n)


class ModelSet:
    """The profile's trained models, loaded in this (graph-mode) process on demand."""

    def __init__(self, profile: Profile, progress: bool = True):
        self.profile = profile
        self.trained = training.train_all(profile, progress=progress)
        self._loaded: dict[str, object] = {}

    def selected(self, background: str, role: str = "classifier") -> training.TrainedModel:
        return training.selected(self.trained, background, role)

    def runs(self, background: str, role: str = "classifier") -> list[training.TrainedModel]:
        return [m for m in self.trained if m.spec.background == background and m.spec.role == role]

    def model(self, trained: training.TrainedModel, randomized: bool = False):
        """The Keras model; `randomized`: a copy with every weight layer re-drawn from
        its initializer (the trained-vs-random comparison)."""
        key = self.model_key(trained, randomized)
        if key not in self._loaded:
            model = trained.load()
            if randomized:
                names = [layer.name for layer in model.layers if layer.weights]
                architectures.reinitialize(model, names, seed=self.randomization_seed(trained))
            self._loaded[key] = model
        return self._loaded[key]

    def randomization_seed(self, trained: training.TrainedModel) -> int:
        return seeding.stage_int_seed(self.profile.seed, f"randomize/{trained.key}")

    def model_key(self, trained: training.TrainedModel, randomized: bool = False) -> str:
        return f"{trained.key}/randomized-{self.randomization_seed(trained)}" if randomized else trained.key


def patterns_path(profile: Profile, model_key: str, model, background: str, progress: bool = True) -> Path:
    """PatternNet patterns of `model`, fitted on the first `saliency.pattern_n_images`
    training images and cached beside the maps."""
    s = profile.saliency
    key = config.config_hash("patterns", model_key, s.pattern_n_images, s.pattern_chunk_dtype)

    def build(tmp: Path):
        with store.open_split(profile, "train") as tr:
            n = min(s.pattern_n_images, len(tr))
            batches = (tr.x(background, slice(i, min(i + 64, n))) for i in range(0, n, 64))
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


def method_params(profile: Profile, models: ModelSet, method: str, trained, background: str,
                  randomized: bool, progress: bool = True) -> dict:
    if method in PATTERN_METHODS:
        key = models.model_key(trained, randomized)
        path = patterns_path(profile, key, models.model(trained, randomized), background, progress)
        return {"patterns": str(path)}
    if method == "deep_shap":
        return {"background": shap_background(profile, background)}
    s = profile.saliency
    return {
        "smoothgrad": {"nsamples": s.nsamples},
        "integrated_gradients": {"x_steps": s.ig_steps},
        "smooth_ig": {"nsamples": s.nsamples, "x_steps": s.ig_steps},
        "xrai": {"steps": s.xrai_steps},
    }.get(method, {})


def maps_for(profile: Profile, models: ModelSet, background: str, method: str, indices: np.ndarray, *,
             trained: training.TrainedModel | None = None, randomized: bool = False,
             progress: bool = True) -> np.ndarray:
    """Maps (len(indices), H, W) of holdout `indices` for one model and method."""
    m = registry.get(method)
    if trained is None:
        trained = models.selected(background, "unet" if method == "unet" else "classifier")
    model = models.model(trained, randomized) if m.needs_model else None
    params = method_params(profile, models, method, trained, background, randomized, progress)
    with store.open_split(profile, SPLIT) as ho:
        x = ho.x(background, np.sort(indices))
    order = np.argsort(np.argsort(indices))
    x = x[order]  # h5py reads sorted indices; restore the requested order
    return cached_maps(models.model_key(trained, randomized), model, x, method, split=SPLIT, indices=indices,
                       batch_size=profile.saliency.batch_size, progress=progress, **params)


BUDDING_FIGURE = ("gradient", "lrp_z", "lrp_alpha2_beta1", "deep_taylor", "guided_backprop", "deconvnet",
                  "patternnet", "patternattribution")


def other_methods() -> list[str]:
    """Every registered method not in Budding et al.'s Figure 1, in registry order."""
    return [m for m in registry.METHODS if m not in BUDDING_FIGURE]


def summary(maps: dict[tuple[str, str], np.ndarray]):
    """One row per (background, method): shape, dtype, finiteness and sign of the maps."""
    import pandas as pd

    rows = []
    for (background, method), a in maps.items():
        rows.append({"background": background, "method": method, "shape": "x".join(map(str, a.shape)),
                     "dtype": str(a.dtype), "finite": bool(np.isfinite(a).all()),
                     "has_negative": bool((a < 0).any()), "signed_method": registry.get(method).signed})
    return pd.DataFrame(rows)


def figure_rows(profile: Profile, models: ModelSet, methods, indices) -> tuple[list, dict, dict]:
    """Rows (background x image) and maps for `plots.saliency_grid`."""
    from salbench.config import BACKGROUNDS

    rows, maps = [], {m: [] for m in methods}
    for background in BACKGROUNDS:
        with store.open_split(profile, SPLIT) as ho:
            x, gt, y = ho.x(background, np.sort(indices)), ho.gt(np.sort(indices)), ho.y(np.sort(indices))
        for k in range(len(indices)):
            rows.append((f"{background} class {y[k] + 1}", x[k, ..., 0], gt[k]))
        for m in methods:
            a = maps_for(profile, models, background, m, np.sort(indices))
            maps[m].extend(list(a))
    signed = {m: registry.get(m).signed for m in methods}
    return rows, maps, signed
