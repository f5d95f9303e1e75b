"""The fidelity stage (notebook 05): Tomsett et al. 2020's perturbation metrics, their
reliability, and (beyond the paper) their validity against the lesion ground truth.

Images: the first `fidelity.n_images` class-2 (lesion) holdout images of each
background (ours: Tomsett scored every CIFAR-10 test image; only lesion images have
an evidence map, which the validity questions need). Model: the selected VGG-like
classifier, through `ModelSet.predict_fn` (logits; every score on the softmax
probability, as Tomsett, and on the logit margin, beyond the paper, from the same
forward passes). Before scoring, the stage measures the resolution of both outputs on
the images it scores (`output_resolution`, `fidelity_resolution.csv`); differences
below it are ties in every ranking and correlation of the reliability tables. Maps: the cached
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
from scipy.stats import spearmanr

from salbench import cache, config, metrics, outputs, plots, seeding, stats
from salbench import tables as specs
from salbench.batching import batch_slices
from salbench.config import BACKGROUNDS, Profile
from salbench.data import store
from salbench.metrics import fidelity as fm
from salbench.metrics import reliability as rel
from salbench.papers import TOMSETT_METHODS
from salbench.pipeline import maps as maps_stage
from salbench.pipeline import results
from salbench.pipeline.models import ModelSet
from salbench.pipeline.selection import SPLIT, explained_indices
from salbench.progress import tqdm
from salbench.saliency import registry

EDGE = "sobel"
ORACLE = "oracle"
RANDOM_MAP = "random"
STYLES = ("mean", "uniform")
VALUE_RANGE = (0.0, 1.0)  # the data range of every image (data.generator)
MEAN_STAGE = "train_mean"
FIDELITY_STAGE = "fidelity"
# Bump when a change to the scoring changes the cached fidelity scores.
FIDELITY_VERSION = 2
OUTPUTS = fm.OUTPUTS
# The resolution is measured on inputs along the oracle's MoRF curve: this many
# perturbation depths per image (0 to l_max units), with these batch sizes (the
# engine's own last) and random orders besides row order and its reverse.
RESOLUTION_DEPTHS = 16
RESOLUTION_BATCH_SIZES = (1, 16)
RESOLUTION_RANDOM_ORDERS = 1
MEAN_READ_BATCH = 512
LS = (20, 40, 60, 80, 100)
# A lesion share is computed only where the MoRF drop at l_max reaches this much of the
# output (ours, per output; the margin's in logits): the share is a ratio, and a drop
# near 0 makes it any number.
MIN_FINAL_DROP = {"probability": 0.05, "logit_margin": 0.5}


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
    """Per-image fidelity scores, random-ordering AOPCs and validity pieces of one
    background, cached per (model, images, maps, fidelity settings)."""
    f = profile.fidelity
    idx = fidelity_indices(profile)
    x = maps_stage.holdout_images(profile, background, idx)
    with store.open_split(profile, SPLIT) as ho:
        gt = ho.gt(idx)
    trained = models.trained(background)
    maps = {unit: maps_of(profile, models, background, methods_for_unit(profile, unit), idx) for unit in f.units}
    # Content-addressed: the maps themselves (not only their settings) enter the key.
    settings = {k: v for k, v in config.as_dict(f).items() if k != "batch_size"}  # batching changes nothing
    key = config.config_hash("fidelity", FIDELITY_VERSION, models.key(trained), settings,
                             maps_stage.jsonable(x), {u: maps_stage.jsonable(m) for u, m in maps.items()})

    def build(tmp):
        bare = models.predict_fn(trained, "logits", batch_size=f.batch_size)
        mean_value = mean_intensity(profile, background)
        parts = {"scores": [], "random": [], "lesion_share": []}
        designs = {unit: design(profile, unit, *x.shape[1:3]) for unit in f.units}
        head = designs[f.headline_unit]
        probe = resolution_inputs(x, gt, head, mean_value)
        total = sum(n_forward(len(idx), len(maps[u]), designs[u]) for u in f.units) + \
            resolution_forward(len(probe), f.batch_size)
        with tqdm(total=total, desc=f"fidelity {background}", unit="img", disable=not progress,
                  leave=False) as bar:
            def predict(batch):
                out = bare(batch)
                bar.update(len(batch))
                return {"logits": out}

            rng = seeding.stage_rng(profile.seed, f"fidelity/resolution/{background}")
            res_table = fm.output_resolution(predict, probe, outputs=OUTPUTS, rng=rng,
                                             batch_sizes=(*RESOLUTION_BATCH_SIZES, f.batch_size),
                                             n_orders=RESOLUTION_RANDOM_ORDERS)
            resolution = dict(zip(res_table["output"], res_table["resolution"]))
            for unit in f.units:
                d = designs[unit]
                res = fm.score_fidelity(predict, x, maps[unit], d, styles=STYLES, mean_value=mean_value,
                                        value_range=VALUE_RANGE, ls=ls(profile), batch_size=f.batch_size,
                                        image_ids=idx, return_curves=True, outputs=OUTPUTS, resolution=resolution)
                parts["scores"].append(res.scores.assign(background=background, model="trained"))
                parts["random"].append(res.random.assign(background=background))
                parts["lesion_share"].append(
                    lesion_share(res, maps[unit], gt, d, idx).assign(background=background, unit=unit))
        parts["resolution"] = [res_table.assign(background=background)]
        for name, frames in parts.items():
            pd.concat(frames, ignore_index=True).to_csv(tmp / f"{name}.csv", index=False, float_format="%.17g")
        return {"background": background, "n_images": len(idx)}

    folder = cache.cached(FIDELITY_STAGE, key, build)
    return {name: pd.read_csv(folder / f"{name}.csv") for name in ("scores", "random", "lesion_share", "resolution")}


def resolution_inputs(x: np.ndarray, gt: np.ndarray, d: fm.PerturbationDesign, mean_value: float) -> np.ndarray:
    """The inputs the resolution is measured on: each image with the first k units of the
    oracle's MoRF ordering (lesion units first) set to the mean, for `RESOLUTION_DEPTHS`
    depths k from 0 to l_max, so that the outputs span the range the scores visit (on MRI,
    from saturated to the lesion removed)."""
    depths = np.unique(np.linspace(0, d.l_max, RESOLUTION_DEPTHS).round().astype(int))
    unit_map = d.grid.unit_map
    out = []
    for xi, gi in zip(x, gt):
        order = fm.unit_order(d.grid.relevance(gi.astype(np.float64)), "morf", d.tie_order)
        for k in depths:
            img = xi.copy()
            img[np.isin(unit_map, order[:k])] = mean_value
            out.append(img)
    return np.asarray(out, dtype=np.float32)


def resolution_forward(n_inputs: int, batch_size: int) -> int:
    """Forward passes of `output_resolution` on `n_inputs` inputs."""
    n_sizes = len({min(b, n_inputs) for b in (*RESOLUTION_BATCH_SIZES, batch_size)})
    return n_inputs * (n_sizes * (2 + RESOLUTION_RANDOM_ORDERS) + 1)


def n_forward(n_images: int, n_methods: int, d: fm.PerturbationDesign) -> int:
    """Forward passes `score_fidelity` makes: per image one clean pass and, per style,
    (2 orderings x methods + random orderings) x l_max steps plus the F units."""
    return n_images * (1 + len(STYLES) * ((2 * n_methods + d.n_random) * d.l_max + d.n_faithfulness))


def lesion_share(res: fm.FidelityResult, a_batch: dict, gt: np.ndarray, d: fm.PerturbationDesign,
                 image_ids: np.ndarray) -> pd.DataFrame:
    """Validity (c): per image, method and style, how much of the MoRF drop at L = l_max
    comes from units that hold lesion pixels: the sum of the curve's increments at those
    steps over the final drop (NaN when the final drop is <= 0), and the share of the
    first l_max MoRF units that touch the lesion."""
    lesion_units = d.grid.relevance(gt.astype(np.float64)) > 0  # (N, n_units)
    curves = res.curves["methods"]  # (N, outputs, methods, styles, [morf, lerf], l_max + 1)
    rows = []
    for m_i, method in enumerate(res.methods):
        rel_units = d.grid.relevance(a_batch[method])
        for n in range(len(gt)):
            order = fm.unit_order(rel_units[n], "morf", d.tie_order)[: d.l_max]
            on_lesion = lesion_units[n][order]
            for o_i, output in enumerate(res.outputs):
                for s_i, style in enumerate(res.styles):
                    drops = curves[n, o_i, m_i, s_i, 0]
                    inc = np.diff(drops)
                    final = drops[-1]
                    rows.append({"image": int(image_ids[n]), "method": method, "style": style, "output": output,
                                 "lesion_units_hit": float(on_lesion.mean()),
                                 "drop_share_from_lesion": float(inc[on_lesion].sum() / final) if final > 0 else np.nan,
                                 "final_drop": float(final)})
    return pd.DataFrame(rows)


def score_all(profile: Profile, models: ModelSet, progress: bool = True) -> dict[str, pd.DataFrame]:
    """`score_background` on both backgrounds, concatenated."""
    parts = [score_background(profile, models, bg, progress) for bg in BACKGROUNDS]
    return {k: pd.concat([p[k] for p in parts], ignore_index=True) for k in parts[0]}


# ---------------------------------------------------------------------- tables

SCORE_COLUMNS = ["background", "model", "method", "image", "style", "output", "unit"]


def tolerances(resolution: pd.DataFrame, background: str, output: str, profile: Profile) -> dict[str, float]:
    """The tie tolerance of each score column on one background and output: the output's
    measured resolution for the AOPC columns (an AOPC is a mean of drops, each within the
    resolution), 0 for F (a correlation, not an output: an image whose drops stay within the
    resolution has no F at all, ``drop_below_resolution``)."""
    row = resolution[(resolution["background"] == background) & (resolution["output"] == output)]
    if len(row) != 1:
        raise ValueError(f"fidelity_resolution has {len(row)} rows for {background}/{output}; expected 1")
    r = float(row["resolution"].iloc[0])
    return {c: (0.0 if c == "faithfulness" else r) for c in metric_columns(profile)}


def _by_output(scores: pd.DataFrame, resolution: pd.DataFrame, profile: Profile):
    """(background, unit, output, rows, tolerances) of every group the reliability tables compute."""
    for (bg, unit, output), g in scores.groupby(["background", "unit", "output"], sort=True):
        yield bg, unit, output, g, tolerances(resolution, bg, output, profile)


def random_baseline(random: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Tomsett's Figure 2a baseline: per (background, unit, style, output, L), the mean over
    the random orderings of the data-set mean AOPC, and the 2.5 and 97.5 percentiles of
    those data-set means over orderings."""
    rows = []
    for (bg, unit, style, output), g in random.groupby(["background", "unit", "style", "output"], sort=True):
        for L in ls(profile):
            per_ordering = g.groupby("ordering")[f"aopc_L{L}"].mean()
            rows.append({"background": bg, "unit": unit, "style": style, "output": output, "L": L,
                         "mean": per_ordering.mean(),
                         "ci_low": per_ordering.quantile(0.025), "ci_high": per_ordering.quantile(0.975),
                         "n_orderings": len(per_ordering), "n_images": g.image.nunique()})
    return pd.DataFrame(rows)


def alpha(scores: pd.DataFrame, resolution: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Tomsett's Table 1: Krippendorff's alpha of the per-image method rankings, with
    percentile bootstrap intervals, per background, unit, output, style, method set and
    metric; scores within the output's resolution are ties (`tolerances`)."""
    f = profile.fidelity
    frames = []
    for bg, unit, output, g, tol in _by_output(scores, resolution, profile):
        # The probability keeps the stream it had before outputs existed.
        suffix = "" if output == "probability" else f"/{output}"
        rng = seeding.stage_rng(profile.seed, f"fidelity/alpha/{bg}/unit{unit}{suffix}")
        t = rel.alpha_table(g, metric_columns(profile), method_sets(profile, int(unit)), rng=rng,
                            group_by=("style",), n_boot=f.n_bootstrap, ci=f.ci, tol=tol)
        frames.append(t.assign(background=bg, unit=unit, output=output))
    out = pd.concat(frames, ignore_index=True)
    out["methods"] = out.method_set.str.replace("_with_edge", "", regex=False)
    out["with_edge"] = out.method_set.str.endswith("_with_edge")
    return out[["background", "unit", "output", "methods", "with_edge", "style", "metric", "L", "column", "alpha",
                "ci_low", "ci_high", "kendall_w", "status", "n_images_tied", "n_methods", "n_images",
                "n_excluded", "n_boot"]]


def intermethod(scores: pd.DataFrame, resolution: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Inter-method reliability: mean pairwise Spearman between methods across images, with
    scores within the output's resolution tied."""
    frames = []
    for bg, unit, output, g, tol in _by_output(scores, resolution, profile):
        t = rel.inter_method_table(g, metric_columns(profile), method_sets(profile, int(unit)), group_by=("style",),
                                   tol=tol)
        frames.append(t.assign(background=bg, unit=unit, output=output))
    out = pd.concat(frames, ignore_index=True)
    return out[["background", "unit", "output", "method_set", "style", "metric", "L", "column", "mean_rho", "status",
                "n_pairs", "n_pairs_tied", "n_pairs_undecidable", "n_pairs_undefined", "min_n_images"]]


def consistency(scores: pd.DataFrame, resolution: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Tomsett's Table 2: Spearman between metric variants across images, per method, with
    scores within the output's resolution tied."""
    L = max(ls(profile))
    pairs = [((a.replace("L100", f"L{L}"), sa), (b.replace("L100", f"L{L}"), sb))
             for (a, sa), (b, sb) in rel.TOMSETT_CONSISTENCY_PAIRS]
    frames = []
    for bg, unit, output, g, tol in _by_output(scores, resolution, profile):
        t = rel.consistency_table(g, pairs, group_by=(), tol=tol)
        frames.append(t.assign(background=bg, unit=unit, output=output))
    t = pd.concat(frames, ignore_index=True)
    return t[["background", "unit", "output", "method", "metric_a", "style_a", "metric_b", "style_b", "rho", "status",
              "n_images", "n_images_tied"]]


def _better(column: str) -> int:
    """+1 when a higher score is better (MoRF AOPC, F), -1 when lower is (LeRF AOPC)."""
    return 1 if fm.higher_is_better(column) else -1


def validity(scored: dict[str, pd.DataFrame], loc_ap: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Do the metrics agree with the ground truth? One row per (background, unit, style,
    output, column, question, method):

    * ``oracle_rank``: rank of the oracle map's mean score among every scored map
      (1 = best in the metric's own direction; means within the output's resolution tie
      and share the best rank); ``oracle_beats_method``: share of images where the oracle
      scores better than `method` by more than the resolution; ``oracle_minus_random``:
      oracle mean minus the random-ordering mean (AOPC only; MoRF: > 0 is right, LeRF: < 0).
    * ``spearman_with_ap``: per image, Spearman between the methods' ranking by the
      metric (oriented so higher is better; ties at the resolution) and by localization
      AP; mean over the images where both rankings vary, with a bootstrap CI.
    * ``lesion_share``: mean share of the MoRF drop at L = l_max from lesion units, over
      the images whose drop is at least `MIN_FINAL_DROP` of the output (``n_images`` of
      them; below it the output barely moved and the ratio is noise); ``final_drop``: the
      mean MoRF drop at L = l_max; ``lesion_units_hit``: mean share of those units
      touching the lesion.
    """
    f = profile.fidelity
    scores, base = scored["scores"], random_baseline(scored["random"], profile)
    resolution = scored["resolution"]
    rows = []
    for (bg, unit, style, output), g in scores.groupby(["background", "unit", "style", "output"], sort=True):
        models_only = [m for m in g.method.unique() if m not in (ORACLE, RANDOM_MAP)]
        tol = tolerances(resolution, bg, output, profile)
        for col in metric_columns(profile):
            sign = _better(col)
            # unstack keeps a method whose scores are all NaN (F of a sparse oracle map).
            wide = g.set_index(["image", "method"])[col].unstack("method")
            means = wide.mean()
            oriented = sign * means
            oracle_rank = 1 + int((oriented > oriented[ORACLE] + tol[col]).sum()) if np.isfinite(means[ORACLE]) \
                else np.nan
            key = {"background": bg, "unit": unit, "style": style, "output": output, "column": col}
            rows.append({**key, "question": "oracle_rank", "method": ORACLE, "value": float(oracle_rank),
                         "n_images": int(wide[ORACLE].notna().sum()), "n_methods": len(means)})
            for m in means.index.drop(ORACLE):
                both = wide[[ORACLE, m]].dropna()
                share = float((sign * (both[ORACLE] - both[m]) > tol[col]).mean()) if len(both) else np.nan
                rows.append({**key, "question": "oracle_beats_method", "method": m, "value": share,
                             "n_images": len(both)})
            if col != "faithfulness":
                L = fm.parse_metric(col)[1]
                b = base[(base.background == bg) & (base.unit == unit) & (base["style"] == style) &
                         (base.output == output) & (base.L == L)]
                rows.append({**key, "question": "oracle_minus_random", "method": ORACLE,
                             "value": float(means[ORACLE] - b["mean"].iloc[0]),
                             "random_ci_low": float(b.ci_low.iloc[0] - b["mean"].iloc[0]),
                             "random_ci_high": float(b.ci_high.iloc[0] - b["mean"].iloc[0]),
                             "n_images": int(wide[ORACLE].notna().sum())})
            ap = loc_ap[loc_ap.background == bg].pivot_table(index="image", columns="method", values="ap")
            common = [m for m in models_only if m in ap.columns]
            rhos, n_tied = [], 0
            for image in wide.index.intersection(ap.index):
                r = rel.spearman(sign * wide.loc[image, common].to_numpy(float), ap.loc[image, common].to_numpy(float),
                                 tol[col], 0.0)
                if r.status == "ok":
                    rhos.append(r.rho)
                    n_tied += r.n_images_tied > 0
            if rhos:
                rng = seeding.stage_rng(profile.seed, f"fidelity/validity/{bg}/{unit}/{style}/{col}"
                                        + ("" if output == "probability" else f"/{output}"))
                mean, lo, hi = stats.bootstrap_ci(np.asarray(rhos), n_boot=max(1000, f.n_bootstrap // 10), rng=rng)
            else:
                mean = lo = hi = np.nan
            rows.append({**key, "question": "spearman_with_ap", "method": "all", "value": mean, "ci_low": lo,
                         "ci_high": hi, "n_images": len(rhos), "n_methods": len(common), "n_images_tied": n_tied})
    share = scored["lesion_share"]
    for (bg, unit, style, output, method), g in share.groupby(["background", "unit", "style", "output", "method"],
                                                               sort=True):
        key = {"background": bg, "unit": unit, "style": style, "output": output, "column": f"aopc_morf_L{f.l_max}",
               "method": method}
        moved = g[g.final_drop >= MIN_FINAL_DROP[output]]
        rows.append({**key, "question": "lesion_share", "value": float(moved.drop_share_from_lesion.mean()),
                     "n_images": len(moved)})
        rows.append({**key, "question": "final_drop", "value": float(g.final_drop.mean()), "n_images": len(g)})
        rows.append({**key, "question": "lesion_units_hit", "value": float(g.lesion_units_hit.mean()),
                     "n_images": len(g)})
    out = pd.DataFrame(rows)
    cols = ["background", "unit", "style", "output", "column", "question", "method", "value", "ci_low", "ci_high",
            "random_ci_low", "random_ci_high", "n_images", "n_images_tied", "n_methods"]
    return out.reindex(columns=cols)


def localization_ap(profile: Profile, models: ModelSet, methods) -> pd.DataFrame:
    """Localization AP (Budding's scoring: |map| over brain pixels) of each method on the
    fidelity images, for the validity question (b)."""
    idx = fidelity_indices(profile)
    frames = []
    for bg in BACKGROUNDS:
        with store.open_split(profile, SPLIT) as ho:
            gt, mask = ho.gt(idx), ho.mask(idx)
        for m, a in maps_of(profile, models, bg, methods, idx).items():
            df = metrics.score_maps(a, gt, mask, metrics=("ap",), image_ids=idx)
            frames.append(df.assign(background=bg, method=m))
    return pd.concat(frames, ignore_index=True)


TABLE_NAMES = ("fidelity_scores", "fidelity_random_baseline", "fidelity_resolution", "tomsett_alpha",
               "tomsett_consistency", "tomsett_intermethod", "fidelity_validity")


def tables(profile: Profile, models: ModelSet, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Every fidelity table of the run, by its published name (cached: `pipeline.results`)."""
    return results.cached("fidelity_tables", profile, models, lambda: _tables(profile, models, progress))


def _tables(profile: Profile, models: ModelSet, progress: bool) -> dict[str, pd.DataFrame]:
    scored = score_all(profile, models, progress)
    scores, resolution = scored["scores"], scored["resolution"]
    methods = sorted(set(scores.method) - {ORACLE})
    score_cols = [*SCORE_COLUMNS, *fm.aopc_columns(ls(profile)), "faithfulness", "faithfulness_status", "p_pred",
                  "f_clean"]
    return {
        "fidelity_scores": scores[score_cols].sort_values(SCORE_COLUMNS, ignore_index=True),
        "fidelity_random_baseline": random_baseline(scored["random"], profile),
        "fidelity_resolution": resolution[["background", "output", "resolution", "n_inputs", "n_calls",
                                           "batch_sizes"]].sort_values(["background", "output"], ignore_index=True),
        "tomsett_alpha": alpha(scores, resolution, profile),
        "tomsett_consistency": consistency(scores, resolution, profile),
        "tomsett_intermethod": intermethod(scores, resolution, profile),
        "fidelity_validity": validity(scored, localization_ap(profile, models, methods), profile),
    }


def write_tables(tabs: dict[str, pd.DataFrame], profile: Profile) -> dict[str, object]:
    return {name: outputs.save_table(tabs[name], name, profile) for name in TABLE_NAMES}


# A published fidelity_scores.csv from before the resolution was measured holds 6
# decimals: differences below this are not in it at all.
PUBLISHED_PRECISION = specs.LEGACY_FIDELITY_PRECISION
RETIED_TABLES = ("tomsett_alpha", "tomsett_intermethod", "tomsett_consistency")


def retie_published(profile: Profile, tables_dir=None) -> dict[str, pd.DataFrame]:
    """Tomsett's reliability tables (alpha, inter-method, consistency) recomputed from a
    published `fidelity_scores.csv` whose run did not measure the output's resolution,
    with scores within the precision it was published with (`PUBLISHED_PRECISION`) tied:
    the same code as the stage, on the scores as a reader of the table sees them. A run
    that measured its resolution (a `fidelity_resolution.csv` beside it) is refused: its
    tables already tie at the measured resolution."""
    from salbench import paths

    folder = paths.repo_root() / "tables" if tables_dir is None else tables_dir
    if (folder / "fidelity_resolution.csv").exists():
        raise ValueError(f"{folder}/fidelity_resolution.csv exists: those tables were made at the measured "
                         "resolution; rerun notebook 05 instead of re-tying them")
    scores = specs.read_table(folder / "fidelity_scores.csv")
    resolution = pd.DataFrame([{"background": bg, "output": o, "resolution": PUBLISHED_PRECISION}
                               for bg in sorted(scores["background"].unique()) for o in sorted(scores["output"].unique())])
    return {"tomsett_alpha": alpha(scores, resolution, profile),
            "tomsett_intermethod": intermethod(scores, resolution, profile),
            "tomsett_consistency": consistency(scores, resolution, profile)}


def headline_alpha(tabs: dict[str, pd.DataFrame], profile: Profile) -> pd.DataFrame:
    """Tomsett's Table 1 layout at the headline unit, Tomsett's method set: alpha [CI]."""
    t = tabs["tomsett_alpha"]
    t = t[(t.unit == profile.fidelity.headline_unit) & (t.methods == "tomsett") & (t.output == fm.PAPER_OUTPUT)]
    t = t.assign(cell=[f"{a:.2f} [{lo:.2f}, {hi:.2f}]" for a, lo, hi in zip(t.alpha, t.ci_low, t.ci_high)])
    return t.pivot_table(index=["background", "metric", "L"], columns=["style", "with_edge"], values="cell",
                         aggfunc="first", dropna=False)


# ---------------------------------------------------------------------- figures


def figure2a(tabs: dict[str, pd.DataFrame], profile: Profile, background: str, unit: int | None = None):
    """Tomsett's Figure 2a: mean AOPC minus the random-ordering baseline against L."""
    unit = profile.fidelity.headline_unit if unit is None else unit
    return plots.aopc_vs_random(tabs["fidelity_scores"], tabs["fidelity_random_baseline"], background, unit,
                                ls(profile))


def figure2b(tabs: dict[str, pd.DataFrame], profile: Profile, unit: int | None = None):
    """Tomsett's Figure 2b: distributions of faithfulness F per method."""
    unit = profile.fidelity.headline_unit if unit is None else unit
    return plots.faithfulness_distributions(tabs["fidelity_scores"], unit)


def validity_figure(tabs: dict[str, pd.DataFrame], profile: Profile):
    return plots.fidelity_validity(tabs["fidelity_validity"], profile.fidelity.headline_unit, profile.fidelity.l_max)
