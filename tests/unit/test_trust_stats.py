"""Arun et al.'s randomization and consistency verdicts, and run-level uncertainty (issue 14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from salbench import stats

# Acceptance regions for simulated rates: central binomial intervals holding 99.9 % of
# the probability under the nominal rate (as in test_stats.py).
BINOMIAL_LEVEL = 0.999
# A planted variance estimated from k degrees of freedom must fall in the central
# 99.9 % chi-square interval sigma^2 * chi2(k) / k (exact for a balanced ANOVA estimate;
# the REML estimate is the same up to the small share of other terms in run means).
CHI2_LEVEL = 0.999
# Float agreement with scipy's one-sample t test (same float64 operations).
EXACT = 1e-10


def _binomial_region(n: int, p: float) -> tuple[int, int]:
    tail = (1 - BINOMIAL_LEVEL) / 2
    return int(sps.binom.ppf(tail, n, p)), int(sps.binom.isf(tail, n, p))


def _chi2_region(var: float, k: int) -> tuple[float, float]:
    tail = (1 - CHI2_LEVEL) / 2
    return var * sps.chi2.ppf(tail, k) / k, var * sps.chi2.isf(tail, k) / k


# --------------------------------------------------------------------------- randomization


def _cascade(rng, n_images, shifts, noise=0.05):
    """SSIM at full randomization = baseline + shift + noise, per method and image."""
    base = rng.uniform(0.2, 0.4, n_images)
    return pd.concat([
        pd.DataFrame({"method": m, "image": np.arange(n_images), "baseline_ssim": base,
                      "ssim": base + s + rng.normal(0, noise, n_images)})
        for m, s in shifts.items()
    ], ignore_index=True)


def test_randomization_verdicts_on_planted_effects():
    df = _cascade(np.random.default_rng(0), 60, {"xrai": 0.1, "grad": -0.1})
    t = stats.randomization_verdicts(df).set_index("method")
    assert t.loc["xrai", "verdict"] == "did not pass" and t.loc["xrai", "p_value"] < 1e-6
    assert t.loc["xrai", "p_wilcoxon_greater"] < 1e-6
    assert abs(t.loc["xrai", "estimate"] - 0.1) < 4 * t.loc["xrai", "se"]
    # Significantly below the baseline is a pass (the paper: "not significantly different or below").
    assert t.loc["grad", "verdict"] == "pass" and t.loc["grad", "estimate"] < 0 and t.loc["grad", "p_value"] < 1e-6
    assert t.loc["grad", "p_wilcoxon_greater"] > 0.99
    assert set(t["verdict"]) <= set(stats.RANDOMIZATION_VERDICTS)
    d = df[df.method == "xrai"]
    ref = sps.ttest_rel(d["ssim"], d["baseline_ssim"])
    assert t.loc["xrai", "t"] == pytest.approx(ref.statistic, rel=1e-4)


def test_randomization_null_rarely_fails():
    """Null data (SSIM at the baseline): "did not pass" only at the one-sided rate alpha / 2."""
    rng = np.random.default_rng(1)
    n = 80
    fails = sum(
        stats.randomization_verdicts(_cascade(rng, 15, {"m": 0.0}))["verdict"].iloc[0] == "did not pass"
        for _ in range(n)
    )
    lo, hi = _binomial_region(n, 0.025)
    assert lo <= fails <= hi


def test_randomization_verdicts_by_group_and_errors():
    rng = np.random.default_rng(2)
    df = pd.concat([_cascade(rng, 20, {"m": 0.2}).assign(background="perlin"),
                    _cascade(rng, 20, {"m": -0.2}).assign(background="mri")])
    t = stats.randomization_verdicts(df, by="background").set_index("background")
    assert t.loc["perlin", "verdict"] == "did not pass" and t.loc["mri", "verdict"] == "pass"
    with pytest.raises(ValueError, match="more than one"):
        stats.randomization_verdicts(df)
    bad = df.copy()
    bad.loc[bad.index[0], "ssim"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        stats.randomization_verdicts(bad, by="background")


# --------------------------------------------------------------------------- repeatability / reproducibility


def _consistency(rng, n_images=40):
    u = rng.normal(0, 0.05, n_images)
    planted = {("repeatability", "xrai"): 0.70, ("reproducibility", "xrai"): 0.55,
               ("repeatability", "grad"): 0.30, ("reproducibility", "grad"): 0.30,
               ("repeatability", "gbp"): 0.40, ("unet", "unet"): 0.95}
    rows = []
    for (kind, method), mean in planted.items():
        for pair in ("r0-r1", "r0-r2"):
            rows.append(pd.DataFrame({"kind": kind, "method": method, "pair": pair, "image": np.arange(n_images),
                                      "ssim": mean + u + rng.normal(0, 0.03, n_images)}))
    return pd.concat(rows, ignore_index=True)


def test_consistency_verdicts_table4():
    df = _consistency(np.random.default_rng(3))
    res = stats.consistency_verdicts(df)
    t = res.table.set_index(["kind", "method", "role"])
    assert t.loc[("repeatability", "xrai", "low"), "verdict"] == "pass"
    assert t.loc[("reproducibility", "xrai", "low"), "verdict"] == "pass"
    assert t.loc[("repeatability", "grad", "low"), "verdict"] == "did not pass"
    high = res.table[res.table.role == "high"]
    assert (high["verdict"] == "did not pass").all() and len(high) == 5
    assert set(res.table["verdict"]) <= set(stats.VERDICTS)
    # Two pairs per image are averaged first: the low-baseline test is scipy's one-sample t on those means.
    y = df[(df.kind == "repeatability") & (df.method == "xrai")].groupby("image")["ssim"].mean()
    ref = sps.ttest_1samp(y, 0.5)
    row = t.loc[("repeatability", "xrai", "low")]
    assert row["n_images"] == 40 and row["t"] == pytest.approx(ref.statistic, abs=EXACT)
    assert row["estimate"] == pytest.approx(y.mean() - 0.5, abs=EXACT)
    rvr = res.rep_vs_repro.set_index("method")
    assert rvr.loc["xrai", "result"] == "repeatability higher" and rvr.loc["xrai", "p_value"] < 1e-6
    assert rvr.loc["grad", "result"] == "no significant difference"
    assert rvr.loc["gbp", "result"] == "not applicable" and rvr.loc["gbp", "note"] == "no reproducibility scores"
    assert set(rvr["result"]) <= set(stats.REP_VS_REPRO)
    assert set(res.tukey["kind"]) == {"repeatability", "reproducibility"}
    # Repeatability: 3 methods + U-Net = 6 pairs; reproducibility: 2 + U-Net = 3.
    assert res.tukey.groupby("kind").size().to_dict() == {"repeatability": 6, "reproducibility": 3}


def test_consistency_null_data_is_uncertain():
    """Null data: SSIM centred on 0.5 and U-Net scores from the same distribution."""
    rng = np.random.default_rng(4)
    u = rng.normal(0, 0.05, 30)
    df = pd.DataFrame({"kind": ["repeatability"] * 30 + ["unet"] * 30, "method": ["m"] * 30 + ["unet"] * 30,
                       "image": np.r_[np.arange(30), np.arange(30)],
                       "ssim": np.r_[0.5 + u + rng.normal(0, 0.1, 30), 0.5 + u + rng.normal(0, 0.1, 30)]})
    t = stats.consistency_verdicts(df).table
    assert (t["verdict"] == "uncertain").all() and (t["p_value"] > 0.05).all()


def test_consistency_errors():
    df = _consistency(np.random.default_rng(5))
    with pytest.raises(ValueError, match="unknown 'kind' values"):
        stats.consistency_verdicts(df.replace({"kind": {"unet": "u-net"}}))
    with pytest.raises(KeyError, match="no 'unet' rows"):
        stats.consistency_verdicts(df[df.kind != "unet"])


# --------------------------------------------------------------------------- run-level uncertainty


def _runs(rng, n_runs, n_images, method_shift, run_sd, run_method_sd=0.02, image_sd=0.1, noise=0.05):
    methods = list(method_shift)
    r = np.repeat(np.arange(n_runs), len(methods) * n_images)
    m = np.tile(np.repeat(np.arange(len(methods)), n_images), n_runs)
    i = np.tile(np.arange(n_images), n_runs * len(methods))
    y = (0.5 + np.array(list(method_shift.values()))[m] + rng.normal(0, image_sd, n_images)[i]
         + rng.normal(0, run_sd, n_runs)[r] + rng.normal(0, run_method_sd, n_runs * len(methods))[r * len(methods) + m]
         + rng.normal(0, noise, len(r)))
    return pd.DataFrame({"run": r, "method": np.array(methods)[m], "image": i, "ap": y})


def test_run_mixed_model_recovers_planted_run_variance():
    n_runs, run_sd = 30, 0.2
    df = _runs(np.random.default_rng(6), n_runs, 15, {"gradient": 0.0, "patternnet": -0.1}, run_sd)
    fit = stats.run_mixed_model(df, "ap", reference="gradient")
    assert fit.converged
    var = fit.variance.set_index("component")
    assert list(var.index) == [*stats.RUN_COMPONENTS, "residual"]
    lo, hi = _chi2_region(run_sd**2, n_runs - 1)
    assert lo <= var.loc["run", "variance"] <= hi
    assert var.loc["run", "share"] == var["share"].max()
    assert var["share"].sum() == pytest.approx(1.0)
    eff = fit.effects.set_index("method")
    pn = eff.loc["patternnet"]
    assert pn["contrast"] == "patternnet - gradient"
    assert pn["ci_lo"] < -0.1 < pn["ci_hi"] and pn["p_value"] < 1e-6
    assert pn["df"] == min((n_runs - 1) * 1, (15 - 1) * 1)
    assert eff.loc["gradient", "contrast"] == "mean"


def test_run_mixed_model_without_run_variance_and_one_method():
    df = _runs(np.random.default_rng(7), 10, 20, {"gradient": 0.0}, run_sd=0.0, run_method_sd=0.0)
    fit = stats.run_mixed_model(df, "ap")
    var = fit.variance.set_index("component")
    # One method: the method interactions are not identified and are dropped.
    assert list(var.index) == ["image", "run", "residual"]
    # No planted run variance: the run share stays below 1 % (the residual contributes
    # noise^2 / n_images = 1.25e-4 to each run mean against an image variance of 0.01).
    assert var.loc["run", "share"] < 0.01
    assert var.loc["image", "share"] > 0.5
    with pytest.raises(ValueError, match="not valid"):
        stats.run_mixed_model(df, "ap", components=("image", "batch"))
    with pytest.raises(ValueError, match="at least 2 runs"):
        stats.run_mixed_model(df[df.run == 0], "ap")


def test_run_agreement_and_per_run_verdicts():
    assert stats.run_agreement([True, True]) == "holds in every run"
    assert stats.run_agreement(np.array([True, False])) == "holds in some runs"
    assert stats.run_agreement([False, False, False]) == "holds in no run"
    with pytest.raises(TypeError, match="booleans"):
        stats.run_agreement([1, 0])
    rng = np.random.default_rng(8)
    runs = []
    for run, shift in enumerate((0.2, 0.2, 0.0)):  # the method beats the low baseline in runs 0 and 1 only
        u = rng.normal(0, 0.1, 30)
        for method, s in (("avg_mask", 0.0), ("m", shift), ("unet", 0.5)):
            runs.append(pd.DataFrame({"run": run, "method": method, "image": np.arange(30),
                                      "ap": 0.3 + u + s + rng.normal(0, 0.01, 30)}))
    per_run = stats.verdicts_by_run(pd.concat(runs, ignore_index=True), "ap")
    assert list(per_run.columns[:2]) == ["run", "metric"] and len(per_run) == 6
    agree = stats.verdict_agreement(per_run).set_index("baseline")
    assert agree.loc["avg_mask", "pass_agreement"] == "holds in some runs"
    assert agree.loc["avg_mask", "consensus"] == "differs between runs"
    assert agree.loc["avg_mask", "verdicts"].startswith("0: pass; 1: pass; 2: ")
    assert agree.loc["unet", "consensus"] == "did not pass"
    assert agree.loc["unet", "pass_agreement"] == "holds in no run"
