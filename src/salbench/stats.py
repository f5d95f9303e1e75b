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
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.multicomp import pairwise_tukeyhsd
from statsmodels.stats.multitest import multipletests

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
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        means[start:stop] = x[gen.integers(0, n, size=(stop - start, n))].mean(axis=1)
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
        raise RuntimeError(f"{label}: MixedLM gave no usable standard error (se={se!r}); notes: {notes}")
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
    design, and for complete data with a positive image variance it reproduces the
    paired t-test exactly.

    Test. Two-sided Wald t = estimate / SE referred to a t distribution with
    ``n_images - 1`` degrees of freedom (``n_images``: images scored by both; the
    Satterthwaite df of the balanced paired design, which lmerTest would report, also
    at a singular fit, where the pooled comparison would have about ``2 n_images - 2``;
    statsmodels' own z-test is anti-conservative for small n). A singular fit is
    slightly *anti*-conservative all the same: when the sample covariance of the two
    methods' scores across images is negative, REML clamps the image variance to zero
    and the SE becomes the independent-samples one, below the paired t-test's (in the
    committed quick run, 23 of the 29 singular fits have an SE 1-8 % smaller than the
    paired t-test's, the other six are within 1 %). ``p_adjust`` ("none",
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
