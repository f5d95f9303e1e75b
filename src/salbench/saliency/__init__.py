"""Saliency methods behind one registry: ``explain(model, x_batch, method, **params)``.

iNNvestigate 2.x needs TensorFlow graph mode for the whole process. Importing this
package changes nothing: call `use_graph_mode()` (idempotent) *before* building or
loading the models you want to explain; explaining with a model in eager mode raises
`GraphModeError`, which says so. Keras functional models build, load and predict as
usual in graph mode; training needs ``keras.optimizers.legacy.*`` there (salbench
trains in an eager process instead: `salbench.pipeline.models`).

Conventions (every method follows them; details in each method's docstring):

* Classifier methods explain the model without its final softmax (the logit),
  through ``innvestigate.model_wo_softmax``; the softmax-free copy, iNNvestigate
  analyzers and Keras gradient functions are built once per model object and
  reused (weights changed in place, e.g. by cascading randomization, are seen).
* The explained class is the predicted one (argmax of the logits: iNNvestigate's
  ``"max_activation"``, Budding et al.'s setting) unless ``target`` gives a class
  index (an int, or one int per sample); every model method accepts ``target``.
* Maps are float32 arrays (N, H, W) of the input's spatial shape. Channel
  attributions are summed (Tomsett's sensitivity takes the channel-wise max of
  |grad| instead; for our 1-channel images both are the identity). Maps are raw:
  no absolute value, normalisation or clipping unless the method's formula has it
  (see `salbench.metrics.similarity.pair_grayscale` for Arun et al.'s display/scoring transform).
* A map with NaN or Inf raises `NonFiniteMapError` naming the method and samples.

Methods by paper (``list_methods(paper)``): Budding et al. 2021 (iNNvestigate:
gradient, lrp_z, lrp_alpha2_beta1, deep_taylor, guided_backprop, deconvnet; plus
patternnet / patternattribution from `salbench.saliency.pattern` when present),
Tomsett et al. 2020 (sensitivity, gradient_x_input, deep_taylor, deep_shap, sobel,
random) and Arun et al. 2021 (PAIR saliency: gradient, smoothgrad,
integrated_gradients, smooth_ig, grad_cam, xrai, guided_backprop, guided_grad_cam;
baseline: unet).
"""

from __future__ import annotations

import innvestigate  # noqa: F401  (the project's only iNNvestigate import site; fine in eager mode)
import numpy as np
import tensorflow as tf

from salbench.registry import PAPERS
from salbench.saliency import (  # noqa: F401  (importing registers the methods)
    methods_baselines,
    methods_gradients,
    methods_innvestigate,
    methods_shap,
    pattern,
    registry,
)
from salbench.saliency.maps import compute_maps
from salbench.saliency.methods_common import (
    GraphModeError,
    ModelKindError,
    check_input,
    clear_cache,
    require_graph_mode,
)
from salbench.saliency.registry import (
    METHODS,
    Method,
    MethodParameterError,
    NonFiniteMapError,
    UnknownMethodError,
    register,
)


def use_graph_mode() -> None:
    """Switch this process to TensorFlow graph mode, as iNNvestigate needs; idempotent.

    Call it before building or loading any model to explain. Models built before the
    switch belong to eager mode and cannot be explained (`GraphModeError`)."""
    if tf.executing_eagerly():
        tf.compat.v1.disable_eager_execution()


__all__ = [
    "explain", "compute_maps", "list_methods", "get_method", "use_graph_mode",
    "require_graph_mode", "clear_cache", "register", "Method", "METHODS", "PAPERS",
    "UnknownMethodError", "MethodParameterError", "NonFiniteMapError", "ModelKindError", "GraphModeError",
]


def get_method(name: str) -> Method:
    """The registered `Method` (defaults, docstring, sign, papers); unknown names raise."""
    return registry.get(name)


def list_methods(paper: str | None = None) -> list[str]:
    """Sorted method names, all or those of one paper ("budding", "tomsett", "arun")."""
    if paper is None:
        return sorted(METHODS)
    return sorted(registry.methods_of(paper))


def run_method(method: Method, model, x_batch, params: dict, sample_ids=None) -> np.ndarray:
    """Run a looked-up method with already validated, complete `params`; check the maps."""
    if method.needs_model and model is None:
        raise ModelKindError(f"method {method.name!r} needs a model")
    x = check_input(model if method.needs_model else None, x_batch, sample_ids)
    maps = np.asarray(method.fn(model, x, **params))
    if maps.shape != x.shape[:3]:
        raise RuntimeError(f"method {method.name!r} returned shape {maps.shape}; expected {x.shape[:3]}")
    maps = maps.astype(np.float32, copy=False)
    registry.check_finite(method.name, maps, sample_ids)
    return maps


def explain(model, x_batch, method: str, **params) -> np.ndarray:
    """Saliency maps float32 (N, H, W) of `x_batch` (N, H, W, C), or (N, H, W) for C = 1.

    `method` is a registry key (``list_methods()``); `params` override its defaults
    (``get_method(method).defaults``). Unknown methods raise `UnknownMethodError`,
    unknown parameters `MethodParameterError`, a model of the wrong kind
    `ModelKindError`, NaN/Inf maps `NonFiniteMapError`.
    """
    m = registry.get(method)
    full = registry.check_params(m, params)
    return run_method(m, model, x_batch, full)
