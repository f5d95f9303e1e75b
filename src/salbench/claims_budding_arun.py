"""The claims of Budding et al. 2021 and of Arun et al. 2021 (localization utility) that
paper.md section 1 compares with, each computed from the tables (issue 14).

Sources: Budding et al. 2021, Results and Discussion (000_*.txt; their Figure 2 gives
no numbers, so no Budding claim has a paper value); Arun et al. 2021 as summarised in
PROTOCOLS.md B7 (numbers) and B8 (claims 2, 3, 4 and 7). The papers state most of these
as directions or test results; how each becomes a number and a verdict here is ours and
is said in the claim's ``statistic``. Budding's qualitative claims about the figures
(spurious lesions in class-1 images) and Arun's InceptionV3 vs DenseNet-121 claim have
no table to be computed from and are not in the ledger; paper.md discusses them in prose.

Every claim reads the trained classifier's maps: ``model == "trained"`` in
``localization_summary`` and ``localization_randomization``; ``localization_mixed_models``
holds only trained-model methods.
"""

from __future__ import annotations

import pandas as pd

from salbench.claims import (
    Claim,
    mean_difference_claim,
    means_claim,
    rank,
    verdict_claim,
)
from salbench.config import BACKGROUNDS
from salbench.papers import ARUN_METHODS, BUDDING_METHODS

# Upper half of Budding's eight: ranks 1-4 are "relatively high", 5-8 "low" (ours).
UPPER_HALF = len(BUDDING_METHODS) // 2

SUMMARY = "localization_summary"
INDEX = ("background", "model", "method")


def _means(s: pd.DataFrame, background: str, metric: str, methods) -> pd.Series:
    """Means of `methods` (trained model) on one background; a missing method is an error."""
    try:
        return s.loc[[(background, "trained", m) for m in methods], metric].droplevel([0, 1])
    except KeyError:
        have = sorted(m for b, model, m in s.index if b == background and model == "trained")
        raise ValueError(f"{SUMMARY}: background {background!r} lacks some of {list(methods)}; "
                         f"trained methods present: {have}") from None


def _rank_claim(id, paper, sentence, statistic, compute, holds, paper_value="") -> Claim:
    return means_claim(id, paper, sentence, statistic, SUMMARY, INDEX,
                       ["mean_roc_auc", "mean_ap", "mean_prec99", "mean_auprc"], compute, holds,
                       paper_value=paper_value)


# --------------------------------------------------------------------------- Budding et al. 2021

def _metric_spread(s: pd.DataFrame) -> float:
    gaps = []
    for bg in BACKGROUNDS:
        roc = _means(s, bg, "mean_roc_auc", BUDDING_METHODS)
        for metric in ("mean_ap", "mean_prec99"):
            other = _means(s, bg, metric, BUDDING_METHODS)
            gaps.append(float(other.max() - other.min()) - float(roc.max() - roc.min()))
    return min(gaps)


BUDDING_ROC_AUC = _rank_claim(
    "budding_roc_auc_rates_all_high", "Budding",
    "ROC-AUC rates almost every method high; mAP and PREC99 separate the methods more",
    "smallest, over backgrounds and over mAP and PREC99, of (max - min of the eight methods' means) minus the "
    "same for ROC-AUC; holds if > 0",
    _metric_spread, lambda x: x > 0)


def _gradient_rank(background: str):
    def compute(s: pd.DataFrame) -> float:
        return float(max(rank(_means(s, background, m, BUDDING_METHODS), "gradient")
                         for m in ("mean_ap", "mean_prec99")))
    return compute


BUDDING_GRADIENT = [
    _rank_claim(
        f"budding_gradient_high_{bg}", "Budding",
        f"Gradient performs relatively well ({label}): mAP and PREC99 both rate it high",
        f"Gradient's worse rank on mAP and PREC99 among the eight methods on {label} (1 = best); "
        f"holds if <= {UPPER_HALF}",
        _gradient_rank(bg), lambda r: r <= UPPER_HALF)
    for bg, label in (("perlin", "Perlin"), ("mri", "MRI"))
]


def _best_ap_rank(method: str):
    def compute(s: pd.DataFrame) -> float:
        return float(min(rank(_means(s, bg, "mean_ap", BUDDING_METHODS), method) for bg in BACKGROUNDS))
    return compute


# Results: "methods such as DTD, Guided Backprop and PatternNet seem strongly influenced by
# the background"; Discussion: "for some saliency methods such as Guided Backprop, DeConvNet,
# and PatternNet, the background is mostly reconstructed in the saliency maps".
BUDDING_BACKGROUND = [
    _rank_claim(
        f"budding_{m}_background_influenced", "Budding",
        f"{name}'s maps are strongly influenced by (reconstruct) the background",
        f"proxy (ours): {name}'s better mAP rank among the eight methods over both backgrounds; holds if "
        f"> {UPPER_HALF} (lower half on both)",
        _best_ap_rank(m), lambda r: r > UPPER_HALF)
    for m, name in (("deep_taylor", "Deep Taylor"), ("guided_backprop", "Guided Backprop"),
                    ("patternnet", "PatternNet"), ("deconvnet", "DeConvNet"))
]

# Results: "LRP-z seems to perform well for the MRI background, but less for the Perlin noise background."
BUDDING_LRPZ_BACKGROUND = mean_difference_claim(
    "budding_lrpz_mri_gt_perlin", "Budding", "LRP-z works better on MRI than on Perlin", SUMMARY, "mean_ap",
    {"background": "mri", "model": "trained", "method": "lrp_z"},
    {"background": "perlin", "model": "trained", "method": "lrp_z"},
    statistic="LRP-z mAP on MRI minus on Perlin; holds if > 0")

# Results: "in line with the qualitative analysis, PatternNet performs better for the Perlin
# noise than for the MRI background condition".
BUDDING_PATTERNNET_BACKGROUND = mean_difference_claim(
    id="budding_patternnet_perlin_gt_mri",
    paper="Budding",
    sentence="PatternNet works better on Perlin than on MRI",
    table=SUMMARY,
    metric="mean_ap",
    where_a={"background": "perlin", "model": "trained", "method": "patternnet"},
    where_b={"background": "mri", "model": "trained", "method": "patternnet"},
    statistic="PatternNet mAP on Perlin minus on MRI; holds if > 0",
)

# Results: "The average holdout set classification accuracy was 98.27 ± 0.63 % for the Perlin
# noise data set and 94.21 ± 3.54 % for the MRI data set" (three runs). Holds if our run is at
# least the paper's mean minus one SD (ours).
BUDDING_ACCURACY_REPORTED = {"perlin": (98.27, 0.63), "mri": (94.21, 3.54)}


def _accuracy_gap(background: str):
    def compute(a: pd.DataFrame) -> float:
        try:
            acc = a.loc[(background, "vgg", "classifier"), "holdout_accuracy"]
        except KeyError:
            raise ValueError(f"accuracy: no VGG classifier row for background {background!r}") from None
        return 100 * float(acc) - BUDDING_ACCURACY_REPORTED[background][0]
    return compute


BUDDING_ACCURACY = [
    means_claim(
        f"budding_vgg_accuracy_{bg}", "Budding",
        f"The VGG-like network reaches {mean} ± {sd} % holdout accuracy on {label}",
        f"our holdout accuracy minus the paper's mean, in percentage points; holds if >= -{sd} (one SD)",
        "accuracy", ("background", "architecture", "role"), ["holdout_accuracy"], _accuracy_gap(bg),
        lambda x, sd=sd: x >= -sd, weight=None, paper_value=f"{mean} ± {sd} % (three runs)")
    for bg, label in (("perlin", "Perlin"), ("mri", "MRI"))
    for mean, sd in [BUDDING_ACCURACY_REPORTED[bg]]
]

# --------------------------------------------------------------------------- Arun et al. 2021


def _arun_rank(method: str, lowest: bool):
    def compute(s: pd.DataFrame) -> float:
        return float(max(rank(_means(s, bg, "mean_auprc", ARUN_METHODS), method, lowest) for bg in BACKGROUNDS))
    return compute


# B8.2
ARUN_XRAI_HIGHEST = _rank_claim(
    "arun_xrai_highest_auprc", "Arun", "XRAI has the highest mean AUPRC, on both datasets",
    "XRAI's worse rank of mean AUPRC among Arun's eight methods over both backgrounds (1 = highest); holds if 1",
    _arun_rank("xrai", lowest=False), lambda r: r == 1,
    paper_value="XRAI 0.15 ± 0.20 (pneumothorax), 0.52 ± 0.22 (pneumonia)")

ARUN_SIG_LOWEST = _rank_claim(
    "arun_smooth_ig_lowest_auprc", "Arun", "Smooth IG has the lowest mean AUPRC, on both datasets",
    "Smooth IG's worse rank of mean AUPRC among Arun's eight methods over both backgrounds (1 = lowest); "
    "holds if 1",
    _arun_rank("smooth_ig", lowest=True), lambda r: r == 1,
    paper_value="SIG 0.03 ± 0.03 (pneumothorax), 0.16 ± 0.13 (pneumonia)")

# B8.3, split in its two halves.
ARUN_XRAI_BEATS_AVG = verdict_claim(
    "arun_xrai_beats_avg_mask", "Arun", "XRAI beats the average-mask baseline (AUPRC)",
    "backgrounds on which XRAI's mixed-model verdict on AUPRC against the average mask is not \"pass\"; "
    "holds if 0",
    {"xrai": "pass"}, {"metric": "auprc", "baseline": "avg_mask"},
    paper_value="XRAI 0.15 ± 0.20 vs AVG 0.15 ± 0.18, P = .02 (pneumothorax); XRAI 0.52 ± 0.22 vs "
                "AVG 0.47 ± 0.27, P < .001 (pneumonia)")

ARUN_OTHERS_BELOW_AVG = verdict_claim(
    "arun_others_below_avg_mask", "Arun", "Every method other than XRAI is below the average-mask baseline (AUPRC)",
    "comparisons (background x Arun's seven other methods) whose verdict on AUPRC against the average mask is "
    "not \"did not pass\"; holds if 0",
    {m: "did not pass" for m in ARUN_METHODS if m != "xrai"}, {"metric": "auprc", "baseline": "avg_mask"},
    paper_value="every other method < AVG, P < .001 for all (pneumothorax); AVG higher than every method "
                "except XRAI (pneumonia)")

# B8.4
ARUN_BELOW_UNET = verdict_claim(
    "arun_all_below_unet", "Arun", "Every method is below the localization network (U-Net / RetinaNet) (AUPRC)",
    "comparisons (background x Arun's eight methods) whose verdict on AUPRC against the U-Net is not "
    "\"did not pass\"; holds if 0",
    {m: "did not pass" for m in ARUN_METHODS}, {"metric": "auprc", "baseline": "unet"},
    paper_value="U-Net 0.41 ± 0.22, all methods below, P < .001 (pneumothorax); RetinaNet 0.59 ± 0.26, "
                "higher than all methods, P < .001 (pneumonia)")

# B8.7, first half (the second half, SG and SIG higher after randomization, is about
# pneumonia only and reversed for SG on pneumothorax: no analogue here).
RANDOMIZATION_LOSERS = ("grad_cam", "xrai", "guided_grad_cam")


def _randomization_loss(r: pd.DataFrame) -> float:
    gaps = []
    for bg in BACKGROUNDS:
        for m in RANDOMIZATION_LOSERS:
            try:
                gaps.append(float(r.loc[(bg, "trained", m, "auprc"), "mean"] - r.loc[(bg, "randomized", m, "auprc"),
                                                                                     "mean"]))
            except KeyError:
                raise ValueError(f"localization_randomization lacks trained or randomized AUPRC of {m!r} on "
                                 f"{bg!r}") from None
    return min(gaps)


ARUN_RANDOMIZATION = means_claim(
    "arun_randomization_lowers_auprc", "Arun",
    "Grad-CAM, XRAI and Guided Grad-CAM lose AUPRC after full randomization, on both datasets",
    "smallest, over both backgrounds and the three methods, of mean AUPRC with trained minus with randomized "
    "weights (same images); holds if > 0",
    "localization_randomization", ("background", "model", "method", "metric"), ["mean"], _randomization_loss,
    lambda x: x > 0, weight="n",
    paper_value="trained vs random: GCAM 0.09 vs 0.02, XRAI 0.15 vs 0.05, GGCAM 0.09 vs 0.03 (pneumothorax); "
                "GCAM 0.41 vs 0.15, XRAI 0.52 vs 0.41, GGCAM 0.32 vs 0.19 (pneumonia)")


CLAIMS: tuple[Claim, ...] = (
    *BUDDING_ACCURACY, BUDDING_ROC_AUC, *BUDDING_GRADIENT, *BUDDING_BACKGROUND, BUDDING_LRPZ_BACKGROUND, BUDDING_PATTERNNET_BACKGROUND,
    ARUN_XRAI_HIGHEST, ARUN_SIG_LOWEST, ARUN_XRAI_BEATS_AVG, ARUN_OTHERS_BELOW_AVG, ARUN_BELOW_UNET,
    ARUN_RANDOMIZATION,
)
# The tables the claims read.
CLAIM_TABLES = ("accuracy", "localization_summary", "localization_mixed_models", "localization_randomization")
