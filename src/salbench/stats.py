"""Statistics over per-image scores: bootstrap CIs, mixed models against baselines, Tukey HSD.

Inputs are tidy score tables (one row per image and method, as ``score_maps``
returns them with a ``method`` column added); outputs are tidy DataFrames.

* ``bootstrap_ci``: percentile bootstrap CI of a mean.
* ``summarise``: mean, sd and bootstrap CI per group and metric.
* ``compare_to_baselines``: Arun et al. 2021's localization-utility test. Each
  method against a low baseline (the average mask) and a high baseline (U-Net)
  with a linear mixed-effects model (image as random intercept), two-sided at
  alpha = 0.05, turned into their verdicts "pass" / "did not pass" / "uncertain";
  plus Tukey HSD between all methods as the post hoc table.
* ``randomization_verdicts`` / ``consistency_verdicts``: Arun et al.'s cascading-
  randomization verdict and their Table 4 (repeatability, reproducibility).
* ``run_mixed_model``: method effects with image and training run as crossed random
  effects and the share of variance per source; ``verdicts_by_run``,
  ``verdict_agreement`` and ``run_agreement`` for per-run verdicts.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec
from statsmodels.stats.multicomp import pairwise_tukeyhsd
from statsmodels.stats.multitest import multipletests

from salbench.batching import batch_slices

VERDICTS = ("pass", "did not pass", "uncertain")
P_ADJUST = ("none", "holm", "bonferroni", "fdr_bh")

# A fit is "singular" when the image random intercept explains less than this
# share of the total variance (random + residual). statsmodels' optimizer stops
# short of the boundary: on data whose REML optimum is exactly zero (identical image
# means) it ended at a 0.5 % share, so 1 % is "practically zero". statsmodels' own
# boundary warning uses an absolute threshold (variance < 0.01, here on
# standardised scores); we record its messages in `note` but judge singularity here.
SINGULAR_RE_FRACTION = 0.01

# Bootstrap resamples are drawn in chunks of at most this many indices (memory).
_BOOT_CHUNK = 4_000_000


# --------------------------------------------------------------------------- helpers


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("rng is required for reproducibility: pass a seeded np.random.Generator (or an int seed)")
    if isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a np.random.Generator or an int seed; got {type(rng).__name__}")


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha!r}")


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(df.columns)}")


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(values, n_boot: int = 2000, alpha: float = 0.05, rng=None) -> tuple[float, float, float]:
    """Percentile bootstrap CI of the mean: ``(mean, lo, hi)``.

    Draws ``n_boot`` resamples of ``values`` with replacement, takes their means and
    returns the sample mean with the ``alpha / 2`` and ``1 - alpha / 2`` quantiles
    (numpy's default linear interpolation) of the resampled means. ``rng`` (a seeded
    ``np.random.Generator``, or an int seed) is required; the same seed gives the same
    interval. NaN or Inf in ``values`` raises (drop them first, explicitly).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci got no values")
    if not np.isfinite(x).all():
        raise ValueError(f"bootstrap_ci got {int((~np.isfinite(x)).sum())} NaN/Inf values among {x.size}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}")
    _check_alpha(alpha)
    gen = _as_rng(rng)
    n, n_boot = x.size, int(n_boot)
    means = np.empty(n_boot)
    step = max(1, _BOOT_CHUNK // n)
    for s in batch_slices(n_boot, step):
        means[s] = x[gen.integers(0, n, size=(s.stop - s.start, n))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(x.mean()), float(lo), float(hi)


def summarise(
    scores_df: pd.DataFrame,
    by: Sequence[str] | str = ("method",),
    metrics: Sequence[str] | str = ("roc_auc", "ap", "prec99", "auprc"),
    n_boot: int = 2000,
    alpha: float = 0.05,
    rng=None,
    *,
    nan: str = "raise",
) -> pd.DataFrame:
    """Mean, sd and percentile bootstrap CI of each metric per group, as a tidy table.

    Returns one row per (group, metric) with columns ``*by, metric, n, mean, sd,
    ci_lo, ci_hi`` (sd with ddof = 1; NaN only where n = 1, where it is undefined).
    Groups come in sorted order and metrics in the order given; each (group, metric)
    draws from its own child stream of ``rng`` (``Generator.spawn``), so the table is
    deterministic per seed. ``nan="raise"`` (default) refuses NaN scores, naming the
    groups; ``nan="drop"`` drops them and reports how many in the ``n_nan`` column.
    """
    by = [by] if isinstance(by, str) else list(by)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if nan not in ("raise", "drop"):
        raise ValueError(f"nan={nan!r} is not valid; choose 'raise' or 'drop'")
    _check_columns(scores_df, by + metrics)
    gen = _as_rng(rng)
    groups = list(scores_df.groupby(by, sort=True, dropna=False))
    children = gen.spawn(len(groups) * len(metrics))
    rows = []
    for gi, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        for mi, metric in enumerate(metrics):
            v = g[metric].to_numpy(dtype=np.float64)
            bad = ~np.isfinite(v)
            if bad.any() and nan == "raise":
                raise ValueError(
                    f"{int(bad.sum())} NaN/Inf {metric!r} scores in group {dict(zip(by, key))}; "
                    "drop them or pass nan='drop'"
                )
            v = v[~bad]
            if v.size == 0:
                raise ValueError(f"group {dict(zip(by, key))} has no finite {metric!r} score")
            mean, lo, hi = bootstrap_ci(v, n_boot=n_boot, alpha=alpha, rng=children[gi * len(metrics) + mi])
            rows.append({
                **dict(zip(by, key)), "metric": metric, "n": int(v.size), "n_nan": int(bad.sum()),
                "mean": mean, "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                "ci_lo": lo, "ci_hi": hi,
            })
    return pd.DataFrame(rows, columns=[*by, "metric", "n", "n_nan", "mean", "sd", "ci_lo", "ci_hi"])


# --------------------------------------------------------------------------- mixed models


class BaselineComparison(NamedTuple):
    """``compare_to_baselines``'s result; unpacks as ``table, tukey = ...``."""

    table: pd.DataFrame
    tukey: pd.DataFrame | None


def verdict(estimate: float, p_value: float, alpha: float = 0.05) -> str:
    """Arun et al.'s verdict for method - baseline: pass / did not pass / uncertain."""
    if not np.isfinite(p_value):
        raise ValueError(f"no verdict without a p-value (got {p_value!r})")
    if p_value < alpha:
        return "pass" if estimate > 0 else "did not pass"
    return "uncertain"


def _fit_pair(y_method: pd.Series, y_base: pd.Series, alpha: float, label: str) -> dict:
    """MixedLM ``score ~ 1 + is_method`` with a random intercept per image (REML).

    Scores are standardised before fitting (optimizer conditioning; the estimate and
    its SE are scaled back, t and p are unchanged).
    """
    images = pd.Index(y_base.index).union(pd.Index(y_method.index))
    n_pairs = len(pd.Index(y_base.index).intersection(pd.Index(y_method.index)))
    if n_pairs < 2:
        raise ValueError(f"{label}: only {n_pairs} image(s) scored by both; the comparison needs at least 2")
    y = np.concatenate([y_base.to_numpy(np.float64), y_method.to_numpy(np.float64)])
    is_method = np.r_[np.zeros(len(y_base)), np.ones(len(y_method))]
    groups = images.get_indexer(np.concatenate([y_base.index.to_numpy(), y_method.index.to_numpy()]))
    mu, sd = y.mean(), y.std()
    if sd == 0:
        raise ValueError(f"{label}: every score is {mu!r}; there is nothing to compare")
    z = (y - mu) / sd
    exog = np.column_stack([np.ones_like(z), is_method])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = MixedLM(z, exog, groups=groups).fit(reml=True)
        except Exception as err:  # report which comparison failed, keep the cause
            raise RuntimeError(f"{label}: MixedLM fit failed: {err}") from err
    notes = list(dict.fromkeys(f"{type(w.message).__name__}: {w.message}" for w in caught))
    est = float(res.fe_params[1]) * sd
    se = float(res.bse_fe[1]) * sd
    re_var = float(np.asarray(res.cov_re)[0, 0]) * sd**2
    resid_var = float(res.scale) * sd**2
    hessian_pd = not any("not positive definite" in n for n in notes)
    singular = bool(re_var <= SINGULAR_RE_FRACTION * (re_var + resid_var))
    # At a boundary (singular) fit a non-positive-definite Hessian is expected: the
    # likelihood still rises towards the excluded negative variances.
    converged = bool(res.converged) and (hessian_pd or singular)
    if not (np.isfinite(se) and se > 0):
        return _paired_t_fallback(y_method, y_base, alpha, label, notes, se)
    df = n_pairs - 1
    t = est / se
    p = float(2 * sps.t.sf(abs(t), df))
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se
    return {
        "n_images": n_pairs, "estimate": est, "se": se, "df": df, "t": t, "p_value": p,
        "ci_lo": est - half, "ci_hi": est + half,
        "converged": converged, "singular": singular, "hessian_pd": hessian_pd,
        "re_var": re_var, "resid_var": resid_var, "note": "; ".join(notes),
    }


def _paired_t_fallback(y_method: pd.Series, y_base: pd.Series, alpha: float, label: str, notes: list[str],
                       se) -> dict:
    """When MixedLM gives no usable SE (e.g. a method on 3 images against a baseline on
    10): the paired t test on the images both scored, which the random-intercept model
    equals for complete pairs with a positive image variance (ours; the baseline's other
    images are left out, and the note says so)."""
    common = pd.Index(y_method.index).intersection(pd.Index(y_base.index))
    a, b = y_method.loc[common].to_numpy(np.float64), y_base.loc[common].to_numpy(np.float64)
    n = len(common)
    if n < 2 or not np.ptp(a - b) > 0:
        raise RuntimeError(f"{label}: MixedLM gave no usable standard error (se={se!r}) and the {n} paired "
                           f"differences allow no t test; notes: {notes}")
    res = sps.ttest_rel(a, b)
    est, t, df, p = float(np.mean(a - b)), float(res.statistic), int(res.df), float(res.pvalue)
    ci = res.confidence_interval(1 - alpha)
    dropped = len(pd.Index(y_method.index).union(pd.Index(y_base.index))) - n
    note = "; ".join([*notes, f"MixedLM gave no usable SE (se={se!r}): paired t test on the {n} images both scored"
                      + (f" ({dropped} scored by one side only left out)" if dropped else "")])
    return {
        "n_images": n, "estimate": est, "se": est / t, "df": df, "t": t, "p_value": p,
        "ci_lo": float(ci.low), "ci_hi": float(ci.high),
        "converged": False, "singular": True, "hessian_pd": False,
        "re_var": float("nan"), "resid_var": float("nan"), "note": note,
    }


def tukey_table(df: pd.DataFrame, metric: str, method_col: str = "method", alpha: float = 0.05) -> pd.DataFrame:
    """Tukey HSD between every pair of methods (``statsmodels.stats.multicomp.pairwise_tukeyhsd``).

    Columns: ``group1, group2, meandiff`` (mean of group2 - mean of group1),
    ``p_adj, ci_lo, ci_hi, reject``. It treats the scores of different methods as
    independent samples with one pooled error variance (one-way ANOVA), ignoring that
    they share images: it loses power where two methods' scores are positively
    correlated across images, and the noisiest methods inflate every pair's standard
    error. Use it for the ordering between methods, the mixed models for the verdicts.
    """
    _check_columns(df, [metric, method_col])
    _check_alpha(alpha)
    y = df[metric].to_numpy(np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"{int((~np.isfinite(y)).sum())} NaN/Inf {metric!r} scores; drop them first")
    res = pairwise_tukeyhsd(y, df[method_col].astype(str).to_numpy(), alpha=alpha)
    g = np.asarray(res.groupsunique)
    i, j = np.triu_indices(len(g), 1)  # statsmodels' pair order
    conf = np.asarray(res.confint)
    return pd.DataFrame({
        "group1": g[i], "group2": g[j], "meandiff": np.asarray(res.meandiffs, dtype=np.float64),
        "p_adj": np.asarray(res.pvalues, dtype=np.float64), "ci_lo": conf[:, 0], "ci_hi": conf[:, 1],
        "reject": np.asarray(res.reject, dtype=bool),
    })


def compare_to_baselines(
    df: pd.DataFrame,
    metric: str,
    method_col: str = "method",
    image_col: str = "image",
    low: str | None = "avg_mask",
    high: str | None = "unet",
    alpha: float = 0.05,
    *,
    methods: Sequence[str] | None = None,
    p_adjust: str = "none",
    tukey: bool = True,
) -> BaselineComparison:
    """Arun et al. 2021's utility test: each method against a low and a high baseline.

    Model. For every (method, baseline) pair, a linear mixed-effects model fitted by
    REML (``statsmodels`` ``MixedLM``) on the rows of that method and that baseline
    only: ``score ~ 1 + is_method`` with a random intercept per image. The estimate
    is method - baseline. Arun et al. fitted lme4 models and Tukey contrasts
    (multcomp); we fit one small model per pair rather than one model over all methods
    because (1) saliency methods and baselines differ by orders of magnitude in score
    spread (U-Net vs a noisy gradient), and one pooled residual variance would let the
    noisiest method set the standard errors of every comparison; (2) a failing or
    singular fit stays confined to its own row; (3) adding a method never changes the
    verdicts of the others. With one score per image and method this is the paired
    design, but its Wald t is not the paired t-test's: REML estimates the image
    variance and the residual variance under equal variances for the two arms, and its
    standard error is the paired t-test's only when those estimates reproduce the
    variance of the per-image differences. It is smaller at a singular fit (below), and
    can differ elsewhere too; on few images the p values can then differ from the paired
    t-test's by large factors (a test checks the two on a known case).

    Test. Two-sided Wald t = estimate / SE referred to a t distribution with
    ``n_images - 1`` degrees of freedom (``n_images``: images scored by both; the
    Satterthwaite df of the balanced paired design, which lmerTest would report, also
    at a singular fit, where the pooled comparison would have about ``2 n_images - 2``;
    statsmodels' own z-test is anti-conservative for small n). A singular fit is
    slightly *anti*-conservative all the same: when the sample covariance of the two
    methods' scores across images is negative, REML clamps the image variance to zero
    and the SE becomes the independent-samples one, below the paired t-test's.
    ``p_adjust`` ("none",
    default, as each comparison is one pre-planned question; or "holm", "bonferroni",
    "fdr_bh" via ``statsmodels.stats.multitest.multipletests``) adjusts across all rows;
    ``p_value_unadjusted`` keeps the raw value. ``ci_lo, ci_hi`` are unadjusted
    (1 - alpha) confidence intervals of the estimate.

    Verdict (Arun et al.): ``p_value < alpha`` and estimate > 0: "pass";
    ``p_value < alpha`` and estimate < 0: "did not pass"; otherwise "uncertain". The
    same rule applies against the high baseline (a method passes only if it beats U-Net).

    Failures are recorded, never hidden: ``singular`` is True when the image
    random-intercept variance is (practically) zero, below ``SINGULAR_RE_FRACTION`` of
    the total, where the model in effect pools the two methods as independent samples;
    ``hessian_pd`` is False when statsmodels found the Hessian not positive definite;
    ``converged`` is False when the optimizer did not converge, or when the Hessian was
    not positive definite away from the boundary (at a singular fit a non-positive-
    definite Hessian is expected and does not by itself clear ``converged``). Verdicts
    of rows with ``converged == False`` are reported but should not be trusted.
    ``note`` lists every warning statsmodels raised (including its boundary warning,
    which uses an absolute threshold and is therefore not used here). A fit that
    raises, or yields no finite standard error, raises ``RuntimeError`` naming the
    comparison.

    Returns ``BaselineComparison(table, tukey)``: ``table`` has one row per (method,
    baseline) with columns ``metric, method, baseline, role`` ("low"/"high"),
    ``n_images, estimate, se, df, t, p_value, p_value_unadjusted, ci_lo, ci_hi,
    verdict, converged, singular, hessian_pd, re_var, resid_var, note`` (``re_var``,
    ``resid_var``: image and residual variances in score units); ``tukey`` is
    ``tukey_table`` over the compared methods and the baselines (None with
    ``tukey=False``: its critical value costs a numerical integral, about 0.1-0.3 s).
    """
    _check_columns(df, [metric, method_col, image_col])
    _check_alpha(alpha)
    if p_adjust not in P_ADJUST:
        raise ValueError(f"p_adjust={p_adjust!r} is not valid; choose one of {list(P_ADJUST)}")
    baselines = [(role, name) for role, name in (("low", low), ("high", high)) if name is not None]
    if not baselines:
        raise ValueError("give at least one baseline (low or high)")
    if low is not None and low == high:
        raise ValueError(f"low and high baseline are both {low!r}")
    present = list(dict.fromkeys(df[method_col].tolist()))
    for _, name in baselines:
        if name not in present:
            raise KeyError(f"baseline {name!r} has no rows in column {method_col!r}; methods present: {present}")
    base_names = {name for _, name in baselines}
    if methods is None:
        methods = [m for m in present if m not in base_names]
    else:
        methods = list(methods)
        unknown = [m for m in methods if m not in present]
        if unknown:
            raise KeyError(f"methods {unknown} have no rows; methods present: {present}")
    if not methods:
        raise ValueError(f"no method to compare besides the baselines {sorted(base_names)}")

    used = df[df[method_col].isin(list(methods) + sorted(base_names))]
    y = used[metric].to_numpy(np.float64)
    if not np.isfinite(y).all():
        bad = sorted(set(used.loc[~np.isfinite(y), method_col].tolist()), key=str)
        raise ValueError(f"NaN/Inf {metric!r} scores for methods {bad}; drop those images explicitly first")
    dup = used.duplicated([method_col, image_col])
    if dup.any():
        pairs = used.loc[dup, [method_col, image_col]].head(5).to_records(index=False).tolist()
        raise ValueError(f"more than one {metric!r} score per (method, image), e.g. {pairs}")

    series = {name: g.set_index(image_col)[metric] for name, g in used.groupby(method_col, sort=False)}
    rows = []
    for method in methods:
        for role, base in baselines:
            label = f"{metric}: {method!r} vs {role} baseline {base!r}"
            fit = _fit_pair(series[method], series[base], alpha, label)
            rows.append({"metric": metric, "method": method, "baseline": base, "role": role, **fit})
    table = pd.DataFrame(rows)
    table["p_value_unadjusted"] = table["p_value"]
    if p_adjust != "none":
        table["p_value"] = multipletests(table["p_value"].to_numpy(), alpha=alpha, method=p_adjust)[1]
    table["verdict"] = [verdict(e, p, alpha) for e, p in zip(table["estimate"], table["p_value"])]
    table = table[[
        "metric", "method", "baseline", "role", "n_images", "estimate", "se", "df", "t", "p_value",
        "p_value_unadjusted", "ci_lo", "ci_hi", "verdict", "converged", "singular", "hessian_pd",
        "re_var", "resid_var", "note",
    ]]
    return BaselineComparison(table, tukey_table(used, metric, method_col, alpha) if tukey else None)


# --------------------------------------------------------------------------- trust (Arun et al. 2021, part B)


RANDOMIZATION_VERDICTS = ("pass", "did not pass")
REP_VS_REPRO = ("repeatability higher", "reproducibility higher", "no significant difference", "not applicable")
CONSISTENCY_KINDS = ("repeatability", "reproducibility")
# Arun et al.'s low baseline for repeatability and reproducibility: "SSIM = 0.5 marks the
# midpoint for whether the SSIM is more structurally similar or dissimilar".
SSIM_LOW_BASELINE = 0.5


def _by_groups(df: pd.DataFrame, by: Sequence[str]):
    """(dict of by-values, sub-table) per group; the whole table once when ``by`` is empty."""
    if not by:
        yield {}, df
        return
    for key, g in df.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), g


def _one_score_per(df: pd.DataFrame, cols: Sequence[str], score: str) -> None:
    dup = df.duplicated(list(cols))
    if dup.any():
        examples = df.loc[dup, list(cols)].head(5).to_records(index=False).tolist()
        raise ValueError(f"more than one {score!r} score per {tuple(cols)}, e.g. {examples}")


def _finite(df: pd.DataFrame, cols: Sequence[str]) -> None:
    for c in cols:
        y = df[c].to_numpy(np.float64)
        if not np.isfinite(y).all():
            raise ValueError(f"{int((~np.isfinite(y)).sum())} NaN/Inf values in column {c!r}; drop those rows first")


def randomization_verdicts(
    df: pd.DataFrame,
    score: str = "ssim",
    baseline: str = "baseline_ssim",
    method_col: str = "method",
    image_col: str = "image",
    by: Sequence[str] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Arun et al. 2021's cascading-randomization verdict per method (PROTOCOLS.md B4, B6).

    Input: one row per (``by``, method, image) with ``score``, the SSIM between the map of
    the fully randomized model and the trained model's map, and ``baseline``, that
    image's randomization baseline (``metrics.similarity.randomization_baseline``).

    Arun et al.: a method "reached degradation and was classified as a pass when the
    average SSIM was not significantly different or below the randomization baseline",
    tested with a linear mixed-effects model, two-sided at alpha = .05. They compared
    with a single baseline number; we compare per image (each image's SSIM with its own
    baseline, ours). Test: ``_fit_pair``'s model as in ``compare_to_baselines`` (score ~
    1 + is_randomized, random intercept per image, REML; Wald t with n_images - 1 df;
    not the paired t-test, whose p values it can undercut several times over on the
    cascade's few images, most at singular fits), estimate = mean(score - baseline). Verdict:
    "did not pass" when p < alpha and the estimate > 0 (significantly above the
    baseline), else "pass". ``p_wilcoxon_greater``: one-sided paired Wilcoxon
    signed-rank test (scipy) of score > baseline, a distribution-free check (ours; not
    used for the verdict).

    Columns: ``*by, method, n_images, mean_score, mean_baseline, estimate, se, df, t,
    p_value, ci_lo, ci_hi, p_wilcoxon_greater, verdict, test, converged, singular, note``.
    """
    by = [by] if isinstance(by, str) else list(by)
    _check_columns(df, [*by, method_col, image_col, score, baseline])
    _check_alpha(alpha)
    _finite(df, [score, baseline])
    _one_score_per(df, [*by, method_col, image_col], score)
    rows = []
    for key, g in _by_groups(df, by):
        for method, gm in g.groupby(method_col, sort=False):
            s = gm.set_index(image_col)
            label = f"randomization {key or ''} {method!r}: {score!r} vs {baseline!r}".replace("  ", " ")
            fit = _fit_pair(s[score], s[baseline].rename(score), alpha, label)
            d = (s[score] - s[baseline]).to_numpy(np.float64)
            p_w = float(sps.wilcoxon(d, alternative="greater").pvalue) if np.any(d != 0) else 1.0
            failed = fit["p_value"] < alpha and fit["estimate"] > 0
            rows.append({
                **key, "method": method, "n_images": fit["n_images"],
                "mean_score": float(s[score].mean()), "mean_baseline": float(s[baseline].mean()),
                **{k: fit[k] for k in ("estimate", "se", "df", "t", "p_value", "ci_lo", "ci_hi")},
                "p_wilcoxon_greater": p_w, "verdict": "did not pass" if failed else "pass",
                "test": "mixed model (image random intercept), two-sided Wald t",
                **{k: fit[k] for k in ("converged", "singular", "note")},
            })
    return pd.DataFrame(rows)


class ConsistencyResult(NamedTuple):
    """``consistency_verdicts``'s result: Table 4's verdicts, Tukey HSD, repeatability vs reproducibility."""

    table: pd.DataFrame
    tukey: pd.DataFrame
    rep_vs_repro: pd.DataFrame


def _one_sample(y: np.ndarray, value: float, alpha: float, label: str) -> dict:
    if y.size < 2:
        raise ValueError(f"{label}: {y.size} image(s); the test needs at least 2")
    if np.ptp(y) == 0:
        raise ValueError(f"{label}: every score is {y[0]!r}; a t test needs spread")
    res = sps.ttest_1samp(y, value)
    ci = res.confidence_interval(1 - alpha)
    se = float(y.std(ddof=1) / np.sqrt(y.size))
    return {"n_images": int(y.size), "estimate": float(y.mean() - value), "se": se, "df": int(y.size - 1),
            "t": float(res.statistic), "p_value": float(res.pvalue), "ci_lo": float(ci.low - value),
            "ci_hi": float(ci.high - value), "converged": True, "singular": False, "note": ""}


def consistency_verdicts(
    df: pd.DataFrame,
    score: str = "ssim",
    kind_col: str = "kind",
    method_col: str = "method",
    image_col: str = "image",
    high_kind: str = "unet",
    low: float = SSIM_LOW_BASELINE,
    by: Sequence[str] = (),
    alpha: float = 0.05,
) -> ConsistencyResult:
    """Arun et al. 2021's repeatability and reproducibility verdicts (Table 4; PROTOCOLS.md B5, B6).

    Input: ``consistency_scores``-like rows (``*by, kind, method, image, score``), ``kind``
    in "repeatability" (two runs of one architecture), "reproducibility" (two
    architectures) or ``high_kind`` (two independently trained U-Nets: the high
    baseline; its ``method`` value is ignored). Several pairs per (kind, method, image)
    (three runs, all pairs) are averaged per image first (ours), so each image counts once.

    Against the low baseline (constant SSIM ``low`` = 0.5): with one score per image the
    image random intercept of a mixed model cannot be told from the residual, so the
    mixed-model test of score - 0.5 is the one-sample t test (``scipy.stats.ttest_1samp``,
    two-sided, n_images - 1 df), used here. Against the U-Net: ``compare_to_baselines``
    (mixed model, image random intercept), per kind. Verdicts as Table 4 (``verdict``):
    "pass" above, "did not pass" below, "uncertain" when p >= alpha.

    Returns ``ConsistencyResult``: ``table`` (``*by, kind, method, baseline, role, test,
    n_images, estimate, se, df, t, p_value, ci_lo, ci_hi, verdict, converged,
    singular, note``); ``tukey`` (``tukey_table`` per kind over the methods and the
    U-Net, with ``*by, kind``); ``rep_vs_repro`` (per method, repeatability -
    reproducibility by the paired mixed model of ``compare_to_baselines``, two-sided:
    ``result`` in ``REP_VS_REPRO``; "not applicable" with the reason in ``note`` where
    a method lacks one of the two kinds).
    """
    by = [by] if isinstance(by, str) else list(by)
    _check_columns(df, [*by, kind_col, method_col, image_col, score])
    _check_alpha(alpha)
    _finite(df, [score])
    kinds = set(df[kind_col].unique())
    unknown = kinds - {*CONSISTENCY_KINDS, high_kind}
    if unknown:
        raise ValueError(f"unknown {kind_col!r} values {sorted(map(str, unknown))}; "
                         f"valid: {[*CONSISTENCY_KINDS, high_kind]}")
    if high_kind in set(df.loc[df[kind_col] != high_kind, method_col]):
        raise ValueError(f"a saliency method is named {high_kind!r}, the high baseline's label; rename it")
    cols = [*by, kind_col, method_col, image_col]
    d = df.copy()
    d.loc[d[kind_col] == high_kind, method_col] = high_kind
    d = d.groupby(cols, sort=False, dropna=False)[score].mean().reset_index()

    rows, tukeys, rvr = [], [], []
    for key, g in _by_groups(d, by):
        if high_kind not in set(g[kind_col]):
            raise KeyError(f"no {high_kind!r} rows (the high baseline) in group {key}")
        unet = g[g[kind_col] == high_kind]
        series = {}
        for kind in CONSISTENCY_KINDS:
            gk = g[g[kind_col] == kind]
            if gk.empty:
                continue
            for method, gm in gk.groupby(method_col, sort=False):
                s = gm.set_index(image_col)[score]
                series[(kind, method)] = s
                label = f"{key or ''} {kind} of {method!r} vs {low}".strip()
                fit = _one_sample(s.to_numpy(np.float64), low, alpha, label)
                rows.append({**key, "kind": kind, "method": method, "baseline": str(low), "role": "low",
                             "test": "one-sample t, two-sided", **fit})
            res = compare_to_baselines(pd.concat([gk, unet]), score, method_col, image_col, low=None,
                                       high=high_kind, alpha=alpha)
            for _, r in res.table.iterrows():
                rows.append({**key, "kind": kind, "method": r["method"], "baseline": high_kind, "role": "high",
                             "test": "mixed model (image random intercept), two-sided Wald t",
                             **{k: r[k] for k in ("n_images", "estimate", "se", "df", "t", "p_value", "ci_lo",
                                                  "ci_hi", "converged", "singular", "note")}})
            tk = res.tukey.copy()
            tk.insert(0, "kind", kind)
            for i, (k, v) in enumerate(key.items()):
                tk.insert(i, k, v)
            tukeys.append(tk)
        methods = list(dict.fromkeys(m for _, m in series))
        for method in methods:
            rep, rpr = series.get(("repeatability", method)), series.get(("reproducibility", method))
            if rep is None or rpr is None:
                missing = "repeatability" if rep is None else "reproducibility"
                rvr.append({**key, "method": method, "result": "not applicable", "note": f"no {missing} scores"})
                continue
            fit = _fit_pair(rep, rpr, alpha, f"{key or ''} {method!r}: repeatability vs reproducibility".strip())
            sig = fit["p_value"] < alpha
            result = ("repeatability higher" if fit["estimate"] > 0 else "reproducibility higher") if sig \
                else "no significant difference"
            rvr.append({**key, "method": method,
                        **{k: fit[k] for k in ("n_images", "estimate", "se", "df", "t", "p_value", "ci_lo",
                                               "ci_hi", "converged", "singular")},
                        "result": result, "note": fit["note"]})
    table = pd.DataFrame(rows)
    table["verdict"] = [verdict(e, p, alpha) for e, p in zip(table["estimate"], table["p_value"])]
    table = table[[*by, "kind", "method", "baseline", "role", "test", "n_images", "estimate", "se", "df", "t",
                   "p_value", "ci_lo", "ci_hi", "verdict", "converged", "singular", "note"]]
    return ConsistencyResult(table, pd.concat(tukeys, ignore_index=True), pd.DataFrame(rvr))


# --------------------------------------------------------------------------- run-level uncertainty (issue 14)


RUN_COMPONENTS = ("image", "run", "run:method", "image:method")
AGREEMENT = ("holds in every run", "holds in some runs", "holds in no run")


class RunModel(NamedTuple):
    """``run_mixed_model``'s result."""

    effects: pd.DataFrame
    variance: pd.DataFrame
    converged: bool
    note: str


def _dummies(codes: np.ndarray) -> np.ndarray:
    _, inv = np.unique(codes, return_inverse=True)
    out = np.zeros((len(codes), int(inv.max()) + 1))
    out[np.arange(len(codes)), inv] = 1.0
    return out


def run_mixed_model(
    df: pd.DataFrame,
    metric: str,
    method_col: str = "method",
    image_col: str = "image",
    run_col: str = "run",
    reference: str | None = None,
    components: Sequence[str] = RUN_COMPONENTS,
    alpha: float = 0.05,
) -> RunModel:
    """Method effects with image and training run as crossed random effects (issue 14).

    Model (ours; Arun et al. had one run): ``score ~ method`` (treatment coding against
    ``reference``, default the first method in the table) plus crossed random effects
    named in ``components``: ``image`` (images differ in difficulty), ``run`` (a
    training run shifts every method), ``run:method`` (a run shifts one method: what
    moved PatternNet's mean AP from 0.388 to 0.218 between two runs) and
    ``image:method``; the residual is the rest. statsmodels ``MixedLM`` with one group
    and variance components (``VCSpec``), REML, scores standardised for the optimizer
    and scaled back, optimizer Powell then L-BFGS (L-BFGS alone stopped at a worse
    optimum on simulated crossed data).

    Cost (measured here, 2 shared cores): 3 runs x 40 images, 2 methods: 0.6 s; 17
    methods (2,040 rows, 774 random-effect columns): about 90 s with ``image:method``,
    under 1 s without it. Fit one model per pair of methods (as ``compare_to_baselines``
    does) or drop ``image:method`` for a quick look; dropping it pools image x method
    variation into the residual, which makes method-contrast SEs too small when
    methods rank images differently.

    Inference: Wald t with containment degrees of freedom (SAS DDFM=CONTAIN; ours,
    conservative): for a method contrast the smallest of (n_runs - 1)(n_methods - 1)
    and (n_images - 1)(n_methods - 1) among the included interaction terms, for the
    reference mean the smallest of n_runs - 1 and n_images - 1 among the included main
    terms, else the residual df. With two or three runs a run variance is estimated
    from one or two degrees of freedom: the intervals are wide, as they should be.
    With a single method the method interactions are dropped (they are not identified).

    Returns ``RunModel``: ``effects`` (``method, contrast`` ("mean" for the reference,
    else "<method> - <reference>"), ``estimate, se, df, t, p_value, ci_lo, ci_hi``);
    ``variance`` (``component, variance, share`` of the total, residual included);
    ``converged`` and ``note`` (statsmodels' warnings).
    """
    _check_columns(df, [metric, method_col, image_col, run_col])
    _check_alpha(alpha)
    _finite(df, [metric])
    _one_score_per(df, [run_col, method_col, image_col], metric)
    bad = [c for c in components if c not in RUN_COMPONENTS]
    if bad or len(set(components)) != len(components):
        raise ValueError(f"components {list(components)} not valid; choose distinct ones of {list(RUN_COMPONENTS)}")
    methods = list(dict.fromkeys(df[method_col].tolist()))
    if reference is None:
        reference = methods[0]
    if reference not in methods:
        raise KeyError(f"reference {reference!r} has no rows; methods present: {methods}")
    methods = [reference] + [m for m in methods if m != reference]
    components = [c for c in components if len(methods) > 1 or ":method" not in c]
    n_runs, n_images = df[run_col].nunique(), df[image_col].nunique()
    if "run" in components and n_runs < 2:
        raise ValueError(f"a run variance needs at least 2 runs; column {run_col!r} has {n_runs}")

    y = df[metric].to_numpy(np.float64)
    mu, sd = y.mean(), y.std()
    if sd == 0:
        raise ValueError(f"every {metric!r} score is {mu!r}; there is nothing to model")
    m_idx = pd.Categorical(df[method_col], categories=methods).codes
    exog = np.column_stack([np.ones(len(y))] + [(m_idx == k).astype(float) for k in range(1, len(methods))])
    codes = {
        "image": pd.factorize(df[image_col])[0], "run": pd.factorize(df[run_col])[0],
        "run:method": pd.MultiIndex.from_arrays([df[run_col], df[method_col]]).factorize()[0],
        "image:method": pd.MultiIndex.from_arrays([df[image_col], df[method_col]]).factorize()[0],
    }
    mats = [[_dummies(codes[c])] for c in components]
    vc = VCSpec(list(components), [[[f"{c}{j}" for j in range(m[0].shape[1])]] for c, m in zip(components, mats)],
                mats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = MixedLM((y - mu) / sd, exog, groups=np.zeros(len(y)), exog_vc=vc).fit(
                reml=True, method=["powell", "lbfgs"])
        except Exception as err:
            raise RuntimeError(f"{metric}: run-level MixedLM fit failed: {err}") from err
    notes = "; ".join(dict.fromkeys(f"{type(w.message).__name__}: {w.message}" for w in caught))

    k_m = len(methods) - 1
    contain_fe = [d for c, d in (("run:method", (n_runs - 1) * k_m), ("image:method", (n_images - 1) * k_m))
                  if c in components]
    contain_mean = [d for c, d in (("run", n_runs - 1), ("image", n_images - 1)) if c in components]
    resid_df = len(y) - exog.shape[1]
    fe, se = np.asarray(res.fe_params) * sd, np.asarray(res.bse_fe) * sd
    fe[0] += mu
    rows = []
    for k, method in enumerate(methods):
        dfk = int(min(contain_fe or [resid_df])) if k else int(min(contain_mean or [resid_df]))
        dfk = max(dfk, 1)
        t = fe[k] / se[k]
        half = float(sps.t.ppf(1 - alpha / 2, dfk)) * se[k]
        rows.append({
            "method": method, "contrast": "mean" if k == 0 else f"{method} - {reference}",
            "estimate": float(fe[k]), "se": float(se[k]), "df": dfk, "t": float(t),
            "p_value": float(2 * sps.t.sf(abs(t), dfk)), "ci_lo": float(fe[k] - half), "ci_hi": float(fe[k] + half),
        })
    var = np.r_[np.asarray(res.vcomp, dtype=np.float64), float(res.scale)] * sd**2
    variance = pd.DataFrame({"component": [*components, "residual"], "variance": var, "share": var / var.sum()})
    return RunModel(pd.DataFrame(rows), variance, bool(res.converged), notes)


def run_agreement(holds) -> str:
    """Agreement of a per-run boolean: "holds in every run" / "holds in some runs" / "holds in no run"."""
    h = np.asarray(holds)
    if h.size == 0:
        raise ValueError("run_agreement got no runs")
    if h.dtype != bool:
        raise TypeError(f"run_agreement needs booleans, one per run; got dtype {h.dtype}")
    return AGREEMENT[0] if h.all() else AGREEMENT[1] if h.any() else AGREEMENT[2]


def verdicts_by_run(df: pd.DataFrame, metric: str, run_col: str = "run", **compare_kwargs) -> pd.DataFrame:
    """``compare_to_baselines`` on each run's rows separately; its table with a ``run`` column first."""
    _check_columns(df, [run_col])
    compare_kwargs.setdefault("tukey", False)
    tables = []
    for run, g in df.groupby(run_col, sort=True):
        t = compare_to_baselines(g, metric, **compare_kwargs).table
        t.insert(0, run_col, run)
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


def verdict_agreement(
    per_run: pd.DataFrame,
    keys: Sequence[str] = ("metric", "method", "baseline"),
    run_col: str = "run",
    verdict_col: str = "verdict",
) -> pd.DataFrame:
    """Per key, the verdicts of every run and whether they agree.

    Columns ``*keys, n_runs, verdicts`` ("<run>: <verdict>; ..." in run order),
    ``consensus`` (the verdict shared by every run, else "differs between runs") and
    ``pass_agreement`` (``run_agreement`` of verdict == "pass").
    """
    keys = list(keys)
    _check_columns(per_run, [*keys, run_col, verdict_col])
    _one_score_per(per_run, [*keys, run_col], verdict_col)
    rows = []
    for key, g in per_run.sort_values(run_col).groupby(keys, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        v = g[verdict_col].astype(str).tolist()
        rows.append({
            **dict(zip(keys, key)), "n_runs": len(v),
            "verdicts": "; ".join(f"{r}: {x}" for r, x in zip(g[run_col], v)),
            "consensus": v[0] if len(set(v)) == 1 else "differs between runs",
            "pass_agreement": run_agreement(np.array([x == "pass" for x in v])),
        })
    return pd.DataFrame(rows)
