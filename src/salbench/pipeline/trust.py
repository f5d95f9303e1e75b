"""The trust stage (notebook 06): Arun et al. 2021's cascading model randomization,
repeatability and reproducibility (PROTOCOLS.md part B4-B6), with checks beyond them.

Images: the first `trust.n_images` lesion (class-2) holdout images explained by
notebook 03 (`selection.explained_indices`); the methods in `EXPENSIVE` on the first
`trust.n_images_expensive` of them (ours: the budget). Methods: Arun's eight and, as
the extension (`trust.extension: budding`), Budding et al.'s Figure 1 methods.

* Cascading randomization (Adebayo et al. 2018; Arun et al.): the selected VGG-like
  classifier re-initialised cumulatively from the output layer down to the first
  convolution (``top_down``, the paper), and, beyond the paper (Binder et al. 2023;
  Hedstroem et al. 2023), from the first layer up (``bottom_up``) and one layer at a
  time (``single``), `pipeline.models.ModelSet.cascade`; orders outside
  `trust.full_orders` (when given) skip the methods in `COSTLY_PER_STEP` (ours: the
  budget). At every step, per image: SSIM
  of the step's map to the trained map (``ssim``: our setting, data_range 1;
  ``ssim_arun``: the authors' code, data_range 2; both on ``pair_grayscale`` maps),
  Spearman of the absolute and signed raw maps (Adebayo et al.), and the localization
  AP of the step's map (Budding's scoring: |map| over brain pixels; ours).
* Randomization baseline: per image, the mean SSIM of its trained map with those of
  `trust.baseline_pairs` other images (Arun's code: 50 per image), in both settings.
  Verdict: `stats.randomization_verdicts` on the SSIM at full randomization (the
  top-down cascade's last step) in the `trust.ssim_setting` setting.
* Consistency: SSIM (`trust.ssim_setting`) per image between maps of two runs of the
  VGG-like classifier (repeatability; all pairs of runs), between the selected VGG-like
  run and each run of the second architecture (reproducibility), and between the
  outputs of two U-Net runs (the high baseline). A method that cannot run on an
  architecture, or a kind with too few runs, is a row with NaN SSIM and the reason in
  ``note``. Verdicts: `stats.consistency_verdicts` (Table 4).
* Run to run (issue 14): the localization AP of every classifier run's maps on the
  same images (the repeatability maps, so no extra saliency cost), and the share of
  AP variance due to the training run, to the image and to run x method
  (`stats.run_mixed_model` without the image x method term, which is pooled into the
  residual: 90 s per fit with it; ours).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from salbench import metrics, outputs, plots, seeding, stats
from salbench.config import BACKGROUNDS, Profile
from salbench.data import store
from salbench.metrics import similarity as sim
from salbench.papers import ARUN_METHODS
from salbench.pipeline import maps as maps_stage
from salbench.pipeline import results
from salbench.pipeline.models import ModelSet, ModelVariant
from salbench.pipeline.selection import SPLIT, explained_indices
from salbench.saliency import methods_common, pattern

# Methods whose maps cost tens of backward passes per image (or a segmentation).
EXPENSIVE = ("smooth_ig", "xrai", "deep_shap")
# Methods costly per cascade step: the expensive ones, and those whose resources are
# refitted for every variant (PatternNet's patterns: 256 training images per step).
COSTLY_PER_STEP = (*EXPENSIVE, "patternnet", "patternattribution")
UNET = "unet"
KINDS = ("repeatability", "reproducibility", UNET)
# What makes a method "not applicable" to an architecture: the model lacks what the
# method needs (a conv layer for Grad-CAM; layers PatternNet can fit).
NOT_APPLICABLE_ERRORS = (methods_common.ModelKindError, pattern.UnsupportedLayerError,
                         pattern.MissingPatternsError)
CASCADE_COLUMNS = ["background", "method", "image", "order", "step", "layer", "ssim", "ssim_arun", "spearman_abs",
                   "spearman_signed", "ap"]
CONSISTENCY_COLUMNS = ["background", "kind", "method", "image", "pair", "ssim", "note"]


def methods(profile: Profile) -> list[str]:
    """`trust.methods` if given; else Arun's eight, then the extension's methods not among them."""
    if profile.trust.methods:
        from salbench.saliency import registry

        for m in profile.trust.methods:
            entry = registry.get(m)  # an unknown name lists the valid ones
            if not entry.needs_model or m == UNET:
                raise ValueError(f"trust.methods: {m!r} does not explain a classifier; choose classifier methods")
        return list(profile.trust.methods)
    out = list(ARUN_METHODS)
    if profile.trust.extension == "budding":
        out += [m for m in maps_stage.BUDDING_FIGURE if m not in out]
    return out


def trust_indices(profile: Profile) -> np.ndarray:
    """The first `trust.n_images` explained lesion images."""
    lesion_idx, _ = explained_indices(profile)
    return lesion_idx[: profile.trust.n_images]


def method_indices(profile: Profile, method: str) -> np.ndarray:
    """The images a method is scored on: a prefix of `trust_indices` for `EXPENSIVE` methods."""
    idx = trust_indices(profile)
    n = profile.trust.n_images_expensive
    return idx[:n] if method in EXPENSIVE and n is not None else idx


def methods_in_order(profile: Profile, methods_, order: str) -> list[str]:
    """The methods a cascade order runs: all of them in `trust.full_orders` (or when it is
    empty), else those not in `COSTLY_PER_STEP`."""
    full = profile.trust.full_orders
    return [m for m in methods_ if not full or order in full or m not in COSTLY_PER_STEP]


def new_layer(variant: ModelVariant, layers: list[str]) -> str:
    """The layer a cascade step adds (top-down, bottom-up) or re-draws alone (single)."""
    if variant.step == 0:
        return ""
    top_first = layers[::-1]
    return {"top_down": top_first, "single": top_first, "bottom_up": layers}[variant.order][variant.step - 1]


# ---------------------------------------------------------------------- similarity


def similarity(trained: np.ndarray, other: np.ndarray, ids) -> pd.DataFrame:
    """Per image: ``ssim`` (ours), ``ssim_arun`` (Arun's code), ``spearman_abs``, ``spearman_signed``."""
    df = sim.similarity_table(trained, other, setting="ours", image_ids=ids)
    ga, gb = sim.pair_grayscale(trained), sim.pair_grayscale(other)
    df.insert(2, "ssim_arun", [sim.ssim(a, b, "arun") for a, b in zip(ga, gb)])
    return df


def ssim_per_image(a: np.ndarray, b: np.ndarray, setting: str) -> np.ndarray:
    """SSIM of the ``pair_grayscale`` maps, per image, in `setting`."""
    ga, gb = sim.pair_grayscale(a), sim.pair_grayscale(b)
    return np.array([sim.ssim(x, y, setting) for x, y in zip(ga, gb)])


def step_rows(trained_maps: np.ndarray, maps: np.ndarray, ids, gt: np.ndarray, mask: np.ndarray, order: str,
              step: int, layer: str) -> pd.DataFrame:
    """Rows of one cascade step of one method: similarity to the trained maps and the
    localization AP of the step's maps (|map| over brain pixels)."""
    n = len(ids)
    ap = metrics.score_maps(maps, gt[:n], mask[:n], metrics=("ap",), image_ids=ids)["ap"].to_numpy()
    return similarity(trained_maps, maps, ids).assign(order=order, step=step, layer=layer, ap=ap)


# ---------------------------------------------------------------------- cascading randomization


def cascade_background(profile: Profile, models: ModelSet, background: str, methods_=None,
                       progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cascade rows, baseline rows) of one background. Variants outer, methods inner,
    so each step's weights are assigned once; a step's maps are scored and dropped."""
    methods_ = methods(profile) if methods_ is None else list(methods_)
    t = profile.trust
    trained = models.trained(background)
    layers = models.layers(trained)
    idx = trust_indices(profile)
    with store.open_split(profile, SPLIT) as ho:
        gt, mask = ho.gt(idx), ho.mask(idx)
    m_idx = {m: method_indices(profile, m) for m in methods_}
    trained_maps = {m: maps_stage.maps_for(profile, models, trained, m, m_idx[m], progress) for m in methods_}
    cascade, baseline = [], []
    for order in t.orders:
        in_order = methods_in_order(profile, methods_, order)
        for m in in_order:  # step 0: the trained model, in every order
            cascade.append(step_rows(trained_maps[m], trained_maps[m], m_idx[m], gt, mask, order, 0, "")
                           .assign(method=m))
        for v in models.cascade(background, order):
            for m in in_order:
                a = maps_stage.maps_for(profile, models, v, m, m_idx[m], progress)
                cascade.append(step_rows(trained_maps[m], a, m_idx[m], gt, mask, order, v.step, new_layer(v, layers))
                               .assign(method=m))
    for m in methods_:
        for setting in ("arun", "ours"):
            # One stream per (background, method): both settings score the same pairs.
            rng = seeding.stage_rng(profile.seed, f"trust/baseline/{background}/{m}")
            b = sim.randomization_baseline(trained_maps[m], rng, setting, t.baseline_pairs, image_ids=m_idx[m])
            baseline.append(b.assign(background=background, method=m, setting=setting))
    cascade = pd.concat(cascade, ignore_index=True).assign(background=background)
    return cascade[CASCADE_COLUMNS], pd.concat(baseline, ignore_index=True)


def cascade_all(profile: Profile, models: ModelSet, methods_=None, progress: bool = True):
    parts = [cascade_background(profile, models, bg, methods_, progress) for bg in BACKGROUNDS]
    cascade = pd.concat([c for c, _ in parts], ignore_index=True)
    baseline = pd.concat([b for _, b in parts], ignore_index=True)
    return cascade, baseline[["background", "method", "setting", "image", "n_pairs", "baseline_ssim"]]


def full_randomization(cascade: pd.DataFrame) -> pd.DataFrame:
    """The top-down cascade's last step (every weight layer re-drawn), per (background, method, image)."""
    td = cascade[cascade.order == "top_down"]
    last = td.groupby(["background", "method"]).step.transform("max")
    return td[td.step == last]


def randomization_verdicts(cascade: pd.DataFrame, baseline: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """`stats.randomization_verdicts` per background and method: SSIM at full
    randomization against each image's baseline, in the `trust.ssim_setting` setting."""
    setting = profile.trust.ssim_setting
    col = "ssim_arun" if setting == "arun" else "ssim"
    full = full_randomization(cascade)[["background", "method", "image", col]].rename(columns={col: "ssim"})
    base = baseline[baseline.setting == setting][["background", "method", "image", "baseline_ssim"]]
    df = full.merge(base, on=["background", "method", "image"], validate="one_to_one")
    # The mixed model needs 2 images and some spread; a method without them (e.g. maps
    # all zero, so every SSIM is 1) gets a "not testable" row with the reason.
    ok, skipped = [], []
    for (bg, method), g in df.groupby(["background", "method"], sort=False):
        values = np.r_[g.ssim.to_numpy(), g.baseline_ssim.to_numpy()]
        if len(g) >= 2 and np.ptp(values) > 0 and np.ptp(g.ssim.to_numpy() - g.baseline_ssim.to_numpy()) > 0:
            ok.append(g)
        else:
            skipped.append({"background": bg, "method": method, "n_images": len(g), "mean_score": g.ssim.mean(),
                            "mean_baseline": g.baseline_ssim.mean(), "verdict": "not testable",
                            "note": f"not testable: {len(g)} image(s), SSIM - baseline constant "
                                    f"({(g.ssim - g.baseline_ssim).iloc[0]:.4g})"})
    out = stats.randomization_verdicts(pd.concat(ok), by=("background",), alpha=profile.trust.alpha) if ok \
        else pd.DataFrame()
    return pd.concat([out, pd.DataFrame(skipped)], ignore_index=True).assign(setting=setting)


# ---------------------------------------------------------------------- repeatability and reproducibility


def _not_applicable(background, kind, method, ids, pair, reason) -> pd.DataFrame:
    return pd.DataFrame({"background": background, "kind": kind, "method": method, "image": ids, "pair": pair,
                         "ssim": np.nan, "note": f"not applicable: {reason}"})


def _scored(background, kind, method, ids, pair, a, b, setting) -> pd.DataFrame:
    return pd.DataFrame({"background": background, "kind": kind, "method": method, "image": ids, "pair": pair,
                         "ssim": ssim_per_image(a, b, setting), "note": ""})


def _maps_or_reason(profile, models, variant, method, idx, progress):
    """(maps, "") or (None, reason) when the method cannot run on the variant's architecture."""
    try:
        return maps_stage.maps_for(profile, models, variant, method, idx, progress), ""
    except NOT_APPLICABLE_ERRORS as e:
        return None, f"{type(e).__name__}: {e}"


def consistency_background(profile: Profile, models: ModelSet, background: str, methods_=None,
                           progress: bool = True) -> pd.DataFrame:
    """``consistency_scores`` rows of one background."""
    methods_ = methods(profile) if methods_ is None else list(methods_)
    setting = profile.trust.ssim_setting
    runs = sorted(m.spec.run for m in models.runs(background))
    seconds = sorted(m.spec.run for m in models.runs(background, "second"))
    unets = sorted(m.spec.run for m in models.runs(background, UNET))
    selected = models.trained(background)
    frames = []
    for m in methods_:
        idx = method_indices(profile, m)
        by_run = {r: maps_stage.maps_for(profile, models, models.trained(background, run=r), m, idx, progress)
                  for r in runs}
        if len(runs) < 2:
            frames.append(_not_applicable(background, "repeatability", m, idx, "-", "one run"))
        for r1, r2 in combinations(runs, 2):
            frames.append(_scored(background, "repeatability", m, idx, f"vgg{r1}-vgg{r2}", by_run[r1], by_run[r2],
                                  setting))
        if not seconds:
            frames.append(_not_applicable(background, "reproducibility", m, idx, "-", "no second architecture"))
        for r in seconds:
            pair = f"vgg{selected.run}-second{r}"
            other, reason = _maps_or_reason(profile, models, models.trained(background, "second", r), m, idx, progress)
            frames.append(_not_applicable(background, "reproducibility", m, idx, pair, reason) if other is None
                          else _scored(background, "reproducibility", m, idx, pair, by_run[selected.run], other,
                                       setting))
    idx = trust_indices(profile)
    unet_maps = {r: maps_stage.maps_for(profile, models, models.trained(background, UNET, r), UNET, idx, progress)
                 for r in unets}
    if len(unets) < 2:
        frames.append(_not_applicable(background, UNET, UNET, idx, "-", "one U-Net run"))
    for r1, r2 in combinations(unets, 2):
        frames.append(_scored(background, UNET, UNET, idx, f"unet{r1}-unet{r2}", unet_maps[r1], unet_maps[r2],
                              setting))
    return pd.concat(frames, ignore_index=True)[CONSISTENCY_COLUMNS]


def consistency_all(profile: Profile, models: ModelSet, methods_=None, progress: bool = True) -> pd.DataFrame:
    return pd.concat([consistency_background(profile, models, bg, methods_, progress) for bg in BACKGROUNDS],
                     ignore_index=True)


def testable(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the tests can use, one row per untestable (background, kind, method) with
    the reason): not applicable, fewer than 2 images, or no spread (a t test needs it)."""
    keep, skipped = [], []
    for (bg, kind, method), g in scores.groupby(["background", "kind", "method"], sort=False):
        per_image = g.dropna(subset=["ssim"]).groupby("image").ssim.mean()
        if len(per_image) == 0:
            reason = g.note.iloc[0]
        elif len(per_image) < 2:
            reason = f"not testable: {len(per_image)} image"
        elif np.ptp(per_image.to_numpy()) == 0:
            reason = f"not testable: every image has SSIM {per_image.iloc[0]:.4g}"
        else:
            keep.append(g.dropna(subset=["ssim"]))
            continue
        skipped.append({"background": bg, "kind": kind, "method": method, "verdict": "not applicable",
                        "note": reason, "n_images": len(per_image)})
    return (pd.concat(keep, ignore_index=True) if keep else scores.iloc[:0]), pd.DataFrame(skipped)


def consistency_verdicts(scores: pd.DataFrame, profile: Profile) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(Table 4 verdicts, Tukey HSD, repeatability vs reproducibility), by
    `stats.consistency_verdicts` per background on the testable rows; untestable
    (kind, method) pairs and backgrounds without two U-Nets get "not applicable" rows."""
    ok, skipped = testable(scores)
    tables, tukeys, rvrs = [], [], []
    for bg in BACKGROUNDS:
        sub = ok[ok.background == bg]
        if UNET not in set(sub.kind):
            rest = sub[sub.kind != UNET][["background", "kind", "method"]].drop_duplicates()
            reason = "not applicable: no U-Net pair (the high baseline)"
            skipped = pd.concat([skipped, rest.assign(verdict="not applicable", note=reason)], ignore_index=True)
            continue
        if not set(sub.kind) - {UNET}:
            continue
        res = stats.consistency_verdicts(sub, alpha=profile.trust.alpha)
        tables.append(res.table.assign(background=bg))
        tukeys.append(res.tukey.assign(background=bg))
        rvrs.append(res.rep_vs_repro.assign(background=bg))
    table = pd.concat([*tables, skipped.assign(baseline="-", role="-") if len(skipped) else skipped],
                      ignore_index=True)
    front = ["background", "kind", "method", "baseline", "role", "verdict"]
    table = table[front + [c for c in table.columns if c not in front]]
    tukey = pd.concat(tukeys, ignore_index=True) if tukeys else pd.DataFrame()
    rvr = pd.concat(rvrs, ignore_index=True) if rvrs else pd.DataFrame()
    return table, tukey, rvr


# ---------------------------------------------------------------------- published tables and figures

TABLE_NAMES = ("randomization_cascade", "randomization_baseline", "randomization_verdicts", "consistency_scores",
               "consistency_verdicts", "consistency_tukey", "repeatability_vs_reproducibility")


def tables(profile: Profile, models: ModelSet, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Every trust table of the run, by its published name (cached: `pipeline.results`)."""
    return results.cached("trust_tables", profile, models, lambda: _tables(profile, models, progress))


def _tables(profile: Profile, models: ModelSet, progress: bool) -> dict[str, pd.DataFrame]:
    cascade, baseline = cascade_all(profile, models, progress=progress)
    scores = consistency_all(profile, models, progress=progress)
    verdicts, tukey, rvr = consistency_verdicts(scores, profile)
    return {
        "randomization_cascade": cascade,
        "randomization_baseline": baseline,
        "randomization_verdicts": randomization_verdicts(cascade, baseline, profile),
        "consistency_scores": scores,
        "consistency_verdicts": verdicts,
        "consistency_tukey": tukey,
        "repeatability_vs_reproducibility": rvr,
    }


def write_tables(tabs: dict[str, pd.DataFrame], profile: Profile) -> dict[str, object]:
    return {name: outputs.save_table(tabs[name], name, profile) for name in TABLE_NAMES}


def _ssim_column(profile: Profile) -> str:
    return "ssim_arun" if profile.trust.ssim_setting == "arun" else "ssim"


def figure3(tabs: dict[str, pd.DataFrame], profile: Profile):
    """Arun et al.'s Figure 3: mean SSIM against the top-down step per method, each
    method's randomization baseline dotted, both backgrounds (Arun's eight methods)."""
    col = _ssim_column(profile)
    base = tabs["randomization_baseline"]
    base = base[base.setting == profile.trust.ssim_setting]
    c = tabs["randomization_cascade"]
    return plots.cascade_curves(c[c.method.isin(ARUN_METHODS)], col, ("top_down",), baseline=base,
                                ylabel=f"SSIM to trained map ({profile.trust.ssim_setting})")


def orders_figure(tabs: dict[str, pd.DataFrame], profile: Profile):
    """Beyond the paper: the same curves for every order run (bottom-up, one layer at a time)."""
    return plots.cascade_curves(tabs["randomization_cascade"], _ssim_column(profile), profile.trust.orders,
                                ylabel=f"SSIM to trained map ({profile.trust.ssim_setting})")


def ap_figure(tabs: dict[str, pd.DataFrame], profile: Profile):
    """Beyond the paper: localization AP of each step's map along the cascades."""
    return plots.cascade_curves(tabs["randomization_cascade"], "ap", profile.trust.orders,
                                ylabel="localization AP of the step's map")


def figure4(tabs: dict[str, pd.DataFrame], profile: Profile):
    """Arun et al.'s Figure 4: per-image SSIM of repeatability and reproducibility per
    method, with the 0.5 line and the U-Net pairs' SSIM (box and dashed mean)."""
    return plots.consistency_boxes(tabs["consistency_scores"], low=stats.SSIM_LOW_BASELINE, high_kind=UNET,
                                   ylabel=f"SSIM ({profile.trust.ssim_setting})")


def headline_randomization(tabs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The randomization verdicts for display: SSIM at full randomization against the baseline."""
    return tabs["randomization_verdicts"][["background", "method", "mean_score", "mean_baseline", "p_value",
                                           "verdict"]]


def headline_consistency(tabs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 4 for display: each kind and method against the 0.5 and U-Net baselines."""
    return tabs["consistency_verdicts"][["background", "kind", "method", "baseline", "verdict", "estimate",
                                         "p_value", "note"]]
