"""DeepSHAP (Lundberg & Lee 2017) through ``shap.DeepExplainer`` 0.46, as in Tomsett et al. 2020.

shap's TensorFlow DeepExplainer builds its DeepLIFT-style gradient graph in TF1 graph
mode, which is the mode `salbench.saliency` runs in. Two shap 0.46 details shape the
code: its built-in additivity check compares ranked outputs with the wrong columns when
``ranked_outputs`` is used (so it is switched off and replaced by our own check), and it
explains the model's last layer output, which here is the softmax-free logit.
"""

from __future__ import annotations

import hashlib

import numpy as np

from salbench.saliency.methods_common import (
    check_classifier,
    check_target,
    entry,
    logits,
    output_shape,
)
from salbench.saliency.registry import MethodParameterError, register

# DeepLIFT's rescale rule makes sum(phi) = f_c(x) - E_bg[f_c] exactly up to float32
# rounding of sums over all pixels and background samples; 1e-3 of the output scale
# (|f_c(x)| + |E[f_c]| + 1) is ~100x the rounding seen on VGG-sized models and far
# below the error of an operator shap does not handle (which falls back to gradients).
ADDITIVITY_RTOL = 1e-3
# DeepExplainers (graph ops + the background array) kept per model.
MAX_EXPLAINERS_PER_MODEL = 2


class DeepShapAdditivityError(RuntimeError):
    """DeepSHAP attributions do not sum to f(x) - E[f(background)]: an unsupported op."""


def _explainer(model, background: np.ndarray):
    import shap

    e = entry(model)
    digest = hashlib.sha256(background.tobytes() + str(background.shape).encode()).hexdigest()
    cache = e.misc.setdefault("deep_shap", {})
    if digest not in cache:
        while len(cache) >= MAX_EXPLAINERS_PER_MODEL:
            cache.pop(next(iter(cache)))
        cache[digest] = shap.DeepExplainer(e.logit_model, background)
    return cache[digest]


@register("deep_shap", signed=True, papers=("tomsett",), resources={"background": "shap_background"})
def deep_shap(model, x_batch, *, background=None, target=None):
    """DeepSHAP (shap.DeepExplainer), Tomsett et al. 2020's "SHAP".

    Formula: DeepLIFT (rescale rule, shap's op handlers incl. max pooling) attributions of
    logit c averaged over the reference samples in `background`:
    phi = mean_b (x - b) * m_b, so sum(phi) = logit_c(x) - mean_b logit_c(b). The sum is
    checked against that for every sample (relative tolerance ADDITIVITY_RTOL); a
    violation raises `DeepShapAdditivityError`.
    c: predicted class (shap's ``ranked_outputs=1, output_rank_order="max"`` on the
    logits) or `target` (then all outputs are computed and c is picked per sample).
    Sign: signed.
    Channels: summed.
    Parameters: background (required: an array (B, H, W, C) of training images, e.g. a
    random sample of ~100; no default because the paper gives none), target=None.
    Cost: each image runs the model on 2 * B rows.
    """
    check_classifier(model, "deep_shap")
    if background is None:
        raise MethodParameterError(
            "method 'deep_shap' needs background=<array (B, H, W, C)>: a sample of training images "
            "used as DeepLIFT references"
        )
    bg = np.asarray(background, dtype=np.float32)
    if bg.ndim == x_batch.ndim - 1:
        bg = bg[..., None]
    if bg.shape[1:] != x_batch.shape[1:] or len(bg) < 1:
        raise MethodParameterError(
            f"background has shape {np.shape(background)}; expected (B >= 1, *{x_batch.shape[1:]})"
        )
    t = check_target(target, len(x_batch), output_shape(model)[1])
    ex = _explainer(model, bg)
    if t is None:
        phis, ranks = ex.shap_values(x_batch, ranked_outputs=1, output_rank_order="max", check_additivity=False)
        phi = np.asarray(phis)[..., 0]
        t = np.asarray(ranks)[:, 0].astype(np.int32)
    else:
        phis = np.asarray(ex.shap_values(x_batch, check_additivity=False))
        phi = np.take_along_axis(phis, t[:, None, None, None, None], axis=-1)[..., 0]
    f = logits(model, x_batch)[np.arange(len(x_batch)), t]
    # E[f(background)] with the model's current weights: the explainer's own
    # expected_value is fixed when it is built, and a model's weights can change in
    # place since (the runs and variants of an architecture share one model object).
    expected = logits(model, bg).mean(axis=0)[t]
    total = phi.reshape(len(phi), -1).sum(axis=1, dtype=np.float64)
    err = np.abs(total - (f - expected))
    bad = err > ADDITIVITY_RTOL * (np.abs(f) + np.abs(expected) + 1.0)
    if bad.any() and np.isfinite(total[bad]).all():
        raise DeepShapAdditivityError(
            f"deep_shap: attributions of samples {np.flatnonzero(bad).tolist()} miss "
            f"f(x) - E[f(background)] by up to {err[bad].max():.3g}; an operator of this model "
            "is probably not supported by shap's DeepExplainer"
        )
    return phi.sum(axis=-1).astype(np.float32)
