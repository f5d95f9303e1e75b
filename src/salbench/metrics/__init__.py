"""Metrics of saliency maps: localization against pixel ground truth, perturbation
fidelity and the reliability of metrics (Tomsett et al. 2020), and map similarity.

``localization`` holds the per-image metrics of Budding et al. 2021 (ROC-AUC, AP,
PREC99) and Arun et al. 2021 (AUPRC), their registry, the batch scorer
``score_maps`` and Arun's average-mask baseline. ``similarity`` holds SSIM and
Spearman between two maps of one image and Arun's randomization baseline.
"""

from salbench.metrics.localization import (
    DEFAULT_METRICS,
    METRICS,
    EmptyGroundTruthError,
    NonFiniteMapError,
    UnknownMetricError,
    auprc,
    average_mask,
    average_precision,
    get_metric,
    prec99,
    roc_auc,
    score_maps,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "EmptyGroundTruthError",
    "NonFiniteMapError",
    "UnknownMetricError",
    "auprc",
    "average_mask",
    "average_precision",
    "get_metric",
    "prec99",
    "roc_auc",
    "score_maps",
]

# Perturbation fidelity (Tomsett et al. 2020) and the reliability of metrics.
from salbench.metrics.fidelity import (  # noqa: E402
    DEFAULT_LS,
    STYLES,
    FidelityResult,
    PerturbationDesign,
    UnitGrid,
    aopc,
    aopc_columns,
    faithfulness_summary,
    make_design,
    parse_metric,
    score_fidelity,
    uniform_values,
    unit_grid,
    unit_order,
)
from salbench.metrics.reliability import (  # noqa: E402
    TOMSETT_CONSISTENCY_PAIRS,
    AlphaCI,
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

__all__ += [
    "DEFAULT_LS",
    "STYLES",
    "FidelityResult",
    "PerturbationDesign",
    "UnitGrid",
    "aopc",
    "aopc_columns",
    "faithfulness_summary",
    "make_design",
    "parse_metric",
    "score_fidelity",
    "uniform_values",
    "unit_grid",
    "unit_order",
    "TOMSETT_CONSISTENCY_PAIRS",
    "AlphaCI",
    "alpha_table",
    "complete_rows",
    "consistency_table",
    "inter_method",
    "inter_method_table",
    "internal_consistency",
    "kendalls_w",
    "ranking_alpha",
    "ranking_alpha_ci",
    "within_image_ranks",
]

from salbench.metrics.similarity import (  # noqa: E402
    BASELINE_PAIRS_PER_IMAGE,
    SSIM_SETTINGS,
    baseline_pairs,
    pair_grayscale,
    randomization_baseline,
    similarity_table,
    spearman,
    ssim,
)

__all__ += [
    "BASELINE_PAIRS_PER_IMAGE",
    "SSIM_SETTINGS",
    "baseline_pairs",
    "pair_grayscale",
    "randomization_baseline",
    "similarity_table",
    "spearman",
    "ssim",
]
