"""The claims ledger and comparison by conclusion (issue 14), on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from salbench import claims as C
from salbench import claims_budding_arun as BA
from salbench import paths

# Hand-made statistics are differences of two decimals: compared to rounding.
EXACT = 1e-12


def _summary(perlin, mri, n_images=(40, 40, 40)):
    """A localization_summary-like table: PatternNet's mean AP per background and run, plus Gradient."""
    rows = []
    for run, (p, m, n) in enumerate(zip(perlin, mri, n_images)):
        rows += [
            {"run": run, "background": "perlin", "model": "trained", "method": "patternnet", "mean_ap": p,
             "n_images": n},
            {"run": run, "background": "mri", "model": "trained", "method": "patternnet", "mean_ap": m,
             "n_images": n},
            {"run": run, "background": "mri", "model": "trained", "method": "gradient", "mean_ap": 0.5,
             "n_images": n},
        ]
    return pd.DataFrame(rows)


def _ledger(perlin, mri, **kw):
    return C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND], {"localization_summary": _summary(perlin, mri, **kw)})


@pytest.mark.parametrize("perlin, mri, verdict", [
    ((0.41, 0.45, 0.40), (0.22, 0.30, 0.35), "holds in every run"),
    ((0.36, 0.41, 0.40), (0.39, 0.22, 0.45), "holds in some runs"),
    ((0.30, 0.20, 0.10), (0.39, 0.22, 0.45), "holds in no run"),
])
def test_ledger_verdict_per_run_and_overall(perlin, mri, verdict):
    row = _ledger(perlin, mri).iloc[0]
    assert row["claim_id"] == "budding_patternnet_perlin_gt_mri" and row["paper"] == "Budding"
    assert row["claim"] == "PatternNet works better on Perlin than on MRI"
    assert row["statistic"] == "PatternNet mAP on Perlin minus on MRI; holds if > 0"
    assert row["paper_value"] == "" and row["n_runs"] == 3
    for r in range(3):
        assert row[f"statistic_{r}"] == pytest.approx(perlin[r] - mri[r], abs=EXACT)
        assert row[f"holds_{r}"] == (perlin[r] > mri[r])
    assert row["statistic_pooled"] == pytest.approx(np.mean(perlin) - np.mean(mri), abs=EXACT)
    assert row["holds_pooled"] == (np.mean(perlin) > np.mean(mri))
    assert row["verdict"] == verdict


def test_pooled_statistic_weights_runs_by_images():
    row = _ledger((0.5, 0.1, 0.3), (0.2, 0.2, 0.2), n_images=(30, 10, 10)).iloc[0]
    assert row["statistic_pooled"] == pytest.approx((0.5 * 30 + 0.1 * 10 + 0.3 * 10) / 50 - 0.2, abs=EXACT)


def test_ledger_errors_name_the_problem():
    t = _summary((0.4,) * 3, (0.3,) * 3)
    with pytest.raises(KeyError, match="table 'localization_summary' not given"):
        C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND], {"other": t})
    with pytest.raises(ValueError, match="no row of table"):
        C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND], {"localization_summary": t[t.background != "mri"]})
    twice = pd.concat([t, t.assign(model="trained")])
    with pytest.raises(ValueError, match="more than one row"):
        C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND], {"localization_summary": twice})
    with pytest.raises(ValueError, match="unique"):
        C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND] * 2, {"localization_summary": t})
    no_pooled = C.Claim("x", "p", "s", "stat", lambda tables: pd.DataFrame(
        {"run": [0], "statistic": [1.0], "holds": [True]}))
    with pytest.raises(ValueError, match="exactly one row with run == 'pooled'"):
        C.ledger([no_pooled], {})


def _two_claims(perlin, mri, lrp_perlin, lrp_mri):
    t = _summary(perlin, mri)
    lrp = t[t.method == "patternnet"].assign(method="lrp_z")
    lrp["mean_ap"] = [v for pair in zip(lrp_perlin, lrp_mri) for v in pair]
    lrp_claim = C.mean_difference_claim(
        "budding_lrpz_mri_gt_perlin", "Budding", "LRP-z works better on MRI than on Perlin", "localization_summary",
        "mean_ap", {"background": "mri", "method": "lrp_z"}, {"background": "perlin", "method": "lrp_z"})
    tables = {"localization_summary": pd.concat([t, lrp], ignore_index=True)}
    return C.ledger([BA.BUDDING_PATTERNNET_BACKGROUND, lrp_claim], tables), tables["localization_summary"]


def test_compare_claims_numeric_differences_only_reproduce():
    a, sa = _two_claims((0.36, 0.40, 0.42), (0.39, 0.22, 0.45), (0.68, 0.60, 0.70), (0.46, 0.40, 0.50))
    b, sb = _two_claims((0.30, 0.45, 0.40), (0.35, 0.20, 0.43), (0.60, 0.66, 0.72), (0.40, 0.45, 0.52))
    assert not np.allclose(a["statistic_pooled"], b["statistic_pooled"])
    res = C.compare_claims(a, b)
    assert res.claims["reproduces"].all()
    assert res.summary == "2 of 2 conclusions reproduce; differing: none"
    assert res.rankings is None


def test_compare_claims_names_a_flipped_verdict():
    a, _ = _two_claims((0.36, 0.40, 0.42), (0.39, 0.22, 0.45), (0.68, 0.60, 0.70), (0.46, 0.40, 0.50))
    b, _ = _two_claims((0.41, 0.40, 0.42), (0.39, 0.22, 0.40), (0.68, 0.60, 0.70), (0.46, 0.40, 0.50))
    res = C.compare_claims(a, b)
    assert res.summary == ("1 of 2 conclusions reproduce; differing: budding_patternnet_perlin_gt_mri "
                           "(holds in some runs -> holds in every run)")
    flipped = res.claims.set_index("claim_id").loc["budding_patternnet_perlin_gt_mri"]
    assert not flipped["reproduces"]
    # A claim absent from one ledger does not reproduce.
    res = C.compare_claims(a, b.iloc[:1])
    assert "budding_lrpz_mri_gt_perlin (holds in no run -> missing)" in res.summary
    assert res.summary.startswith("0 of 2")


def test_compare_claims_pooled_flip_is_a_difference():
    a, _ = _two_claims((0.50, 0.30, 0.42), (0.30, 0.35, 0.45), (0.68,) * 3, (0.46,) * 3)
    b, _ = _two_claims((0.31, 0.30, 0.42), (0.30, 0.35, 0.45), (0.68,) * 3, (0.46,) * 3)
    assert (a["verdict"] == b["verdict"]).all() and a["holds_pooled"][0] != b["holds_pooled"][0]
    res = C.compare_claims(a, b)
    assert res.summary == ("1 of 2 conclusions reproduce; differing: budding_patternnet_perlin_gt_mri "
                           "(pooled holds True -> False)")


def test_method_rankings_kendall_tau():
    methods = ["gradient", "lrp_z", "patternnet", "guided_backprop", "deconvnet"]
    a = pd.DataFrame({"background": "mri", "model": "trained", "method": methods,
                      "mean_ap": [0.52, 0.46, 0.39, 0.63, 0.53]})
    b = a.assign(mean_ap=[0.63, 0.40, 0.22, 0.70, 0.50])
    c = a.assign(mean_ap=-a["mean_ap"])
    r = C.method_rankings(a, b, ["mean_ap"]).iloc[0]
    assert r["n_methods"] == 5
    assert r["tau"] == pytest.approx(sps.kendalltau(a["mean_ap"], b["mean_ap"]).statistic, abs=EXACT)
    assert C.method_rankings(a, a, ["mean_ap"])["tau"].iloc[0] == pytest.approx(1.0)
    assert C.method_rankings(a, c, ["mean_ap"])["tau"].iloc[0] == pytest.approx(-1.0)
    la, _ = _two_claims((0.4,) * 3, (0.3,) * 3, (0.5,) * 3, (0.6,) * 3)
    res = C.compare_claims(la, la, a, b)
    assert list(res.rankings.columns) == ["background", "model", "metric", "n_methods", "tau", "p_value"]
    with pytest.raises(ValueError, match="both summaries"):
        C.compare_claims(la, la, a)


# --------------------------------------------------------------------------- the concrete claims


def _summary_runs(means_per_run, n_images=40):
    """A localization_summary with a run column: means_per_run[run][(background, method)] = value,
    the same value for every metric (ranks then agree across metrics)."""
    rows = []
    for run, means in enumerate(means_per_run):
        for (bg, method), v in means.items():
            rows.append({"run": run, "background": bg, "model": "trained", "method": method, "n_images": n_images,
                         "mean_ap": v, "mean_prec99": v, "mean_roc_auc": 0.9 + v / 10, "mean_auprc": v})
    return pd.DataFrame(rows)


def _ranked(order, background):
    """Means 0.8, 0.7, ... for `order`, best first."""
    return {(background, m): round(0.8 - 0.1 * i, 4) for i, m in enumerate(order)}


def _eval(claim, summary):
    return C.ledger([claim], {"localization_summary": summary}).iloc[0]


def test_gradient_claim_holds_in_one_of_two_runs_and_pooled_uses_the_mean_over_runs():
    others = [m for m in BA.BUDDING_METHODS if m != "gradient"]
    run0 = {**_ranked(["gradient", *others], "perlin"), **_ranked([*others[:3], "gradient", *others[3:]], "mri")}
    run1 = {**_ranked(["gradient", *others], "perlin"), **_ranked([*others[:5], "gradient", *others[5:]], "mri")}
    mri = BA.BUDDING_GRADIENT[1]
    row = _eval(mri, _summary_runs([run0, run1]))
    assert (row["statistic_0"], row["statistic_1"]) == (4, 6)
    assert (row["holds_0"], row["holds_1"], row["verdict"]) == (True, False, "holds in some runs")
    # Pooled ranks the means over runs: Gradient's 0.4 falls behind others[3]'s 0.45 (0.4 and 0.5).
    assert row["statistic_pooled"] == 5 and not row["holds_pooled"]
    assert _eval(BA.BUDDING_GRADIENT[0], _summary_runs([run0, run1]))["verdict"] == "holds in every run"


def test_arun_rank_claims_on_two_runs():
    arun = list(BA.ARUN_METHODS)
    best_xrai = ["xrai", *[m for m in arun if m not in ("xrai", "smooth_ig")], "smooth_ig"]
    runs = [{**_ranked(best_xrai, "perlin"), **_ranked(best_xrai, "mri")}] * 2
    s = _summary_runs(runs)
    assert _eval(BA.ARUN_XRAI_HIGHEST, s)["verdict"] == "holds in every run"
    assert _eval(BA.ARUN_SIG_LOWEST, s)["verdict"] == "holds in every run"
    worst_xrai = best_xrai[1:] + ["xrai"]
    runs[1] = {**_ranked(best_xrai, "perlin"), **_ranked(worst_xrai, "mri")}
    row = _eval(BA.ARUN_XRAI_HIGHEST, _summary_runs(runs))
    assert (row["statistic_0"], row["statistic_1"], row["verdict"]) == (1, 8, "holds in some runs")
    assert not _eval(BA.ARUN_SIG_LOWEST, _summary_runs(runs))["holds_1"]  # XRAI is now below it


def test_a_table_without_run_column_is_the_selected_run():
    s = _summary_runs([{**_ranked(BA.BUDDING_METHODS, "perlin"), **_ranked(BA.BUDDING_METHODS, "mri")}])
    row = _eval(BA.BUDDING_GRADIENT[0], s.drop(columns="run"))
    assert row["n_runs"] == 1 and row["statistic_selected"] == 1 and row["statistic_pooled"] == 1
    assert row["verdict"] == "holds in every run"


def _mixed(verdicts_per_run):
    """localization_mixed_models rows: verdicts_per_run[run][(background, method)] against the average mask."""
    rows = []
    for run, verdicts in enumerate(verdicts_per_run):
        for (bg, method), v in verdicts.items():
            rows.append({"run": run, "background": bg, "metric": "auprc", "method": method, "baseline": "avg_mask",
                         "verdict": v})
    return pd.DataFrame(rows)


def test_verdict_claim_per_run_and_pooled():
    others = [m for m in BA.ARUN_METHODS if m != "xrai"]
    good = {(bg, m): "did not pass" for bg in ("perlin", "mri") for m in others}
    flipped = {**good, ("mri", "gradient"): "pass"}
    t = _mixed([good, flipped])
    row = C.ledger([BA.ARUN_OTHERS_BELOW_AVG], {"localization_mixed_models": t}).iloc[0]
    assert (row["statistic_0"], row["statistic_1"], row["verdict"]) == (0, 1, "holds in some runs")
    # No pooled test in the table: the runs disagree on one comparison, which counts against the claim.
    assert row["statistic_pooled"] == 1 and not row["holds_pooled"]
    pooled = _mixed([good]).assign(run="pooled")
    row = C.ledger([BA.ARUN_OTHERS_BELOW_AVG], {"localization_mixed_models": pd.concat([t, pooled])}).iloc[0]
    assert row["statistic_pooled"] == 0 and row["holds_pooled"] and row["n_runs"] == 2
    with pytest.raises(ValueError, match="no .* verdict for \\(background, method\\)"):
        C.ledger([BA.ARUN_OTHERS_BELOW_AVG], {"localization_mixed_models": t.iloc[1:]})


def test_ledger_of_the_committed_tables_has_one_row_per_claim_and_matches_claims_csv(tmp_path):
    import shutil

    committed = paths.repo_root() / "tables"
    for name in C.claim_tables():
        if (committed / f"{name}.csv").exists() or name not in C.optional_claim_tables():
            shutil.copy(committed / f"{name}.csv", tmp_path)
    from salbench import cli

    assert cli.main(["claims", "--tables", str(tmp_path)]) == 0  # python -m salbench claims
    assert C.write_claims(tmp_path) == tmp_path / "claims.csv"
    written = pd.read_csv(tmp_path / "claims.csv")
    assert list(written["claim_id"]) == [c.id for c in C.all_claims()]
    assert written["claim_id"].iloc[0] == BA.CLAIMS[0].id and len(written) > len(BA.CLAIMS)
    assert set(written["verdict"]) <= set(C.AGREEMENT)
    assert (tmp_path / "claims.csv").read_bytes() == (committed / "claims.csv").read_bytes(), \
        "tables/claims.csv is stale: run `python -m salbench claims`"
