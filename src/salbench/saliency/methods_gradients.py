"""Arun et al. 2021's methods through PAIR's framework-agnostic ``saliency.core`` (0.2.1).

Arun et al.'s public code (QTIM-Lab/Assessing-Saliency-Maps, scripts/create_maps_*.py;
read, not copied) used the PAIR ``saliency`` library on the logit (pre-softmax)
output of the predicted class, with PAIR's defaults except integrated gradients
(``x_steps=10`` and a black baseline, for IG and smooth IG). The paper itself gives no
parameters (its Table 1 only defines the methods). Those are the defaults here.

PAIR explains one image at a time. To keep whole batches on the model at once:

* IG runs PAIR's ``IntegratedGradients.GetMask`` on the whole batch stacked as one
  "input" (IG is elementwise, so this is exactly per-image IG), with PAIR's
  ``batch_size`` set so that every call sends several path points of all images.
* SmoothGrad / smooth IG draw PAIR's noise (normal, sd = stdev_spread * (max - min) of
  the image, ``magnitude=True`` -> mean of squares) per image from a seeded
  ``np.random.RandomState`` and push all noisy copies through the model together;
  `tests/reference` checks this equals PAIR's ``GetSmoothedMask`` with the same draws.
* Grad-CAM computes feature maps and their gradients for the batch in one call and
  then runs PAIR's ``GradCam.GetMask`` per image on those values.
* XRAI computes PAIR's two-baseline IG for the batch as above, then PAIR's
  ``XRAI.GetMask`` per image with it as ``base_attribution`` (which is what XRAI does
  internally), so only the segmentation and greedy region search run per image, in
  one worker process per core (`salbench.workers`).
"""

from __future__ import annotations

import numpy as np

from salbench import workers
from salbench.batching import batch_slices
from salbench.saliency.methods_common import (
    MAX_ROWS_PER_CALL,
    call_model_function_factory,
    check_classifier,
    conv_values_and_gradients,
    image_seed,
    innvestigate_analyze,
    input_gradients,
    reduce_channels,
    resolve_targets,
)
from salbench.saliency.registry import MethodParameterError, register


def _pair():
    import saliency.core as saliency_core

    return saliency_core


def stacked_ig(model, x: np.ndarray, targets: np.ndarray, baselines: np.ndarray, x_steps: int) -> np.ndarray:
    """PAIR integrated gradients of every image of `x` (N, H, W, C) at once.

    PAIR's IG is elementwise in (x, baseline), so running ``GetMask`` on the batch as one
    array, with the model call flattening (steps, N, ...) to rows, gives exactly the
    per-image result: (x - x') * sum_k grad(x' + a_k (x - x')) / x_steps with
    a_k = linspace(0, 1, x_steps).
    """
    if x_steps < 2:
        raise MethodParameterError(f"x_steps={x_steps}: must be >= 2")
    ig = _pair().IntegratedGradients()
    steps_per_call = max(1, MAX_ROWS_PER_CALL // len(x))
    return ig.GetMask(
        x, call_model_function_factory(model),
        call_model_args={"target": targets, "stacked": True},
        x_baseline=baselines, x_steps=x_steps, batch_size=steps_per_call,
    ).astype(np.float32)


def noisy_copies(x: np.ndarray, stdev_spread: float, nsamples: int, seed: int) -> np.ndarray:
    """PAIR SmoothGrad inputs x + noise, shape (nsamples, N, H, W, C), float32.

    Per image: sd = stdev_spread * (max(x_i) - min(x_i)) and nsamples draws of
    ``RandomState(image_seed(x_i, seed)).normal(0, sd, x_i.shape)`` (float64, added to x_i
    and then cast to float32 as the model sees it), in the order PAIR's
    ``GetSmoothedMask`` draws them from ``np.random``. The legacy generator is used so
    the stream can be matched against PAIR in tests.
    """
    if nsamples < 1:
        raise MethodParameterError(f"nsamples={nsamples}: must be >= 1")
    if stdev_spread < 0:
        raise MethodParameterError(f"stdev_spread={stdev_spread}: must be >= 0")
    out = np.empty((nsamples,) + x.shape, dtype=np.float32)
    for i, xi in enumerate(x):
        rs = np.random.RandomState(image_seed(xi, seed))
        sd = stdev_spread * (np.max(xi) - np.min(xi))  # PAIR's expression, same dtypes
        for k in range(nsamples):
            out[k, i] = xi + rs.normal(0, sd, xi.shape)
    return out


def _smoothed(values: np.ndarray, magnitude: bool) -> np.ndarray:
    """Average over the first (noise) axis: of squares if magnitude (PAIR's default)."""
    v = values.astype(np.float64)
    return (v * v).mean(axis=0) if magnitude else v.mean(axis=0)


@register("smoothgrad", signed=False, papers=("arun",), profile_params={"nsamples": "saliency.nsamples"})
def smoothgrad(model, x_batch, *, stdev_spread=0.15, nsamples=25, magnitude=True, seed=0, target=None):
    """SmoothGrad (Smilkov et al. 2017), PAIR ``GradientSaliency.GetSmoothedMask``.

    Paper: Arun et al. 2021 (SG), PAIR defaults as in their code.
    Formula: (1/n) sum_k g(x + e_k)^2 with g = d logit_c / d x, e_k ~ N(0, s^2),
    s = stdev_spread * (max(x) - min(x)) per image, n = nsamples; with magnitude=False
    the plain mean of g. c is the class of the clean image (argmax or `target`),
    fixed for all noisy copies as in PAIR.
    Sign: unsigned with magnitude=True (the default); signed otherwise.
    Channels: summed (after squaring, as PAIR squares per channel).
    Randomness: per-image RandomState seeded by (seed, image content): deterministic and
    independent of batching.
    Parameters: stdev_spread=0.15, nsamples=25, magnitude=True, seed=0, target=None.
    """
    check_classifier(model, "smoothgrad")
    targets = resolve_targets(model, x_batch, target)
    n = len(x_batch)
    rows = noisy_copies(x_batch, stdev_spread, int(nsamples), seed).reshape((-1,) + x_batch.shape[1:])
    grads = input_gradients(model, rows, np.tile(targets, nsamples)).reshape((nsamples, n) + x_batch.shape[1:])
    return reduce_channels(_smoothed(grads, magnitude))


@register("integrated_gradients", signed=True, papers=("arun",), profile_params={"x_steps": "saliency.ig_steps"})
def integrated_gradients(model, x_batch, *, x_steps=10, baseline=0.0, target=None):
    """Integrated gradients (Sundararajan et al. 2017), PAIR ``IntegratedGradients.GetMask``.

    Paper: Arun et al. 2021 (IG); x_steps=10 and a black baseline from their code
    (PAIR's default is 25 steps). Black is 0 for our inputs in [0, 1].
    Formula (PAIR's Riemann rule): (x - x') * (1/m) sum_{k=0}^{m-1} g(x' + a_k (x - x')),
    a_k = k / (m - 1), m = x_steps, x' = `baseline` (a constant image), g = d logit_c / dx.
    Completeness sum(IG) = logit_c(x) - logit_c(x') holds up to the O(1/m) error of
    this rule.
    Sign: signed.
    Channels: summed.
    Parameters: x_steps=10, baseline=0.0 (float pixel value), target=None.
    """
    check_classifier(model, "integrated_gradients")
    targets = resolve_targets(model, x_batch, target)
    base = np.full_like(x_batch, float(baseline))
    return reduce_channels(stacked_ig(model, x_batch, targets, base, int(x_steps)))


@register("smooth_ig", signed=False, papers=("arun",),
          profile_params={"nsamples": "saliency.nsamples", "x_steps": "saliency.ig_steps"})
def smooth_ig(model, x_batch, *, x_steps=10, baseline=0.0, stdev_spread=0.15, nsamples=25, magnitude=True,
              seed=0, target=None):
    """Smooth integrated gradients (SmoothGrad over IG), PAIR
    ``IntegratedGradients.GetSmoothedMask``.

    Paper: Arun et al. 2021 (SIG), with their IG settings (x_steps=10, black baseline)
    and PAIR's smoothing defaults.
    Formula: (1/n) sum_k IG(x + e_k; x')^2 (magnitude=True) with e_k as in `smoothgrad`
    and the baseline x' fixed (not noised), as in PAIR. c is the clean image's class.
    Sign: unsigned with magnitude=True (default); signed otherwise.
    Channels: summed after squaring.
    Cost: nsamples * x_steps gradient evaluations per image (250 by default).
    Parameters: x_steps=10, baseline=0.0, stdev_spread=0.15, nsamples=25, magnitude=True,
    seed=0, target=None.
    """
    check_classifier(model, "smooth_ig")
    targets = resolve_targets(model, x_batch, target)
    n = len(x_batch)
    noisy = noisy_copies(x_batch, stdev_spread, int(nsamples), seed).reshape((-1,) + x_batch.shape[1:])
    base = np.full_like(noisy, float(baseline))
    # MAX_ROWS_PER_CALL noisy images per stacked IG: each model call then holds one path
    # point of all of them, and the (steps, rows, H, W, C) path array stays bounded.
    chunk = MAX_ROWS_PER_CALL
    t_all = np.tile(targets, nsamples)
    igs = np.concatenate([
        stacked_ig(model, noisy[s], t_all[s], base[s], int(x_steps)) for s in batch_slices(len(noisy), chunk)
    ]).reshape((nsamples, n) + x_batch.shape[1:])
    return reduce_channels(_smoothed(igs, magnitude))


def _grad_cam_maps(model, x_batch, targets, layer):
    """PAIR Grad-CAM per image on feature maps computed for the whole batch."""
    from saliency.core import base as pair_base

    values, grads = conv_values_and_gradients(model, x_batch, targets, layer)
    gc = _pair().GradCam()
    out = np.empty(x_batch.shape[:3], dtype=np.float32)
    for i in range(len(x_batch)):
        data = {pair_base.CONVOLUTION_LAYER_VALUES: values[i:i + 1],
                pair_base.CONVOLUTION_OUTPUT_GRADIENTS: grads[i:i + 1]}
        out[i] = gc.GetMask(x_batch[i], lambda xb, call_model_args=None, expected_keys=None: dict(data),
                            should_resize=True, three_dims=False)
    return out


@register("grad_cam", signed=False, papers=("arun",))
def grad_cam(model, x_batch, *, layer=None, target=None):
    """Grad-CAM (Selvaraju et al. 2017), PAIR ``GradCam.GetMask``.

    Paper: Arun et al. 2021 (GCAM; their code used the last convolutional block,
    InceptionV3's mixed10, with ``should_resize=True``).
    Formula: relu(sum_k w_k A_k) with w_k = mean_{u,v} d logit_c / d A_k[u, v], A = output
    of `layer` (default: the last Conv2D layer, found by type); then, as PAIR does with
    should_resize=True, divided by its maximum (if > 0) and resized to the input size
    with skimage's bilinear ``resize``. Maps lie in [0, 1]. For a DenseNet (no single
    last conv block) pass the block output, e.g. layer="relu" in Keras' DenseNet, as
    Arun used InceptionV3's mixed10; the last Conv2D there is one 32-filter layer.
    Sign: unsigned.
    Channels: none (one map per image).
    Parameters: layer=None (a layer name), target=None.
    """
    check_classifier(model, "grad_cam")
    targets = resolve_targets(model, x_batch, target)
    return _grad_cam_maps(model, x_batch, targets, layer)


@register("guided_grad_cam", signed=True, papers=("arun",))
def guided_grad_cam(model, x_batch, *, layer=None, target=None):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop x upsampled Grad-CAM.

    Paper: Arun et al. 2021 (GGCAM).
    Formula: the guided backprop map started from 1 (``guided_backprop`` with
    head="one": the gradient of logit c with guided ReLUs, as PAIR's GuidedBackprop that
    Arun used; channels summed, signed) times the `grad_cam` map (PAIR, normalised to
    [0, 1] and resized), elementwise, for the same class c. Arun's code multiplied the
    two after PAIR's ``VisualizeImageGrayscale`` (|.| clipped at the 99th percentile);
    `salbench.metrics.similarity.pair_grayscale` applies that to any map.
    Sign: signed (the sign of guided backprop).
    Channels: summed (guided backprop) before the product.
    Parameters: layer=None (Grad-CAM layer name), target=None.
    """
    check_classifier(model, "guided_grad_cam")
    targets = resolve_targets(model, x_batch, target)
    gbp = reduce_channels(innvestigate_analyze(model, x_batch, "guided_backprop", targets, head="one"))
    return (gbp * _grad_cam_maps(model, x_batch, targets, layer)).astype(np.float32)


@register("xrai", signed=False, papers=("arun",), profile_params={"steps": "saliency.xrai_steps"})
def xrai(model, x_batch, *, steps=100, algorithm="full", area_threshold=1.0, target=None):
    """XRAI (Kapishnikov et al. 2019), PAIR ``XRAI.GetMask`` with its defaults.

    Paper: Arun et al. 2021 (XRAI, PAIR defaults in their code).
    Formula: base attribution = mean of PAIR IG (``steps`` points) from two constant
    baselines, the image's min and max; Felzenszwalb segments at 6 scales (image resized
    to 224x224 and rescaled to [-1, 1] for segmentation, segments dilated by a disk of
    radius 5); regions added greedily by attribution density (``algorithm="full"``) and
    every pixel gets the density gain of the region that added it.
    Sign: XRAI values are region densities of IG and can be negative, but the map is
    used as a ranking (unsigned).
    Channels: IG channels reduced by max before segmentation (PAIR).
    Cost: 2 * steps gradient evaluations plus the per-image segmentation and greedy
    search (seconds per image on a CPU; see benchmarks/bench_saliency.py).
    Parameters: steps=100, algorithm="full" ("fast" skips overlap handling),
    area_threshold=1.0, target=None.
    """
    check_classifier(model, "xrai")
    if algorithm not in ("full", "fast"):
        raise MethodParameterError(f"algorithm={algorithm!r}: choose 'full' or 'fast'")
    if not 0.0 < float(area_threshold) <= 1.0:
        raise MethodParameterError(f"area_threshold={area_threshold}: must be in (0, 1]")
    targets = resolve_targets(model, x_batch, target)
    n = len(x_batch)
    lo = np.min(x_batch, axis=(1, 2, 3), keepdims=True) * np.ones_like(x_batch)
    hi = np.max(x_batch, axis=(1, 2, 3), keepdims=True) * np.ones_like(x_batch)
    igs = stacked_ig(model, np.concatenate([x_batch, x_batch]), np.concatenate([targets, targets]),
                     np.concatenate([lo, hi]), int(steps))
    # The region search holds the GIL: one worker process per core (salbench.workers).
    jobs = [(x_batch[i], np.mean([igs[i], igs[n + i]], axis=0), int(steps), float(area_threshold), algorithm)
            for i in range(n)]
    return np.stack(workers.map_in_processes(workers.xrai_regions, jobs)).reshape(x_batch.shape[:3])
