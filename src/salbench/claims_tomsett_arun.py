"""The claims of Tomsett et al. 2020 (perturbation metrics and their reliability) and of
Arun et al. 2021's trust criteria beyond utility (cascading randomization, repeatability,
reproducibility) that paper.md sections 2 and 3 compare with, computed from the tables.

Sources: PROTOCOLS.md A8 (Tomsett's claims, numbered as there) and B8 (Arun's). How a
sentence becomes a number and a verdict is ours and is said in each claim's
``statistic``. Our analogues of their settings: "random RGB" perturbation is our
``uniform`` style (one uniform random value per image and unit); Tomsett's edge
detector is our ``sobel`` map; AOPC is read at the largest L of the table (Tomsett's
Table 2: L = 100) and on the largest perturbation unit of the table (the patch whose
L_max steps cover about Tomsett's share of the image; notebook 05 says why). Claims
that need a per-class breakdown (A8.10) or low-confidence images (A8.6, second half)
have no analogue in a two-class lesion task and are not in the ledger.

Output and ties (ours): the ledger tests Tomsett's claims on the output the paper scored,
the softmax probability (``fidelity.PAPER_OUTPUT``); ``on_output("logit_margin")``
evaluates the same claims on the logit margin (paper.md sets both side by side). Means
and gaps that differ by no more than the output's measured resolution
(``fidelity_resolution``) are ties: they share a rank, a gap within it counts as 0, and
an alpha or rho the ties leave undecidable (NaN in its table) never supports a claim.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from salbench.claims import Claim, rank, tables_claim, verdict_claim
from salbench.metrics import reliability as rel
from salbench.metrics.fidelity import OUTPUTS, PAPER_OUTPUT
from salbench.papers import ARUN_METHODS, TOMSETT_METHODS
from salbench.tables import LEGACY_FIDELITY_PRECISION

SCORES = "fidelity_scores"
RANDOM = "fidelity_random_baseline"
ALPHA = "tomsett_alpha"
INTERMETHOD = "tomsett_intermethod"
CONSISTENCY = "tomsett_consistency"
RESOLUTION = "fidelity_resolution"
OPTIONAL_TABLES = (RESOLUTION,)
# Runs before the resolution was measured: the precision their scores were published with.
UNMEASURED_RESOLUTION = LEGACY_FIDELITY_PRECISION
EDGE = "sobel"
# Tomsett's Figure 2 and Table 2 methods: the four and the edge detector.
WITH_EDGE = (*TOMSETT_METHODS, EDGE)
STYLES = ("mean", "uniform")
# Ours: thresholds for the paper's words "close to 0" (mean F) and "weakly" (rho).
NEAR_ZERO = 0.1
WEAK = 0.5


def _aopc_ls(t: pd.DataFrame) -> list[int]:
    ls = sorted({int(m.group(1)) for c in t.columns if (m := re.fullmatch(r"aopc_morf_L(\d+)", c))})
    if not ls:
        raise ValueError(f"{SCORES}: no aopc_morf_L<L> columns; it has {list(t.columns)}")
    return ls


_OUTPUT: ContextVar[str] = ContextVar("tomsett_claims_output", default=PAPER_OUTPUT)


@contextmanager
def on_output(output: str) -> Iterator[None]:
    """Evaluate Tomsett's claims on ``output`` ("probability", "logit_margin") inside the block."""
    if output not in OUTPUTS:
        raise ValueError(f"output={output!r} is not valid; choose one of {list(OUTPUTS)}")
    token = _OUTPUT.set(output)
    try:
        yield
    finally:
        _OUTPUT.reset(token)


def _headline(t: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of the largest unit and of the claims' output (and the trained model, where the
    table has models)."""
    if t.empty:
        raise ValueError(f"table {name!r} has no rows")
    if "output" not in t.columns:
        raise ValueError(f"table {name!r} has no 'output' column: it comes from a run before the outputs "
                         f"{list(OUTPUTS)} were scored")
    t = t[(t["unit"] == t["unit"].max()) & (t["output"] == _OUTPUT.get())]
    if t.empty:
        raise ValueError(f"table {name!r} has no rows of output {_OUTPUT.get()!r}")
    return t[t["model"] == "trained"] if "model" in t.columns else t


def _resolution(tables: Mapping[str, pd.DataFrame], background: str) -> float:
    """The claims' output's measured resolution on one background (fidelity_resolution);
    for tables of a run before it was measured, the 6 decimals their scores were
    published with (`UNMEASURED_RESOLUTION`)."""
    if RESOLUTION not in tables:
        return UNMEASURED_RESOLUTION
    r = tables[RESOLUTION]
    row = r[(r["background"] == background) & (r["output"] == _OUTPUT.get())]
    if len(row) != 1:
        raise ValueError(f"{RESOLUTION}: {len(row)} rows for {background}/{_OUTPUT.get()}; expected 1")
    return float(row["resolution"].iloc[0])


def _method_means(tables: Mapping[str, pd.DataFrame], column: str) -> dict[tuple[str, str], pd.Series]:
    """(background, style) -> mean of ``column`` per method over images (Tomsett's four and
    the edge map); faithfulness over the images where it is defined."""
    t = _headline(tables[SCORES], SCORES)
    if column == "faithfulness":
        t = t[t["faithfulness_status"] == "ok"]
    out = {}
    for (bg, style), g in t[t["method"].isin(WITH_EDGE)].groupby(["background", "style"], sort=True):
        means = g.groupby("method")[column].mean()
        missing = sorted(set(WITH_EDGE) - set(means.index))
        if missing:
            raise ValueError(f"{SCORES}: {bg}/{style} has no {column} for {missing}")
        out[(bg, style)] = means
    return out


def _morf(t):
    return f"aopc_morf_L{_aopc_ls(_headline(t[SCORES], SCORES))[-1]}"


def _lerf(t):
    return f"aopc_lerf_L{_aopc_ls(_headline(t[SCORES], SCORES))[-1]}"


def _tol(t, background: str, column: str) -> float:
    """Tie tolerance of a mean of ``column``: the output's resolution for AOPC, 0 for F."""
    return 0.0 if column == "faithfulness" else _resolution(t, background)


def _highest_morf(method: str, style: str):
    def compute(t):
        col = _morf(t)
        return float(max(rank(m, method, tol=_tol(t, bg, col))
                         for (bg, s), m in _method_means(t, col).items() if s == style))
    return compute


# A8.1, A8.2
TOMSETT_GXI_MORF = tables_claim(
    "tomsett_gxi_highest_morf_mean", "Tomsett",
    "With mean perturbation, gradient x input has the highest AOPC_MoRF",
    "gradient x input's worse rank, over backgrounds, of mean AOPC_MoRF (largest L and unit, mean style) among "
    "Tomsett's four methods and the edge map (1 = highest); holds if 1",
    [SCORES], _highest_morf("gradient_x_input", "mean"), lambda r: r == 1,
    optional=[RESOLUTION], paper_value="highest adjusted AOPC_MoRF (Fig. 2a; no number)")

TOMSETT_SHAP_MORF = tables_claim(
    "tomsett_shap_highest_morf_random", "Tomsett",
    "With random perturbation, SHAP has the highest AOPC_MoRF",
    "DeepSHAP's worse rank, over backgrounds, of mean AOPC_MoRF (largest L and unit, uniform style) among the "
    "five (1 = highest); holds if 1",
    [SCORES], _highest_morf("deep_shap", "uniform"), lambda r: r == 1,
    optional=[RESOLUTION], paper_value="highest adjusted AOPC_MoRF with random RGB (Fig. 2a; no number)")


# A8.4
def _lerf_edge_dtd(t):
    col = _lerf(t)
    return float(max(max(rank(m, EDGE, lowest=True, tol=_tol(t, bg, col)),
                         rank(m, "deep_taylor", lowest=True, tol=_tol(t, bg, col)))
                     for (bg, _), m in _method_means(t, col).items()))


TOMSETT_LERF_BEST = tables_claim(
    "tomsett_lerf_edge_and_dtd_best", "Tomsett",
    "Edge detection and Deep Taylor have the lowest (best) AOPC_LeRF, under both perturbations",
    "worse rank of the edge map and Deep Taylor, over backgrounds and both styles, of mean AOPC_LeRF among the "
    "five (1 = lowest; means within the resolution tie); holds if <= 2",
    [SCORES], _lerf_edge_dtd, lambda r: r <= 2,
    optional=[RESOLUTION], paper_value="edge detection and DTD best, SHAP third, gradient x input last (Fig. 2a)")


# A8.5
def _morf_lerf_tau(t):
    morf, lerf = _method_means(t, _morf(t)), _method_means(t, _lerf(t))
    taus = []
    for (bg, style) in morf:
        tol = _resolution(t, bg)
        a = rel.tolerance_ranks(morf[(bg, style)][list(WITH_EDGE)].to_numpy(), tol)
        b = rel.tolerance_ranks(lerf[(bg, style)][list(WITH_EDGE)].to_numpy(), tol)
        # tau-b of the ranks at the resolution; undefined (NaN) when a side ties throughout.
        taus.append(sps.kendalltau(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else np.nan)
    return float(min(taus)) if np.isfinite(taus).all() else float("nan")


TOMSETT_REVERSED = tables_claim(
    "tomsett_morf_lerf_rankings_reversed", "Tomsett",
    "The MoRF and LeRF rankings are roughly reversed (low internal consistency)",
    "smallest, over backgrounds and styles, Kendall's tau between the five methods' mean AOPC_MoRF and mean "
    "AOPC_LeRF, means within the resolution tied (a high MoRF is good and a high LeRF bad, so reversed rankings "
    "give tau > 0; NaN if a side ties throughout); holds if > 0",
    [SCORES], _morf_lerf_tau, lambda x: x > 0,
    optional=[RESOLUTION], paper_value="rankings roughly reversed (Fig. 2a)")


# A8.6, first half
def _lerf_vs_random(t):
    col = _lerf(t)
    L = int(col.rsplit("L", 1)[1])
    rb = _headline(t[RANDOM], RANDOM)
    rb = rb[rb["L"] == L].set_index(["background", "style"])["mean"]
    gaps = []
    for (bg, style), means in _method_means(t, col).items():
        for m in ("gradient_x_input", "deep_shap"):
            gap = float(means[m] - rb[(bg, style)])
            gaps.append(gap if abs(gap) > _resolution(t, bg) else 0.0)
    return float(min(gaps))


TOMSETT_LERF_WORSE_THAN_RANDOM = tables_claim(
    "tomsett_gxi_shap_lerf_worse_than_random", "Tomsett",
    "Gradient x input and SHAP score worse than a random ordering under AOPC_LeRF",
    "smallest, over backgrounds, styles and the two methods, of mean AOPC_LeRF minus the mean random-ordering "
    "AOPC (same L, unit, style; higher LeRF is worse; a gap within the resolution is 0); holds if > 0",
    [SCORES, RANDOM], _lerf_vs_random, lambda x: x > 0,
    optional=[RESOLUTION], paper_value="worse than random under LeRF (Discussion; no number)")


# A8.9, in its two halves
def _max_abs_f(t):
    return float(max(m.abs().max() for m in _method_means(t, "faithfulness").values()))


TOMSETT_F_NEAR_ZERO = tables_claim(
    "tomsett_faithfulness_near_zero", "Tomsett",
    "Mean faithfulness F is close to 0 for every method",
    f"largest |mean F| over backgrounds, styles and the five (largest unit); holds if < {NEAR_ZERO} (ours: "
    "\"close to 0\")",
    [SCORES], _max_abs_f, lambda x: x < NEAR_ZERO,
    paper_value="\"The mean values for every method are close to zero\" (Fig. 2b)")


def _edge_f_rank(t):
    return float(max(rank(m, EDGE, lowest=True) for m in _method_means(t, "faithfulness").values()))


TOMSETT_EDGE_LOWEST_F = tables_claim(
    "tomsett_edge_lowest_faithfulness", "Tomsett",
    "Edge detection has the lowest mean F under both perturbations",
    "the edge map's worse rank of mean F, over backgrounds and styles, among the five (1 = lowest); holds if 1",
    [SCORES], _edge_f_rank, lambda r: r == 1,
    paper_value="edge detection lowest mean F (Fig. 2b)")


# ---------------------------------------------------------------- Table 1: inter-rater reliability

def _alpha(t) -> pd.DataFrame:
    a = _headline(t[ALPHA], ALPHA)
    return a[a["methods"] == "tomsett"].assign(with_edge=lambda d: d["with_edge"].astype(str) == "True")


def _pivot(a: pd.DataFrame, across: str) -> pd.DataFrame:
    """alpha with ``across`` (style or with_edge) as the columns."""
    keys = ["background", "unit", "methods", "with_edge", "style", "column"]
    return a.pivot_table(index=[k for k in keys if k != across], columns=across, values="alpha", aggfunc="first")


def _max_alpha(t):
    return float(_alpha(t)["alpha"].max())


TOMSETT_ALPHA_LOW = tables_claim(
    "tomsett_alpha_below_065", "Tomsett",
    "Every Krippendorff's alpha of Table 1 is below 0.65 (inter-rater reliability is low)",
    "largest alpha over the Table-1 layout (F, MoRF and LeRF at every L x style x with / without edge map; "
    "largest unit; undecidable cells left out), both backgrounds; holds if < 0.65",
    [ALPHA], _max_alpha, lambda x: x < 0.65,
    paper_value="max 0.48 (AOPC_MoRF, L = 100, mean, with edge detection)")


def _count(a: pd.DataFrame, across: str, metrics, better: str, worse: str) -> float:
    """Cells where alpha under ``better`` is not above alpha under ``worse`` (an undecidable
    alpha, NaN, is not above anything)."""
    p = _pivot(a[a["metric"].isin(metrics)], across)
    if p.empty:
        raise ValueError(f"{ALPHA}: no {list(metrics)} rows to compare across {across}")
    return float((~(p[better] > p[worse])).sum())


TOMSETT_EDGE_RAISES_ALPHA = tables_claim(
    "tomsett_edge_raises_alpha", "Tomsett",
    "Including the edge detector raises alpha for F and AOPC_MoRF, under both perturbations",
    "cells (background x style x F / MoRF at each L) where alpha with the edge map is not above alpha without "
    "(undecidable alphas included); holds if 0",
    [ALPHA], lambda t: _count(_alpha(t), "with_edge", ("faithfulness", "aopc_morf"), True, False),
    lambda n: n == 0,
    paper_value="e.g. F mean 0.18 with vs 0.04 without; MoRF L=100 mean 0.48 vs 0.37")

TOMSETT_RANDOM_LOWERS_MORF_ALPHA = tables_claim(
    "tomsett_random_lowers_morf_alpha", "Tomsett",
    "Random perturbation lowers alpha of AOPC_MoRF at every L, with and without the edge detector",
    "cells (background x with/without edge x L) where alpha of MoRF with mean perturbation is not above with "
    "uniform (undecidable alphas included); holds if 0",
    [ALPHA], lambda t: _count(_alpha(t), "style", ("aopc_morf",), "mean", "uniform"), lambda n: n == 0,
    paper_value="e.g. L=100 with edge 0.48 (mean) vs 0.22 (random)")

TOMSETT_RANDOM_RAISES_LERF_ALPHA = tables_claim(
    "tomsett_random_raises_lerf_alpha", "Tomsett",
    "Random perturbation raises alpha of AOPC_LeRF relative to mean perturbation",
    "cells (background x with/without edge x L) where alpha of LeRF with uniform perturbation is not above "
    "with mean (undecidable alphas included); holds if 0",
    [ALPHA], lambda t: _count(_alpha(t), "style", ("aopc_lerf",), "uniform", "mean"), lambda n: n == 0,
    paper_value="e.g. L=20 with edge 0.05 (mean) vs 0.13 (random)")


def _non_monotone(t):
    a = _alpha(t)
    a = a[a["metric"].isin(["aopc_morf", "aopc_lerf"])]
    n = 0
    for _, g in a.groupby(["background", "with_edge", "style", "metric"]):
        v = g.sort_values("L")["alpha"].to_numpy(float)
        n += int((~(np.diff(v) >= 0)).sum())
    return float(n)


TOMSETT_ALPHA_RISES_WITH_L = tables_claim(
    "tomsett_alpha_rises_with_L", "Tomsett",
    "Alpha of AOPC rises monotonically with L in every column of Table 1",
    "steps L -> next L (background x with/without edge x style x MoRF / LeRF) where alpha falls or either alpha "
    "is undecidable; holds if 0",
    [ALPHA], _non_monotone, lambda n: n == 0,
    paper_value="monotone in every column of Table 1 (derived)")


# ---------------------------------------------------------------- inter-method reliability, Table 2

def _morf_minus_f(t):
    im = _headline(t[INTERMETHOD], INTERMETHOD)
    gaps = []
    for _, g in im.groupby(["background", "method_set"]):
        morf = g.loc[g["metric"] == "aopc_morf", "mean_rho"]
        f = g.loc[g["metric"] == "faithfulness", "mean_rho"]
        gaps.append(float(morf.min() - f.max()))
    return float(np.nanmin(gaps)) if np.isfinite(gaps).any() else float("nan")


TOMSETT_INTERMETHOD = tables_claim(
    "tomsett_intermethod_morf_highest_f_lowest", "Tomsett",
    "Inter-method reliability (mean pairwise Spearman between methods) is highest for AOPC_MoRF and lowest for F",
    "smallest, over backgrounds and with / without edge map, of the lowest MoRF mean rho (any L, style) minus "
    "the highest F mean rho; holds if > 0",
    [INTERMETHOD], _morf_minus_f, lambda x: x > 0,
    paper_value="MoRF 0.47-0.67, F 0.13-0.18")


def _consistency(t, a: str, b: str, style_b: str = "mean") -> pd.Series:
    """Spearman rho per (background, method) between metric a (mean style) and b (``style_b``); the
    AOPC metrics at the table's largest L."""
    c = _headline(t[CONSISTENCY], CONSISTENCY)
    ls = sorted({int(m.group(1)) for v in c["metric_a"].astype(str) if (m := re.fullmatch(r"aopc_\w+_L(\d+)", v))})
    big = f"L{ls[-1]}" if ls else ""

    def name(x):
        return x if x == "faithfulness" else f"{x}_{big}"

    want = {(name(a), "mean"), (name(b), style_b)}
    pair = [{(ma, sa), (mb, sb)} == want
            for ma, sa, mb, sb in zip(c["metric_a"], c["style_a"], c["metric_b"], c["style_b"])]
    sel = c[np.array(pair, dtype=bool) & c["method"].isin(WITH_EDGE).to_numpy()]
    if sel.empty:
        raise ValueError(f"{CONSISTENCY}: no rows for {name(a)} (mean) vs {name(b)} ({style_b})")
    return sel.set_index(["background", "method"])["rho"].astype(float)


TOMSETT_F_LERF = tables_claim(
    "tomsett_f_lerf_anticorrelated", "Tomsett",
    "F is slightly anti-correlated with AOPC_LeRF for every method (Table 2)",
    "(background, method) pairs of the five whose Spearman rho of F vs AOPC_LeRF (largest L, mean style) is "
    ">= 0 or undefined; holds if 0",
    [CONSISTENCY], lambda t: float((~(_consistency(t, "faithfulness", "aopc_lerf") < 0)).sum()), lambda n: n == 0,
    paper_value="-0.22 to -0.09")

TOMSETT_F_MORF_WEAK = tables_claim(
    "tomsett_f_morf_weak", "Tomsett",
    "F is only weakly correlated with AOPC_MoRF (Table 2)",
    f"largest |rho| of F vs AOPC_MoRF (largest L, mean style) over backgrounds and the five; holds if < {WEAK} "
    "(ours: \"weakly\")",
    [CONSISTENCY], lambda t: float(_consistency(t, "faithfulness", "aopc_morf").abs().max()),
    lambda x: x < WEAK, paper_value="0.00 to 0.34")

TOMSETT_STYLES_AGREE = tables_claim(
    "tomsett_morf_styles_correlated", "Tomsett",
    "AOPC_MoRF under random and under mean perturbation are positively correlated for every method (Table 2)",
    "(background, method) pairs of the five whose rho of MoRF (mean) vs MoRF (uniform) is <= 0 or undefined; "
    "holds if 0",
    [CONSISTENCY], lambda t: float((~(_consistency(t, "aopc_morf", "aopc_morf", "uniform") > 0)).sum()),
    lambda n: n == 0, paper_value="0.57 to 0.77")


TOMSETT_CLAIMS: tuple[Claim, ...] = (
    TOMSETT_GXI_MORF, TOMSETT_SHAP_MORF, TOMSETT_LERF_BEST, TOMSETT_REVERSED, TOMSETT_LERF_WORSE_THAN_RANDOM,
    TOMSETT_F_NEAR_ZERO, TOMSETT_EDGE_LOWEST_F, TOMSETT_ALPHA_LOW, TOMSETT_EDGE_RAISES_ALPHA,
    TOMSETT_RANDOM_LOWERS_MORF_ALPHA, TOMSETT_RANDOM_RAISES_LERF_ALPHA, TOMSETT_ALPHA_RISES_WITH_L,
    TOMSETT_INTERMETHOD, TOMSETT_F_LERF, TOMSETT_F_MORF_WEAK, TOMSETT_STYLES_AGREE,
)


# ================================================================ Arun et al.: trust criteria

RAND_VERDICTS = "randomization_verdicts"
CONS_SCORES = "consistency_scores"
CONS_VERDICTS = "consistency_verdicts"
REP_VS_REPRO = "repeatability_vs_reproducibility"
FIVE_PASS = ("grad_cam", "guided_backprop", "gradient", "smoothgrad", "smooth_ig")

# B8.6, in its two halves
ARUN_XRAI_FAILS_RANDOMIZATION = verdict_claim(
    "arun_xrai_fails_randomization", "Arun",
    "XRAI's maps stay above the randomization baseline after full randomization, on both datasets (fails)",
    "backgrounds on which XRAI's randomization verdict (SSIM at full randomization vs the baseline, the "
    "reproduction's SSIM setting) is not \"did not pass\"; holds if 0",
    {"xrai": "did not pass"}, {}, table=RAND_VERDICTS, keys=("background", "method"),
    paper_value="did not reach the baseline on either dataset, P < .001")

ARUN_FIVE_PASS_RANDOMIZATION = verdict_claim(
    "arun_five_pass_randomization", "Arun",
    "Grad-CAM, Guided Backprop, Gradient, SmoothGrad and Smooth IG fall to the randomization baseline, on both "
    "datasets (pass)",
    "comparisons (background x the five) whose randomization verdict is not \"pass\"; holds if 0",
    {m: "pass" for m in FIVE_PASS}, {}, table=RAND_VERDICTS, keys=("background", "method"),
    paper_value="\"fell below this randomization baseline on both datasets\"")

# B8.8
ARUN_REP_ABOVE_REPRO = verdict_claim(
    "arun_repeatability_above_reproducibility", "Arun",
    "Repeatability is higher than reproducibility for every method",
    "comparisons (background x Arun's eight) whose paired test of repeatability - reproducibility SSIM is not "
    "\"repeatability higher\" (incl. not applicable); holds if 0",
    {m: "repeatability higher" for m in ARUN_METHODS}, {}, table=REP_VS_REPRO, keys=("background", "method"),
    verdict_col="result", paper_value="P < .001 for all methods (pneumonia)")


def _mean_ssim(t, kind: str) -> dict[str, pd.Series]:
    s = t[CONS_SCORES]
    s = s[(s["kind"] == kind) & s["method"].isin(ARUN_METHODS) & s["ssim"].notna()]
    out = {bg: g.groupby("method")["ssim"].mean() for bg, g in s.groupby("background", sort=True)}
    if not out:
        raise ValueError(f"{CONS_SCORES}: no {kind} SSIM of Arun's methods")
    return out


def _consistency_rank(method: str, kinds, lowest: bool):
    def compute(t):
        return float(max(rank(m, method, lowest) for k in kinds for m in _mean_ssim(t, k).values()))
    return compute


# B8.9
ARUN_XRAI_MOST_CONSISTENT = tables_claim(
    "arun_xrai_most_repeatable_and_reproducible", "Arun",
    "XRAI has the highest repeatability and reproducibility, on both datasets",
    "XRAI's worse rank of mean SSIM among Arun's eight (where computable), over backgrounds and the two kinds "
    "(1 = highest); holds if 1",
    [CONS_SCORES], _consistency_rank("xrai", ("repeatability", "reproducibility"), False), lambda r: r == 1,
    paper_value="repeatability 0.64 ± 0.09 / 0.84 ± 0.06, reproducibility 0.49 ± 0.08 / 0.75 ± 0.06 "
                "(pneumothorax / pneumonia)")

ARUN_SG_LEAST_REPEATABLE = tables_claim(
    "arun_smoothgrad_least_repeatable", "Arun",
    "SmoothGrad has the lowest repeatability, on both datasets",
    "SmoothGrad's worse rank of mean repeatability SSIM among Arun's eight, over backgrounds (1 = lowest); "
    "holds if 1",
    [CONS_SCORES], _consistency_rank("smoothgrad", ("repeatability",), True), lambda r: r == 1,
    paper_value="0.18 ± 0.03 (pneumothorax), 0.27 ± 0.01 (pneumonia)")

# B8.10
ARUN_BELOW_LOCALIZER = verdict_claim(
    "arun_consistency_below_unet", "Arun",
    "No method is more repeatable or reproducible than the localization network (U-Net)",
    "comparisons (background x kind x Arun's eight) whose verdict against the two U-Nets' SSIM is not "
    "\"did not pass\"; holds if 0",
    {m: "did not pass" for m in ARUN_METHODS}, {"baseline": "unet"}, table=CONS_VERDICTS,
    keys=("background", "kind", "method", "baseline"),
    paper_value="U-Net 0.98 ± 0.02 above all (pneumothorax); RetinaNet 0.80 ± 0.05, exceeded only by XRAI's "
                "repeatability (pneumonia)")


# B8.11
def _share_below_half(t):
    shares = [float((m < 0.5).mean()) for k in ("repeatability", "reproducibility") for m in _mean_ssim(t, k).values()]
    return float(np.mean(shares))


ARUN_MOSTLY_BELOW_HALF = tables_claim(
    "arun_consistency_mostly_below_half", "Arun",
    "Most repeatability and reproducibility SSIMs are below 0.5",
    "share of (background x kind x method) mean SSIMs of Arun's eight below 0.5; holds if > 0.5",
    [CONS_SCORES], _share_below_half, lambda x: x > 0.5,
    paper_value="all but XRAI and GGCAM repeatability (pneumothorax); all but 7 of 16 (pneumonia)")


# B8.1
def _passes_all(t):
    util = t["localization_mixed_models"]
    util = util[(util["metric"] == "auprc") & (util["baseline"] == "avg_mask")]
    rv = t[RAND_VERDICTS]
    cv = t[CONS_VERDICTS]
    cv = cv[cv["baseline"].astype(str) == "0.5"]
    n = 0
    for bg in sorted(rv["background"].unique()):
        for m in ARUN_METHODS:
            ok = [(util[(util.background == bg) & (util.method == m)]["verdict"] == "pass").any(),
                  (rv[(rv.background == bg) & (rv.method == m)]["verdict"] == "pass").any(),
                  *[(cv[(cv.background == bg) & (cv.method == m) & (cv.kind == k)]["verdict"] == "pass").any()
                    for k in ("repeatability", "reproducibility")]]
            n += int(all(ok))
    return float(n)


ARUN_NONE_PASSES_ALL = tables_claim(
    "arun_no_method_passes_all_four", "Arun",
    "No saliency method passes all four criteria (utility, randomization, repeatability, reproducibility)",
    "(background, method) pairs of Arun's eight that pass all four: AUPRC vs the average mask, randomization, "
    "and repeatability and reproducibility vs SSIM 0.5 (ours: the low baseline); holds if 0",
    ["localization_mixed_models", RAND_VERDICTS, CONS_VERDICTS], _passes_all, lambda n: n == 0,
    paper_value="none on either dataset")


ARUN_TRUST_CLAIMS: tuple[Claim, ...] = (
    ARUN_NONE_PASSES_ALL, ARUN_XRAI_FAILS_RANDOMIZATION, ARUN_FIVE_PASS_RANDOMIZATION, ARUN_REP_ABOVE_REPRO,
    ARUN_XRAI_MOST_CONSISTENT, ARUN_SG_LEAST_REPEATABLE, ARUN_BELOW_LOCALIZER, ARUN_MOSTLY_BELOW_HALF,
)
CLAIMS: tuple[Claim, ...] = (*TOMSETT_CLAIMS, *ARUN_TRUST_CLAIMS)
CLAIM_TABLES = (SCORES, RANDOM, ALPHA, INTERMETHOD, CONSISTENCY, RAND_VERDICTS, CONS_SCORES, CONS_VERDICTS,
                REP_VS_REPRO)
