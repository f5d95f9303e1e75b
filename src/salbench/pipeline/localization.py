"""Ground-truth evaluation of saliency maps (Budding et al. Figure 2; Arun et al.'s
localization utility): per-image scores of every method, the baselines, and the
trained-versus-randomized comparison, as one tidy table.

Scoring protocol (one for all four metrics, Budding's): |map| over brain pixels,
the first `localization.n_images` class-2 holdout images (randomized-weights maps:
the first `localization.n_randomized_images` of them). Every classifier run is
scored (``run``; ``selected``: the best on holdout, which the figures and paper.md's
numbers show); the other runs on the first `localization.n_images_other_runs` images. `model` column: ``trained`` (the run's classifier), ``randomized`` (the
same network with every weight layer re-drawn from its initializer) and ``baseline``
(model-free maps and the average mask: Sobel edges, random, ``constant``, ``avg_mask``;
and the U-Net's output), the same rows under every run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salbench import metrics, outputs, plots, stats
from salbench.tables import images_in_every_run
from salbench.batching import batch_slices
from salbench.config import BACKGROUNDS, Profile
from salbench.data import store
from salbench.pipeline import maps as maps_stage
from salbench.pipeline import results
from salbench.pipeline.models import ModelSet
from salbench.pipeline.selection import SPLIT, randomized_indices, scored_indices, scored_indices_of_run
from salbench.saliency import registry

METRIC_COLUMNS = ("roc_auc", "ap", "prec99", "auprc")
AVG_MASK = "avg_mask"
UNET = "unet"
# A map that says nothing: every pixel equal. Trapezoidal AUPRC gives it (1 + p) / 2
# (p: lesion prevalence), about 0.5, far above a diffuse average mask, so it shows
# what "beats the low baseline" is worth under that metric.
CONSTANT = "constant"
# Baselines of Arun et al.: low = the average training+validation mask, high = U-Net.
LOW, HIGH = AVG_MASK, UNET
# Metrics the pass/did-not-pass test runs on: Arun's AUPRC, and AP, which gives a
# constant map the prevalence instead of ~0.5.
VERDICT_METRICS = ("auprc", "ap")
# Each classifier run is analysed on its own (issue 14); `selected` marks the best on holdout.
RUN_KEYS = ["background", "run", "selected"]
# Holm across the (method, baseline) comparisons of one background and metric,
# as Arun et al.'s Tukey contrasts adjusted across their comparisons.
P_ADJUST = "holm"
GT_READ_BATCH = 512


def average_mask(profile: Profile) -> np.ndarray:
    """Arun et al.'s low baseline: the mean ground-truth mask over train and validation."""
    batches = []
    for split in ("train", "val"):
        with store.open_split(profile, split) as r:
            batches += [r.gt(s) for s in batch_slices(len(r), GT_READ_BATCH)]
    return metrics.average_mask(batches)


def _score(maps: np.ndarray, gt: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    df = metrics.score_maps(maps, gt, mask, metrics=METRIC_COLUMNS, image_ids=ids)
    # Constant over the scored (brain) pixels of |map|: one tie group, no ranking at all.
    scored = [np.abs(a[m]) for a, m in zip(maps, mask)]
    return df.assign(constant_map=[bool(v.size) and bool(v.max() == v.min()) for v in scored])


def score_background(profile: Profile, models: ModelSet, background: str, methods, progress=True) -> pd.DataFrame:
    """Per-image scores on one background for every classifier run (issue 14): the
    trained and randomized maps of each run, and the baselines (model-free maps, the
    U-Net, the average and the constant mask), computed once and repeated under each
    run so that every run's analysis is complete on its own. ``selected`` marks the run
    the other notebooks explain (the best on holdout)."""
    idx = scored_indices(profile)
    n_rand = len(randomized_indices(profile))
    with store.open_split(profile, SPLIT) as ho:
        gt, mask = ho.gt(idx), ho.mask(idx)
    selected = models.selected_run(background)
    runs = [selected] + sorted(t.spec.run for t in models.runs(background) if t.spec.run != selected)
    per_run, baselines = [], []

    def scored(frames, model_kind, method, maps, run=None):
        n = len(maps)
        df = _score(maps, gt[:n], mask[:n], idx[:n])
        frames.append(df.assign(background=background, run=run, model=model_kind, method=method))

    for method in methods:
        m = registry.get(method)
        if method == UNET:
            scored(baselines, "baseline", UNET,
                   maps_stage.maps_for(profile, models, models.trained(background, "unet"), UNET, idx, progress))
        elif not m.needs_model:
            scored(baselines, "baseline", method,
                   maps_stage.maps_for(profile, models, models.trained(background), method, idx, progress))
    avg = np.broadcast_to(average_mask(profile), gt.shape).astype(np.float32)
    scored(baselines, "baseline", AVG_MASK, avg)
    scored(baselines, "baseline", CONSTANT, np.ones(gt.shape, np.float32))
    # The selected run first: its maps are the ones 03 already cached.
    run_idx = {run: scored_indices_of_run(profile, run == selected) for run in runs}
    for run in runs:
        trained, randomized = models.trained(background, run=run), models.randomized(background, run=run)
        for method in methods:
            if method == UNET or not registry.get(method).needs_model:
                continue
            scored(per_run, "trained", method,
                   maps_stage.maps_for(profile, models, trained, method, run_idx[run], progress), run)
            scored(per_run, "randomized", method,
                   maps_stage.maps_for(profile, models, randomized, method, run_idx[run][:n_rand], progress), run)
    base = pd.concat(baselines, ignore_index=True)
    trained_rows = pd.concat(per_run, ignore_index=True)
    # Under each run the baselines are scored on that run's images, so its tests stay paired.
    df = pd.concat([pd.concat([trained_rows[trained_rows.run == r], base[base.image.isin(run_idx[r])].assign(run=r)])
                    for r in sorted(runs)], ignore_index=True)
    df["run"] = df["run"].astype(int)
    df["selected"] = df["run"] == selected
    return df[["background", "run", "selected", "model", "method", "image", *METRIC_COLUMNS, "constant_map"]]


def score_all(profile: Profile, models: ModelSet, methods=None, progress=True) -> pd.DataFrame:
    """Per-image scores of `methods` (default: every registered method) on both backgrounds
    (cached: `pipeline.results`)."""
    methods = list(maps_stage.all_methods() if methods is None else methods)
    return results.cached(
        "localization_scores", profile, models,
        lambda: pd.concat([score_background(profile, models, bg, methods, progress) for bg in BACKGROUNDS],
                          ignore_index=True),
        methods)


def summary(scores: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Mean, sd and bootstrap 95 % CI per (background, run, model, method, metric)."""
    rng = np.random.default_rng(np.random.SeedSequence([profile.seed, 5]))
    return stats.summarise(scores, by=RUN_KEYS + ["model", "method"], metrics=METRIC_COLUMNS,
                           n_boot=profile.localization.n_bootstrap, alpha=profile.localization.alpha, rng=rng)


def summary_table(summary_long: pd.DataFrame, verdicts: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (background, run, model, method): number of images and of constant maps,
    mean and CI of each metric, and Arun's verdict against the low and high baselines
    for each metric in `verdicts` (columns ``<metric>_vs_low``, ``<metric>_vs_high``;
    " (not converged)" is appended where the mixed model did not converge). Verdicts
    exist only for the trained classifier's maps, which is what `pass_table` tests."""
    keys = [*RUN_KEYS, "model", "method"]
    wide = summary_long.pivot_table(index=keys, columns="metric", values=["mean", "ci_lo", "ci_hi"]).reset_index()
    wide.columns = ["_".join(c for c in col if c) for col in wide.columns]
    counts = scores.groupby(keys).agg(n_images=("image", "nunique"), n_constant_maps=("constant_map", "sum"))
    table = counts.reset_index().merge(wide, on=keys)
    if len(verdicts):
        v = verdicts.assign(call=np.where(verdicts["converged"], verdicts["verdict"],
                                          verdicts["verdict"] + " (not converged)"),
                            column=verdicts["metric"] + "_vs_" + verdicts["role"])
        calls = v.pivot_table(index=[*RUN_KEYS, "method"], columns="column", values="call", aggfunc="first")
        table = table.merge(calls.reset_index().assign(model="trained"), on=keys, how="left")
    return table


def randomization_summary(scores: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """`summary` of trained and randomized maps on the same images (those with
    randomized maps), so that the two means compare like with like."""
    both = scores[scores.model.isin(["trained", "randomized"])]
    paired = both[both.model == "randomized"][["background", "run", "image"]].drop_duplicates()
    return summary(both.merge(paired, on=["background", "run", "image"]), profile)


def pass_table(scores: pd.DataFrame, profile: Profile, metrics_: tuple[str, ...] = VERDICT_METRICS):
    """Arun et al.'s test per background, classifier run and metric: each trained-model
    method against the low (average mask) and high (U-Net) baselines, p values
    Holm-adjusted within a (background, run, metric); returns (verdicts, Tukey HSD),
    both with ``run``, ``selected`` and ``metric`` columns. One test per run: the
    ledger reads the runs' agreement (issue 14)."""
    verdicts, tukeys = [], []
    for metric in metrics_:
        for (background, run, selected), runs_rows in scores.groupby(RUN_KEYS, sort=False):
            sub = runs_rows[(runs_rows.model == "trained") | runs_rows.method.isin([LOW, HIGH])]
            res = stats.compare_to_baselines(sub, metric, method_col="method", image_col="image", low=LOW, high=HIGH,
                                             alpha=profile.localization.alpha, p_adjust=P_ADJUST)
            keys = {"background": background, "run": run, "selected": selected}
            verdicts.append(_first(res.table.assign(**keys), list(keys)))
            tukeys.append(_first(res.tukey.assign(**keys, metric=metric), list(keys)))
    return pd.concat(verdicts, ignore_index=True), pd.concat(tukeys, ignore_index=True)


def _first(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols + [c for c in df.columns if c not in cols]]


# ---------------------------------------------------------------------- published tables and figures

TABLE_NAMES = ("localization_scores", "localization_summary", "localization_randomization", "localization_tukey",
               "localization_mixed_models", "localization_run_variance")
HEADLINE_COLUMNS = ["background", "method", "n_images", "n_constant_maps", "mean_roc_auc", "mean_ap", "mean_prec99",
                    "mean_auprc", "auprc_vs_low", "auprc_vs_high", "ap_vs_low", "ap_vs_high"]


def tables(scores: pd.DataFrame, profile: Profile) -> dict[str, pd.DataFrame]:
    """Every localization table of the run, by its published name (cached: `pipeline.results`)."""
    return results.cached("localization_tables", profile, None, lambda: _tables(scores, profile), scores)


def _tables(scores: pd.DataFrame, profile: Profile) -> dict[str, pd.DataFrame]:
    summary_long = summary(scores, profile)
    verdicts, tukey = pass_table(scores, profile)
    return {
        "localization_scores": scores,
        "localization_summary": summary_table(summary_long, verdicts, scores),
        "localization_randomization": randomization_summary(scores, profile),
        "localization_tukey": tukey,
        "localization_mixed_models": verdicts,
        "localization_run_variance": run_variance(scores[scores.model == "trained"]),
        "localization_summary_long": summary_long,  # for the figures; not published
    }


def write_tables(tabs: dict[str, pd.DataFrame], profile: Profile) -> dict[str, object]:
    """Write the published tables (formats and keys from `salbench.tables`)."""
    return {name: outputs.save_table(tabs[name], name, profile) for name in TABLE_NAMES}


def headline(tabs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The selected trained classifier's rows of the summary: means and verdicts, rounded for display."""
    table = tabs["localization_summary"]
    return table[table.selected & (table.model == "trained")][HEADLINE_COLUMNS].round(3)


def figure2(tabs: dict[str, pd.DataFrame], background: str, methods=None):
    """Budding et al.'s Figure 2 for one background (the selected trained classifier)."""
    long = tabs["localization_summary_long"]
    trained = long[long.selected & (long.model == "trained") & (long.background == background)]
    return plots.budding_figure2(trained, maps_stage.all_methods() if methods is None else methods, background)


def auprc_figure(tabs: dict[str, pd.DataFrame], background: str):
    """Arun et al.'s AUPRC box plot against the low and high baselines (and the constant map), selected run."""
    scores = tabs["localization_scores"]
    return plots.auprc_boxplot(scores[scores.selected], background, LOW, HIGH, constant=CONSTANT)


def randomization_figure(tabs: dict[str, pd.DataFrame], metric: str = "auprc"):
    r = tabs["localization_randomization"]
    return plots.trained_vs_random(r[r.selected], metric)


def run_spread_figure(tabs: dict[str, pd.DataFrame]):
    """Mean AP per method for each classifier run (issue 14), every trained-model method,
    over the images every run was scored on."""
    s = tabs["localization_scores"]
    return plots.run_spread(images_in_every_run(s[s.model == "trained"]))


# ---------------------------------------------------------------------- run-level variance (issue 14)

RUN_COMPONENTS = ("image", "run", "run:method")


def run_variance(by_run: pd.DataFrame, metric: str = "ap") -> pd.DataFrame:
    """Per background with two or more classifier runs: variance components of a
    localization metric over (image, run, method) rows of the images every run was scored
    on (`stats.run_mixed_model`, `RUN_COMPONENTS`), with their share of the total."""
    frames = []
    for bg, g in by_run.groupby("background", sort=False):
        if g["run"].nunique() < 2:
            continue
        g = images_in_every_run(g)  # else image and run effects are confounded
        res = stats.run_mixed_model(g, metric, components=RUN_COMPONENTS)
        frames.append(res.variance.assign(background=bg, n_runs=g["run"].nunique(), n_methods=g["method"].nunique(),
                                          n_images=g["image"].nunique(), converged=res.converged, note=res.note))
    cols = ["background", "component", "variance", "share", "n_runs", "n_methods", "n_images", "converged", "note"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
