"""Baselines: model-free maps (Tomsett et al.'s edge detector and random ordering) and
the U-Net probability map (Arun et al.'s high localization baseline)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from salbench.batching import map_batches
from salbench.saliency.methods_common import (
    MAX_ROWS_PER_CALL,
    check_segmenter,
    entry,
    image_seed,
)
from salbench.saliency.registry import register


@register("sobel", signed=False, papers=("tomsett",), needs_model=False)
def sobel(model, x_batch):
    """Sobel edge detection: the model-free baseline of Tomsett et al. 2020 ("edge detection").

    Formula: per image and channel, hypot(sobel_y, sobel_x) with
    ``scipy.ndimage.sobel(x, axis=0)`` and ``axis=1`` on the 2-D image (float64,
    scipy's default ``mode="reflect"`` at the borders); channels summed.
    Sign: unsigned. The model is ignored (may be None).
    Parameters: none.
    """
    x = np.asarray(x_batch, dtype=np.float64)
    out = np.zeros(x.shape[:3], dtype=np.float64)
    for i in range(len(x)):
        for c in range(x.shape[-1]):
            img = x[i, :, :, c]
            out[i] += np.hypot(ndimage.sobel(img, axis=0), ndimage.sobel(img, axis=1))
    return out.astype(np.float32)


@register("random", signed=False, papers=("tomsett",), needs_model=False)
def random(model, x_batch, *, seed=0):
    """Random map: the random-ordering baseline (Tomsett et al. 2020's random deletion).

    Formula: i.i.d. uniform [0, 1) pixels from ``np.random.default_rng(s_i)``, where
    s_i = `methods_common.image_seed`(x_i, seed) depends only on `seed` and the image's
    content, so a map is deterministic per (seed, image) and does not depend on the
    batch it was computed in. Different seeds give independent maps.
    Sign: unsigned. The model is ignored (may be None).
    Parameters: seed=0.
    """
    x = np.asarray(x_batch, dtype=np.float32)
    out = np.empty(x.shape[:3], dtype=np.float32)
    for i in range(len(x)):
        out[i] = np.random.default_rng(image_seed(x[i], seed)).random(x.shape[1:3], dtype=np.float32)
    return out


@register("unet", signed=False, papers=("arun",))
def unet(model, x_batch):
    """U-Net output probability: Arun et al. 2021's high localization baseline (UNET).

    Formula: the segmentation model's output (N, H, W, 1) (sigmoid probabilities of
    lesion) as the map; no explanation method involved. Raises `ModelKindError` for a
    classifier.
    Sign: unsigned, in [0, 1].
    Parameters: none.
    """
    check_segmenter(model, "unet")
    e = entry(model)
    fn = e.functions.get("unet")
    if fn is None:
        from tensorflow import keras

        fn = keras.backend.function([model.inputs[0]], [model.outputs[0]])
        e.functions["unet"] = fn
    return map_batches(lambda b: fn([b])[0], x_batch, MAX_ROWS_PER_CALL)[..., 0].astype(np.float32)
