"""Perlin gradient noise as a separable linear map of the lattice gradients.

For a fixed lattice the noise at a pixel is a fade-weighted sum of dot products
between the four surrounding lattice gradients and the pixel's offsets; the
weights factor into a row part and a column part, so one image is two small
matrix products. This is the same noise as the textbook per-pixel loop (Perlin
2002, quintic fade; `reference_noise`, checked in tests) at a fraction of the cost.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from salbench.config import DataConfig


def _fade(t: np.ndarray) -> np.ndarray:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


@lru_cache(maxsize=8)
def _factors(shape: tuple[int, int], res: tuple[int, int]):
    """Row factors P, Q (H x ry+1) and column factors U, V (W x rx+1) such that
    noise = sqrt(2) * (P @ Gy @ U.T + Q @ Gx @ V.T) for gradient components Gy, Gx."""
    h, w = shape
    ry, rx = res

    def axis(n: int, cells: int):
        size = n // cells
        pos = np.arange(n)
        cell, frac = pos // size, (pos % size) / size
        t = _fade(frac)
        plain = np.zeros((n, cells + 1))
        with_offset = np.zeros((n, cells + 1))
        for d in (0, 1):
            weight = t if d else 1 - t
            plain[pos, cell + d] += weight
            with_offset[pos, cell + d] += weight * (frac - d)
        return plain, with_offset

    q, p = axis(h, ry)
    u, v = axis(w, rx)
    return p, q, u, v


def draw_gradients(rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """Unit gradient vectors at random angles, one per lattice point: (ry+1, rx+1, 2)."""
    ry, rx = cfg.perlin_res
    angles = 2 * np.pi * rng.random((ry + 1, rx + 1))
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def noise(gradients: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """One (H, W) noise image, min-max normalised to [0, 1], float32.

    Computed one image at a time with fixed shapes so that the result never depends
    on which other images are generated alongside (byte-identical determinism).
    """
    p, q, u, v = _factors(tuple(cfg.image_shape), tuple(cfg.perlin_res))
    n = np.sqrt(2) * (p @ gradients[..., 0] @ u.T + q @ gradients[..., 1] @ v.T)
    lo, hi = n.min(), n.max()
    return ((n - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def reference_noise(gradients: np.ndarray, shape: tuple[int, int], res: tuple[int, int]) -> np.ndarray:
    """Plain per-pixel Perlin noise (unnormalised), float64, for tests."""
    h, w = shape
    ry, rx = res
    g = np.asarray(gradients, np.float64).reshape(ry + 1, rx + 1, 2)
    out = np.zeros((h, w))
    for r in range(h):
        for c in range(w):
            y, x = r / (h // ry), c / (w // rx)
            i, j = int(y), int(x)
            fy, fx = y - i, x - j

            def dot(di, dj):
                return g[i + di, j + dj, 0] * (fy - di) + g[i + di, j + dj, 1] * (fx - dj)

            u, v = _fade(np.float64(fy)), _fade(np.float64(fx))
            n0 = dot(0, 0) * (1 - v) + dot(0, 1) * v
            n1 = dot(1, 0) * (1 - v) + dot(1, 1) * v
            out[r, c] = np.sqrt(2) * (n0 * (1 - u) + n1 * u)
    return out
