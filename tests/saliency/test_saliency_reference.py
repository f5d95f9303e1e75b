"""Saliency methods against closed forms, float64 numpy rewrites and the libraries themselves.

Every model is tiny (8x8 inputs) with weights set from a seeded numpy generator.
Marked ``graph``: runs in the graph-mode pytest process (conftest switches it).
"""

import numpy as np
import pytest
from skimage.transform import resize
from tensorflow import keras

import salbench.saliency as S
from salbench.saliency import methods_common

pytestmark = pytest.mark.graph

H, W = 8, 8
N = 4

# float32 forward/backward passes of tiny models compared with exact or float64 values:
# a few float32 ulps (1.2e-7) of sums over <= 72 products give <= ~1e-5 relative error.
# Elementwise checks (`close`) use it relative to each value and, for entries near 0
# (sums of opposite terms), relative to the largest |value| of the reference map.
FLOAT32_RTOL = 1e-5
# DeepSHAP averages float32 multipliers over the background samples and sums them over
# pixels (shap's own additivity check allows 1e-2 absolute); 1e-4 relative still fails
# on any op shap handles wrongly (those miss by O(1)).
DEEPSHAP_RTOL = 1e-4
# Batched smooth IG / XRAI vs PAIR per image: the same IG terms summed in another order
# (rows of one batch vs PAIR's calls) and then squared (smooth IG) or averaged over
# regions (XRAI): a few ulps of accumulated float32 sums, < 1e-4 of the map scale.
PAIR_CHAIN_RTOL = 1e-4
# LRP-z divides by z_j (iNNvestigate's safe_divide only replaces exact zeros, whose
# numerators are zero too), so conservation is exact up to float32 rounding of sums over
# <= 72 terms in each of 4 layers (< 1e-5 relative); 1e-4 leaves a 10x margin.
LRP_CONSERVATION_RTOL = 1e-4
# Integrated gradients: path points per image for the completeness check.
IG_STEPS = 256
# Absolute float32 slack on sums of 64 IG terms, relative to |f(x) - f(x')|.
IG_FLOAT_RTOL = 1e-4


def set_weights(model, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in model.get_weights()])
    return model


def linear_model(seed=0, bias=True):
    inp = keras.Input((H, W, 1))
    out = keras.layers.Dense(2, activation="softmax", use_bias=bias)(keras.layers.Flatten()(inp))
    return set_weights(keras.Model(inp, out), seed)


def conv_net(seed=0, bias=True, filters=3, hidden=5):
    """Conv(3x3 same, ReLU) -> MaxPool(2) -> Flatten -> Dense(ReLU) -> Dense(2, softmax)."""
    inp = keras.Input((H, W, 1))
    z = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", use_bias=bias, name="conv")(inp)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(hidden, activation="relu", use_bias=bias)(z)
    out = keras.layers.Dense(2, activation="softmax", use_bias=bias)(z)
    return set_weights(keras.Model(inp, out), seed)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(11).random((N, H, W, 1)).astype("float32")


@pytest.fixture(scope="module")
def lin():
    return linear_model()


@pytest.fixture(scope="module")
def net():
    return conv_net(seed=3)  # logits of both signs for targets [0, 1, 0, 1]


def close(a, ref, rtol=FLOAT32_RTOL):
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_allclose(a, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


def logits_of(model, x):
    return methods_common.logits(model, x).astype(np.float64)


def kernel_maps(model, classes):
    k = model.layers[-1].get_weights()[0]  # (H*W, 2)
    return np.stack([k[:, c].reshape(H, W) for c in classes])


# ----------------------------------------------------------------------------- linear model


def test_gradient_of_linear_model_equals_its_weights(lin, x):
    pred = np.argmax(lin.predict(x, verbose=0), axis=1)
    close(S.explain(lin, x, "gradient"), kernel_maps(lin, pred))
    for c in (0, 1):
        close(S.explain(lin, x, "gradient", target=c), kernel_maps(lin, [c] * N))


def test_pair_gradient_path_agrees_with_innvestigate(lin, net, x):
    # PAIR methods use salbench's Keras gradient function; on a linear model it is W_c.
    t = np.array([0, 1, 1, 0], np.int32)
    g = methods_common.input_gradients(lin, x, t)[..., 0]
    close(g, kernel_maps(lin, t))
    g_net = methods_common.input_gradients(net, x, t)[..., 0]
    close(g_net, S.explain(net, x, "gradient", target=t))


def test_gradient_x_input_and_sensitivity_of_linear_model(lin, x):
    pred = np.argmax(lin.predict(x, verbose=0), axis=1)
    w = kernel_maps(lin, pred)
    close(S.explain(lin, x, "gradient_x_input"), w * x[..., 0])
    close(S.explain(lin, x, "sensitivity"), np.abs(w))


def test_integrated_gradients_of_linear_model_is_w_times_delta(lin, x):
    # Constant gradient: PAIR's Riemann rule is exact, IG = W_c * (x - x') for any steps.
    for baseline in (0.0, 0.3):
        a = S.explain(lin, x, "integrated_gradients", target=1, baseline=baseline)
        close(a, kernel_maps(lin, [1] * N) * (x[..., 0] - baseline))


def test_deep_shap_of_linear_model_is_w_times_x_minus_mean_background(lin, x):
    bg = np.random.default_rng(3).random((6, H, W, 1)).astype("float32")
    pred = np.argmax(lin.predict(x, verbose=0), axis=1)
    a = S.explain(lin, x, "deep_shap", background=bg)
    close(a, kernel_maps(lin, pred) * (x[..., 0] - bg[..., 0].mean(0)), DEEPSHAP_RTOL)


def test_cached_analyzers_see_weights_changed_in_place(x):
    m = linear_model(seed=4)
    before = S.explain(m, x, "gradient", target=0)
    k, b = m.layers[-1].get_weights()
    m.layers[-1].set_weights([k[::-1].copy(), b])  # e.g. cascading randomization
    after = S.explain(m, x, "gradient", target=0)
    close(after, kernel_maps(m, [0] * N))
    assert not np.allclose(before, after)


# ----------------------------------------------------------------------------- relevance


def test_lrp_z_conserves_relevance_on_bias_free_relu_net(x):
    m = conv_net(seed=5, bias=False)
    f = logits_of(m, x)
    a = S.explain(m, x, "lrp_z").astype(np.float64)
    pred = np.argmax(f, axis=1)
    target_logit = f[np.arange(N), pred]
    assert np.all(np.abs(target_logit) > 1e-3)  # a vanishing logit would make the check trivial
    np.testing.assert_allclose(a.sum(axis=(1, 2)), target_logit, rtol=LRP_CONSERVATION_RTOL)
    # With biases, LRP-z is not conservative: the check above can fail.
    mb = conv_net(seed=5, bias=True)
    fb = logits_of(mb, x).max(axis=1)
    ab = S.explain(mb, x, "lrp_z").astype(np.float64).sum(axis=(1, 2))
    assert np.max(np.abs(ab - fb) / np.abs(fb)) > 10 * LRP_CONSERVATION_RTOL


def test_integrated_gradients_completeness(net, x):
    """sum IG = f(x) - f(x') up to PAIR's Riemann-rule error.

    PAIR averages phi'(a_k) at m = IG_STEPS equispaced points a_k in [0, 1] (both ends),
    phi(a) = f_c(x' + a (x - x')). For phi' of bounded variation TV, that average differs
    from int_0^1 phi' = f(x) - f(x') by at most 2 TV / m (left Riemann error TV / (m - 1),
    plus the extra endpoint term weighted 1/m). TV is measured on a 4x finer grid.
    """
    t = np.argmax(logits_of(net, x), axis=1).astype(np.int32)
    a = S.explain(net, x, "integrated_gradients", x_steps=IG_STEPS, target=t).astype(np.float64)
    f_x = logits_of(net, x)[np.arange(N), t]
    f_0 = logits_of(net, np.zeros_like(x))[np.arange(N), t]
    alphas = np.linspace(0, 1, 4 * IG_STEPS)
    path = (alphas[:, None, None, None, None] * x[None]).reshape((-1, H, W, 1)).astype("float32")
    g = methods_common.input_gradients(net, path, np.tile(t, len(alphas))).reshape((len(alphas),) + x.shape)
    dphi = (g.astype(np.float64) * x[None]).sum(axis=(2, 3, 4))  # (alphas, N)
    tv = np.abs(np.diff(dphi, axis=0)).sum(axis=0)
    bound = 2 * tv / IG_STEPS + IG_FLOAT_RTOL * np.abs(f_x - f_0)
    err = np.abs(a.sum(axis=(1, 2)) - (f_x - f_0))
    assert np.all(np.abs(f_x - f_0) > 1e-2)
    assert np.all(err <= bound), (err, bound)
    # The default 10 steps is much coarser; completeness then holds only roughly.
    a10 = S.explain(net, x, "integrated_gradients", target=t).astype(np.float64)
    assert np.all(np.abs(a10.sum(axis=(1, 2)) - (f_x - f_0)) <= 2 * tv / 10 + IG_FLOAT_RTOL * np.abs(f_x - f_0))


def test_deep_shap_additivity_on_conv_net(net, x):
    bg = np.random.default_rng(8).random((5, H, W, 1)).astype("float32")
    f = logits_of(net, x)
    fb = logits_of(net, bg).mean(axis=0)
    for target in (None, 1):
        t = np.argmax(f, axis=1) if target is None else np.full(N, target)
        a = S.explain(net, x, "deep_shap", background=bg, target=target).astype(np.float64)
        close(a.sum(axis=(1, 2)), f[np.arange(N), t] - fb[t], DEEPSHAP_RTOL)


# ----------------------------------------------------------------------------- float64 numpy rewrites


def numpy_backward(model, x, c, rule, start=1.0):
    """Gradient / guided backprop / DeConvNet of `conv_net` in float64, written out by hand.

    The backward pass starts from `start` at logit c (iNNvestigate's guided backprop and
    DeConvNet start from the logit's value, head="logit"; the gradient from 1).
    """
    conv, pool, flat, d1, d2 = model.layers[1:]
    k1, b1 = (w.astype(np.float64) for w in conv.get_weights())
    k2, b2 = (w.astype(np.float64) for w in d1.get_weights())
    k3, _ = (w.astype(np.float64) for w in d2.get_weights())
    img = x[:, :, 0].astype(np.float64)
    f = k1.shape[-1]
    xp = np.pad(img, 1)
    z1 = np.zeros((H, W, f))
    for i in range(H):
        for j in range(W):
            z1[i, j] = np.einsum("ab,abo->o", xp[i:i + 3, j:j + 3], k1[:, :, 0, :]) + b1
    a1 = np.maximum(z1, 0)
    pooled = np.zeros((H // 2, W // 2, f))
    switch = np.zeros((H // 2, W // 2, f, 2), int)
    for i in range(H // 2):
        for j in range(W // 2):
            for o in range(f):
                win = a1[2 * i:2 * i + 2, 2 * j:2 * j + 2, o]
                u, v = np.unravel_index(np.argmax(win), (2, 2))  # first maximum in row-major order
                pooled[i, j, o] = win[u, v]
                switch[i, j, o] = (2 * i + u, 2 * j + v)
    z2 = pooled.reshape(-1) @ k2 + b2

    def relu_rule(r, z):
        if rule == "gradient":
            return r * (z > 0)
        return np.maximum(r, 0) * (z > 0) if rule == "guided" else np.maximum(r, 0)

    r = relu_rule(start * k3[:, c], z2)  # logit c -> hidden ReLU
    r_pool = (k2 @ r).reshape(pooled.shape)  # Flatten is row-major over (h, w, channel), like Keras
    r_a1 = np.zeros_like(a1)
    for i in range(H // 2):
        for j in range(W // 2):
            for o in range(f):
                u, v = switch[i, j, o]
                r_a1[u, v, o] += r_pool[i, j, o]
    r_z1 = relu_rule(r_a1, z1)
    r_xp = np.zeros_like(xp)
    for i in range(H):
        for j in range(W):
            r_xp[i:i + 3, j:j + 3] += np.einsum("abo,o->ab", k1[:, :, 0, :], r_z1[i, j])
    return r_xp[1:-1, 1:-1]


@pytest.mark.parametrize("method, rule, head", [
    ("gradient", "gradient", None),
    ("guided_backprop", "guided", "logit"), ("guided_backprop", "guided", "one"),
    ("deconvnet", "deconv", "logit"), ("deconvnet", "deconv", "one"),
])
def test_backward_rules_equal_numpy(net, x, method, rule, head):
    t = np.array([0, 1, 0, 1])
    f = logits_of(net, x)[np.arange(N), t]
    assert (f > 0).any() and (f < 0).any()  # both signs of the start value are exercised
    params = {} if head is None else {"head": head}
    a = S.explain(net, x, method, target=t, **params)
    start = f if head == "logit" else np.ones(N)
    ref = np.stack([numpy_backward(net, x[i], t[i], rule, start[i]) for i in range(N)])
    assert np.abs(ref).max() > 0
    close(a, ref)


def test_unit_head_rescales_for_positive_logits(net, x):
    t = np.array([0, 1, 0, 1])
    f = logits_of(net, x)[np.arange(N), t]
    pos = f > 0
    a_logit = S.explain(net, x, "guided_backprop", target=t)
    a_one = S.explain(net, x, "guided_backprop", target=t, head="one")
    close(a_logit[pos], a_one[pos] * f[pos, None, None])


def test_grad_cam_equals_cam_for_global_average_pooling(x):
    """Conv -> GAP -> Dense: dy_c/dA_k[u,v] = w_kc / (h w), so Grad-CAM = relu(sum_k w_kc A_k) / (h w),
    then PAIR divides by the max and resizes (skimage bilinear) to the input size."""
    inp = keras.Input((H, W, 1))
    feat = keras.layers.Conv2D(3, 3, activation="relu", name="feat")(inp)  # 'valid': 6x6 maps
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(feat))
    m = set_weights(keras.Model(inp, out), 9)
    A = keras.Model(inp, feat).predict(x, verbose=0).astype(np.float64)
    wk = m.layers[-1].get_weights()[0].astype(np.float64)
    for target in (0, 1):
        cam = np.maximum(np.einsum("nuvk,k->nuv", A, wk[:, target]) / 36.0, 0)
        ref = np.stack([resize(c / c.max() if c.max() > 0 else c, (H, W)) for c in cam])
        a = S.explain(m, x, "grad_cam", target=target)
        close(a, ref)
    # The default layer is the last Conv2D; naming it gives the same maps.
    np.testing.assert_array_equal(S.explain(m, x, "grad_cam"), S.explain(m, x, "grad_cam", layer="feat"))


def test_guided_grad_cam_is_the_product(net, x):
    close(S.explain(net, x, "guided_grad_cam", target=1),
          S.explain(net, x, "guided_backprop", target=1, head="one") * S.explain(net, x, "grad_cam", target=1))


# ----------------------------------------------------------------------------- PAIR per image


def pair_call(model, target):
    return methods_common.call_model_function_factory(model), {"target": np.array([target], np.int32)}


def test_smoothgrad_equals_pair_per_image(net, x):
    from saliency.core import GradientSaliency

    params = dict(stdev_spread=0.15, nsamples=5, seed=2)
    for magnitude in (True, False):
        a = S.explain(net, x, "smoothgrad", target=1, magnitude=magnitude, **params)
        for i in range(N):
            fn, args = pair_call(net, 1)
            np.random.seed(methods_common.image_seed(x[i], params["seed"]))  # PAIR draws from np.random
            ref = GradientSaliency().GetSmoothedMask(x[i], fn, args, stdev_spread=0.15, nsamples=5,
                                                     magnitude=magnitude)[..., 0]
            close(a[i], ref)


def test_smooth_ig_equals_pair_per_image(net, x):
    from saliency.core import IntegratedGradients

    a = S.explain(net, x, "smooth_ig", nsamples=3, x_steps=5, seed=1, target=0)
    for i in range(N):
        fn, args = pair_call(net, 0)
        np.random.seed(methods_common.image_seed(x[i], 1))
        ref = IntegratedGradients().GetSmoothedMask(x[i], fn, args, stdev_spread=0.15, nsamples=3, x_steps=5,
                                                    x_baseline=np.zeros_like(x[i]))[..., 0]
        close(a[i], ref, PAIR_CHAIN_RTOL)


def test_integrated_gradients_equals_pair_per_image(net, x):
    from saliency.core import IntegratedGradients

    a = S.explain(net, x, "integrated_gradients", target=1)
    for i in range(N):
        fn, args = pair_call(net, 1)
        ref = IntegratedGradients().GetMask(x[i], fn, args, x_steps=10, x_baseline=np.zeros_like(x[i]))[..., 0]
        close(a[i], ref)


def test_xrai_equals_pair_per_image(net, x):
    from saliency.core import XRAI, XRAIParameters

    a = S.explain(net, x[:2], "xrai", steps=20, target=0)
    for i in range(2):
        fn, args = pair_call(net, 0)
        ref = XRAI().GetMask(x[i], fn, args, batch_size=20, extra_parameters=XRAIParameters(steps=20))
        close(a[i], ref, PAIR_CHAIN_RTOL)


def test_smoothing_is_seeded_per_image(net, x):
    a = S.explain(net, x, "smoothgrad", nsamples=4)
    np.testing.assert_array_equal(a, S.explain(net, x, "smoothgrad", nsamples=4))
    assert not np.allclose(a, S.explain(net, x, "smoothgrad", nsamples=4, seed=1))
    # Position in the batch does not matter (maps of a cached run can be recomputed alone).
    close(S.explain(net, x[3:], "smoothgrad", nsamples=4), a[3:])
