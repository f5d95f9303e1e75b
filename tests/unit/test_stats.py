"""Bootstrap CIs, mixed models against baselines (Arun et al. 2021) and Tukey HSD."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from salbench import stats
from salbench.stats import bootstrap_ci, compare_to_baselines, summarise, tukey_table, verdict

# The REML optimum is found to about 1e-6 relative; the paired t statistic it
# reproduces is compared with this relative tolerance.
PAIRED_T_RTOL = 1e-4
# A planted effect must be recovered within this many standard errors (a 4-SE miss
# has probability 6e-5 under a correct model).
EFFECT_Z = 4.0
# Acceptance regions for simulated rates are central binomial intervals holding
# 99.9 % of the probability under the nominal rate: a correct procedure fails the
# test once in a thousand seeds, a clearly wrong one almost always.
BINOMIAL_LEVEL = 0.999
# Float agreement of simple summaries with numpy (same float64 operations).
EXACT = 1e-12


def _binomial_region(n: int, p: float) -> tuple[int, int]:
    tail = (1 - BINOMIAL_LEVEL) / 2
    return int(sps.binom.ppf(tail, n, p)), int(sps.binom.isf(tail, n, p))


def _scores(rng, n_images, effects, re_sd=0.1, noise=0.05, base=0.5):
    """Scores = base + image effect + method effect + noise, one row per (method, image)."""
    u = rng.normal(0.0, re_sd, n_images)
    return pd.concat([
        pd.DataFrame({"method": m, "image": np.arange(n_images), "auprc": base + u + e + rng.normal(0, noise, n_images)})
        for m, e in effects.items()
    ], ignore_index=True)


# --------------------------------------------------------------------------- mixed model


def test_planted_effect_is_recovered_with_verdicts():
    rng = np.random.default_rng(0)
    df = _scores(rng, 100, {"avg_mask": 0.0, "grad": 0.1, "unet": 0.2})
    table, tukey = compare_to_baselines(df, "auprc")
    assert list(table["method"]) == ["grad", "grad"]
    low = table.set_index("role").loc["low"]
    high = table.set_index("role").loc["high"]
    assert low["baseline"] == "avg_mask" and high["baseline"] == "unet"
    assert low["verdict"] == "pass" and low["p_value"] < 0.001
    assert high["verdict"] == "did not pass" and high["p_value"] < 0.001
    assert abs(low["estimate"] - 0.1) < EFFECT_Z * low["se"]
    assert abs(high["estimate"] + 0.1) < EFFECT_Z * high["se"]
    assert low["ci_lo"] < low["estimate"] < low["ci_hi"]
    assert table["converged"].all() and table["hessian_pd"].all() and not table["singular"].any()
    assert set(table["verdict"]) <= set(stats.VERDICTS)
    assert len(tukey) == 3  # 3 methods, 3 pairs


def test_mixed_model_reproduces_paired_t_test():
    rng = np.random.default_rng(1)
    df = _scores(rng, 30, {"avg_mask": 0.0, "ig": 0.02})
    row = compare_to_baselines(df, "auprc", high=None).table.iloc[0]
    a = df[df.method == "ig"].sort_values("image")["auprc"].to_numpy()
    b = df[df.method == "avg_mask"].sort_values("image")["auprc"].to_numpy()
    ref = sps.ttest_rel(a, b)
    assert not row["singular"]
    assert row["df"] == 29
    assert row["estimate"] == pytest.approx((a - b).mean(), rel=PAIRED_T_RTOL)
    assert row["t"] == pytest.approx(ref.statistic, rel=PAIRED_T_RTOL)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=PAIRED_T_RTOL)


def test_mixed_model_is_not_the_paired_t_test_when_the_arms_differ_in_spread():
    """A wide arm against a narrow one on 10 images (the randomization test's shape: SSIM to
    the trained map against a baseline): REML clamps the image variance (singular), the SE
    is the independent-samples one and p falls below the paired t-test's, as the docstring of
    `compare_to_baselines` says."""
    rng = np.random.default_rng(0)
    n = 10
    shared = rng.normal(size=n)
    a = 0.6 + 0.05 * shared + 0.15 * rng.normal(size=n)
    b = 0.05 + 0.05 * shared + 0.01 * rng.normal(size=n)
    df = pd.concat([pd.DataFrame({"image": range(n), "method": "m", "auprc": a}),
                    pd.DataFrame({"image": range(n), "method": "avg_mask", "auprc": b})], ignore_index=True)
    row = compare_to_baselines(df, "auprc", high=None).table.iloc[0]
    paired = sps.ttest_rel(a, b)
    assert row["singular"]
    assert row["se"] < (a - b).std(ddof=1) / np.sqrt(n)
    assert row["p_value"] < paired.pvalue / 1.5


def test_null_false_positive_rate_is_nominal():
    """200 null data sets of 12 images: p < 0.05 about 5 % of the time."""
    rng = np.random.default_rng(2)
    n_sets, alpha = 200, 0.05
    hits = 0
    for _ in range(n_sets):
        df = _scores(rng, 12, {"avg_mask": 0.0, "gbp": 0.0})
        row = compare_to_baselines(df, "auprc", high=None, alpha=alpha, tukey=False).table.iloc[0]
        hits += row["p_value"] < alpha
    lo, hi = _binomial_region(n_sets, alpha)
    assert lo <= hits <= hi, f"{hits} of {n_sets} null comparisons significant; expected {lo}..{hi}"


def test_singular_fit_is_recorded():
    # Image means are identical by construction (method = 0.7 - baseline), so the
    # image variance is estimated at zero.
    rng = np.random.default_rng(3)
    v = rng.normal(0.3, 0.05, 40)
    df = pd.DataFrame({"method": np.repeat(["avg_mask", "sg"], 40), "image": np.tile(np.arange(40), 2),
                       "auprc": np.r_[v, 0.7 - v]})
    row = compare_to_baselines(df, "auprc", high=None, tukey=False).table.iloc[0]
    assert row["singular"]
    assert row["re_var"] < stats.SINGULAR_RE_FRACTION * row["resid_var"]
    assert "boundary" in row["note"]
    # statsmodels flags the Hessian at the boundary; expected there, so still converged
    assert not row["hessian_pd"] and "not positive definite" in row["note"]
    assert row["converged"]
    # with no image variance the model pools: estimate = difference of means
    assert row["estimate"] == pytest.approx((0.7 - v).mean() - v.mean(), rel=PAIRED_T_RTOL)
    assert row["verdict"] == "pass"


def test_nonconvergence_is_recorded_not_hidden(monkeypatch):
    class Flaky(stats.MixedLM):
        def fit(self, *args, **kwargs):
            res = super().fit(*args, **kwargs)
            warnings.warn("Gradient optimization failed, |grad| = 1.0", ConvergenceWarning)
            res.converged = False
            return res

    monkeypatch.setattr(stats, "MixedLM", Flaky)
    df = _scores(np.random.default_rng(4), 20, {"avg_mask": 0.0, "xrai": 0.1})
    row = compare_to_baselines(df, "auprc", high=None, tukey=False).table.iloc[0]
    assert not row["converged"]
    assert "Gradient optimization failed" in row["note"]


def test_failed_fit_raises_naming_the_comparison(monkeypatch):
    class Broken(stats.MixedLM):
        def fit(self, *args, **kwargs):
            raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(stats, "MixedLM", Broken)
    df = _scores(np.random.default_rng(5), 20, {"avg_mask": 0.0, "xrai": 0.1})
    with pytest.raises(RuntimeError, match=r"'xrai' vs low baseline 'avg_mask'.*Singular matrix"):
        compare_to_baselines(df, "auprc", high=None, tukey=False)


def test_p_adjust_and_verdict_rule():
    rng = np.random.default_rng(6)
    df = _scores(rng, 40, {"avg_mask": 0.0, "a": 0.01, "b": 0.02, "c": 0.0, "unet": 0.2})
    raw = compare_to_baselines(df, "auprc", tukey=False).table
    holm = compare_to_baselines(df, "auprc", tukey=False, p_adjust="holm").table
    np.testing.assert_allclose(holm["p_value_unadjusted"], raw["p_value"], rtol=EXACT)
    assert (holm["p_value"] >= holm["p_value_unadjusted"] - EXACT).all()
    for table in (raw, holm):
        for e, p, v in zip(table["estimate"], table["p_value"], table["verdict"]):
            assert v == ("uncertain" if p >= 0.05 else "pass" if e > 0 else "did not pass")
    assert verdict(0.1, 0.01) == "pass"
    assert verdict(-0.1, 0.01) == "did not pass"
    assert verdict(0.1, 0.2) == "uncertain"
    with pytest.raises(ValueError):
        verdict(0.1, float("nan"))


def test_input_errors():
    df = _scores(np.random.default_rng(7), 10, {"avg_mask": 0.0, "grad": 0.1, "unet": 0.2})
    with pytest.raises(KeyError, match=r"'retinanet'.*\['avg_mask', 'grad', 'unet'\]"):
        compare_to_baselines(df, "auprc", high="retinanet")
    with pytest.raises(KeyError, match="columns"):
        compare_to_baselines(df, "ssim")
    nan = df.copy()
    nan.loc[(nan.method == "grad") & (nan.image == 3), "auprc"] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\['grad'\]"):
        compare_to_baselines(nan, "auprc")
    with pytest.raises(ValueError, match="more than one"):
        compare_to_baselines(pd.concat([df, df.iloc[:1]]), "auprc")
    with pytest.raises(ValueError, match="p_adjust"):
        compare_to_baselines(df, "auprc", p_adjust="sidak-ish")
    with pytest.raises(ValueError, match="at least one baseline"):
        compare_to_baselines(df, "auprc", low=None, high=None)


def test_tukey_table_matches_group_means():
    rng = np.random.default_rng(8)
    df = _scores(rng, 50, {"avg_mask": 0.0, "grad": 0.0, "unet": 0.3})
    tk = tukey_table(df, "auprc")
    means = df.groupby("method")["auprc"].mean()
    assert list(zip(tk.group1, tk.group2)) == [("avg_mask", "grad"), ("avg_mask", "unet"), ("grad", "unet")]
    for _, r in tk.iterrows():
        assert r["meandiff"] == pytest.approx(means[r["group2"]] - means[r["group1"]], abs=EXACT)
        assert r["ci_lo"] < r["meandiff"] < r["ci_hi"]
    assert tk.set_index(["group1", "group2"]).loc[("avg_mask", "unet"), "reject"]
    assert tk.set_index(["group1", "group2"]).loc[("avg_mask", "unet"), "p_adj"] < 0.001


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_per_seed_and_covers_the_mean():
    x = np.random.default_rng(9).normal(1.0, 1.0, 200)
    a = bootstrap_ci(x, rng=np.random.default_rng(42))
    assert a == bootstrap_ci(x, rng=np.random.default_rng(42))
    assert a != bootstrap_ci(x, rng=np.random.default_rng(43))
    mean, lo, hi = a
    assert mean == pytest.approx(x.mean(), abs=EXACT)
    assert lo < 1.0 < hi  # the true mean
    assert lo < mean < hi


def test_bootstrap_coverage_is_nominal():
    """200 samples of n = 50 normals: the 95 % CI holds the true mean about 95 % of the time.

    The percentile bootstrap under-covers slightly for small n (about 94 % here),
    well inside the binomial acceptance region.
    """
    rng = np.random.default_rng(10)
    n_sets, level = 200, 0.95
    covered = 0
    for _ in range(n_sets):
        _, lo, hi = bootstrap_ci(rng.normal(0.0, 1.0, 50), n_boot=1000, alpha=1 - level, rng=rng)
        covered += lo <= 0.0 <= hi
    lo_ok, hi_ok = _binomial_region(n_sets, level)
    assert lo_ok <= covered <= hi_ok, f"coverage {covered}/{n_sets}; expected {lo_ok}..{hi_ok}"


def test_bootstrap_errors():
    with pytest.raises(ValueError, match="rng is required"):
        bootstrap_ci([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, np.nan], rng=0)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci([], rng=0)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0, 2.0], n_boot=0, rng=0)
    assert bootstrap_ci([2.0, 2.0, 2.0], rng=0) == (2.0, 2.0, 2.0)


# --------------------------------------------------------------------------- summarise


def test_summarise_tidy_table():
    rng = np.random.default_rng(11)
    df = _scores(rng, 30, {"grad": 0.0, "unet": 0.2})
    df["roc_auc"] = rng.uniform(0.5, 1.0, len(df))
    out = summarise(df, by=["method"], metrics=["auprc", "roc_auc"], n_boot=500, rng=np.random.default_rng(0))
    assert list(out.columns) == ["method", "metric", "n", "n_nan", "mean", "sd", "ci_lo", "ci_hi"]
    assert list(zip(out.method, out.metric)) == [
        ("grad", "auprc"), ("grad", "roc_auc"), ("unet", "auprc"), ("unet", "roc_auc")]
    for _, r in out.iterrows():
        v = df.loc[df.method == r["method"], r["metric"]]
        assert r["n"] == 30
        assert r["mean"] == pytest.approx(v.mean(), abs=EXACT)
        assert r["sd"] == pytest.approx(v.std(ddof=1), abs=EXACT)
        assert r["ci_lo"] < r["mean"] < r["ci_hi"]
    again = summarise(df, by="method", metrics=["auprc", "roc_auc"], n_boot=500, rng=np.random.default_rng(0))
    pd.testing.assert_frame_equal(out, again)


def test_summarise_nan_policy():
    df = _scores(np.random.default_rng(12), 10, {"grad": 0.0, "unet": 0.2})
    df.loc[2, "auprc"] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*'method': 'grad'"):
        summarise(df, metrics="auprc", rng=0)
    out = summarise(df, metrics="auprc", n_boot=200, rng=0, nan="drop")
    grad = out.set_index("method").loc["grad"]
    assert grad["n"] == 9 and grad["n_nan"] == 1
    assert np.isfinite(out[["mean", "sd", "ci_lo", "ci_hi"]].to_numpy()).all()


def test_a_mixed_model_without_a_usable_se_falls_back_to_the_paired_t_test(monkeypatch):
    import pandas as pd
    from scipy import stats as sps

    from salbench import stats as st

    a = pd.Series([0.31, 0.42, 0.35], index=[1, 2, 3])
    b = pd.Series([0.90, 0.95, 0.92], index=[1, 2, 3])

    class NoSE:
        def __init__(self, *args, **kwargs):
            pass

        def fit(self, reml=True):
            import types

            return types.SimpleNamespace(fe_params=np.array([0.0, -1.0]), bse_fe=np.array([np.nan, np.nan]),
                                         cov_re=np.array([[0.0]]), scale=1.0, converged=False)

    monkeypatch.setattr(st, "MixedLM", NoSE)
    fit = st._fit_pair(a, b, 0.05, "test")
    ref = sps.ttest_rel(a, b)
    assert fit["p_value"] == pytest.approx(ref.pvalue) and fit["t"] == pytest.approx(ref.statistic)
    assert fit["df"] == 2 and not fit["converged"] and "paired t test on the 3 images both scored" in fit["note"]
    # A baseline scored on more images: the test uses the shared ones and says how many it left out.
    more = st._fit_pair(a, pd.Series([0.9, 0.95, 0.92, 0.5], index=[1, 2, 3, 4]), 0.05, "test")
    assert more["p_value"] == pytest.approx(ref.pvalue) and "1 scored by one side only left out" in more["note"]
