"""Metrics of saliency maps. Today: localization against pixel ground truth.

``localization`` holds the per-image metrics of Budding et al. 2021 (ROC-AUC, AP,
PREC99) and Arun et al. 2021 (AUPRC), their registry, the batch scorer
``score_maps`` and Arun's average-mask baseline.
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
