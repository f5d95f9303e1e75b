"""The synthetic lesion data of Budding et al. 2021 (section 2), made deterministic.

Every sample is a pure function of (seed, split, index): its random numbers come
from its own stream, ``SeedSequence([seed, crc32("data"), split, index])``, split
into a *shared* stream (brain slice, augmentation, lesion positions: identical for
both backgrounds) and one stream per background (Perlin gradients, MRI gamma).
Class: odd indices carry lesions (y = 1, "class 2"), even indices do not (y = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salbench import seeding
from salbench.config import BACKGROUNDS, SPLITS, DataConfig, check_choice
from salbench.data import mri, perlin

SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}
STREAM_SHARED, STREAM_PERLIN, STREAM_MRI = 0, 1, 2


@dataclass
class Samples:
    """A batch of samples; arrays are indexed like the requested indices."""

    x: dict[str, np.ndarray]  # background -> float32 (N, H, W) in [0, 1]
    y: np.ndarray  # int64 (N,): 0 = no lesion (class 1), 1 = lesions (class 2)
    gt: np.ndarray  # bool (N, H, W): binarised inverted lesion map
    mask: np.ndarray  # bool (N, H, W): brain mask
    corners: np.ndarray  # int64 (N, n_lesions, 2): top-left (row, col) of each lesion
    # window; drawn for every sample so both classes consume the same random numbers,
    # but only class-2 images (y = 1) carry lesions.


def lesion_window(diameter: int, shape: str) -> np.ndarray:
    """Hamming window of `diameter` pixels, scaled to peak 1.

    "disc": radial Hamming profile 0.54 + 0.46 cos(pi r / R), R = d / 2, at pixel
    centres within r <= R of the window centre, 0 outside: a circular lesion
    d pixels across.
    "square": outer product of two 1-D Hamming windows, as Budding's code; every
    pixel of the d x d square is > 0 there.
    Scaling to peak 1 makes the centre keep exactly `lesion_intensity` of the
    background (an even-sized Hamming window never reaches 1 otherwise).
    """
    check_choice("lesion_window", shape, ("disc", "square"))
    if shape == "square":
        h = np.hamming(diameter)
        w = np.outer(h, h)
    else:
        radius = diameter / 2.0
        t = np.arange(diameter) - (diameter - 1) / 2.0
        r = np.sqrt(t[:, None] ** 2 + t[None, :] ** 2)
        w = np.where(r <= radius, 0.54 + 0.46 * np.cos(np.pi * r / radius), 0.0)
    return (w / w.max()).astype(np.float32)


def lesion_factor_of(cfg: DataConfig) -> np.ndarray:
    """The multiplicative lesion map over one lesion's d x d square:
    1 - (1 - lesion_intensity) * window, so the centre keeps `lesion_intensity` of the
    background ("30 % intensity", Budding et al.; their code scaled 1 - window to [0.3, 1])."""
    return (1.0 - (1.0 - cfg.lesion_intensity) * lesion_window(cfg.lesion_diameter, cfg.lesion_window)).astype(np.float32)


def _valid_corners(mask: np.ndarray, diameter: int) -> np.ndarray:
    """Top-left corners whose d x d square lies inside the mask and the top half."""
    h = mask.shape[0] // 2
    top = mask[:h].astype(np.int32)
    integral = np.zeros((h + 1, top.shape[1] + 1), np.int32)
    integral[1:, 1:] = top.cumsum(0).cumsum(1)
    d = diameter
    box = integral[d:, d:] - integral[:-d, d:] - integral[d:, :-d] + integral[:-d, :-d]
    return box == d * d


def _place_lesions(rng: np.random.Generator, mask: np.ndarray, cfg: DataConfig):
    """Return corners of `n_lesions` non-overlapping lesions, or None if no room."""
    valid = _valid_corners(mask, cfg.lesion_diameter)
    d = cfg.lesion_diameter
    corners = []
    for _ in range(cfg.n_lesions):
        candidates = np.flatnonzero(valid)
        if candidates.size == 0:
            return None
        r, c = np.unravel_index(candidates[rng.integers(candidates.size)], valid.shape)
        corners.append((int(r), int(c)))
        # A later square may not intersect this one.
        valid[max(r - d + 1, 0) : r + d, max(c - d + 1, 0) : c + d] = False
    return corners


def _sample_rngs(seed: int, split: str, index: int):
    root = seeding.stage_seed_sequence(seed, "data", SPLIT_IDS[split], index)
    shared, perlin_ss, mri_ss = root.spawn(3)
    return np.random.default_rng(shared), np.random.default_rng(perlin_ss), np.random.default_rng(mri_ss)


def generate(cfg: DataConfig, seed: int, split: str, indices) -> Samples:
    """Make the samples `indices` of `split`; any index gives the same sample alone or in a batch."""
    check_choice("split", split, SPLITS)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    n_split = cfg.split_size(split)
    if indices.size and (indices.min() < 0 or indices.max() >= n_split):
        raise IndexError(
            f"indices must lie in 0..{n_split - 1} for split {split!r} (got {indices.min()}..{indices.max()})"
        )
    h, w = cfg.image_shape
    n = indices.size
    bank = mri.slice_bank(cfg)
    lesion_factor = lesion_factor_of(cfg)
    lesion_gt = lesion_window(cfg.lesion_diameter, cfg.lesion_window) > cfg.gt_threshold
    d = cfg.lesion_diameter

    y = (indices % 2).astype(np.int64)
    x = {bg: np.empty((n, h, w), np.float32) for bg in BACKGROUNDS}
    gt = np.zeros((n, h, w), bool)
    masks = np.empty((n, h, w), bool)
    corners = np.empty((n, cfg.n_lesions, 2), np.int64)

    for k, index in enumerate(indices):
        rng_shared, rng_perlin, rng_mri = _sample_rngs(seed, split, int(index))
        while True:  # redraw the slice in the rare case its top half has no room
            geometry = bank.draw_geometry(rng_shared)
            mask = bank.mask(geometry)
            placed = _place_lesions(rng_shared, mask, cfg)
            if placed is not None:
                break
        masks[k] = mask
        corners[k] = placed
        x["mri"][k] = bank.image(geometry, rng_mri)  # already zero outside the brain
        np.multiply(perlin.noise(perlin.draw_gradients(rng_perlin, cfg), cfg), bank.mask_f32(geometry), out=x["perlin"][k])
        if y[k] == 1:
            for r, c in placed:
                for bg in BACKGROUNDS:
                    x[bg][k, r : r + d, c : c + d] *= lesion_factor
                gt[k, r : r + d, c : c + d] |= lesion_gt
    return Samples(x=x, y=y, gt=gt, mask=masks, corners=corners)


def lesion_windows(y: np.ndarray, corners: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """(N, H, W) float32: each lesion's window (peak 1, `lesion_window`) where class-2 images
    carry lesions, 0 elsewhere; the image is then x_lesion_free * (1 - (1 - intensity) * window)."""
    out = np.zeros((len(y), *cfg.image_shape), np.float32)
    window = lesion_window(cfg.lesion_diameter, cfg.lesion_window)
    d = cfg.lesion_diameter
    for k in np.flatnonzero(np.asarray(y) == 1):
        for r, c in corners[k]:
            out[k, r : r + d, c : c + d] = window  # lesion squares never overlap
    return out


def lesion_map(samples: Samples, cfg: DataConfig) -> np.ndarray:
    """(N, H, W) multiplicative lesion map: 1 - (1 - intensity) * window inside lesions, 1 elsewhere
    (see `lesion_factor_of`)."""
    return lesion_map_of(lesion_windows(samples.y, samples.corners, cfg), cfg.lesion_intensity)


def lesion_map_of(windows: np.ndarray, intensity: float) -> np.ndarray:
    """The multiplicative lesion map of `lesion_windows` for lesions of `intensity`."""
    return (1.0 - (1.0 - intensity) * windows).astype(np.float32)
