"""Similarity of saliency maps (Arun et al. 2021): the PAIR grayscale transform."""

from __future__ import annotations

import numpy as np


def pair_grayscale(a_batch, percentile: float = 99.0) -> np.ndarray:
    """PAIR's ``VisualizeImageGrayscale`` per map (Arun et al.'s post-processing).

    For each (H, W) map: |a|, then (|a| - min) / (p - min) clipped to [0, 1], with p the
    `percentile`-th percentile of |a|. A map with p == min (e.g. constant) becomes zeros
    instead of PAIR's NaN.
    """
    a = np.abs(np.asarray(a_batch, dtype=np.float64))
    flat = a.reshape(len(a), -1)
    vmax = np.percentile(flat, percentile, axis=1)
    vmin = flat.min(axis=1)
    span = (vmax - vmin)[:, None]
    safe = np.where(span > 0, span, 1.0)
    out = np.where(span > 0, np.clip((flat - vmin[:, None]) / safe, 0.0, 1.0), 0.0)
    return out.reshape(a.shape).astype(np.float32)
