"""Reference tests for PatternNet / PatternAttribution (Kindermans et al. 2017).

Closed forms and slow float64 numpy rewrites on tiny models. Runs in TF1 graph mode,
(marked ``graph``: conftest calls salbench.saliency.use_graph_mode()).
"""

import inspect
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


from tensorflow import keras  # noqa: E402

import salbench.saliency.pattern as pat  # noqa: E402
from salbench.saliency import registry  # noqa: E402

pytestmark = pytest.mark.graph

# Patterns of a layer whose input is the data itself: float64 one-pass sums
# (E[xy] - E[x]E[y]) vs numpy's two-pass covariance lose a few of float64's ~16 digits
# to cancellation, nothing more.
RTOL_PATTERN_FIRST = 1e-9
# Patterns of deeper layers: their inputs come from the model's float32 forward pass,
# while the numpy reference recomputes them in float64 (relative differences ~1e-7,
# amplified by the covariance's cancellation).
RTOL_PATTERN_DEEP = 1e-4
# Maps: the TF backward pass runs in float32, the numpy reference in float64;
# a handful of float32 roundings per layer on O(1) values (observed ~3e-7).
RTOL_MAP_FLOAT32 = 1e-5
# Signal recovery: with 4000 samples the sample correlation of signal and distractor
# is ~3/sqrt(4000) ~ 0.05 of the signal variance, so the estimated pattern deviates
# from a_s by a few per cent in norm, i.e. cosine >= ~0.998; 0.99 leaves margin.
MIN_COS_SIGNAL = 0.99
# By construction cos(w, a_s) = sqrt(1 - 0.8**2) = 0.6; "clearly lower" means < 0.7.
MAX_COS_GRADIENT = 0.7
# PatternNet's map on the linear model equals s * a_s up to the pattern's estimation
# error (see MIN_COS_SIGNAL): a few per cent of the signal's norm.
RTOL_SIGNAL_ESTIMATE = 0.05
# w^T a = 1 holds for every non-degenerate pattern column up to float64 rounding.
ATOL_NORMALISATION = 1e-9


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _randomise(model, rng, bias_scale=0.1):
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        kernel = ws[0]
        fan_in = int(np.prod(kernel.shape[:-1]))
        new = [rng.normal(0, 1 / np.sqrt(fan_in), kernel.shape).astype(np.float32)]
        new += [rng.normal(0, bias_scale, w.shape).astype(np.float32) for w in ws[1:]]
        layer.set_weights(new)
    return model


def _batches(x, size):
    for i in range(0, len(x), size):
        yield x[i:i + size]


# ----------------------------------------------------------------------------- numpy references


def _np_pattern(X, Y, W, mask=None):
    """Two-pass float64 pattern a_j = Cov[x, y_j] / (w_j^T Cov[x, y_j]) over the masked samples."""
    A = np.zeros_like(W)
    for j in range(W.shape[1]):
        sel = np.ones(len(X), bool) if mask is None else mask[:, j]
        xs, ys = X[sel], Y[sel, j]
        cov = ((xs - xs.mean(0)) * (ys - ys.mean())[:, None]).mean(0)
        A[:, j] = cov / (W[:, j] @ cov)
    return A


def _np_patches(x, kh, kw):
    """(N, H, W, kh*kw*C) 'same'-padded stride-1 patches in kernel order (row, col, channel)."""
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # N,H,W,C,kh,kw
    n, h, w, c = x.shape
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, h, w, kh * kw * c)


def _np_conv_forward(x, K, b):
    kh, kw, cin, cout = K.shape
    return _np_patches(x, kh, kw) @ K.reshape(-1, cout) + b


def _np_conv_backward(r, P, in_shape):
    """Transpose of the 'same' stride-1 conv with kernel P applied to r (N, H, W, Cout)."""
    kh, kw, cin, cout = P.shape
    n, h, w, _ = in_shape
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    out = np.zeros((n, h + kh - 1, w + kw - 1, cin))
    for a in range(kh):
        for b in range(kw):
            out[:, a:a + h, b:b + w, :] += np.einsum("nhwo,co->nhwc", r, P[a, b])
    return out[:, ph:ph + h, pw:pw + w, :]


def _np_maxpool(h):
    """2x2 stride-2 'valid' max pooling; returns output and argmax within each window."""
    n, H, W, c = h.shape
    h2, w2 = H // 2, W // 2
    win = h[:, :2 * h2, :2 * w2].reshape(n, h2, 2, w2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h2, w2, c, 4)
    return win.max(-1), win.argmax(-1)


def _np_maxpool_backward(r, arg, in_shape):
    n, H, W, c = in_shape
    h2, w2 = r.shape[1:3]
    win = np.zeros((n, h2, w2, c, 4))
    np.put_along_axis(win, arg[..., None], r[..., None], axis=-1)
    out = np.zeros(in_shape)
    win = win.reshape(n, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
    out[:, :2 * h2, :2 * w2] = win.reshape(n, 2 * h2, 2 * w2, c)
    return out


def _np_convnet_maps(x, weights, kernels, target=None):
    """Float64 PatternNet/PatternAttribution on conv(relu) -> maxpool -> flatten -> dense.

    `kernels` are the backward kernels (patterns, or weights (.) patterns)."""
    (K1, b1), (K2, b2) = weights
    P1, P2 = kernels
    x = x.astype(np.float64)
    z1 = _np_conv_forward(x, K1.astype(np.float64), b1)
    h1 = np.maximum(z1, 0)
    h2, arg = _np_maxpool(h1)
    y = h2.reshape(len(x), -1) @ K2 + b2
    c = y.argmax(1) if target is None else np.broadcast_to(target, (len(x),))
    r = np.zeros_like(y)
    r[np.arange(len(x)), c] = y[np.arange(len(x)), c]  # start at the logit y_c
    r = (r @ P2.T).reshape(h2.shape)
    r = _np_maxpool_backward(r, arg, h1.shape) * (z1 > 0)
    return _np_conv_backward(r, P1, x.shape).sum(-1)


# ----------------------------------------------------------------------------- models


def _linear_model(n_in=8, n_out=2, image=False):
    if image:
        inp = keras.Input((4, 4, 1))
        out = keras.layers.Dense(n_out, name="out")(keras.layers.Flatten(name="flat")(inp))
    else:
        inp = keras.Input((n_in,))
        out = keras.layers.Dense(n_out, name="out")(inp)
    return keras.Model(inp, out)


def _convnet(separate_relu=False, dropout=False):
    inp = keras.Input((6, 5, 2))
    if separate_relu:
        h = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inp)
        h = keras.layers.ReLU(name="relu")(h)
    else:
        h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    if dropout:
        h = keras.layers.Dropout(0.5, name="drop")(h)
    out = keras.layers.Dense(2, activation="softmax", name="logits")(h)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def convnet_case():
    rng = np.random.default_rng(3)
    model = _randomise(_convnet(), rng)
    x = rng.uniform(0, 1, (150, 6, 5, 2)).astype(np.float32)
    patterns = pat.fit_patterns(model, _batches(x, 64), chunk_size=16)
    return model, x, patterns


# ----------------------------------------------------------------------------- patterns


def test_linear_pattern_equals_haufe():
    """Linear model y = W^T x + b: pattern = Cov[x, y] / Var[y] (Haufe et al. 2014)."""
    rng = np.random.default_rng(0)
    model = _randomise(_linear_model(n_in=8, n_out=2), rng, bias_scale=1.0)
    mix = rng.normal(size=(8, 8))
    x = (rng.normal(size=(300, 8)) @ mix + 0.5).astype(np.float32)  # correlated, non-zero mean
    patterns = pat.fit_patterns(model, _batches(x, 64), chunk_size=16)

    W, b = (w.astype(np.float64) for w in model.get_layer("out").get_weights())
    X = x.astype(np.float64)
    Y = X @ W + b
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    haufe = (Xc.T @ Yc / len(X)) / (Yc ** 2).mean(0)

    lp = patterns["out"]
    assert not lp.rectified and lp.a_plus is None
    assert lp.n == 300 and patterns.n_images == 300
    assert _rel_err(lp.a_linear, haufe) < RTOL_PATTERN_FIRST
    np.testing.assert_allclose((W * lp.a_linear).sum(0), 1.0, atol=ATOL_NORMALISATION)


def test_two_component_patterns_on_relu_layer():
    """One hidden ReLU layer: a+ / a- over samples with pre-activation > 0 / <= 0."""
    rng = np.random.default_rng(1)
    inp = keras.Input((6,))
    h = keras.layers.Dense(5, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(h))
    _randomise(model, rng, bias_scale=0.3)
    x = (rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.3).astype(np.float32)
    patterns = pat.fit_patterns(model, _batches(x, 64), chunk_size=32)

    W1, b1 = (w.astype(np.float64) for w in model.get_layer("hidden").get_weights())
    X = x.astype(np.float64)
    Z = X @ W1 + b1
    pos = Z > 0
    assert 0 < pos.mean() < 1  # both regimes populated
    lp = patterns["hidden"]
    assert lp.rectified
    np.testing.assert_array_equal(lp.n_plus, pos.sum(0))
    assert _rel_err(lp.a_plus, _np_pattern(X, Z, W1, pos)) < RTOL_PATTERN_FIRST
    assert _rel_err(lp.a_minus, _np_pattern(X, Z, W1, ~pos)) < RTOL_PATTERN_FIRST
    assert _rel_err(lp.a_linear, _np_pattern(X, Z, W1)) < RTOL_PATTERN_FIRST
    # a+ is not the linear pattern: the split matters
    assert _rel_err(lp.a_plus, lp.a_linear) > 0.05

    # output layer: linear estimator on the hidden activations
    W2, b2 = (w.astype(np.float64) for w in model.get_layer("out").get_weights())
    H = np.maximum(Z, 0)
    assert patterns["out"].a_plus is None
    assert _rel_err(patterns["out"].a_linear, _np_pattern(H, H @ W2 + b2, W2)) < RTOL_PATTERN_DEEP
    for lp, W in ((lp, W1), (patterns["out"], W2)):
        np.testing.assert_allclose((W * lp.backward_pattern("two_component")).sum(0), 1.0, atol=ATOL_NORMALISATION)


def test_conv_patterns_match_numpy_patches(convnet_case):
    """Conv2D: every output position is a sample whose x is its zero-padded 3x3 patch."""
    model, x, patterns = convnet_case
    K, b = (w.astype(np.float64) for w in model.get_layer("conv").get_weights())
    X = _np_patches(x.astype(np.float64), 3, 3).reshape(-1, 18)
    Z = X @ K.reshape(18, 3) + b
    pos = Z > 0
    lp = patterns["conv"]
    assert lp.n == 150 * 6 * 5 and lp.a_plus.shape == K.shape
    np.testing.assert_array_equal(lp.n_plus, pos.sum(0))
    W2 = K.reshape(18, 3)
    assert _rel_err(lp.a_plus.reshape(18, 3), _np_pattern(X, Z, W2, pos)) < RTOL_PATTERN_FIRST
    assert _rel_err(lp.a_minus.reshape(18, 3), _np_pattern(X, Z, W2, ~pos)) < RTOL_PATTERN_FIRST
    assert _rel_err(lp.a_linear.reshape(18, 3), _np_pattern(X, Z, W2)) < RTOL_PATTERN_FIRST

    Kd, bd = (w.astype(np.float64) for w in model.get_layer("logits").get_weights())
    H = _np_maxpool(np.maximum(_np_conv_forward(x.astype(np.float64), K, b), 0))[0].reshape(len(x), -1)
    assert _rel_err(patterns["logits"].a_linear, _np_pattern(H, H @ Kd + bd, Kd)) < RTOL_PATTERN_DEEP


# float32 chunk sums (then float64 across chunks): relative rounding ~1e-6 per chunk sum,
# amplified by the covariance subtraction on these well-conditioned random data.
RTOL_FLOAT32_CHUNKS = 1e-3


def test_float32_chunks_agree_with_float64(convnet_case):
    model, x, patterns = convnet_case
    fast = pat.fit_patterns(model, _batches(x, 64), chunk_size=16, chunk_dtype="float32")
    for name in ("conv", "logits"):
        assert _rel_err(fast[name].a_linear, patterns[name].a_linear) < RTOL_FLOAT32_CHUNKS
    assert _rel_err(fast["conv"].a_plus, patterns["conv"].a_plus) < RTOL_FLOAT32_CHUNKS
    with pytest.raises(ValueError, match="chunk_dtype='float16'"):
        pat.fit_patterns(model, x, chunk_dtype="float16")


def test_dead_relu_gets_zero_pattern_and_flag():
    """A ReLU that never fires has no positive-regime statistics: a+ column is zero and flagged."""
    rng = np.random.default_rng(2)
    inp = keras.Input((4,))
    h = keras.layers.Dense(3, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(h))
    _randomise(model, rng)
    W, b = model.get_layer("hidden").get_weights()
    model.get_layer("hidden").set_weights([W, np.array([1e3, -1e3, 1e3], np.float32)])  # on, dead, on
    x = rng.uniform(0, 1, (100, 4)).astype(np.float32)
    lp = pat.fit_patterns(model, [x])["hidden"]
    np.testing.assert_array_equal(lp.n_plus, [100, 0, 100])
    np.testing.assert_array_equal(lp.degenerate_plus, [False, True, False])
    np.testing.assert_array_equal(lp.degenerate_minus, [True, False, True])
    assert np.all(lp.a_plus[:, 1] == 0) and np.all(lp.a_minus[:, [0, 2]] == 0)
    assert np.all(lp.a_plus[:, [0, 2]] != 0) and np.all(lp.a_minus[:, 1] != 0)
    assert np.all(np.isfinite(lp.a_plus)) and np.all(np.isfinite(lp.a_minus))


# ----------------------------------------------------------------------------- maps


def test_patternnet_recovers_signal_not_gradient():
    """x = s a_s + d a_d, w orthogonal to a_d with w^T a_s = 1: PatternNet finds a_s; w does not."""
    rng = np.random.default_rng(4)
    u = rng.normal(size=16)
    u /= np.linalg.norm(u)
    v = rng.normal(size=16)
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    a_s = 2.0 * u
    a_d = 2.0 * (0.8 * u + 0.6 * v)  # cos(a_s, a_d) = 0.8
    w = a_s - (a_s @ a_d) / (a_d @ a_d) * a_d  # remove the distractor direction ...
    w /= w @ a_s  # ... and normalise: w^T a_d = 0, w^T a_s = 1
    s = rng.normal(size=4000)
    d = 3.0 * rng.normal(size=4000)
    x = (np.outer(s, a_s) + np.outer(d, a_d)).astype(np.float32).reshape(-1, 4, 4, 1)

    model = _linear_model(n_out=1, image=True)
    model.get_layer("out").set_weights([w.reshape(16, 1).astype(np.float32), np.zeros(1, np.float32)])
    patterns = pat.fit_patterns(model, _batches(x, 500), chunk_size=500)

    maps = pat.patternnet(model, x[:50], patterns=patterns)
    assert maps.shape == (50, 4, 4) and maps.dtype == np.float32
    flat = maps.reshape(50, -1).astype(np.float64)
    cos_map = np.abs(flat @ a_s) / (np.linalg.norm(flat, axis=1) * np.linalg.norm(a_s))
    assert cos_map.min() > MIN_COS_SIGNAL
    cos_grad = abs(w @ a_s) / (np.linalg.norm(w) * np.linalg.norm(a_s))
    assert cos_grad < MAX_COS_GRADIENT
    # the map is the signal component itself, s * a_s (y = w^T x = s)
    assert _rel_err(flat, np.outer(s[:50], a_s)) < RTOL_SIGNAL_ESTIMATE


def test_patternattribution_on_linear_model_is_w_times_a_times_logit():
    rng = np.random.default_rng(5)
    model = _randomise(_linear_model(n_out=3, image=True), rng, bias_scale=1.0)
    x = rng.uniform(0, 1, (200, 4, 4, 1)).astype(np.float32)
    patterns = pat.fit_patterns(model, _batches(x, 64))
    W, b = (v.astype(np.float64) for v in model.get_layer("out").get_weights())
    A = patterns["out"].a_linear
    X = x.reshape(len(x), -1).astype(np.float64)
    Y = X @ W + b

    for target in (None, "predicted", 2, np.arange(len(x)) % 3):
        c = Y.argmax(1) if target is None or isinstance(target, str) else np.broadcast_to(target, (len(x),))
        yc = Y[np.arange(len(x)), c][:, None]
        expect_pa = ((W * A)[:, c].T * yc).reshape(-1, 4, 4)
        expect_pn = (A[:, c].T * yc).reshape(-1, 4, 4)
        got_pa = pat.patternattribution(model, x, patterns=patterns, target=target)
        got_pn = pat.patternnet(model, x, patterns=patterns, target=target)
        assert _rel_err(got_pa, expect_pa) < RTOL_MAP_FLOAT32
        assert _rel_err(got_pn, expect_pn) < RTOL_MAP_FLOAT32
        assert got_pa.dtype == np.float32 and got_pa.shape == (200, 4, 4)


@pytest.mark.parametrize("method", ["patternnet", "patternattribution"])
@pytest.mark.parametrize("target", [None, 1])
def test_convnet_maps_equal_numpy_backward(convnet_case, method, target):
    model, x, patterns = convnet_case
    weights = [[w.astype(np.float64) for w in model.get_layer(n).get_weights()] for n in ("conv", "logits")]
    kernels = [patterns[n].backward_pattern("two_component") for n in ("conv", "logits")]
    if method == "patternattribution":
        kernels = [w[0] * k for w, k in zip(weights, kernels)]
    expect = _np_convnet_maps(x, weights, kernels, target)
    fn = registry.get(method).fn
    got = fn(model, x, patterns=patterns, target=target)
    assert got.shape == (150, 6, 5) and got.dtype == np.float32
    assert np.abs(expect).max() > 0
    assert _rel_err(got, expect) < RTOL_MAP_FLOAT32


def test_linear_estimator_option_uses_a_linear(convnet_case):
    model, x, patterns = convnet_case
    weights = [[w.astype(np.float64) for w in model.get_layer(n).get_weights()] for n in ("conv", "logits")]
    kernels = [patterns[n].a_linear for n in ("conv", "logits")]
    expect = _np_convnet_maps(x[:20], weights, kernels)
    got = pat.patternnet(model, x[:20], patterns=patterns, estimator="linear")
    assert _rel_err(got, expect) < RTOL_MAP_FLOAT32
    assert _rel_err(got, pat.patternnet(model, x[:20], patterns=patterns)) > 0.01  # the estimator matters


def test_standalone_relu_and_dropout_equal_fused_relu(convnet_case):
    """Conv2D(linear) + ReLU layer (+ Dropout, identity at inference) is the fused conv."""
    model, x, patterns = convnet_case
    other = _convnet(separate_relu=True, dropout=True)
    for name in ("conv", "logits"):
        other.get_layer(name).set_weights(model.get_layer(name).get_weights())
    p2 = pat.fit_patterns(other, [x])
    assert p2["conv"].rectified
    np.testing.assert_allclose(p2["conv"].a_plus, patterns["conv"].a_plus, rtol=0, atol=1e-12)
    for method in (pat.patternnet, pat.patternattribution):
        np.testing.assert_array_equal(method(other, x, patterns=p2), method(model, x, patterns=patterns))


def test_channel_axis_optional_and_batches_larger_than_explain_chunk():
    rng = np.random.default_rng(6)
    inp = keras.Input((5, 4, 1))
    h = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = _randomise(keras.Model(inp, out), rng)
    x = rng.uniform(0, 1, (pat.EXPLAIN_CHUNK + 7, 5, 4)).astype(np.float32)
    patterns = pat.fit_patterns(model, x)  # an ndarray is one batch; no channel axis
    full = pat.patternnet(model, x, patterns=patterns)
    parts = np.concatenate([pat.patternnet(model, x[:10], patterns=patterns),
                            pat.patternnet(model, x[10:], patterns=patterns)])
    np.testing.assert_allclose(full, parts, rtol=0, atol=1e-6 * np.abs(full).max())


# ----------------------------------------------------------------------------- save / errors


def test_save_load_roundtrip(convnet_case, tmp_path):
    model, x, patterns = convnet_case
    path = patterns.save(tmp_path / "cache" / "patterns.npz")
    assert sorted(p.name for p in path.parent.iterdir()) == ["patterns.npz"]  # no temp file left
    loaded = pat.Patterns.load(path)
    assert list(loaded.layers) == list(patterns.layers)
    assert (loaded.n_images, loaded.weights_sha256, loaded.min_count, loaded.rel_eps) == (
        patterns.n_images, patterns.weights_sha256, patterns.min_count, patterns.rel_eps)
    for name, lp in patterns.layers.items():
        lq = loaded[name]
        assert (lq.kind, lq.rectified, lq.n) == (lp.kind, lp.rectified, lp.n)
        for k in pat._ARRAYS:
            a, b = getattr(lp, k), getattr(lq, k)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype
    assert loaded.content_sha256() == patterns.content_sha256()
    np.testing.assert_array_equal(pat.patternnet(model, x[:5], patterns=str(path)),
                                  pat.patternnet(model, x[:5], patterns=patterns))
    path.write_bytes(b"not an npz")
    with pytest.raises(Exception):
        pat.Patterns.load(path)


def test_missing_and_mismatched_patterns_raise(convnet_case):
    model, x, patterns = convnet_case
    with pytest.raises(pat.MissingPatternsError, match="fit_patterns"):
        pat.patternnet(model, x[:2])
    other = _randomise(_linear_model(image=True), np.random.default_rng(7))
    p_other = pat.fit_patterns(other, np.random.default_rng(8).uniform(size=(20, 4, 4, 1)))
    with pytest.raises(pat.MissingPatternsError, match="'conv'"):
        pat.patternattribution(model, x[:2], patterns=p_other)
    # same architecture, other weights: fingerprint mismatch unless explicitly allowed
    twin = _randomise(_convnet(), np.random.default_rng(9))
    with pytest.raises(pat.MissingPatternsError, match="different weights"):
        pat.patternnet(twin, x[:2], patterns=patterns)
    assert pat.patternnet(twin, x[:2], patterns=patterns, check_weights=False).shape == (2, 6, 5)
    with pytest.raises(registry.MethodParameterError, match="estimator"):
        pat.patternnet(model, x[:2], patterns=patterns, estimator="bogus")
    for bad in (2, -1, 0.5, [0, 1, 0]):
        with pytest.raises(registry.MethodParameterError, match="target"):
            pat.patternnet(model, x[:2], patterns=patterns, target=bad)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda h: keras.layers.BatchNormalization(name="bn")(h), "BatchNormalization"),
        (lambda h: keras.layers.Conv2D(2, 3, activation="tanh", name="c")(h), "tanh"),
        (lambda h: keras.layers.AveragePooling2D(name="avg")(h), "AveragePooling2D"),
        (lambda h: keras.layers.Add(name="res")([h, keras.layers.Conv2D(1, 1, name="c1")(h)]), "Add"),
    ],
)
def test_unsupported_layer_raises_naming_it(make, match):
    inp = keras.Input((6, 6, 1))
    h = make(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    with pytest.raises(pat.UnsupportedLayerError, match=match):
        pat.fit_patterns(model, np.zeros((2, 6, 6, 1), np.float32))
    with pytest.raises(pat.UnsupportedLayerError, match=match):
        pat.patternnet(model, np.zeros((2, 6, 6, 1), np.float32), patterns=None)


def test_registered_with_parameters():
    for name in ("patternnet", "patternattribution"):
        m = registry.get(name)
        assert m.signed and "budding" in m.papers
        assert m.defaults == {"patterns": None, "target": None, "estimator": "two_component",
                              "check_weights": True}


def test_eager_mode_gives_same_patterns_and_maps(tmp_path):
    """The same code compiled with tf.function (in an eager process) agrees with graph mode.

    The subprocess bypasses the package __init__ (which switches eager off) by
    registering a bare `salbench.saliency` package first."""
    rng = np.random.default_rng(10)
    x = rng.uniform(0, 1, (40, 6, 5, 2)).astype(np.float32)
    model = _randomise(_convnet(), rng)
    model.save_weights(str(tmp_path / "w.h5"))
    np.save(tmp_path / "x.npy", x)
    patterns = pat.fit_patterns(model, [x])
    maps = pat.patternattribution(model, x, patterns=patterns)
    script = textwrap.dedent(f"""
        import sys, types
        import numpy as np
        import tensorflow as tf
        from tensorflow import keras
        pkg = types.ModuleType("salbench.saliency")
        pkg.__path__ = [{os.path.dirname(pat.__file__)!r}]
        sys.modules["salbench.saliency"] = pkg
        import salbench.saliency.pattern as p
        assert tf.executing_eagerly()
    """) + inspect.getsource(_convnet) + textwrap.dedent(f"""
        m = _convnet()
        m.load_weights({str(tmp_path / "w.h5")!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        pt = p.fit_patterns(m, [x])
        pt.save({str(tmp_path / "eager.npz")!r})
        np.save({str(tmp_path / "maps.npy")!r}, p.patternattribution(m, x, patterns=pt))
        assert tf.executing_eagerly()
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    eager = pat.Patterns.load(tmp_path / "eager.npz")
    assert eager.weights_sha256 == patterns.weights_sha256
    for name, lp in patterns.layers.items():
        for k in ("a_linear", "a_plus", "a_minus"):
            if getattr(lp, k) is not None:
                assert _rel_err(getattr(eager[name], k), getattr(lp, k)) < RTOL_PATTERN_DEEP
    assert _rel_err(np.load(tmp_path / "maps.npy"), maps) < RTOL_MAP_FLOAT32


def test_through_package_explain(convnet_case):
    """The registry path (`salbench.saliency.explain`) gives the same maps as the direct call."""
    import salbench.saliency as saliency

    model, x, patterns = convnet_case
    for method in ("patternnet", "patternattribution"):
        direct = registry.get(method).fn(model, x[:8], patterns=patterns)
        np.testing.assert_array_equal(saliency.explain(model, x[:8], method, patterns=patterns), direct)


def test_patterns_equal_to_weights_give_logit_times_gradient():
    """With every pattern replaced by its kernel, PatternNet is y_c * d y_c / dx: checked against
    TF's own gradient of the Keras model on a deeper net (two conv blocks, standalone ReLU,
    strided pooling, a hidden Dense ReLU)."""
    rng = np.random.default_rng(11)
    inp = keras.Input((12, 10, 2))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = keras.layers.Conv2D(4, 3, padding="same")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(8, activation="relu")(h)
    model = _randomise(keras.Model(inp, keras.layers.Dense(3)(h)), rng)
    x = rng.uniform(0, 1, (16, 12, 10, 2)).astype(np.float32)

    fitted = pat.fit_patterns(model, [x])
    as_weights = {}
    for name, lp in fitted.layers.items():
        W = model.get_layer(name).get_weights()[0].astype(np.float64)
        as_weights[name] = pat.LayerPattern(
            name=name, kind=lp.kind, rectified=lp.rectified, a_linear=W, degenerate_linear=lp.degenerate_linear,
            n=lp.n, a_plus=W if lp.rectified else None, a_minus=lp.a_minus, degenerate_plus=lp.degenerate_plus,
            degenerate_minus=lp.degenerate_minus, n_plus=lp.n_plus)
    patterns = pat.Patterns(as_weights, fitted.n_images, fitted.weights_sha256, fitted.min_count, fitted.rel_eps)

    c = 2
    grad = tf.gradients(model.output[:, c], model.input)[0]
    f = keras.backend.function([model.input], [grad, model.output])
    g, y = f([x])
    expect = (g * y[:, c, None, None, None]).sum(-1)
    got = pat.patternnet(model, x, patterns=patterns, target=c)
    assert _rel_err(got, expect) < RTOL_MAP_FLOAT32
