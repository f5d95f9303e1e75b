"""The fidelity stage (notebook 05): Tomsett et al. 2020's perturbation metrics, their
reliability, and (beyond the paper) their validity against the lesion ground truth.

Images: the first `fidelity.n_images` class-2 (lesion) holdout images of each
background (ours: Tomsett scored every CIFAR-10 test image; only lesion images have
an evidence map, which the validity questions need). Model: the selected VGG-like
classifier, through `ModelSet.predict_fn` (softmax probabilities). Maps: the cached
maps of notebook 03 (`pipeline.maps`), signed as the methods return them.

Methods: Tomsett's set (sensitivity, gradient x input, Deep Taylor, DeepSHAP) and
the Sobel edge map, on every unit; every other registered classifier method
(Budding's and Arun's) as the extension, on the headline unit only (ours: the budget;
with `fidelity.extension: none`, not at all). Beyond the paper, two reference maps
are scored by the same metrics: ``oracle`` (the ground-truth lesion mask, 1 on lesion
pixels, 0 elsewhere) and ``random`` (the registry's uniform random map).

Perturbation (`salbench.metrics.fidelity`): styles ``mean`` (the training-set mean
intensity of the background) and ``uniform`` (U(0, 1), the data range); units from
`fidelity.units` (1 = Tomsett's pixel; `fidelity.headline_unit` is the unit of the
headline tables, because 100 single pixels of a 140 x 192 image cover 0.4 % of it,
less than the two lesions, where Tomsett's 100 pixels covered 9.8 % of 32 x 32).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salbench import cache, config, metrics, outputs, plots, seeding, stats
from salbench.batching import batch_slices
from salbench.config import BACKGROUNDS, Profile
from salbench.data import store
from salbench.metrics import fidelity as fm
from salbench.metrics import reliability as rel
from salbench.pipeline import maps as maps_stage
from salbench.pipeline.models import ModelSet
from salbench.pipeline.selection import SPLIT, explained_indices
from salbench.saliency import registry

TOMSETT_METHODS = ("sensitivity", "gradient_x_input", "deep_taylor", "deep_shap")
EDGE = "sobel"
ORACLE = "oracle"
RANDOM_MAP = "random"
STYLES = ("mean", "uniform")
VALUE_RANGE = (0.0, 1.0)  # the data range of every image (data.generator)
MEAN_STAGE = "train_mean"
MEAN_READ_BATCH = 512
LS = (20, 40, 60, 80, 100)


def fidelity_indices(profile: Profile) -> np.ndarray:
    """The first `fidelity.n_images` lesion (class-2) holdout images."""
    n = profile.fidelity.n_images
    return 2 * np.arange(n) + 1


def ls(profile: Profile) -> tuple[int, ...]:
    return tuple(L for L in LS if L <= profile.fidelity.l_max)


def metric_columns(profile: Profile) -> list[str]:
    return ["faithfulness", *fm.aopc_columns(ls(profile))]


def extension_methods() -> list[str]:
    """Every registered classifier method outside Tomsett's set."""
    return [m for m, e in registry.METHODS.items()
            if e.needs_model and m != "unet" and m not in TOMSETT_METHODS]


def methods_for_unit(profile: Profile, unit: int) -> list[str]:
    out = [*TOMSETT_METHODS, EDGE, ORACLE, RANDOM_MAP]
    if profile.fidelity.extension == "all" and unit == profile.fidelity.headline_unit:
        out += extension_methods()
    return out


def method_sets(profile: Profile, unit: int) -> dict[str, list[str]]:
    """The method sets whose rankings the reliability tables compare (Tomsett: with and
    without the Sobel edge map)."""
    sets = {"tomsett": list(TOMSETT_METHODS), "tomsett_with_edge": [*TOMSETT_METHODS, EDGE]}
    if profile.fidelity.extension == "all" and unit == profile.fidelity.headline_unit:
        everything = [*TOMSETT_METHODS, *extension_methods()]
        sets.update({"all": everything, "all_with_edge": [*everything, EDGE]})
    return sets


def mean_intensity(profile: Profile, background: str) -> float:
    """The training-set mean intensity of a background (the ``mean`` style), cached."""
    key = config.config_hash("train_mean", store.data_key(profile.seed, profile.data), background)

    def build(tmp):
        total, count = 0.0, 0
        with store.open_split(profile, "train") as tr:
            for s in batch_slices(len(tr), MEAN_READ_BATCH):
                x = tr.x(background, s).astype(np.float64)
                total += float(x.sum())
                count += x.size
        (tmp / "mean.txt").write_text(repr(total / count))
        return {"mean": total / count, "n_pixels": count}

    return float((cache.cached(MEAN_STAGE, key, build) / "mean.txt").read_text())


def design(profile: Profile, unit: int, height: int, width: int) -> fm.PerturbationDesign:
    """The shared random parts (tie priority, random orderings, F units, uniform seed),
    from the fidelity stage's own stream per unit; the same for both backgrounds."""
    f = profile.fidelity
    rng = seeding.stage_rng(profile.seed, f"fidelity/design/unit{unit}")
    return fm.make_design(height, width, unit=unit, rng=rng, l_max=f.l_max, n_random=f.n_random_orderings,
                          n_faithfulness=f.n_faithfulness_units)


def maps_of(profile: Profile, models: ModelSet, background: str, methods, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Maps of `methods` on images `idx`: the cached maps of notebook 03 where the images
    are a prefix of its images, plus the oracle (the ground-truth mask)."""
    lesion_idx, _ = explained_indices(profile)
    use = lesion_idx if len(idx) <= len(lesion_idx) and np.array_equal(lesion_idx[:len(idx)], idx) else idx
    trained = models.trained(background)
    out = {}
    for m in methods:
        if m == ORACLE:
            with store.open_split(profile, SPLIT) as ho:
                out[m] = ho.gt(idx).astype(np.float32)
        else:
            out[m] = maps_stage.maps_for(profile, models, trained, m, use)[: len(idx)]
    return out


def score_background(profile: Profile, models: ModelSet, background: str, progress: bool = True) -> dict:
    """Per-image fidelity scores, random-ordering AOPCs and validity pieces of one background."""
    f = profile.fidelity
    idx = fidelity_indices(profile)
    x = maps_stage.holdout_images(profile, background, idx)
    with store.open_split(profile, SPLIT) as ho:
        gt = ho.gt(idx)
    predict = models.predict_fn(models.trained(background), "probabilities", batch_size=f.batch_size)
    mean_value = mean_intensity(profile, background)
    scores, randoms, shares = [], [], []
    for unit in f.units:
        methods = methods_for_unit(profile, unit)
        a_batch = maps_of(profile, models, background, methods, idx)
        d = design(profile, unit, *x.shape[1:3])
        res = fm.score_fidelity(predict, x, a_batch, d, styles=STYLES, mean_value=mean_value,
                                value_range=VALUE_RANGE, ls=ls(profile), batch_size=f.batch_size,
                                image_ids=idx, return_curves=True)
        scores.append(res.scores.assign(background=background, model="trained"))
        randoms.append(res.random.assign(background=background))
        shares.append(lesion_share(res, a_batch, gt, d, idx).assign(background=background, unit=unit))
    return {"scores": pd.concat(scores, ignore_index=True), "random": pd.concat(randoms, ignore_index=True),
            "lesion_share": pd.concat(shares, ignore_index=True)}


def lesion_share(res: fm.FidelityResult, a_batch: dict, gt: np.ndarray, d: fm.PerturbationDesign,
                 image_ids: np.ndarray) -> pd.DataFrame:
    """Validity (c): per image, method and style, how much of the MoRF drop at L = l_max
    comes from units that hold lesion pixels: the sum of the curve's increments at those
    steps over the final drop (NaN when the final drop is <= 0), and the share of the
    first l_max MoRF units that touch the lesion."""
    lesion_units = d.grid.relevance(gt.astype(np.float64)) > 0  # (N, n_units)
    curves = res.curves["methods"]  # (N, methods, styles, [morf, lerf], l_max + 1)
    rows = []
    for m_i, method in enumerate(res.methods):
        rel_units = d.grid.relevance(a_batch[method])
        for n in range(len(gt)):
            order = fm.unit_order(rel_units[n], "morf", d.tie_order)[: d.l_max]
            on_lesion = lesion_units[n][order]
            for s_i, style in enumerate(res.styles):
                drops = curves[n, m_i, s_i, 0]
                inc = np.diff(drops)
                final = drops[-1]
                rows.append({"image": int(image_ids[n]), "method": method, "style": style,
                             "lesion_units_hit": float(on_lesion.mean()),
                             "drop_share_from_lesion": float(inc[on_lesion].sum() / final) if final > 0 else np.nan,
                             "final_drop": float(final)})
    return pd.DataFrame(rows)
