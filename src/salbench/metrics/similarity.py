"""Similarity of two saliency maps of the same image (Arun et al. 2021; Adebayo et al. 2018).

Arun et al. (Radiology: AI 2021) judge cascading randomization, repeatability and
reproducibility by the SSIM between two maps of one image; Adebayo et al. (NeurIPS
2018) also report Spearman rank correlation of the absolute and of the signed maps.

* ``pair_grayscale``: Arun et al.'s map post-processing (PAIR ``VisualizeImageGrayscale``).
* ``ssim``: scikit-image ``structural_similarity`` with an explicit ``data_range``;
  ``SSIM_SETTINGS`` holds the reproduction setting ("arun") and ours ("ours").
* ``spearman``: Spearman's rho of the absolute or of the signed maps (scipy).
* ``similarity_table``: all three per image, one row per image.
* ``baseline_pairs`` / ``randomization_baseline``: Arun et al.'s randomization
  baseline, the SSIM between maps of *different* images of the trained model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from skimage.metrics import structural_similarity

# SSIM settings for ``structural_similarity``; every key is passed explicitly.
# "arun": the authors' code (QTIM-Lab/Assessing-Saliency-Maps, PROTOCOLS.md B4) called
#   structural_similarity(m1, m2) with all defaults on float maps in [0, 1]: a 7 x 7
#   uniform window, sample covariance, K1 = 0.01, K2 = 0.03, and a data range inferred
#   from the float dtype, i.e. 2 (dtype range -1..1). Current scikit-image refuses to
#   infer it, so we pass 2.0. It makes the stabilising constants C1, C2 four times
#   those of the true range, which pulls the SSIM of flat, dark map regions towards 1.
# "ours": the same window and constants with data_range = 1, the actual range of maps
#   after ``pair_grayscale``.
SSIM_SETTINGS = {
    "arun": {"data_range": 2.0, "win_size": 7, "gaussian_weights": False, "use_sample_covariance": True,
             "K1": 0.01, "K2": 0.03},
    "ours": {"data_range": 1.0, "win_size": 7, "gaussian_weights": False, "use_sample_covariance": True,
             "K1": 0.01, "K2": 0.03},
}
# Arun et al.'s code drew 50 random pairs for each of the N images (PROTOCOLS.md B4).
BASELINE_PAIRS_PER_IMAGE = 50
SIMILARITY_COLUMNS = ("image", "ssim", "spearman_abs", "spearman_signed")


def pair_grayscale(a_batch, percentile: float = 99.0) -> np.ndarray:
    """PAIR's ``VisualizeImageGrayscale`` per map (Arun et al.'s post-processing).

    For each (H, W) map: |a|, then (|a| - min) / (p - min) clipped to [0, 1], with p the
    `percentile`-th percentile of |a|. A map with p == min (e.g. constant) becomes zeros
    instead of PAIR's NaN. A 4-D batch (N, H, W, C) first sums |a| over the channels, as
    PAIR does, and gives (N, H, W); a 3-D batch is taken as single-channel maps.
    """
    a = np.abs(np.asarray(a_batch, dtype=np.float64))
    if a.ndim == 4:
        a = a.sum(axis=-1)
    if a.ndim != 3:
        raise ValueError(f"a_batch has shape {np.shape(a_batch)}; expected (N, H, W) or (N, H, W, C)")
    flat = a.reshape(len(a), -1)
    vmax = np.percentile(flat, percentile, axis=1)
    vmin = flat.min(axis=1)
    span = (vmax - vmin)[:, None]
    safe = np.where(span > 0, span, 1.0)
    out = np.where(span > 0, np.clip((flat - vmin[:, None]) / safe, 0.0, 1.0), 0.0)
    return out.reshape(a.shape).astype(np.float32)


def _setting(setting: str) -> dict:
    if setting not in SSIM_SETTINGS:
        raise ValueError(f"SSIM setting {setting!r} is not valid; choose one of {sorted(SSIM_SETTINGS)}")
    return SSIM_SETTINGS[setting]


def _pair(a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{name} needs two 2-D maps of one shape; got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{name} got NaN/Inf map values")
    return a, b


def ssim(a, b, setting: str = "ours") -> float:
    """SSIM of two 2-D maps (``skimage.metrics.structural_similarity``, Wang et al. 2004).

    ``setting`` picks the keyword set in ``SSIM_SETTINGS`` ("arun": the authors' code,
    data_range 2; "ours": data_range 1), window 7 x 7 uniform in both; the mean SSIM over
    the valid window positions (borders of 3 pixels cropped). The maps are compared as
    given: apply ``pair_grayscale`` first for Arun et al.'s pipeline. SSIM lies in
    [-1, 1] (the paper's "0 to 1" ignores negative structure correlation).
    """
    kw = _setting(setting)
    a, b = _pair(a, b, "ssim")
    if min(a.shape) < kw["win_size"]:
        raise ValueError(f"ssim needs maps of at least {kw['win_size']} x {kw['win_size']} pixels; got {a.shape}")
    return float(structural_similarity(a, b, **kw))


def spearman(a, b, signed: bool) -> float:
    """Spearman's rho over the pixels of two maps (``scipy.stats.spearmanr``; ties get average ranks).

    ``signed=False`` ranks |a| against |b|, ``signed=True`` the maps as they are; Adebayo
    et al. 2018 reported both. The maps are taken before ``pair_grayscale`` (its 99th
    percentile clip would tie the top 1 % of pixels; ours). A constant map has no ranks
    to correlate: NaN (rather than scipy's warning).
    """
    a, b = _pair(a, b, "spearman")
    if not signed:
        a, b = np.abs(a), np.abs(b)
    a, b = a.ravel(), b.ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(sps.spearmanr(a, b).statistic)


def _batches(a_batch, b_batch, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a_batch, dtype=np.float64)
    b = np.asarray(b_batch, dtype=np.float64)
    if a.ndim == 4:
        a = a.sum(axis=-1)
    if b.ndim == 4:
        b = b.sum(axis=-1)
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"{name} needs two (N, H, W) batches of one shape; got {np.shape(a_batch)} and "
                         f"{np.shape(b_batch)}")
    return a, b


def _image_ids(image_ids, n: int) -> np.ndarray:
    if image_ids is None:
        return np.arange(n)
    ids = np.asarray(image_ids)
    if ids.shape != (n,):
        raise ValueError(f"image_ids has shape {ids.shape}; expected ({n},), one id per map")
    if len(pd.unique(ids)) != n:
        raise ValueError("image_ids holds duplicates; each map needs its own image id")
    return ids


def similarity_table(a_batch, b_batch, setting: str = "ours", image_ids: Sequence | None = None) -> pd.DataFrame:
    """Per-image similarity of two batches of maps of the same images, one row per image.

    Columns ``image, ssim, spearman_abs, spearman_signed``. ``ssim``: ``ssim`` of the
    ``pair_grayscale`` maps (Arun et al.'s pipeline) under ``setting``; the Spearman
    columns: ``spearman`` of the raw maps, absolute and signed. A 4-D batch is summed
    over channels first (signed sum, as ``saliency`` reduces maps, then |.| where
    absolute). ``image_ids`` label the rows (default 0..N-1).
    """
    _setting(setting)
    a, b = _batches(a_batch, b_batch, "similarity_table")
    ids = _image_ids(image_ids, len(a))
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("similarity_table got NaN/Inf map values")
    ga, gb = pair_grayscale(a), pair_grayscale(b)
    rows = []
    for i in range(len(a)):
        rows.append({
            "image": ids[i],
            "ssim": ssim(ga[i], gb[i], setting),
            "spearman_abs": spearman(a[i], b[i], signed=False),
            "spearman_signed": spearman(a[i], b[i], signed=True),
        })
    return pd.DataFrame(rows, columns=list(SIMILARITY_COLUMNS))


def baseline_pairs(n_images: int, rng: np.random.Generator,
                   pairs_per_image: int = BASELINE_PAIRS_PER_IMAGE) -> np.ndarray:
    """Random pairs of *different* images: ``(n_images * pairs_per_image, 2)`` int array.

    Row k pairs anchor ``k // pairs_per_image`` with a partner drawn uniformly from the
    other ``n_images - 1`` images (with replacement across draws), so an image is never
    paired with itself. Arun et al.'s code drew 50 pairs per image with both indices
    random (``randint(0, N - 1)``, which never drew the last image); anchoring each
    draw to its image, so the baseline is a per-image score, and drawing every image,
    are ours.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a seeded np.random.Generator; got {type(rng).__name__}")
    if int(n_images) != n_images or n_images < 2:
        raise ValueError(f"the baseline needs at least 2 images to pair different ones; got n_images={n_images!r}")
    if int(pairs_per_image) != pairs_per_image or pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be a positive integer; got {pairs_per_image!r}")
    n, k = int(n_images), int(pairs_per_image)
    anchor = np.repeat(np.arange(n), k)
    partner = rng.integers(0, n - 1, size=n * k)
    partner += partner >= anchor  # skip the anchor: uniform over the other n - 1 images
    return np.column_stack([anchor, partner])


def randomization_baseline(a_batch, rng: np.random.Generator, setting: str = "ours",
                           pairs_per_image: int = BASELINE_PAIRS_PER_IMAGE,
                           image_ids: Sequence | None = None) -> pd.DataFrame:
    """Arun et al.'s randomization baseline per image: mean SSIM to maps of other images.

    Arun et al.: "the average value of the SSIM of 50 randomly chosen pairs of saliency
    maps pertaining to the fully trained model". For each image, the mean ``ssim`` of
    its ``pair_grayscale`` map with the maps of ``pairs_per_image`` partners from
    ``baseline_pairs`` (all maps from the trained model). Columns ``image, n_pairs,
    baseline_ssim``; the paper's single number per method is the mean of
    ``baseline_ssim`` over images.
    """
    _setting(setting)
    a = np.asarray(a_batch, dtype=np.float64)
    if a.ndim == 4:
        a = a.sum(axis=-1)
    if a.ndim != 3:
        raise ValueError(f"a_batch has shape {np.shape(a_batch)}; expected (N, H, W) or (N, H, W, C)")
    if not np.isfinite(a).all():
        raise ValueError("randomization_baseline got NaN/Inf map values")
    ids = _image_ids(image_ids, len(a))
    pairs = baseline_pairs(len(a), rng, pairs_per_image)
    g = pair_grayscale(a)
    values = np.array([ssim(g[i], g[j], setting) for i, j in pairs])
    per_image = values.reshape(len(a), int(pairs_per_image)).mean(axis=1)
    return pd.DataFrame({"image": ids, "n_pairs": int(pairs_per_image), "baseline_ssim": per_image})

