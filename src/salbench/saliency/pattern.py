"""PatternNet and PatternAttribution for TF2 Keras (Keras 2) models.

Kindermans, Schütt, Alber, Müller, Erhan, Kim, Dähne (2018). "Learning how to
explain neural networks: PatternNet and PatternAttribution." ICLR 2018
(arXiv:1705.05598, 2017). iNNvestigate 2.x dropped both methods (its issue #282);
this module is an independent rewrite for the layer types of salbench's models.

Patterns (``fit_patterns``)
---------------------------
For every Dense and Conv2D layer with kernel ``W`` (one column ``w_j`` per output
neuron ``j``), the layer input ``x`` and the pre-activation ``y_j = w_j^T x + b_j``
are collected over the training data. For a Conv2D layer every output position is
one sample: ``x`` is the receptive-field patch (kh*kw*C_in values, zero padding
included, in kernel order) that the layer multiplies with ``w_j`` there. Sums are
accumulated in float64 per chunk of images (``chunk_size``), so the data is never
held in memory; the conv patch sums are formed with ``conv2d_backprop_filter``
(sum over positions of patch (x) g) instead of materialising patches.

* Linear estimator ``S_a`` (paper eq. for the linear case; Haufe et al. 2014)::

      a_j = Cov[x, y_j] / (w_j^T Cov[x, y_j])

  over all samples. Because ``w_j^T Cov[x, y_j] = Cov[w_j^T x, y_j] = Var[y_j]``,
  this is ``Cov[x, y_j] / Var[y_j]``. Used for layers whose output is not
  rectified (the logit layer) and stored for every layer as ``a_linear``.

* Two-component estimator ``S_{a+-}`` for layers whose output goes through a ReLU
  (``activation="relu"`` or a directly following ``ReLU``/``Activation('relu')``
  layer)::

      a+_j = (E+[x y_j] - E+[x] E+[y_j]) / (w_j^T (E+[x y_j] - E+[x] E+[y_j]))

  where ``E+`` averages over the samples with ``y_j > 0`` (bias included in
  ``y_j``), and ``a-_j`` likewise over ``y_j <= 0``. Both are stored. The backward
  passes below use only ``a+``: the backward signal of a neuron with ``y_j <= 0``
  is zeroed by the ReLU gate, so ``a-`` never contributes (as in the paper's
  treatment of ReLU networks and iNNvestigate 1.x's ``"relu"`` pattern type).

  Note: iNNvestigate 1.x used ``E[y]`` over *all* samples in the positive-regime
  covariance; here ``E+[y]`` is used, as written in the paper.

* Denominators: the covariance form is ``cov = S_xy/n - (S_x/n)(S_y/n)`` from the
  float64 sums. A neuron's pattern column is set to **zero** and flagged in
  ``degenerate_*`` when its regime holds fewer than ``min_count`` samples (e.g. a
  ReLU that never fires on the training data) or when the denominator
  ``d_j = w_j^T cov_j`` (a variance, >= 0 in exact arithmetic) is not finite or
  ``d_j <= rel_eps * E[y_j^2]`` (the output is constant within the regime up to
  rounding, so the pattern is undefined). Otherwise ``w_j^T a_j = 1`` exactly up to
  rounding.

Backward passes (``patternnet``, ``patternattribution``)
--------------------------------------------------------
The model is run forward in float32 on its own weights (a final ``softmax`` is
treated as linear: explanations are of the logit). The backward signal starts at
the explained output neuron ``c`` with the value of its logit ``y_c`` (as
iNNvestigate's reverse analyzers do; all other outputs start at 0) and goes back
layer by layer:

* Dense/Conv2D with a ReLU: ``r <- r * 1[y > 0]`` (the forward pass's gate), then
  ``r_in = P r`` i.e. the transpose of the layer's linear map with the kernel
  replaced by ``P`` (Dense: ``r @ P^T``; Conv2D: the input-gradient
  (transposed convolution) of a conv with kernel ``P``).
* MaxPooling2D routes ``r`` to the forward argmax (exactly its gradient), Flatten
  reshapes, standalone ReLU gates with its input > 0, Dropout is the identity.

``P`` is the pattern for PatternNet (``a+`` for ReLU layers, ``a_linear`` for the
others) and ``W (.) P`` (element-wise product of kernel and pattern) for
PatternAttribution. For a linear model ``y = w^T x + b`` this gives
PatternNet = ``a * y_c`` (the paper's signal estimate ``s = a w^T x`` up to the
bias) and PatternAttribution = ``(w (.) a) * y_c``.

The explained neuron ``c`` is the predicted class (argmax of the logits) unless
``target`` gives an int or one int per sample.

Maps are float32 (N, H, W): the input-space signal summed over channels. Sign
convention: signed, in the units of the signal; because the pass starts at
``y_c``, a sample whose explained logit is negative has its map's sign flipped
relative to starting at +1 (the whole map is scaled by ``y_c``).

Usage::

    patterns = fit_patterns(model, train_batches)   # once per trained model (cache it)
    patterns.save(path); patterns = Patterns.load(path)
    maps = explain(model, x_batch, "patternnet", patterns=patterns)   # or patterns=path

Patterns remember a fingerprint of the weights they were fitted on; using them with
other weights (e.g. after cascading randomization) raises unless
``check_weights=False``. Both TF1 graph mode (``salbench.saliency.use_graph_mode()``) and
eager mode (via ``tf.function``) are supported.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf
from tensorflow import keras

from salbench.atomic import atomic_path
from salbench.batching import batch_slices
from salbench.saliency.registry import MethodParameterError, register

__all__ = [
    "ESTIMATORS",
    "LayerPattern",
    "MissingPatternsError",
    "Patterns",
    "UnsupportedLayerError",
    "fit_patterns",
    "patternattribution",
    "patternnet",
    "pattern_backward",
    "weights_fingerprint",
]

ESTIMATORS = ("two_component", "linear")
PATTERNS_FORMAT_VERSION = 1
# Images per forward/backward run inside one call; the pipeline passes 64.
EXPLAIN_CHUNK = 64


class UnsupportedLayerError(TypeError):
    """The model holds a layer (or configuration) the pattern methods cannot handle."""


class MissingPatternsError(ValueError):
    """Patterns are absent, incomplete, or were fitted on other weights."""


# --------------------------------------------------------------------------------------
# Model walk


@dataclass(frozen=True)
class _Step:
    kind: str  # "conv" | "dense" | "maxpool" | "flatten" | "relu" | "identity"
    layer: keras.layers.Layer
    relu: bool = False  # conv/dense with a fused ReLU activation
    relu_after: bool = False  # conv/dense whose output goes straight into a ReLU layer

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def rectified(self) -> bool:
        return self.relu or self.relu_after


_SUPPORTED = "Conv2D, Dense, MaxPooling2D, Flatten, InputLayer, ReLU, Activation('relu'|'linear'), Dropout"


def _activation_name(fn) -> str:
    try:
        name = keras.activations.serialize(fn)
    except Exception:  # custom callables
        name = None
    return name if isinstance(name, str) else repr(fn)


def _unsupported(layer, why: str = "") -> UnsupportedLayerError:
    what = f"layer {layer.name!r} of type {type(layer).__name__}"
    return UnsupportedLayerError(
        f"PatternNet/PatternAttribution do not support {what}{': ' + why if why else ''}. "
        f"Supported: {_SUPPORTED}, in a single chain from one input to one output."
    )


def _plan(model: keras.Model) -> list[_Step]:
    """The model as a chain of supported steps; raises UnsupportedLayerError otherwise."""
    if not getattr(model, "inputs", None) or not getattr(model, "outputs", None):
        raise UnsupportedLayerError("pattern methods need a built Keras model with a known input shape")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedLayerError("pattern methods need a model with one input and one output")
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    steps: list[_Step] = []
    prev = model.inputs[0]
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        if isinstance(layer, keras.Model):
            raise _unsupported(layer, "nested models are not supported; flatten the model")
        # the layer must consume the previous layer's output (a single chain)
        node = None
        for n in layer.inbound_nodes:
            ins = tf.nest.flatten(n.input_tensors)
            if len(ins) == 1 and ins[0] is prev:
                node = n
                break
        if node is None:
            raise UnsupportedLayerError(
                f"layer {layer.name!r} ({type(layer).__name__}) does not take the previous layer's output as "
                "its only input; pattern methods support single-chain (sequential) models only"
            )
        in_rank = prev.shape.rank
        outs = tf.nest.flatten(node.outputs)
        if len(outs) != 1:
            raise _unsupported(layer, "several outputs")
        prev = outs[0]
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            if isinstance(layer, keras.layers.Conv2D):
                if type(layer) is not keras.layers.Conv2D:  # Conv2DTranspose, SeparableConv...
                    raise _unsupported(layer)
                if layer.data_format != "channels_last":
                    raise _unsupported(layer, "only data_format='channels_last'")
                if getattr(layer, "groups", 1) != 1:
                    raise _unsupported(layer, "grouped convolution")
                kind = "conv"
            else:
                if type(layer) is not keras.layers.Dense:
                    raise _unsupported(layer)
                if in_rank != 2:
                    raise _unsupported(layer, "Dense on inputs of rank > 2; add a Flatten")
                kind = "dense"
            act = _activation_name(layer.activation)
            if act == "relu":
                steps.append(_Step(kind, layer, relu=True))
            elif act == "linear" or (act == "softmax" and last):
                steps.append(_Step(kind, layer))
            else:
                raise _unsupported(
                    layer, f"activation {act!r} (only 'relu', 'linear', and 'softmax' on the output layer)"
                )
        elif isinstance(layer, keras.layers.MaxPooling2D):
            if layer.data_format != "channels_last":
                raise _unsupported(layer, "only data_format='channels_last'")
            steps.append(_Step("maxpool", layer))
        elif type(layer) is keras.layers.Flatten:
            if layer.data_format != "channels_last":
                raise _unsupported(layer, "only data_format='channels_last'")
            steps.append(_Step("flatten", layer))
        elif type(layer) is keras.layers.ReLU:
            if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
                raise _unsupported(layer, "only the plain ReLU (no max_value, negative_slope, threshold)")
            steps.append(_Step("relu", layer))
        elif type(layer) is keras.layers.Activation:
            act = _activation_name(layer.activation)
            if act == "relu":
                steps.append(_Step("relu", layer))
            elif act == "linear" or (act == "softmax" and last):
                steps.append(_Step("identity", layer))
            else:
                raise _unsupported(layer, f"activation {act!r}")
        elif type(layer) is keras.layers.Dropout:
            steps.append(_Step("identity", layer))  # identity at inference
        else:
            raise _unsupported(layer)
    if prev is not model.outputs[0]:
        raise UnsupportedLayerError("the layer chain does not end at the model output")
    # a linear conv/dense directly followed by a ReLU layer is a rectified layer
    for i, st in enumerate(steps[:-1]):
        if st.kind in ("conv", "dense") and not st.relu and steps[i + 1].kind == "relu":
            steps[i] = _Step(st.kind, st.layer, relu_after=True)
    if not any(s.kind in ("conv", "dense") for s in steps):
        raise UnsupportedLayerError("the model has no Dense or Conv2D layer, so it has no patterns")
    return steps


def _kernel_steps(steps: list[_Step]) -> list[_Step]:
    return [s for s in steps if s.kind in ("conv", "dense")]


# --------------------------------------------------------------------------------------
# Graph pieces (work inside a TF1 graph and inside tf.function)


def _conv(layer, h, kernel):
    return tf.nn.convolution(
        h, kernel, strides=list(layer.strides), padding=layer.padding.upper(), dilations=list(layer.dilation_rate)
    )


def _preact(step: _Step, h, dtype=tf.float32):
    layer = step.layer
    kernel = tf.cast(layer.kernel, dtype)
    h = tf.cast(h, dtype)
    z = _conv(layer, h, kernel) if step.kind == "conv" else tf.matmul(h, kernel)
    if layer.use_bias:
        z = z + tf.cast(layer.bias, dtype)
    return z


@dataclass
class _Rec:
    h_in: tf.Tensor
    z: tf.Tensor | None
    out: tf.Tensor


def _forward(steps: list[_Step], x) -> list[_Rec]:
    recs = []
    h = x
    for st in steps:
        z = None
        if st.kind in ("conv", "dense"):
            z = _preact(st, h)
            out = tf.nn.relu(z) if st.relu else z
        elif st.kind == "maxpool":
            L = st.layer
            out = tf.nn.max_pool2d(h, ksize=list(L.pool_size), strides=list(L.strides), padding=L.padding.upper())
        elif st.kind == "flatten":
            out = tf.reshape(h, [tf.shape(h)[0], -1])
        elif st.kind == "relu":
            out = tf.nn.relu(h)
        else:  # identity
            out = h
        recs.append(_Rec(h, z, out))
        h = out
    return recs


def _stats_graph(steps: list[_Step], x, f64=tf.float64) -> list[tf.Tensor]:
    """Per kernel layer, sums over this chunk in dtype `f64` (see fit_patterns)."""
    recs = _forward(steps, x)
    outs = []
    for st, rec in zip(steps, recs):
        if st.kind not in ("conv", "dense"):
            continue
        x64 = tf.cast(rec.h_in, f64)
        z = _preact(st, rec.h_in, f64)  # float64 pre-activation from the float32 layer input
        ones = tf.ones_like(z[..., :1])
        cols = [z, ones]
        if st.rectified:
            m = tf.cast(z > 0, f64)
            cols = [m, z * m] + cols
        g = tf.concat(cols, axis=-1)
        if st.kind == "dense":
            s = tf.matmul(x64, g, transpose_a=True)  # (D, G)
            red = [0]
        else:
            L = st.layer
            kh, kw = L.kernel_size
            cin = int(L.kernel.shape[2])
            s = tf.compat.v1.nn.conv2d_backprop_filter(
                x64,
                filter_sizes=[kh, kw, cin, int(g.shape[-1])],
                out_backprop=g,
                strides=[1, *L.strides, 1],
                padding=L.padding.upper(),
                dilations=[1, *L.dilation_rate, 1],
            )  # sum over positions of patch (x) g: (kh, kw, cin, G)
            s = tf.reshape(s, [kh * kw * cin, int(g.shape[-1])])
            red = [0, 1, 2]
        sg = tf.reduce_sum(g, axis=red)  # column sums of g
        zz = tf.reduce_sum(z * z, axis=red)
        outs += [s, sg, zz]
        if st.rectified:
            outs.append(tf.reduce_sum(z * z * m, axis=red))
    return outs


def _backward_graph(steps: list[_Step], x, target, pats: list) -> list[tf.Tensor]:
    """Signal at the input for PatternNet/PatternAttribution with backward kernels ``pats``."""
    recs = _forward(steps, x)
    logits = recs[-1].out
    n_out = int(logits.shape[-1])
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    idx = tf.where(target >= 0, target, pred)
    r = tf.one_hot(idx, n_out, dtype=logits.dtype) * logits  # start at y_c
    it = iter(reversed(pats))
    for st, rec in reversed(list(zip(steps, recs))):
        if st.kind in ("conv", "dense"):
            p = next(it)
            if st.relu:
                r = r * tf.cast(rec.z > 0, r.dtype)
            if st.kind == "dense":
                r = tf.matmul(r, p, transpose_b=True)
            else:
                r = tf.gradients(_conv(st.layer, rec.h_in, p), rec.h_in, grad_ys=r)[0]
        elif st.kind == "maxpool":
            r = tf.gradients(rec.out, rec.h_in, grad_ys=r)[0]  # routes to the argmax
        elif st.kind == "flatten":
            r = tf.reshape(r, tf.shape(rec.h_in))
        elif st.kind == "relu":
            r = r * tf.cast(rec.h_in > 0, r.dtype)
    return [r, logits, idx]


# compiled functions per model: {model: {(key, eager): callable}}; values reference
# layers only, never the model, so the cache does not keep models alive
_COMPILED: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def _compiled(model: keras.Model, steps: list[_Step], key: str):
    eager = tf.executing_eagerly()
    per = _COMPILED.setdefault(model, {})
    ck = (key, eager)
    if ck in per:
        return per[ck]
    in_shape = [None, *model.inputs[0].shape.as_list()[1:]]
    kernels = [list(s.layer.kernel.shape) for s in _kernel_steps(steps)]
    if key in ("stats", "stats_float32"):
        specs = [(in_shape, tf.float32)]
        dtype = tf.float32 if key == "stats_float32" else tf.float64
        build = lambda x: _stats_graph(steps, x, dtype)  # noqa: E731
    elif key == "backward":
        specs = [(in_shape, tf.float32), ([None], tf.int32)] + [(k, tf.float32) for k in kernels]
        build = lambda x, t, *p: _backward_graph(steps, x, t, list(p))  # noqa: E731
    else:  # pragma: no cover
        raise KeyError(key)
    if eager:
        tf_fn = tf.function(build, input_signature=[tf.TensorSpec(s, d) for s, d in specs])

        def call(*arrays):
            return [o.numpy() for o in tf_fn(*arrays)]

    else:
        graph = getattr(model.inputs[0], "graph", None)
        if graph is None:
            raise TypeError(
                f"model {model.name!r} was built in eager mode but eager execution is now off; build or load "
                "the model after salbench.saliency.use_graph_mode()"
            )
        with graph.as_default():
            phs = [tf.compat.v1.placeholder(d, s) for s, d in specs]
            kfn = keras.backend.function(phs, build(*phs))

        def call(*arrays):
            return kfn(list(arrays))

    per[ck] = call
    return call


# --------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True, eq=False)
class LayerPattern:
    """Patterns of one Dense/Conv2D layer; arrays have the kernel's shape, float64.

    ``a_linear``: linear estimator over all samples. ``a_plus``/``a_minus``: the
    two-component estimator over samples with y > 0 / y <= 0 (None for layers whose
    output is not rectified). ``n``: samples per neuron (images x output positions);
    ``n_plus``: per output neuron, samples with y > 0. ``degenerate_*``: per output
    neuron, True where the pattern column was set to zero (see module docstring).
    """

    name: str
    kind: str  # "conv" | "dense"
    rectified: bool
    a_linear: np.ndarray
    degenerate_linear: np.ndarray
    n: int
    a_plus: np.ndarray | None = None
    a_minus: np.ndarray | None = None
    degenerate_plus: np.ndarray | None = None
    degenerate_minus: np.ndarray | None = None
    n_plus: np.ndarray | None = None

    def backward_pattern(self, estimator: str) -> np.ndarray:
        """The pattern used in the backward pass: a+ for rectified layers with the two-component estimator."""
        if estimator not in ESTIMATORS:
            raise MethodParameterError(f"unknown estimator {estimator!r}; valid: {list(ESTIMATORS)}")
        if self.rectified and estimator == "two_component":
            return self.a_plus
        return self.a_linear


_ARRAYS = ("a_linear", "degenerate_linear", "a_plus", "a_minus", "degenerate_plus", "degenerate_minus", "n_plus")


@dataclass(frozen=True, eq=False)
class Patterns:
    """Patterns of every Dense/Conv2D layer of one model, keyed by layer name (model order)."""

    layers: dict[str, LayerPattern]
    n_images: int
    weights_sha256: str  # fingerprint of the weights they were fitted on
    min_count: int
    rel_eps: float
    meta: dict = field(default_factory=dict)

    def content_sha256(self) -> str:
        """sha256 over every stored array and the scalar fields (e.g. for cache keys)."""
        h = hashlib.sha256(json.dumps(
            [self.n_images, self.weights_sha256, self.min_count, self.rel_eps], sort_keys=True).encode())
        for lp in self.layers.values():
            h.update(json.dumps([lp.name, lp.kind, lp.rectified, lp.n]).encode())
            for k in _ARRAYS:
                v = getattr(lp, k)
                if v is not None:
                    v = np.ascontiguousarray(v)
                    h.update(f"{k}{v.dtype.str}{v.shape}".encode())
                    h.update(v.tobytes())
        return h.hexdigest()

    def __getitem__(self, name: str) -> LayerPattern:
        return self.layers[name]

    def __repr__(self) -> str:
        return (f"Patterns({len(self.layers)} layers {list(self.layers)}, n_images={self.n_images}, "
                f"weights_sha256={self.weights_sha256[:12]}...)")

    def save(self, path) -> Path:
        """Write a .npz atomically (temp file in the same folder, then os.replace)."""
        path = Path(path)
        header = {
            "format": "salbench.patterns",
            "version": PATTERNS_FORMAT_VERSION,
            "n_images": int(self.n_images),
            "weights_sha256": self.weights_sha256,
            "min_count": int(self.min_count),
            "rel_eps": float(self.rel_eps),
            "meta": self.meta,
            "layers": [
                {"name": lp.name, "kind": lp.kind, "rectified": lp.rectified, "n": int(lp.n)}
                for lp in self.layers.values()
            ],
        }
        arrays = {"header": np.array(json.dumps(header))}
        for i, lp in enumerate(self.layers.values()):
            for k in _ARRAYS:
                v = getattr(lp, k)
                if v is not None:
                    arrays[f"{i}.{k}"] = np.asarray(v)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Patterns":
        with np.load(Path(path), allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("format") != "salbench.patterns" or header.get("version") != PATTERNS_FORMAT_VERSION:
                raise ValueError(f"{path}: not a salbench patterns file of version {PATTERNS_FORMAT_VERSION}")
            layers = {}
            for i, info in enumerate(header["layers"]):
                arr = {k: (z[f"{i}.{k}"] if f"{i}.{k}" in z.files else None) for k in _ARRAYS}
                layers[info["name"]] = LayerPattern(
                    name=info["name"], kind=info["kind"], rectified=info["rectified"], n=info["n"], **arr
                )
        return cls(layers, header["n_images"], header["weights_sha256"], header["min_count"],
                   header["rel_eps"], header.get("meta", {}))


def weights_fingerprint(model: keras.Model) -> str:
    """sha256 over names and float32 weights of the model's Dense/Conv2D layers."""
    return _fingerprint(_kernel_steps(_plan(model)))


def _fingerprint(ksteps, weights=None) -> str:
    h = hashlib.sha256()
    for i, st in enumerate(ksteps):
        h.update(st.name.encode() + b"\0")
        for w in (weights[i] if weights is not None else st.layer.get_weights()):
            w = np.ascontiguousarray(w, dtype=np.float32)
            h.update(str(w.shape).encode())
            h.update(w.tobytes())
    return h.hexdigest()


def _pattern(w2, n, sx, sy, sxy, syy, min_count, rel_eps):
    """Pattern columns from float64 sums; w2 (D, C); sx, sxy (D, C); n, sy, syy (C,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ex, ey, exy, eyy = sx / n, sy / n, sxy / n, syy / n
        cov = exy - ex * ey
        den = np.sum(w2 * cov, axis=0)
        ok = (n >= min_count) & np.isfinite(den) & (den > rel_eps * eyy)
        a = np.where(ok, cov / np.where(ok, den, 1.0), 0.0)
    return a, ~ok


def _prepare_x(model: keras.Model, x_batch) -> np.ndarray:
    x = np.asarray(x_batch, dtype=np.float32)
    want = model.inputs[0].shape.as_list()[1:]
    if x.ndim == len(want) and want[-1] == 1:
        x = x[..., None]
    if x.ndim != len(want) + 1 or any(w is not None and w != s for w, s in zip(want, x.shape[1:])):
        expect = ", ".join(map(str, want))
        raise ValueError(f"x_batch has shape {np.shape(x_batch)}; the model expects (N, {expect})")
    return x


def fit_patterns(
    model: keras.Model,
    batches: Iterable[np.ndarray],
    *,
    chunk_size: int = 8,
    min_count: int = 2,
    rel_eps: float = 1e-10,
    chunk_dtype: str = "float64",
) -> Patterns:
    """Estimate the patterns of every Dense/Conv2D layer from training data (one pass).

    ``batches``: an iterable of input arrays (N, H, W, C) (or (N, H, W) for one
    channel), e.g. the training set read batch by batch; an ndarray is treated as a
    single batch. Each batch is processed in chunks of ``chunk_size`` images, and
    only float64 sums are kept (memory: a few hundred MB for chunk_size=8 at
    140x192 with 32 channels). ``min_count``/``rel_eps``: the degeneracy rule for
    denominators (module docstring). Returns linear and (for rectified layers)
    two-component patterns; see the module docstring for the exact formulas.
    ``chunk_dtype="float32"`` computes each chunk's sums in float32 (about 4x faster
    on CPU) and still accumulates chunks in float64; a chunk's sums then carry float32
    rounding (relative ~1e-6), which is what the CPU profile trades for time.
    """
    if chunk_dtype not in ("float64", "float32"):
        raise ValueError(f"chunk_dtype={chunk_dtype!r}: choose 'float64' or 'float32'")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if min_count < 2:
        raise ValueError("min_count must be >= 2 (a covariance needs two samples)")
    steps = _plan(model)
    ksteps = _kernel_steps(steps)
    fn = _compiled(model, steps, "stats" if chunk_dtype == "float64" else "stats_float32")
    if isinstance(batches, np.ndarray):
        batches = [batches]
    acc = None
    n_images = 0
    for batch in batches:
        x = _prepare_x(model, batch)
        for s in batch_slices(len(x), chunk_size):
            outs = fn(x[s])
            outs = [np.asarray(o, dtype=np.float64) for o in outs]
            acc = outs if acc is None else [a + o for a, o in zip(acc, outs)]
        n_images += len(x)
    if n_images == 0:
        raise ValueError("fit_patterns got no data: `batches` yielded no images")
    weights = [st.layer.get_weights() for st in ksteps]
    layers = {}
    pos = 0
    for st, wts in zip(ksteps, weights):
        w2 = np.asarray(wts[0], np.float64)
        kshape = w2.shape
        w2 = w2.reshape(-1, kshape[-1])
        c = w2.shape[1]
        s, sg, zz = acc[pos], acc[pos + 1], acc[pos + 2]
        pos += 3
        # columns of g: [mask (C), z*mask (C)] if rectified, then [z (C), ones (1)]
        off = 2 * c if st.rectified else 0
        sxy, sx = s[:, off:off + c], s[:, off + c]
        sy, n = sg[off:off + c], sg[off + c]
        n_all = np.full(c, n)
        a_lin, deg_lin = _pattern(w2, n_all, sx[:, None], sy, sxy, zz, min_count, rel_eps)
        kw = dict(
            name=st.name, kind=st.kind, rectified=st.rectified, n=int(round(n)),
            a_linear=a_lin.reshape(kshape), degenerate_linear=deg_lin,
        )
        if st.rectified:
            zz_p = acc[pos]
            pos += 1
            n_p, sy_p = sg[:c], sg[c:2 * c]
            sx_p, sxy_p = s[:, :c], s[:, c:2 * c]
            a_p, deg_p = _pattern(w2, n_p, sx_p, sy_p, sxy_p, zz_p, min_count, rel_eps)
            a_m, deg_m = _pattern(w2, n_all - n_p, sx[:, None] - sx_p, sy - sy_p, sxy - sxy_p, zz - zz_p,
                                  min_count, rel_eps)
            kw.update(a_plus=a_p.reshape(kshape), a_minus=a_m.reshape(kshape), degenerate_plus=deg_p,
                      degenerate_minus=deg_m, n_plus=np.round(n_p).astype(np.int64))
        layers[st.name] = LayerPattern(**kw)
    return Patterns(
        layers, n_images, _fingerprint(ksteps, weights), min_count, rel_eps,
        meta={"tensorflow": tf.__version__, "estimators": list(ESTIMATORS)},
    )


# --------------------------------------------------------------------------------------
# Explanations


def _resolve_patterns(patterns) -> Patterns:
    if patterns is None:
        raise MissingPatternsError(
            "PatternNet/PatternAttribution need patterns: pass patterns=fit_patterns(model, train_batches) "
            "or patterns=Patterns.load(path) (or a path to a saved .npz)"
        )
    if isinstance(patterns, (str, os.PathLike)):
        return Patterns.load(patterns)
    if not isinstance(patterns, Patterns):
        raise TypeError(f"patterns must be a Patterns object or a path, not {type(patterns).__name__}")
    return patterns


def _targets(target, n: int, n_out: int) -> np.ndarray:
    """-1 (predicted class, resolved in the graph) or the given class index, per sample."""
    from salbench.saliency.methods_common import check_target

    t = check_target(None if isinstance(target, str) and target == "predicted" else target, n, n_out)
    return np.full(n, -1, np.int32) if t is None else t


def pattern_backward(
    model: keras.Model,
    x_batch,
    patterns,
    *,
    attribution: bool,
    target=None,
    estimator: str = "two_component",
    check_weights: bool = True,
    return_signal: bool = False,
):
    """The shared backward pass; returns (N, H, W) float32 maps (or the (N, H, W, C) signal).

    ``attribution=False``: PatternNet (kernels replaced by patterns);
    ``attribution=True``: PatternAttribution (kernels replaced by W (.) pattern).
    ``check_weights``: raise if the patterns were fitted on other weights.
    """
    steps = _plan(model)
    ksteps = _kernel_steps(steps)
    pats = _resolve_patterns(patterns)
    if estimator not in ESTIMATORS:
        raise MethodParameterError(f"unknown estimator {estimator!r}; valid: {list(ESTIMATORS)}")
    missing = [st.name for st in ksteps if st.name not in pats.layers]
    if missing:
        raise MissingPatternsError(
            f"patterns lack layer(s) {missing}; they were fitted on another model "
            f"(patterns hold {list(pats.layers)}). Refit with fit_patterns(model, ...)"
        )
    weights = [st.layer.get_weights() for st in ksteps]
    if check_weights and _fingerprint(ksteps, weights) != pats.weights_sha256:
        raise MissingPatternsError(
            "the patterns were fitted on different weights than this model's (fingerprint mismatch); "
            "refit them, or pass check_weights=False to use them anyway"
        )
    kernels = []
    for st, w in zip(ksteps, weights):
        lp = pats.layers[st.name]
        p = lp.backward_pattern(estimator)
        if p is None or p.shape != w[0].shape:
            raise MissingPatternsError(
                f"pattern of layer {st.name!r} has shape {None if p is None else p.shape}, kernel {w[0].shape}"
            )
        if lp.rectified != st.rectified:
            raise MissingPatternsError(f"layer {st.name!r}: patterns were fitted for a different activation")
        kernels.append(np.asarray(p * w[0] if attribution else p, np.float32))
    x = _prepare_x(model, x_batch)
    n_out = int(model.outputs[0].shape[-1])
    t = _targets(target, len(x), n_out)
    fn = _compiled(model, steps, "backward")
    sig = [fn(x[s], t[s], *kernels)[0] for s in batch_slices(len(x), EXPLAIN_CHUNK)]
    sig = np.concatenate(sig, axis=0) if sig else np.zeros_like(x)
    if return_signal:
        return sig.astype(np.float32)
    return sig.sum(axis=-1).astype(np.float32)


@register("patternnet", signed=True, papers=("budding",), resources={"patterns": "patterns"})
def patternnet(model, x_batch, *, patterns=None, target=None, estimator="two_component", check_weights=True):
    """PatternNet (Kindermans et al. 2017): the signal of the explained logit, back-projected with patterns.

    Backward pass of the gradient with every Dense/Conv2D kernel replaced by its pattern
    (two-component a+ for ReLU layers, linear Cov[x,y]/Var[y] for the logit layer;
    ``estimator="linear"`` uses the linear pattern everywhere), ReLU gates and max-pool
    routing from the forward pass, starting at the logit value y_c of ``target``
    (None = the predicted class, argmax of the logits; or an int / one int per sample).
    ``patterns``: a `Patterns` from ``fit_patterns`` on training data, or the path of a
    saved .npz (required). ``check_weights``: refuse patterns fitted on other weights.
    Map: float32 (N, H, W), channel-summed, signed (scaled by y_c). Formulas: see
    ``salbench.saliency.pattern``.
    """
    return pattern_backward(model, x_batch, patterns, attribution=False, target=target,
                            estimator=estimator, check_weights=check_weights)


@register("patternattribution", signed=True, papers=("budding",), resources={"patterns": "patterns"})
def patternattribution(model, x_batch, *, patterns=None, target=None, estimator="two_component",
                       check_weights=True):
    """PatternAttribution (Kindermans et al. 2017): relevance back-propagated with weights W (.) a.

    As PatternNet but every kernel is replaced by the element-wise product of kernel and
    pattern; for a linear model the map is (w (.) a) * y_c. Starts at the logit y_c of
    ``target`` (None = predicted class); parameters as for ``patternnet``; float32
    (N, H, W), channel-summed, signed. Formulas: see ``salbench.saliency.pattern``.
    """
    return pattern_backward(model, x_batch, patterns, attribution=True, target=target,
                            estimator=estimator, check_weights=check_weights)
