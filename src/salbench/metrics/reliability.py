"""Reliability of saliency metrics: Tomsett et al. 2020's three "sanity checks".

Tomsett's psychometric analogy (PROTOCOLS A5): each image is a *rater* that
administers a battery of tests (the saliency methods) scored by a metric. So the
score matrix of one metric variant is ``scores[image, method]`` and, for
Krippendorff's alpha, **images are the raters (coders) and methods the units**:
the ``krippendorff`` package's ``reliability_data`` is (raters, units), i.e.
exactly ``ranks[image, method]`` (not its transpose).

``ranking_alpha`` / ``ranking_alpha_ci``
    Inter-rater reliability (Tomsett's Table 1). Per image the methods are ranked
    by the metric (``scipy.stats.rankdata``, average ranks for ties; higher score,
    higher rank, the direction does not change alpha), then
    ``krippendorff.alpha(ranks, level_of_measurement="ordinal")``. The paper does
    not name the level; ordinal is PROTOCOLS A5.1's CHOICE. For complete rankings
    without ties it equals interval alpha and ``1 - (1 - W)(N m - 1) / (m (N - 1))``
    (N images, m methods; a test checks it), close to but not exactly PROTOCOLS'
    ``(N W - 1) / (N - 1)``, the mean pairwise Spearman between images. CI: the
    percentile bootstrap over images (Tomsett: 99.9 %, 10,000 resamples; resampling
    images and the percentile type are ours). A resample is its multiset of images,
    so alpha is computed from the per-method counts of each rank value
    (``value_counts``), which is what the package builds from the raw matrix.
``kendalls_w``
    Kendall's W with tie correction, from ``scipy.stats.friedmanchisquare``:
    ``W = chi2_F / (N (m - 1))`` (N images, m methods); a cross-check of alpha.
``inter_method``
    Inter-method reliability: Spearman's rho (``scipy.stats.spearmanr``) between
    the scores of each pair of methods across images, and their mean over pairs.
``internal_consistency``
    Spearman's rho between two metric variants across images, for one method
    (Tomsett's Table 2).

Ties at the resolution (ours): scores that differ by no more than ``tol`` (the
measured resolution of the scored output, ``fidelity.output_resolution``) are ties.
``tolerance_ranks`` sorts the values and chains neighbours whose gap is at most
``tol`` into one tie group, which takes the average rank; with ``tol = 0`` this is
``scipy.stats.rankdata(method="average")``. Alpha, W and every Spearman are computed
on these ranks (Spearman's rho is Pearson's r of the ranks), and each cell counts
what ties decided: the images whose ranking of the methods holds a tie (alpha,
``n_images_tied``), the images sharing a rank in either series (Spearman,
``n_images_tied``) and the pairs of methods with such images (``n_pairs_tied``). A
cell that the ties leave without information (every image ties every method; a series constant at the
resolution) is NaN with ``status`` "undecidable: <reason>"; one undefined for
another reason says so ("undefined: <reason>").

Missing scores (F is NaN where it is undefined): ours. Alpha and W need complete
rankings, so an image with a missing score for any method of the set is dropped
(listwise) and counted in ``n_excluded``; Spearman uses the images where both
series are finite (pairwise) and reports that ``n_images``. A correlation that is
undefined (a constant series) is NaN in the pair tables and left out of means,
counted in ``n_pairs_undefined``.

The ``*_table`` functions apply these to the tidy score table of
``salbench.metrics.fidelity.score_fidelity`` (one row per image, method, style,
unit, plus whatever grouping columns the caller adds).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats as sps

from salbench.batching import batch_slices
from salbench.metrics.fidelity import parse_metric

LEVELS = ("ordinal", "interval")

# Tomsett's Table 2 rows, as ((metric, style), (metric, style)).
TOMSETT_CONSISTENCY_PAIRS = (
    (("faithfulness", "mean"), ("aopc_morf_L100", "mean")),
    (("faithfulness", "mean"), ("aopc_lerf_L100", "mean")),
    (("aopc_morf_L100", "mean"), ("aopc_lerf_L100", "mean")),
    (("aopc_morf_L100", "uniform"), ("aopc_morf_L100", "mean")),
)

# Bootstrap resamples are drawn this many at a time (memory: chunk x images counts).
_BOOT_CHUNK = 1000


def _check_choice(name: str, value, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")


def _as_scores(scores, min_methods: int = 2) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D (images, methods) array; got shape {s.shape}")
    if s.shape[1] < min_methods:
        raise ValueError(f"scores has {s.shape[1]} methods (columns); need at least {min_methods}")
    return s


def complete_rows(scores) -> tuple[np.ndarray, int]:
    """The images (rows) with a finite score for every method, and how many were dropped."""
    s = _as_scores(scores, min_methods=1)
    ok = np.isfinite(s).all(axis=1)
    return s[ok], int((~ok).sum())


def _tolerance(tol) -> float:
    tol = float(tol)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0 (the resolution of the scores); got {tol!r}")
    return tol


def tolerance_ranks(values, tol: float = 0.0) -> np.ndarray:
    """Average ranks (1 = lowest) of a 1-D series, with values whose sorted neighbours lie
    within ``tol`` of each other chained into one tie group; ``tol = 0`` is
    ``scipy.stats.rankdata(method="average")``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(v).all():
        raise ValueError("values hold NaN or Inf; drop them first")
    tol = _tolerance(tol)
    order = np.argsort(v, kind="stable")
    group = np.concatenate([[0], np.cumsum(np.diff(v[order]) > tol)])
    positions = np.arange(1, len(v) + 1, dtype=np.float64)
    mean_pos = np.bincount(group, weights=positions) / np.bincount(group)
    ranks = np.empty(len(v))
    ranks[order] = mean_pos[group]
    return ranks


def within_image_ranks(scores, tol: float = 0.0) -> np.ndarray:
    """Rank the methods within each image: 1 = lowest score, average ranks for ties
    (scores within ``tol`` of each other are ties; see ``tolerance_ranks``)."""
    s = _as_scores(scores, min_methods=1)
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or Inf; drop incomplete images first (complete_rows)")
    return np.array([tolerance_ranks(row, tol) for row in s]).reshape(s.shape)


def _has_tie(ranks: np.ndarray) -> np.ndarray:
    """Per row: whether two of its ranks are equal."""
    r = np.sort(np.atleast_2d(ranks), axis=1)
    return (np.diff(r, axis=1) == 0).any(axis=1)


def _in_tie(ranks: np.ndarray) -> np.ndarray:
    """Per value of a 1-D rank series: whether another value shares its rank."""
    values, counts = np.unique(ranks, return_counts=True)
    return np.isin(ranks, values[counts > 1])


def n_rows_tied(scores, tol: float) -> int:
    """Rows (images) whose ranking at the resolution ``tol`` holds a tie: where the scores
    cannot order every method (exactly equal, or within ``tol``)."""
    s = _as_scores(scores, min_methods=1)
    return int(_has_tie(within_image_ranks(s, tol)).sum())


def _need_images(n: int, what: str) -> None:
    if n < 2:
        raise ValueError(f"{what} needs at least 2 images with complete scores; got {n}")


def ranking_alpha(scores, *, level_of_measurement: str = "ordinal", tol: float = 0.0) -> float:
    """Krippendorff's alpha of the per-image method rankings (images = raters, methods = units).

    ``scores``: (n_images, n_methods); images with a missing score are dropped
    (see ``complete_rows``). Returns ``krippendorff.alpha(within_image_ranks(..., tol))``.
    """
    _check_choice("level_of_measurement", level_of_measurement, LEVELS)
    s, _ = complete_rows(_as_scores(scores))
    _need_images(len(s), "alpha")
    ranks = within_image_ranks(s, tol)
    if np.unique(ranks).size < 2:  # every method tied on every image: alpha is 0/0
        return float("nan")
    return float(krippendorff.alpha(reliability_data=ranks, level_of_measurement=level_of_measurement))


@dataclass(frozen=True)
class AlphaCI:
    alpha: float
    ci_low: float
    ci_high: float
    n_images: int
    n_excluded: int
    n_boot: int
    n_boot_undefined: int  # resamples whose alpha is undefined (every rank tied), left out of the quantiles
    n_images_tied: int = 0  # images whose ranking of the methods holds a tie at the resolution


def ranking_alpha_ci(
    scores,
    *,
    rng: np.random.Generator,
    n_boot: int = 10_000,
    ci: float = 0.999,
    level_of_measurement: str = "ordinal",
    tol: float = 0.0,
) -> AlphaCI:
    """Alpha with a percentile bootstrap CI over images (Tomsett: 99.9 %, 10,000 resamples).

    Each resample draws the complete images with replacement (``rng``, a seeded
    Generator); its alpha comes from ``krippendorff.alpha(value_counts=...)`` over
    the full value domain of the observed ranks, equal to the alpha of the
    resampled rank matrix (a test pins this). CI = the ``(1 - ci) / 2`` and
    ``(1 + ci) / 2`` quantiles (numpy's linear interpolation).
    """
    _check_choice("level_of_measurement", level_of_measurement, LEVELS)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded np.random.Generator; got {type(rng).__name__}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie strictly between 0 and 1 (e.g. 0.999); got {ci!r}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    s, n_excluded = complete_rows(_as_scores(scores))
    n = len(s)
    _need_images(n, "alpha")
    ranks = within_image_ranks(s, tol)
    n_tied = n_rows_tied(s, tol)
    domain = np.unique(ranks)
    if domain.size < 2:  # every method tied on every image (e.g. no perturbation moves the output): 0/0
        return AlphaCI(float("nan"), float("nan"), float("nan"), n, n_excluded, int(n_boot), int(n_boot), n_tied)
    alpha = float(krippendorff.alpha(reliability_data=ranks, level_of_measurement=level_of_measurement))
    onehot = (ranks[:, :, None] == domain).reshape(n, -1).astype(np.float64)  # (images, methods * values)
    boots = np.empty(int(n_boot))
    for sl in batch_slices(int(n_boot), _BOOT_CHUNK):
        start, stop = sl.start, sl.stop
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=stop - start)  # times each image is drawn
        counts = (weights @ onehot).reshape(stop - start, ranks.shape[1], domain.size)
        for b, vc in enumerate(counts):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when a resample has every rank tied
                boots[start + b] = krippendorff.alpha(
                    value_counts=vc, value_domain=domain, level_of_measurement=level_of_measurement
                )
    finite = np.isfinite(boots)
    lo, hi = np.quantile(boots[finite], [(1 - ci) / 2, (1 + ci) / 2]) if finite.any() else (np.nan, np.nan)
    return AlphaCI(alpha, float(lo), float(hi), n, n_excluded, int(n_boot), int((~finite).sum()), n_tied)


def kendalls_w(scores, tol: float = 0.0) -> float:
    """Kendall's W (tie-corrected) of the per-image method rankings: ``chi2_Friedman / (N (m - 1))``.

    Needs at least 3 methods (``scipy.stats.friedmanchisquare``); incomplete images dropped;
    scores within ``tol`` are ties (Friedman ranks the tolerance ranks again, unchanged).
    """
    s, _ = complete_rows(_as_scores(scores, min_methods=3))
    _need_images(len(s), "Kendall's W")
    s = within_image_ranks(s, tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every rank tied: 0/0, W undefined
        chi2 = sps.friedmanchisquare(*s.T).statistic
    return float(chi2 / (len(s) * (s.shape[1] - 1)))


@dataclass(frozen=True)
class Rho:
    """A Spearman rho at the resolution, with what decided it."""

    rho: float
    n_images: int  # pairwise-complete images
    n_images_tied: int  # images that share their rank with another image, in either series
    status: str  # "ok", "undecidable: ...", "undefined: ..."


def spearman(a, b, tol_a: float = 0.0, tol_b: float | None = None) -> Rho:
    """Spearman's rho of two series over the images where both are finite, with values of
    a series within its ``tol`` of each other tied (Pearson's r of ``tolerance_ranks``)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    tol_b = tol_a if tol_b is None else tol_b
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(ok.sum())
    if n < 3:
        return Rho(float("nan"), n, 0, f"undefined: {n} images with both scores (needs 3)")
    ra, rb = tolerance_ranks(a, tol_a), tolerance_ranks(b, tol_b)
    shared = [_in_tie(ra), _in_tie(rb)]
    tied = int((shared[0] | shared[1]).sum())
    for name, raw, r in (("first", a, ra), ("second", b, rb)):
        if np.ptp(raw) == 0:
            return Rho(float("nan"), n, tied, f"undefined: the {name} series is constant")
        if np.ptp(r) == 0:
            return Rho(float("nan"), n, tied, f"undecidable: the {name} series is constant at the resolution")
    return Rho(float(np.corrcoef(ra, rb)[0, 1]), n, tied, "ok")


def _spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    r = spearman(a, b)
    return r.rho, r.n_images


def inter_method(scores, methods: Sequence[str] | None = None, tol: float = 0.0) -> tuple[float, pd.DataFrame]:
    """Mean pairwise Spearman rho between methods across images (Tomsett's inter-method reliability).

    Returns ``(mean over defined pairs, pairs table)``; the table has columns
    method_a, method_b, rho, n_images (pairwise-complete images), n_images_tied, status.
    Scores within ``tol`` are ties.
    """
    s = _as_scores(scores)
    names = [str(j) for j in range(s.shape[1])] if methods is None else list(methods)
    if len(names) != s.shape[1]:
        raise ValueError(f"methods has {len(names)} names for {s.shape[1]} columns")
    rows = []
    for i, j in itertools.combinations(range(s.shape[1]), 2):
        r = spearman(s[:, i], s[:, j], tol)
        rows.append({"method_a": names[i], "method_b": names[j], "rho": r.rho, "n_images": r.n_images,
                     "n_images_tied": r.n_images_tied, "status": r.status})
    pairs = pd.DataFrame(rows, columns=["method_a", "method_b", "rho", "n_images", "n_images_tied", "status"])
    defined = pairs["rho"].notna()
    return (float(pairs.loc[defined, "rho"].mean()) if defined.any() else float("nan")), pairs


def internal_consistency(metric_a, metric_b, tol_a: float = 0.0, tol_b: float | None = None) -> tuple[float, int]:
    """Spearman rho between two metric variants across images for one method, and the images used."""
    a = np.asarray(metric_a, dtype=np.float64).ravel()
    b = np.asarray(metric_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the two metric series differ in length: {a.size} vs {b.size}")
    r = spearman(a, b, tol_a, tol_b)
    return r.rho, r.n_images


# --------------------------------------------------------------------------- tidy tables


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(df.columns)}")


def _wide(g: pd.DataFrame, metric: str, methods: Sequence[str], image_col: str, method_col: str, where: dict) -> np.ndarray:
    absent = [m for m in methods if m not in set(g[method_col])]
    if absent:
        raise ValueError(f"methods {absent} have no scores in group {where}; present: {sorted(set(g[method_col]))}")
    sub = g[g[method_col].isin(methods)]
    if sub.duplicated([image_col, method_col]).any():
        raise ValueError(f"group {where} has several rows per ({image_col}, {method_col}); add the missing key to group_by")
    wide = sub.pivot(index=image_col, columns=method_col, values=metric).reindex(columns=list(methods))
    return wide.to_numpy(dtype=np.float64)


def tolerance_of(tol: float | Mapping[str, float], column: str) -> float:
    """The tie tolerance of a score column: ``tol`` itself, or its entry for ``column``
    (a mapping must name every column it is asked for)."""
    if isinstance(tol, Mapping):
        if column not in tol:
            raise KeyError(f"no tolerance for column {column!r}; given for {sorted(tol)}")
        return _tolerance(tol[column])
    return _tolerance(tol)


def _status(value: float, undecidable: bool, reason: str) -> str:
    if np.isfinite(value):
        return "ok"
    return f"undecidable: {reason}" if undecidable else f"undefined: {reason}"


def _method_sets(method_sets: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if not method_sets:
        raise ValueError("method_sets is empty; pass e.g. {'with_edge': [...], 'without_edge': [...]}")
    return {k: list(v) for k, v in method_sets.items()}


def alpha_table(
    scores: pd.DataFrame,
    metrics: Sequence[str],
    method_sets: Mapping[str, Sequence[str]],
    *,
    rng: np.random.Generator,
    group_by: Sequence[str] = ("style", "unit"),
    n_boot: int = 10_000,
    ci: float = 0.999,
    level_of_measurement: str = "ordinal",
    image_col: str = "image",
    method_col: str = "method",
    tol: float | Mapping[str, float] = 0.0,
) -> pd.DataFrame:
    """Tomsett's Table 1 in long form: alpha with bootstrap CI and Kendall's W per cell.

    One row per (group, method set, metric) with columns ``*group_by, method_set,
    metric, L, column, alpha, ci_low, ci_high, kendall_w, n_methods, n_images,
    n_excluded, n_boot, n_boot_undefined, tol, n_images_tied, status``: ``column`` is
    the score column (e.g. ``aopc_morf_L20``), ``metric`` its family and ``L`` its
    length (NaN for F); ``tol`` the tie tolerance of the column (``tolerance_of``).
    Each cell bootstraps from its own child stream of ``rng`` (``rng.spawn``), in
    the order groups (sorted) x method sets x metrics. A cell with fewer than two
    complete images has NaN alpha and interval (``n_images`` says how many).
    """
    group_by, metrics, sets = list(group_by), list(metrics), _method_sets(method_sets)
    parsed = [parse_metric(m) for m in metrics]
    _check_columns(scores, [*group_by, image_col, method_col, *metrics])
    groups = list(scores.groupby(group_by, sort=True)) if group_by else [((), scores)]
    children = iter(rng.spawn(len(groups) * len(sets) * len(metrics)))
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(group_by, key))
        for set_name, methods in sets.items():
            for metric, (family, L) in zip(metrics, parsed):
                wide = _wide(g, metric, methods, image_col, method_col, where)
                child = next(children)
                t = tolerance_of(tol, metric)
                complete = complete_rows(_as_scores(wide))[0]
                n_complete = len(complete)
                if n_complete < 2:  # e.g. F of single pixels: no drop, so no correlation on any image
                    res = AlphaCI(float("nan"), float("nan"), float("nan"), n_complete, len(wide) - n_complete, 0, 0)
                    w = float("nan")
                    status = f"undefined: {n_complete} images with a score for every method (needs 2)"
                else:
                    res = ranking_alpha_ci(wide, rng=child, n_boot=n_boot, ci=ci,
                                           level_of_measurement=level_of_measurement, tol=t)
                    w = kendalls_w(wide, t) if len(methods) >= 3 else float("nan")
                    exact_ties = np.unique(within_image_ranks(complete)).size < 2
                    status = _status(res.alpha, not exact_ties, "every image ties every method at the resolution"
                                     if not exact_ties else "every image ties every method")
                if not np.isfinite(res.alpha):
                    w = float("nan")
                rows.append({
                    **where, "method_set": set_name, "metric": family, "L": L, "column": metric,
                    "alpha": res.alpha, "ci_low": res.ci_low, "ci_high": res.ci_high, "kendall_w": w,
                    "n_methods": len(methods), "n_images": res.n_images, "n_excluded": res.n_excluded,
                    "n_boot": res.n_boot, "n_boot_undefined": res.n_boot_undefined, "tol": t,
                    "n_images_tied": res.n_images_tied, "status": status,
                })
    return pd.DataFrame(rows)


def inter_method_table(
    scores: pd.DataFrame,
    metrics: Sequence[str],
    method_sets: Mapping[str, Sequence[str]],
    *,
    group_by: Sequence[str] = ("style", "unit"),
    image_col: str = "image",
    method_col: str = "method",
    tol: float | Mapping[str, float] = 0.0,
) -> pd.DataFrame:
    """Mean pairwise Spearman between methods, per (group, method set, metric).

    Columns ``*group_by, method_set, metric, L, column, mean_rho, n_pairs,
    n_pairs_undefined, min_n_images, tol, n_pairs_tied, n_pairs_undecidable, status``:
    ``n_pairs_undefined`` counts every pair without a rho, ``n_pairs_undecidable`` those
    of them that only the resolution left without one, ``n_pairs_tied`` the pairs with
    a rho and at least one image that shares its rank at the resolution.
    """
    group_by, metrics, sets = list(group_by), list(metrics), _method_sets(method_sets)
    _check_columns(scores, [*group_by, image_col, method_col, *metrics])
    groups = list(scores.groupby(group_by, sort=True)) if group_by else [((), scores)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(group_by, key))
        for set_name, methods in sets.items():
            for metric in metrics:
                family, L = parse_metric(metric)
                t = tolerance_of(tol, metric)
                mean, pairs = inter_method(_wide(g, metric, methods, image_col, method_col, where), methods, t)
                undecidable = pairs["status"].str.startswith("undecidable")
                rows.append({
                    **where, "method_set": set_name, "metric": family, "L": L, "column": metric,
                    "mean_rho": mean, "n_pairs": len(pairs), "n_pairs_undefined": int(pairs["rho"].isna().sum()),
                    "min_n_images": int(pairs["n_images"].min()) if len(pairs) else 0, "tol": t,
                    "n_pairs_tied": int(((pairs["n_images_tied"] > 0) & pairs["rho"].notna()).sum()),
                    "n_pairs_undecidable": int(undecidable.sum()),
                    "status": _status(mean, bool(undecidable.any()), "no pair of methods has a rho at the resolution"
                                      if undecidable.any() else "no pair of methods has a rho"),
                })
    return pd.DataFrame(rows)


def consistency_table(
    scores: pd.DataFrame,
    pairs: Sequence[tuple[tuple[str, str], tuple[str, str]]] = TOMSETT_CONSISTENCY_PAIRS,
    *,
    group_by: Sequence[str] = ("unit",),
    image_col: str = "image",
    method_col: str = "method",
    style_col: str = "style",
    tol: float | Mapping[str, float] = 0.0,
) -> pd.DataFrame:
    """Tomsett's Table 2 in long form: Spearman rho between metric variants across images, per method.

    A variant is ``(metric column, style)``. One row per (group, method, pair) with
    columns ``*group_by, method, metric_a, style_a, metric_b, style_b, rho, n_images,
    n_images_tied, status``; each column's values within its tolerance are ties.
    """
    group_by = list(group_by)
    cols = sorted({m for pair in pairs for m, _ in pair})
    _check_columns(scores, [*group_by, image_col, method_col, style_col, *cols])
    groups = list(scores.groupby(group_by, sort=True)) if group_by else [((), scores)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        where = dict(zip(group_by, key))
        if g.duplicated([image_col, method_col, style_col]).any():
            raise ValueError(f"group {where} has several rows per ({image_col}, {method_col}, {style_col}); add the key to group_by")
        for method, gm in g.groupby(method_col, sort=False):
            by_style = {st: gs.set_index(image_col) for st, gs in gm.groupby(style_col)}
            for (ma, sa), (mb, sb) in pairs:
                for st in (sa, sb):
                    if st not in by_style:
                        raise ValueError(f"style {st!r} has no rows for method {method!r} in group {where}; present: {sorted(by_style)}")
                joined = by_style[sa][[ma]].join(by_style[sb][[mb]], how="inner", lsuffix="_a", rsuffix="_b")
                a = joined.iloc[:, 0].to_numpy(np.float64)
                b = joined.iloc[:, 1].to_numpy(np.float64)
                r = spearman(a, b, tolerance_of(tol, ma), tolerance_of(tol, mb))
                rows.append({**where, "method": method, "metric_a": ma, "style_a": sa,
                             "metric_b": mb, "style_b": sb, "rho": r.rho, "n_images": r.n_images,
                             "n_images_tied": r.n_images_tied, "status": r.status})
    return pd.DataFrame(rows)
