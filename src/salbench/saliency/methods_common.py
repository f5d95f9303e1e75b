"""Shared machinery of the saliency methods: model checks, the explained class,
per-model caches of the softmax-free model, iNNvestigate analyzers and Keras
gradient functions, channel reduction and per-image random streams.

Conventions every method follows (see `salbench.saliency.explain`):

* A classifier is a Keras functional model with one input (N, H, W, C) and one
  output (N, K), K >= 2, normally ending in ``Dense(K, activation="softmax")``.
  Methods always explain the model *without* the softmax (the logits), via
  ``innvestigate.model_wo_softmax``; a model whose last layer is already linear
  is used as is.
* The explained neuron is the predicted class (argmax of the logits, which is
  iNNvestigate's ``neuron_selection_mode="max_activation"``) unless ``target``
  (an int or one int per sample) forces a class index. Every method resolves
  ``target`` the same way (`resolve_targets`).
* Maps are float32 (N, H, W); attributions over C channels are reduced by summation
  unless a method's docstring says otherwise.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable

import innvestigate
import numpy as np
import tensorflow as tf
from tensorflow import keras

from salbench.batching import batch_slices, map_batches
from salbench.saliency.registry import MethodParameterError

# How many models keep their softmax-free copy, analyzers and gradient functions.
# Each entry holds graph ops and a strong reference to the model; 4 covers a trained
# model plus the copies a cascading-randomization loop works on at one time.
MODEL_CACHE_SIZE = 4
# Rows (images x samples x steps) sent through the model in one call by the gradient
# methods that expand a batch (SmoothGrad, IG, XRAI). A 140x192 VGG-like row needs
# roughly 30 MB of activations and gradients on the CPU, so 64 rows stay near 2 GB.
MAX_ROWS_PER_CALL = 64


class ModelKindError(TypeError):
    """A method was given the wrong kind of model (classifier vs segmentation)."""


class GraphModeError(RuntimeError):
    """Something that needs TensorFlow graph mode found the process in eager mode."""


def require_graph_mode(what: str = "this") -> None:
    """Raise `GraphModeError` (saying what to call) unless the process is in graph mode."""
    if tf.executing_eagerly():
        raise GraphModeError(
            f"{what} needs TensorFlow graph mode (iNNvestigate): call salbench.saliency.use_graph_mode() "
            "first, then build or load the model to explain"
        )


class _Entry:
    """Everything built once per model object."""

    def __init__(self, model):
        self.model = model  # strong reference: the cache key id(model) stays unique
        self.graph = tf.compat.v1.get_default_graph()
        self._logit_model = None
        self.analyzers: dict = {}
        self.functions: dict = {}
        self.misc: dict = {}

    @property
    def logit_model(self):
        if self._logit_model is None:
            self._logit_model = _strip_softmax(self.model)
        return self._logit_model


_CACHE: "OrderedDict[int, _Entry]" = OrderedDict()


def clear_cache() -> None:
    """Forget all cached softmax-free models, analyzers and gradient functions."""
    _CACHE.clear()


def forget(model) -> None:
    """Drop the cached pieces of one model (e.g. a model the caller evicts)."""
    e = _CACHE.get(id(model))
    if e is not None and e.model is model:
        del _CACHE[id(model)]


def entry(model) -> _Entry:
    """The cache entry of `model` (least recently used entries are dropped)."""
    graph = tf.compat.v1.get_default_graph()
    stale = [k for k, e in _CACHE.items() if e.graph is not graph]
    for k in stale:  # keras.backend.clear_session() made a new graph
        del _CACHE[k]
    key = id(model)
    e = _CACHE.get(key)
    if e is None or e.model is not model:
        e = _Entry(model)
        _CACHE[key] = e
        while len(_CACHE) > MODEL_CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return e


# ----------------------------------------------------------------------------- checks


def _check_graph_model(model) -> None:
    require_graph_mode("explaining a model")
    if not isinstance(model, keras.Model):
        raise ModelKindError(f"expected a Keras model, got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelKindError(
            f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "saliency methods need exactly one of each"
        )
    t = model.inputs[0]
    graph = getattr(t, "graph", None)
    if graph is None or graph is not tf.compat.v1.get_default_graph():
        raise ModelKindError(
            f"model {model.name!r} was not built in the current TensorFlow graph. It was probably "
            "built or loaded before salbench.saliency.use_graph_mode() switched the process to graph "
            "mode (or before keras.backend.clear_session()). Call use_graph_mode() first, then "
            "build or load the model."
        )


def output_shape(model) -> tuple:
    return tuple(model.outputs[0].shape.as_list())


def check_classifier(model, method: str) -> None:
    """Raise `ModelKindError` unless `model` maps (N, H, W, C) to class scores (N, K)."""
    _check_graph_model(model)
    shape = output_shape(model)
    if len(shape) != 2 or shape[1] is None or shape[1] < 2:
        raise ModelKindError(
            f"method {method!r} explains a classifier with output (N, K >= 2), e.g. (N, 2) "
            f"softmax; model {model.name!r} has output shape {shape}"
            + (" (a segmentation model: use method 'unet')" if len(shape) == 4 else "")
        )
    if len(model.inputs[0].shape) != 4:
        raise ModelKindError(
            f"method {method!r} needs image input (N, H, W, C); model {model.name!r} has input "
            f"shape {tuple(model.inputs[0].shape.as_list())}"
        )


def check_segmenter(model, method: str) -> None:
    _check_graph_model(model)
    shape = output_shape(model)
    in_shape = tuple(model.inputs[0].shape.as_list())
    if len(shape) != 4 or shape[-1] != 1 or shape[1:3] != in_shape[1:3]:
        raise ModelKindError(
            f"method {method!r} needs a segmentation model with output (N, H, W, 1) matching the "
            f"input {in_shape}; model {model.name!r} has output shape {shape}"
            + (" (a classifier: use a classifier saliency method)" if len(shape) == 2 else "")
        )


# Sample indices named in the error about non-finite inputs; the count is always given.
MAX_BAD_SHOWN = 20


def check_input(model, x_batch, sample_ids=None) -> np.ndarray:
    """float32 (N, H, W, C) matching the model input and finite; (N, H, W) gains C = 1.

    NaN/Inf samples are named by their position in `x_batch`, or by `sample_ids`
    (e.g. indices into the whole array when `x_batch` is one batch of it)."""
    x = np.asarray(x_batch, dtype=np.float32)
    if model is not None:
        expected = tuple(model.inputs[0].shape.as_list())[1:]
        if x.ndim == len(expected) and expected[-1] == 1 and x.shape[1:] == expected[:-1]:
            x = x[..., None]
        if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            raise ValueError(f"x_batch has shape {x.shape}; model {model.name!r} expects (N, *{expected})")
    else:
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"x_batch has shape {x.shape}; expected (N, H, W, C) or (N, H, W)")
    if len(x) == 0:
        raise ValueError("x_batch is empty")
    bad = np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))
    if bad.size:
        bad = bad if sample_ids is None else np.asarray(sample_ids)[bad]
        # Unchecked, some methods return NaN maps and others finite (SmoothGrad: zero) ones.
        shown = ", ".join(str(i) for i in bad[:MAX_BAD_SHOWN]) + (", ..." if bad.size > MAX_BAD_SHOWN else "")
        raise ValueError(f"x_batch holds NaN or Inf in {bad.size} of {len(x)} samples (indices {shown}); "
                         "saliency needs finite inputs")
    return x


def _strip_softmax(model):
    layer = model.layers[-1]
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None)
    if name == "softmax" or isinstance(layer, keras.layers.Softmax):
        if isinstance(layer, keras.layers.Softmax):
            return keras.Model(model.inputs, layer.input, name=f"{model.name}_wo_softmax")
        return innvestigate.model_wo_softmax(model)
    if name in (None, "linear"):
        return model  # already logits
    raise ModelKindError(
        f"model {model.name!r} ends in activation {name!r}; classifier saliency expects a final "
        "softmax (removed before explaining) or a linear (logit) layer"
    )


# ----------------------------------------------------------------------------- targets


def logits(model, x: np.ndarray) -> np.ndarray:
    """Softmax-free outputs (N, K) of a classifier."""
    e = entry(model)
    fn = e.functions.get("logits")
    if fn is None:
        lm = e.logit_model
        fn = keras.backend.function([lm.inputs[0]], [lm.outputs[0]])
        e.functions["logits"] = fn
    return map_batches(lambda b: fn([b])[0], x, MAX_ROWS_PER_CALL)


def check_target(target, n: int, n_classes: int):
    """Validate `target`: None, an int, or one int per sample."""
    if target is None:
        return None
    arr = np.asarray(target)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or (arr.ndim == 1 and len(arr) != n):
        raise MethodParameterError(
            f"target={target!r}: expected None (the predicted class), an int class index or "
            f"{n} ints (one per sample)"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise MethodParameterError(f"target={target!r}: class indices must be in 0..{n_classes - 1}")
    return np.broadcast_to(arr.astype(np.int32), (n,)).copy()


def resolve_targets(model, x: np.ndarray, target) -> np.ndarray:
    """The explained class per sample: `target`, or the argmax of the logits."""
    n_classes = output_shape(model)[1]
    t = check_target(target, len(x), n_classes)
    if t is None:
        t = np.argmax(logits(model, x), axis=1).astype(np.int32)
    return t


# ----------------------------------------------------------------------------- iNNvestigate


def innvestigate_analyze(model, x: np.ndarray, name: str, target, head: str = "default") -> np.ndarray:
    """Run iNNvestigate analyzer `name` on the softmax-free model; (N, H, W, C) float32.

    target None uses neuron_selection_mode="max_activation" (iNNvestigate's default,
    as in Budding et al.); otherwise "index" with one class per sample.
    head "default" keeps iNNvestigate's start of the backward pass (1 for the gradient
    analyzers, the output value for the other reverse analyzers); "one" starts from 1,
    i.e. the backward pass of d logit_c (see `guided_backprop`).
    """
    t = check_target(target, len(x), output_shape(model)[1])
    mode = "max_activation" if t is None else "index"
    a = analyzer(model, name, mode, head)
    out = a.analyze(x) if t is None else a.analyze(x, neuron_selection=t)
    return np.asarray(out, dtype=np.float32)


class _UnitHead:
    """Mixin: start the reversed network from 1 instead of the selected output value."""

    def _head_mapping(self, X):
        return tf.ones_like(X)


def analyzer(model, name: str, mode: str, head: str = "default"):
    e = entry(model)
    key = (name, mode, head)
    a = e.analyzers.get(key)
    if a is None:
        cls = innvestigate.analyzer.analyzers[name]
        if head == "one":
            cls = type(f"{cls.__name__}UnitHead", (_UnitHead, cls), {})
        elif head != "default":
            raise ValueError(f"head={head!r}: internal values are 'default' and 'one'")
        a = cls(e.logit_model, neuron_selection_mode=mode)
        with keras_history_of_live_tensors():
            a.create_analyzer_model()
        e.analyzers[key] = a
    return a


@contextmanager
def keras_history_of_live_tensors():
    """Build Keras models over raw graph ops without evaluating their constant inputs.

    iNNvestigate's reversed graph is raw TensorFlow ops; wrapping them in a Keras model
    (graph mode) makes Keras evaluate every non-Keras input of every op in its own
    session call (`base_layer_utils._create_keras_history_helper`), each extending the
    session with the whole graph: 45-70 s per analyzer on the small DenseNet, 90 % of it
    in those calls (measured, AMD EPYC, 2 cores). Keras's own switch keeps such inputs as
    the graph tensors instead; the analyzer model runs the same graph either way, so its
    maps are bit-identical (tested), 10x faster to build. What it gives up, a
    `get_config` of the analyzer model, is never used. Restored afterwards.
    """
    from keras.src.engine import base_layer_utils

    before = base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION
    base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = True
    try:
        yield
    finally:
        base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = before


# ----------------------------------------------------------------------------- gradients


def _selected_logit(e: _Entry):
    """(input tensor, index placeholder, selected logit per row)."""
    lm = e.logit_model
    if "selected" not in e.misc:
        with e.graph.as_default():
            idx = tf.compat.v1.placeholder(tf.int32, shape=(None,), name="salbench_target")
            sel = tf.gather(lm.outputs[0], idx, axis=1, batch_dims=1)
        e.misc["selected"] = (lm.inputs[0], idx, sel)
    return e.misc["selected"]


def input_gradients(model, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d logit[target_n] / d x_n for every row n, in chunks of MAX_ROWS_PER_CALL."""
    e = entry(model)
    fn = e.functions.get("input_grad")
    if fn is None:
        inp, idx, sel = _selected_logit(e)
        with e.graph.as_default():
            g = tf.gradients(sel, inp)[0]
        fn = keras.backend.function([inp, idx], [g])
        e.functions["input_grad"] = fn
    x = np.asarray(x, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int32)
    out = np.empty(x.shape, dtype=np.float32)
    for s in batch_slices(len(x), MAX_ROWS_PER_CALL):
        out[s] = fn([x[s], targets[s]])[0]
    return out


def conv_layer_tensor(model, layer: str | None):
    """(layer name, output tensor) of the Grad-CAM layer: `layer` or the last Conv2D.

    The last Conv2D is searched among the model's top-level layers; a nested model
    (e.g. a Keras application used as a layer) whose output is a 4-D feature map
    also counts. The tensor is the layer output that feeds the model's logits.
    """
    e = entry(model)
    key = ("conv", layer)
    if key in e.misc:
        return e.misc[key]
    inp, idx, sel = _selected_logit(e)

    def feature_map_like(l):
        if isinstance(l, keras.layers.Conv2D):
            return True
        if isinstance(l, keras.Model):
            try:
                return len(l.output_shape) == 4
            except (AttributeError, RuntimeError):
                return False
        return False

    candidates = [l for l in model.layers if feature_map_like(l)]
    if layer is None:
        if not candidates:
            raise ModelKindError(f"model {model.name!r} has no Conv2D layer for Grad-CAM")
        chosen = candidates[-1]
    else:
        try:
            chosen = model.get_layer(layer)
        except ValueError:
            raise MethodParameterError(
                f"layer={layer!r} is not a layer of model {model.name!r}; "
                f"convolutional layers: {[l.name for l in candidates]}"
            ) from None
    tensor = None
    with e.graph.as_default():
        for i in range(len(chosen._inbound_nodes)):
            t = chosen.get_output_at(i)
            if isinstance(t, (list, tuple)):
                continue
            if len(t.shape) == 4 and tf.gradients(sel, t)[0] is not None:
                tensor = t
                break
    if tensor is None:
        raise MethodParameterError(
            f"layer {chosen.name!r} of model {model.name!r} has no 4-D output feeding the logits"
        )
    e.misc[key] = (chosen.name, tensor)
    return e.misc[key]


def conv_values_and_gradients(model, x: np.ndarray, targets: np.ndarray, layer: str | None):
    """Feature maps A (N, h, w, k) of the Grad-CAM layer and d logit[target] / dA."""
    e = entry(model)
    name, t = conv_layer_tensor(model, layer)
    fkey = ("conv_grad", name)
    fn = e.functions.get(fkey)
    if fn is None:
        inp, idx, sel = _selected_logit(e)
        with e.graph.as_default():
            g = tf.gradients(sel, t)[0]
        fn = keras.backend.function([inp, idx], [t, g])
        e.functions[fkey] = fn
    vals, grads = [], []
    for s in batch_slices(len(x), MAX_ROWS_PER_CALL):
        v, g = fn([x[s], targets[s]])
        vals.append(v)
        grads.append(g)
    return np.concatenate(vals), np.concatenate(grads)


# ----------------------------------------------------------------------------- helpers


def reduce_channels(a: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, H, W) float32 by summing channels."""
    a = np.asarray(a)
    if a.ndim == 4:
        a = a.sum(axis=-1)
    return a.astype(np.float32, copy=False)


def image_hash(x_i: np.ndarray) -> tuple[int, int]:
    """Two 32-bit words hashing an image's float32 bytes (position independent)."""
    d = hashlib.blake2b(np.ascontiguousarray(x_i, dtype=np.float32).tobytes(), digest_size=8).digest()
    return int.from_bytes(d[:4], "little"), int.from_bytes(d[4:], "little")


def image_seed(x_i: np.ndarray, seed: int) -> int:
    """A 32-bit seed for one image: a function of (seed, image content) only.

    Random methods seed per image from its content so that a map does not depend on
    the image's position in a batch or on the batch size (cached maps stay valid).
    """
    return int(np.random.SeedSequence([int(seed), *image_hash(x_i)]).generate_state(1)[0])


def call_model_function_factory(model) -> Callable:
    """A PAIR `call_model_function` over the softmax-free `model`.

    `call_model_args={"target": int array}` gives the explained class of every image
    of the batch that PAIR sees as one "input" (see `stacked_ig`); arrays whose
    second axis holds those images are flattened to rows and restored afterwards.
    """
    from saliency.core import base as pair_base

    def call_model_function(x_value_batch, call_model_args=None, expected_keys=None):
        targets = np.asarray(call_model_args["target"], dtype=np.int32)
        stacked = call_model_args.get("stacked", False)
        xb = np.asarray(x_value_batch, dtype=np.float32)
        shape = xb.shape
        if stacked:  # (S, N, H, W, C): S path points / noise draws of N images
            rows = xb.reshape((-1,) + shape[2:])
            t = np.tile(targets, shape[0])
        else:
            rows, t = xb, np.broadcast_to(targets, (len(xb),))
        out = {}
        if pair_base.INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[pair_base.INPUT_OUTPUT_GRADIENTS] = input_gradients(model, rows, t).reshape(shape)
        conv_keys = (pair_base.CONVOLUTION_LAYER_VALUES, pair_base.CONVOLUTION_OUTPUT_GRADIENTS)
        if any(k in expected_keys for k in conv_keys):
            if stacked:
                raise ValueError("Grad-CAM values cannot be stacked")
            v, g = conv_values_and_gradients(model, rows, t, call_model_args.get("layer"))
            out[pair_base.CONVOLUTION_LAYER_VALUES] = v
            out[pair_base.CONVOLUTION_OUTPUT_GRADIENTS] = g
        return out

    return call_model_function
