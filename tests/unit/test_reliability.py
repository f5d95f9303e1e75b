"""Known answers for the reliability measures of Tomsett et al. 2020 (PROTOCOLS A5)."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from salbench.metrics import reliability as rel
from salbench.metrics import (
    TOMSETT_CONSISTENCY_PAIRS,
    alpha_table,
    complete_rows,
    consistency_table,
    inter_method,
    inter_method_table,
    internal_consistency,
    kendalls_w,
    ranking_alpha,
    ranking_alpha_ci,
    within_image_ranks,
)

# Closed forms and library calls on the same float64 data: summation order only.
EXACT = 1e-10
# alpha of i.i.d. random rankings of 5 methods by 2000 images: alpha ~ W - 1/N with
# sd(W) = sqrt(2 (m - 1)) / (N (m - 1)) ~ 3.5e-4, so 0.01 is about 28 sd.
RANDOM_ALPHA_TOL = 0.01


def _scores(n=200, m=5, signal=1.0, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, m)) + signal * np.arange(m)
    return np.round(s) if ties else s


# --------------------------------------------------------------------------- alpha


def test_alpha_is_one_for_identical_rankings():
    rng = np.random.default_rng(0)
    s = np.arange(5)[None] * 10 + rng.uniform(0, 1, size=(300, 5))  # every image: method 4 > 3 > ... > 0
    assert ranking_alpha(s) == pytest.approx(1.0, abs=EXACT)
    assert kendalls_w(s) == pytest.approx(1.0, abs=EXACT)


def test_alpha_near_zero_for_random_rankings():
    s = _scores(n=2000, signal=0.0, seed=1)
    assert abs(ranking_alpha(s)) < RANDOM_ALPHA_TOL
    assert kendalls_w(s) < RANDOM_ALPHA_TOL


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_alpha_equals_krippendorff_on_average_ranks(ties, level):
    s = _scores(n=150, signal=0.4, seed=2, ties=ties)
    ranks = sps.rankdata(s, axis=1)  # average ranks
    if ties:
        assert (ranks % 1 != 0).any()  # the tie case is exercised
    want = krippendorff.alpha(reliability_data=ranks, level_of_measurement=level)  # rows = images (raters)
    assert ranking_alpha(s, level_of_measurement=level) == pytest.approx(want, abs=EXACT)
    np.testing.assert_array_equal(within_image_ranks(s), ranks)


def test_alpha_relates_to_kendalls_w_without_ties():
    """Complete rankings without ties (each rank value N times): within/between sums of squares give
    alpha = 1 - (1 - W) (N m - 1) / (m (N - 1)) exactly. PROTOCOLS A5.1's (N W - 1) / (N - 1) is
    the mean pairwise Spearman between images; alpha differs from it by the factor (N m - 1) / (N m)."""
    s = _scores(n=400, signal=0.3, seed=3)
    n = len(s)
    r = sps.rankdata(s, axis=1)
    m = s.shape[1]
    rj = r.sum(axis=0)
    w = 12 * ((rj - rj.mean()) ** 2).sum() / (n**2 * (m**3 - m))  # Kendall's W, no ties
    assert kendalls_w(s) == pytest.approx(w, abs=EXACT)
    assert ranking_alpha(s) == pytest.approx(1 - (1 - w) * (n * m - 1) / (m * (n - 1)), abs=EXACT)
    rho_images = sps.spearmanr(s.T).statistic[np.triu_indices(n, k=1)].mean()
    assert rho_images == pytest.approx((n * w - 1) / (n - 1), abs=EXACT)


def test_kendalls_w_tie_correction():
    s = _scores(n=100, signal=0.5, seed=4, ties=True)
    n, m = s.shape
    r = sps.rankdata(s, axis=1)
    rj = r.sum(axis=0)
    t = sum(((c**3 - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in s))
    w = 12 * ((rj - rj.mean()) ** 2).sum() / (n**2 * (m**3 - m) - n * t)
    assert kendalls_w(s) == pytest.approx(w, abs=EXACT)


def test_incomplete_images_are_dropped_and_counted():
    s = _scores(n=50, seed=5)
    s[[3, 7], 1] = np.nan
    kept, n_out = complete_rows(s)
    assert n_out == 2 and len(kept) == 48
    assert ranking_alpha(s) == pytest.approx(ranking_alpha(np.delete(s, [3, 7], axis=0)), abs=EXACT)
    res = ranking_alpha_ci(s, rng=np.random.default_rng(0), n_boot=20)
    assert (res.n_images, res.n_excluded) == (48, 2)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_resample_equals_direct_alpha():
    """One resample: alpha from value counts equals krippendorff on the resampled matrix."""
    s = _scores(n=60, signal=0.5, seed=6, ties=True)
    res = ranking_alpha_ci(s, rng=np.random.default_rng(42), n_boot=1, ci=0.5)
    weights = np.random.default_rng(42).multinomial(60, np.full(60, 1 / 60), size=1)[0]
    resampled = np.repeat(sps.rankdata(s, axis=1), weights, axis=0)
    want = krippendorff.alpha(reliability_data=resampled, level_of_measurement="ordinal")
    assert res.ci_low == pytest.approx(want, abs=EXACT) and res.ci_high == pytest.approx(want, abs=EXACT)


def test_bootstrap_ci_deterministic_and_nested():
    s = _scores(n=120, signal=0.3, seed=7)
    a = ranking_alpha_ci(s, rng=np.random.default_rng(1), n_boot=400, ci=0.999)
    b = ranking_alpha_ci(s, rng=np.random.default_rng(1), n_boot=400, ci=0.999)
    c = ranking_alpha_ci(s, rng=np.random.default_rng(1), n_boot=400, ci=0.90)
    assert a == b
    assert a.ci_low < c.ci_low <= a.alpha <= c.ci_high < a.ci_high
    assert a.alpha == pytest.approx(ranking_alpha(s), abs=EXACT)
    with pytest.raises(ValueError, match="ci must lie"):
        ranking_alpha_ci(s, rng=np.random.default_rng(1), ci=99.9)
    with pytest.raises(TypeError, match="Generator"):
        ranking_alpha_ci(s, rng=1)


# --------------------------------------------------------------------------- Spearman tables


def test_inter_method_equals_scipy():
    s = _scores(n=80, m=4, signal=0.2, seed=8)
    mean, pairs = inter_method(s, ["a", "b", "c", "d"])
    rho = sps.spearmanr(s).statistic  # the full matrix, an independent path
    upper = rho[np.triu_indices(4, k=1)]
    np.testing.assert_allclose(pairs["rho"], upper, atol=EXACT)
    assert mean == pytest.approx(upper.mean(), abs=EXACT)
    assert list(zip(pairs["method_a"], pairs["method_b"])) == list(itertools.combinations("abcd", 2))


def test_inter_method_excludes_undefined_pairs():
    s = _scores(n=30, m=3, seed=9)
    s[:, 2] = 1.0  # constant method: its pairs are undefined
    mean, pairs = inter_method(s)
    assert pairs["rho"].isna().sum() == 2
    assert mean == pytest.approx(sps.spearmanr(s[:, 0], s[:, 1]).statistic, abs=EXACT)


def _tidy(n=60, seed=10):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for k, m in enumerate(["sens", "gxi", "dtd", "sobel"]):
            for style in ["mean", "uniform"]:
                base = k * 0.3 + rng.normal()
                rows.append({"image": i, "method": m, "style": style, "unit": 1,
                             "faithfulness": rng.normal(), "aopc_morf_L100": base + rng.normal(scale=0.5),
                             "aopc_lerf_L100": -base + rng.normal(), "aopc_morf_L20": base + rng.normal()})
    return pd.DataFrame(rows)


def test_consistency_table_equals_scipy():
    df = _tidy()
    df.loc[(df["image"] == 5) & (df["method"] == "dtd"), "faithfulness"] = np.nan
    t = consistency_table(df).set_index(["method", "metric_a", "style_a", "metric_b", "style_b"])
    assert len(t) == 4 * len(TOMSETT_CONSISTENCY_PAIRS)
    for method in ["sens", "dtd"]:
        g = df[df["method"] == method]
        mean = g[g["style"] == "mean"].set_index("image")
        unif = g[g["style"] == "uniform"].set_index("image")
        ok = mean["faithfulness"].notna()
        want = sps.spearmanr(mean.loc[ok, "faithfulness"], mean.loc[ok, "aopc_lerf_L100"]).statistic
        row = t.loc[(method, "faithfulness", "mean", "aopc_lerf_L100", "mean")]
        assert row["rho"] == pytest.approx(want, abs=EXACT) and row["n_images"] == ok.sum()
        want = sps.spearmanr(unif["aopc_morf_L100"], mean["aopc_morf_L100"]).statistic
        assert t.loc[(method, "aopc_morf_L100", "uniform", "aopc_morf_L100", "mean"), "rho"] == pytest.approx(want, abs=EXACT)
    assert internal_consistency([1, 2, 3, 4], [2, 4, 6, 9]) == (pytest.approx(1.0), 4)


def test_alpha_and_inter_method_tables():
    df = _tidy()
    sets = {"with_edge": ["sens", "gxi", "dtd", "sobel"], "without_edge": ["sens", "gxi", "dtd"]}
    metrics = ["faithfulness", "aopc_morf_L20", "aopc_morf_L100"]
    t = alpha_table(df, metrics, sets, rng=np.random.default_rng(0), n_boot=50)
    assert len(t) == 2 * 2 * 3  # styles x sets x metrics
    assert {"style", "unit", "method_set", "metric", "L", "alpha", "ci_low", "ci_high", "kendall_w", "n_images"} <= set(t.columns)
    cell = t[(t["style"] == "mean") & (t["method_set"] == "without_edge") & (t["column"] == "aopc_morf_L100")].iloc[0]
    assert (cell["metric"], cell["L"]) == ("aopc_morf", 100)
    wide = df[df["style"] == "mean"].pivot(index="image", columns="method", values="aopc_morf_L100")[sets["without_edge"]]
    assert cell["alpha"] == pytest.approx(ranking_alpha(wide.to_numpy()), abs=EXACT)
    assert cell["kendall_w"] == pytest.approx(kendalls_w(wide.to_numpy()), abs=EXACT)
    assert cell["ci_low"] <= cell["alpha"] <= cell["ci_high"]
    pd.testing.assert_frame_equal(t, alpha_table(df, metrics, sets, rng=np.random.default_rng(0), n_boot=50))

    im = inter_method_table(df, metrics, sets)
    cell = im[(im["style"] == "mean") & (im["method_set"] == "without_edge") & (im["column"] == "aopc_morf_L100")].iloc[0]
    assert cell["mean_rho"] == pytest.approx(inter_method(wide.to_numpy())[0], abs=EXACT) and cell["n_pairs"] == 3

    # A metric undefined on every image (F of single pixels that move nothing) is a NaN cell, not an error.
    no_f = df.assign(faithfulness=np.nan)
    cell = alpha_table(no_f, metrics, sets, rng=np.random.default_rng(0), n_boot=5).set_index(
        ["style", "method_set", "column"]).loc[("mean", "with_edge", "faithfulness")]
    assert np.isnan(cell["alpha"]) and cell["n_images"] == 0 and cell["n_excluded"] == df["image"].nunique()

    with pytest.raises(ValueError, match="'shap'"):
        alpha_table(df, metrics, {"x": ["sens", "shap"]}, rng=np.random.default_rng(0), n_boot=5)
    with pytest.raises(ValueError, match="several rows"):
        alpha_table(df, metrics, sets, rng=np.random.default_rng(0), n_boot=5, group_by=["unit"])
    with pytest.raises(ValueError, match="level_of_measurement"):
        ranking_alpha(wide.to_numpy(), level_of_measurement="nominal")


def test_alpha_of_rankings_tied_everywhere_is_undefined_not_an_error():
    # Every method scores the same on every image (a seed-2022 quick run: a Perlin cell where no
    # perturbation moved the output): krippendorff refuses a one-value domain; alpha is NaN.
    tied = np.zeros((6, 4))
    assert np.isnan(ranking_alpha(tied))
    res = ranking_alpha_ci(tied, rng=np.random.default_rng(0), n_boot=20)
    assert np.isnan(res.alpha) and np.isnan(res.ci_low) and res.n_images == 6 and res.n_boot_undefined == 20


# --------------------------------------------------------------------------- ties at the resolution

RESOLUTION = 1e-6


def test_tolerance_ranks_chain_ties_and_reduce_to_rankdata():
    from scipy.stats import rankdata

    v = np.array([0.3, 1e-7, -2e-7, 0.3 + 5e-7, 0.2, 0.2 + 2e-6])
    np.testing.assert_array_equal(rel.tolerance_ranks(v, 0.0), rankdata(v, method="average"))
    # {-2e-7, 1e-7} tie, {0.3, 0.3 + 5e-7} tie; 0.2 and 0.2 + 2e-6 stay apart at 1e-6.
    np.testing.assert_array_equal(rel.tolerance_ranks(v, RESOLUTION), [5.5, 1.5, 1.5, 5.5, 3, 4])
    # Chaining: 0, 0.8e-6, 1.6e-6 form one group although the ends are 1.6e-6 apart.
    np.testing.assert_array_equal(rel.tolerance_ranks([0, 0.8e-6, 1.6e-6, 1.0], RESOLUTION), [2, 2, 2, 4])
    with pytest.raises(ValueError, match="tol must be"):
        rel.tolerance_ranks(v, -1)


def test_ties_below_the_resolution_give_the_alpha_of_the_tied_ranks():
    """Three methods whose scores differ by float noise below the resolution on every image
    and two that differ clearly: alpha at the resolution is krippendorff's alpha of the
    ranks with the three tied, not of the noise's order."""
    rng = np.random.default_rng(3)
    n = 8
    noise = rng.uniform(-4e-7, 4e-7, size=(n, 3))
    scores = np.column_stack([noise, 0.5 + 0.1 * rng.uniform(size=n), 0.9 + 0.05 * rng.uniform(size=n)])
    tied = np.tile([2.0, 2.0, 2.0, 4.0, 5.0], (n, 1))
    want = krippendorff.alpha(reliability_data=tied, level_of_measurement="ordinal")
    assert rel.ranking_alpha(scores, tol=RESOLUTION) == pytest.approx(want, abs=1e-12)
    assert rel.ranking_alpha(scores) != pytest.approx(want, abs=1e-3)  # the noise's order counts without it
    res = rel.ranking_alpha_ci(scores, rng=np.random.default_rng(0), n_boot=50, tol=RESOLUTION)
    assert res.alpha == pytest.approx(want, abs=1e-12) and res.n_images_tied == n
    assert rel.n_rows_tied(scores, 0.0) == 0


def _tidy_wide(wide: np.ndarray, methods) -> pd.DataFrame:
    return pd.DataFrame([{"image": i, "method": m, "style": "mean", "unit": 5, "aopc_lerf_L20": wide[i, j]}
                         for i in range(len(wide)) for j, m in enumerate(methods)])


def test_cells_that_ties_leave_without_information_are_undecidable():
    rng = np.random.default_rng(0)
    methods = ["a", "b", "c"]
    wide = rng.uniform(-5e-7, 5e-7, size=(6, 3))  # every score is noise below the resolution
    df = _tidy_wide(wide, methods)
    a = rel.alpha_table(df, ["aopc_lerf_L20"], {"all": methods}, rng=np.random.default_rng(1), n_boot=20,
                        tol=RESOLUTION)
    assert a["alpha"].isna().all() and a["kendall_w"].isna().all()
    assert a["status"].iloc[0] == "undecidable: every image ties every method at the resolution"
    assert a["n_images_tied"].iloc[0] == 6
    exact = rel.alpha_table(df, ["aopc_lerf_L20"], {"all": methods}, rng=np.random.default_rng(1), n_boot=20)
    assert exact["status"].iloc[0] == "ok" and np.isfinite(exact["alpha"].iloc[0])
    im = rel.inter_method_table(df, ["aopc_lerf_L20"], {"all": methods}, tol=RESOLUTION)
    assert im["mean_rho"].isna().all() and im["n_pairs_undecidable"].iloc[0] == 3
    assert im["status"].iloc[0] == "undecidable: no pair of methods has a rho at the resolution"
    r = rel.spearman(wide[:, 0], np.arange(6.0), RESOLUTION, 0.0)
    assert np.isnan(r.rho) and r.status == "undecidable: the first series is constant at the resolution"
    assert rel.spearman(np.ones(6), np.arange(6.0)).status == "undefined: the first series is constant"


def test_spearman_at_the_resolution_counts_the_images_ties_decided():
    a = np.array([0.0, 2e-7, 0.5, 0.6, 0.7])
    b = np.array([1.0, 0.0, 2.0, 3.0, 4.0])
    exact, tied = rel.spearman(a, b), rel.spearman(a, b, RESOLUTION, 0.0)
    assert exact.rho == pytest.approx(0.9) and exact.n_images_tied == 0
    assert tied.rho == pytest.approx(np.corrcoef([1.5, 1.5, 3, 4, 5], [2, 1, 3, 4, 5])[0, 1])
    assert tied.n_images_tied == 2 and tied.status == "ok"
