"""Tomsett's and Arun's trust claims on hand-made tables: each claim's verdict follows the numbers."""

import numpy as np
import pandas as pd
import pytest

from salbench import claims
from salbench import claims_tomsett_arun as ct
from salbench.papers import ARUN_METHODS

FIVE = list(ct.WITH_EDGE)


def scores(morf: dict, lerf: dict | None = None, faith: dict | None = None, unit=5, runs=None):
    """fidelity_scores with three images per (background, style, method); per-method values
    given as {method: value} (the same in every background and style unless a key is
    (background, style, method))."""
    rows = []
    for run in runs or [None]:
        for bg in ("perlin", "mri"):
            for style in ct.STYLES:
                for m in [*FIVE, "oracle"]:
                    def value(d, default):
                        d = d or {}
                        return d.get((bg, style, m), d.get(m, default))
                    for img, jitter in enumerate((-0.01, 0.0, 0.01)):
                        row = {"background": bg, "model": "trained", "method": m, "image": img, "style": style,
                               "output": "probability", "unit": unit, "aopc_morf_L20": 0.0, "aopc_morf_L100": value(morf, 0.1) + jitter,
                               "aopc_lerf_L20": 0.0, "aopc_lerf_L100": value(lerf, 0.1) + jitter,
                               "faithfulness": value(faith, 0.0) + jitter, "faithfulness_status": "ok"}
                        if run is not None:
                            row["run"] = run
                        rows.append(row)
    # A smaller unit and another output whose numbers would contradict: the claims read the
    # largest unit and the probability only (the margin inside ``ct.on_output``).
    small = pd.DataFrame(rows).assign(unit=1, aopc_morf_L100=lambda d: -d.aopc_morf_L100)
    margin = pd.DataFrame(rows).assign(output="logit_margin", aopc_morf_L100=lambda d: -d.aopc_morf_L100,
                                       aopc_lerf_L100=lambda d: -d.aopc_lerf_L100)
    return pd.concat([pd.DataFrame(rows), small, margin], ignore_index=True)


def resolution(value=1e-7):
    return pd.DataFrame([{"background": bg, "output": o, "resolution": value}
                         for bg in ("perlin", "mri") for o in ("probability", "logit_margin")])


def fidelity(morf, lerf=None, faith=None, res=1e-7, **kw):
    return {"fidelity_scores": scores(morf, lerf, faith, **kw), "fidelity_resolution": resolution(res)}


def test_gradient_x_input_highest_morf_on_both_backgrounds():
    t = fidelity({"gradient_x_input": 0.5})
    ev = ct.TOMSETT_GXI_MORF.evaluate(t)
    assert ev["statistic"].tolist() == [1.0, 1.0] and ev["holds"].all()
    # On the logit margin (numbers negated in the fixture) gradient x input is last of five.
    with ct.on_output("logit_margin"):
        assert ct.TOMSETT_GXI_MORF.evaluate(t)["statistic"].tolist() == [5.0, 5.0]
    # Second on MRI, mean style only: the worse rank is 2.
    t = fidelity({"gradient_x_input": 0.5, ("mri", "mean", "sobel"): 0.6})
    ev = ct.TOMSETT_GXI_MORF.evaluate(t)
    assert ev["statistic"].tolist() == [2.0, 2.0] and not ev["holds"].any()
    # Sobel above it by less than the resolution: a tie, and tied methods share the best rank.
    t = fidelity({"gradient_x_input": 0.5, ("mri", "mean", "sobel"): 0.5 + 5e-8})
    assert ct.TOMSETT_GXI_MORF.evaluate(t)["statistic"].tolist() == [1.0, 1.0]
    t = fidelity({"gradient_x_input": 0.5, ("mri", "mean", "sobel"): 0.5 + 5e-8}, res=1e-8)
    assert ct.TOMSETT_GXI_MORF.evaluate(t)["statistic"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="output='logits'"):
        with ct.on_output("logits"):
            pass


def test_lerf_ranking_decided_by_noise_below_the_resolution_is_a_tie():
    """Every LeRF mean within 2e-7 of 0 (float noise of a saturated output): at a resolution
    of 1e-6 the five tie, so the edge map and Deep Taylor share rank 1 and the MoRF / LeRF
    tau is undefined (a side ties throughout)."""
    noise = dict(zip(FIVE, (2e-7, -1e-7, 0.0, 1.5e-7, -2e-7)))
    morf = {m: v for m, v in zip(FIVE, (0.1, 0.2, 0.3, 0.4, 0.5))}
    exact = fidelity(morf, lerf=noise, res=0.0)
    tied = fidelity(morf, lerf=noise, res=1e-6)
    assert ct.TOMSETT_LERF_BEST.evaluate(exact)["statistic"].iloc[0] > 2
    assert ct.TOMSETT_LERF_BEST.evaluate(tied)["statistic"].iloc[0] == 1
    assert np.isfinite(ct.TOMSETT_REVERSED.evaluate(exact)["statistic"].iloc[0])
    ev = ct.TOMSETT_REVERSED.evaluate(tied)
    assert np.isnan(ev["statistic"].iloc[0]) and not ev["holds"].any()


def test_reversed_rankings_and_faithfulness_claims():
    morf = {m: v for m, v in zip(FIVE, (0.1, 0.2, 0.3, 0.4, 0.5))}
    t = fidelity(morf, lerf=morf, faith={"sobel": -0.05, "deep_shap": 0.08})
    ev = ct.TOMSETT_REVERSED.evaluate(t)
    assert ev["statistic"].iloc[0] == pytest.approx(1.0) and ev["holds"].all()
    assert ct.TOMSETT_F_NEAR_ZERO.evaluate(t)["holds"].all()
    assert ct.TOMSETT_EDGE_LOWEST_F.evaluate(t)["statistic"].iloc[0] == 1.0
    t = fidelity(morf, lerf=morf, faith={"deep_shap": 0.3})
    assert not ct.TOMSETT_F_NEAR_ZERO.evaluate(t)["holds"].any()
    # An undefined F (constant relevance) is left out, not averaged as NaN.
    s = scores(morf, faith={"sobel": -0.05})
    s.loc[0, ["faithfulness", "faithfulness_status"]] = [np.nan, "constant_relevance"]
    assert np.isfinite(ct.TOMSETT_EDGE_LOWEST_F.evaluate({"fidelity_scores": s})["statistic"]).all()


def test_lerf_worse_than_random_uses_the_matching_baseline():
    rb = pd.DataFrame([{"background": bg, "unit": u, "style": st, "output": o, "L": L, "mean": 0.05}
                       for bg in ("perlin", "mri") for u in (1, 5) for st in ct.STYLES for L in (20, 100)
                       for o in ("probability", "logit_margin")])
    t = {**fidelity({}, lerf={"gradient_x_input": 0.2, "deep_shap": 0.1}), "fidelity_random_baseline": rb}
    ev = ct.TOMSETT_LERF_WORSE_THAN_RANDOM.evaluate(t)
    assert ev["statistic"].iloc[0] == pytest.approx(0.05) and ev["holds"].all()
    rb.loc[(rb.background == "mri") & (rb.L == 100), "mean"] = 0.3
    assert not ct.TOMSETT_LERF_WORSE_THAN_RANDOM.evaluate(t)["holds"].any()


def alpha_table(value):
    """tomsett_alpha in Tomsett's layout; alpha = value(with_edge, style, metric, L)."""
    rows = []
    for bg in ("perlin", "mri"):
        for we in (False, True):
            for st in ct.STYLES:
                for metric, ls in (("faithfulness", [None]), ("aopc_morf", [20, 100]), ("aopc_lerf", [20, 100])):
                    for L in ls:
                        rows.append({"background": bg, "unit": 5, "output": "probability", "methods": "tomsett",
                                     "with_edge": we, "style": st,
                                     "metric": metric, "L": L, "column": metric if L is None else f"{metric}_L{L}",
                                     "alpha": value(we, st, metric, L)})
    return pd.DataFrame(rows)


def test_alpha_claims_count_the_cells_that_contradict():
    def paper_like(we, st, metric, L):
        base = {"faithfulness": 0.1, "aopc_morf": 0.3, "aopc_lerf": 0.1}[metric] + (L or 0) / 1000
        if metric != "aopc_lerf":
            base += 0.1 * we
        return base - (0.1 if (st == "uniform" and metric == "aopc_morf") else 0) + \
            (0.05 if (st == "uniform" and metric == "aopc_lerf") else 0)

    t = {"tomsett_alpha": alpha_table(paper_like)}
    for c in (ct.TOMSETT_ALPHA_LOW, ct.TOMSETT_EDGE_RAISES_ALPHA, ct.TOMSETT_RANDOM_LOWERS_MORF_ALPHA,
              ct.TOMSETT_RANDOM_RAISES_LERF_ALPHA, ct.TOMSETT_ALPHA_RISES_WITH_L):
        assert c.evaluate(t)["holds"].all(), c.id
    t = {"tomsett_alpha": alpha_table(lambda we, st, metric, L: 0.7 if L == 20 else 0.2)}
    assert ct.TOMSETT_ALPHA_LOW.evaluate(t)["statistic"].iloc[0] == pytest.approx(0.7)
    # 2 backgrounds x 2 edge settings x 2 styles x 2 metrics: each falls once from L=20 to L=100.
    assert ct.TOMSETT_ALPHA_RISES_WITH_L.evaluate(t)["statistic"].iloc[0] == 16
    # An undecidable alpha (NaN) never supports a claim: one cell of edge-raises-alpha.
    a = alpha_table(paper_like)
    a.loc[(a.background == "mri") & a.with_edge & (a["style"] == "mean") & (a.column == "aopc_morf_L100"),
          "alpha"] = np.nan
    ev = ct.TOMSETT_EDGE_RAISES_ALPHA.evaluate({"tomsett_alpha": a})
    assert ev["statistic"].iloc[0] == 1 and not ev["holds"].any()


def verdicts(verdict_of):
    return pd.DataFrame([{"background": bg, "method": m, "verdict": verdict_of(bg, m), "setting": "arun"}
                         for bg in ("perlin", "mri") for m in ARUN_METHODS])


def test_randomization_verdict_claims():
    paper = verdicts(lambda bg, m: "did not pass" if m == "xrai" else "pass")
    t = {"randomization_verdicts": paper}
    assert ct.ARUN_XRAI_FAILS_RANDOMIZATION.evaluate(t)["holds"].all()
    assert ct.ARUN_FIVE_PASS_RANDOMIZATION.evaluate(t)["holds"].all()
    t = {"randomization_verdicts": verdicts(lambda bg, m: "did not pass" if m in ("xrai", "gradient") and bg == "mri"
                                            else "pass")}
    assert ct.ARUN_XRAI_FAILS_RANDOMIZATION.evaluate(t)["statistic"].iloc[0] == 1  # perlin: pass
    assert ct.ARUN_FIVE_PASS_RANDOMIZATION.evaluate(t)["statistic"].iloc[0] == 1  # gradient on mri


def test_repeatability_above_reproducibility_counts_not_applicable_against():
    rvr = pd.DataFrame([{"background": bg, "method": m, "result": "repeatability higher"}
                        for bg in ("perlin", "mri") for m in ARUN_METHODS])
    assert ct.ARUN_REP_ABOVE_REPRO.evaluate({"repeatability_vs_reproducibility": rvr})["holds"].all()
    rvr.loc[3, "result"] = "not applicable"
    ev = ct.ARUN_REP_ABOVE_REPRO.evaluate({"repeatability_vs_reproducibility": rvr})
    assert ev["statistic"].iloc[0] == 1 and not ev["holds"].any()


def consistency_scores(ssim_of, runs=None):
    rows = []
    for run in runs or [None]:
        for bg in ("perlin", "mri"):
            for kind in ("repeatability", "reproducibility"):
                for m in ARUN_METHODS:
                    for img in range(3):
                        row = {"background": bg, "kind": kind, "method": m, "image": img, "pair": "x",
                               "ssim": ssim_of(bg, kind, m) + 0.01 * img, "note": ""}
                        if run is not None:
                            row["run"] = run
                        rows.append(row)
    return pd.DataFrame(rows)


def test_xrai_most_consistent_and_smoothgrad_least_per_run_and_pooled():
    order = {m: 0.1 + i / 20 for i, m in enumerate(ARUN_METHODS)}  # gradient lowest, then SmoothGrad

    def ssim(run):
        return lambda bg, kind, m: 0.9 if m == "xrai" else (0.01 if m == "smoothgrad" and run == 0 else order[m])

    s = pd.concat([consistency_scores(ssim(0), runs=[0]), consistency_scores(ssim(1), runs=[1])], ignore_index=True)
    t = {"consistency_scores": s}
    assert ct.ARUN_XRAI_MOST_CONSISTENT.evaluate(t)["holds"].all()
    ev = ct.ARUN_SG_LEAST_REPEATABLE.evaluate(t).set_index("run")
    assert ev["statistic"].to_dict() == {"0": 1.0, "1": 2.0, "pooled": 1.0}  # pooled: mean over both runs' images
    row = claims.ledger([ct.ARUN_SG_LEAST_REPEATABLE, ct.ARUN_MOSTLY_BELOW_HALF], t)
    assert row["verdict"].tolist() == ["holds in some runs", "holds in every run"]


def test_no_method_passes_all_four():
    util = pd.DataFrame([{"background": bg, "metric": "auprc", "baseline": "avg_mask", "method": m,
                          "verdict": "pass"} for bg in ("perlin", "mri") for m in ARUN_METHODS])
    rv = verdicts(lambda bg, m: "pass")
    cv = pd.DataFrame([{"background": bg, "kind": k, "method": m, "baseline": "0.5", "verdict": "did not pass"}
                       for bg in ("perlin", "mri") for k in ("repeatability", "reproducibility")
                       for m in ARUN_METHODS])
    t = {"localization_mixed_models": util, "randomization_verdicts": rv, "consistency_verdicts": cv}
    assert ct.ARUN_NONE_PASSES_ALL.evaluate(t)["holds"].all()
    cv.loc[cv.method == "xrai", "verdict"] = "pass"
    assert ct.ARUN_NONE_PASSES_ALL.evaluate(t)["statistic"].iloc[0] == 2  # xrai on both backgrounds


def test_per_run_utility_verdicts_meet_selected_run_trust_verdicts_through_the_selected_column():
    # Perlin's selected run is 1, MRI's is 0; only the selected runs' XRAI passes utility.
    util = pd.DataFrame([{"background": bg, "run": run, "selected": run == sel, "metric": "auprc",
                          "baseline": "avg_mask", "method": m,
                          "verdict": "pass" if (m == "xrai" and run == sel) else "did not pass"}
                         for bg, sel in (("perlin", 1), ("mri", 0)) for run in (0, 1) for m in ARUN_METHODS])
    rv = verdicts(lambda bg, m: "pass")
    cv = pd.DataFrame([{"background": bg, "kind": k, "method": m, "baseline": "0.5", "verdict": "pass"}
                       for bg in ("perlin", "mri") for k in ("repeatability", "reproducibility")
                       for m in ARUN_METHODS])
    t = {"localization_mixed_models": util, "randomization_verdicts": rv, "consistency_verdicts": cv}
    ev = ct.ARUN_NONE_PASSES_ALL.evaluate(t).set_index("run")
    assert ev["statistic"].to_dict() == {"selected": 2.0, "pooled": 2.0}  # xrai, both backgrounds
    with pytest.raises(ValueError, match="no 'selected' column"):
        ct.ARUN_NONE_PASSES_ALL.evaluate({**t, "localization_mixed_models": util.drop(columns="selected")})
