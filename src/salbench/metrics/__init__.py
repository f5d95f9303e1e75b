"""Metrics of saliency maps: localization against pixel ground truth, and map similarity.

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
