"""The saliency registry and public API: names, parameters, errors, shapes, caching.

Marked ``graph``: conftest switches the process to graph mode before collection; the tiny
models below are built afterwards, as the package requires.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

import salbench.saliency as S
from salbench.metrics.similarity import pair_grayscale
from salbench.pipeline import maps as maps_mod
from salbench.saliency import methods_common
from tensorflow import keras
import tensorflow as tf

pytestmark = pytest.mark.graph

H, W = 16, 16
N = 5
BUDDING = {"gradient", "lrp_z", "lrp_alpha2_beta1", "deep_taylor", "guided_backprop", "deconvnet"}
TOMSETT = {"sensitivity", "gradient_x_input", "deep_taylor", "deep_shap", "sobel", "random"}
ARUN = {"gradient", "smoothgrad", "integrated_gradients", "smooth_ig", "grad_cam", "xrai",
        "guided_backprop", "guided_grad_cam", "unet"}
# Methods that need extra inputs to run at all (patterns are fitted by pattern.py's own tests).
SKIP_GENERIC = {"patternnet", "patternattribution", "unet"}
# Cheap settings for the expensive methods in the shape test; the defaults are tested elsewhere.
FAST = {"smoothgrad": {"nsamples": 3}, "smooth_ig": {"nsamples": 2, "x_steps": 3},
        "xrai": {"steps": 4, "algorithm": "fast"}, "integrated_gradients": {"x_steps": 4}}
# A float64 result cast to float32 (2^-24 relative rounding), or a float32 computation of
# a few operations: 1e-6 relative to the value or, near 0, to the map's largest value.
FLOAT32_CAST_RTOL = 1e-6
# random: the mean of n U(0, 1) pixels lies within 4 standard errors (sd 1/sqrt(12)) of
# 1/2 with probability 1 - 6e-5; the seeds are fixed, so this never flakes.
UNIFORM_MEAN_SE = 4
# Same images in batches of different sizes: float32 convolution kernels change their
# summation order with the batch size, so maps agree to a few float32 ulps of their scale.
BATCH_ATOL_OF_MAX = 1e-5


def assert_same_maps(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=BATCH_ATOL_OF_MAX * float(np.abs(b).max()))


def close(a, ref, rtol=FLOAT32_CAST_RTOL):
    np.testing.assert_allclose(a, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


def tiny_classifier(seed=0, h=H, w=W):
    rng = np.random.default_rng(seed)
    inp = keras.Input((h, w, 1))
    z = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    z = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_last")(z)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(8, activation="relu")(z)
    out = keras.layers.Dense(2, activation="softmax")(z)
    m = keras.Model(inp, out)
    m.set_weights([rng.normal(0, 0.5, w_.shape).astype("float32") for w_ in m.get_weights()])
    return m


def tiny_unet(h=H, w=W):
    inp = keras.Input((h, w, 1))
    z = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid")(z)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def model():
    return tiny_classifier()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).random((N, H, W, 1)).astype("float32")


def test_expected_methods_registered_per_paper():
    names = set(S.list_methods())
    assert BUDDING | TOMSETT | ARUN <= names
    assert BUDDING <= set(S.list_methods("budding"))
    assert TOMSETT == set(S.list_methods("tomsett"))
    assert ARUN == set(S.list_methods("arun"))
    assert S.list_methods() == sorted(names)
    with pytest.raises(ValueError, match="budding"):
        S.list_methods("adebayo")


def test_documented_defaults():
    d = {name: S.get_method(name).defaults for name in S.list_methods()}
    assert d["smoothgrad"] == {"stdev_spread": 0.15, "nsamples": 25, "magnitude": True, "seed": 0, "target": None}
    assert d["integrated_gradients"] == {"x_steps": 10, "baseline": 0.0, "target": None}
    assert d["smooth_ig"]["x_steps"] == 10 and d["smooth_ig"]["nsamples"] == 25
    assert d["xrai"] == {"steps": 100, "algorithm": "full", "area_threshold": 1.0, "target": None}
    assert d["grad_cam"] == {"layer": None, "target": None}
    assert d["deep_shap"] == {"background": None, "target": None}
    assert d["random"] == {"seed": 0} and d["sobel"] == {}
    for name in BUDDING | {"sensitivity", "gradient_x_input"}:
        expected = {"head": "logit", "target": None} if name in ("guided_backprop", "deconvnet") else {"target": None}
        assert d[name] == expected, name
    assert not S.get_method("sobel").needs_model and not S.get_method("random").needs_model


@pytest.mark.parametrize("name", sorted(BUDDING | TOMSETT | ARUN))
def test_docstrings_state_paper_sign_and_parameters(name):
    m = S.get_method(name)
    doc = m.doc
    assert "Sign" in doc and "Parameters" in doc, name
    assert any(p.capitalize() in doc or p in doc.lower() for p in m.papers), name
    for p in m.defaults:
        assert p in doc, (name, p)


def test_unknown_method_lists_all_names(model, x):
    with pytest.raises(S.UnknownMethodError) as err:
        S.explain(model, x, "gradcam")
    msg = str(err.value)
    for name in S.list_methods():
        assert repr(name) in msg


def test_unknown_parameter_lists_valid_ones(model, x):
    with pytest.raises(S.MethodParameterError) as err:
        S.explain(model, x, "smoothgrad", n_samples=3)
    msg = str(err.value)
    assert "n_samples" in msg
    for p in ("stdev_spread", "nsamples", "magnitude", "seed", "target"):
        assert p in msg


def test_bad_parameter_values(model, x):
    with pytest.raises(S.MethodParameterError, match="target"):
        S.explain(model, x, "gradient", target=2)
    with pytest.raises(S.MethodParameterError, match="target"):
        S.explain(model, x, "gradient", target=[0, 1])
    with pytest.raises(S.MethodParameterError, match="background"):
        S.explain(model, x, "deep_shap")
    with pytest.raises(S.MethodParameterError, match="layer"):
        S.explain(model, x, "grad_cam", layer="no_such_layer")
    with pytest.raises(S.MethodParameterError, match="algorithm"):
        S.explain(model, x, "xrai", algorithm="slow")


@pytest.mark.parametrize("name", sorted((BUDDING | TOMSETT | ARUN) - SKIP_GENERIC))
def test_maps_are_float32_nhw(model, x, name):
    params = dict(FAST.get(name, {}))
    if name == "deep_shap":
        params["background"] = np.random.default_rng(2).random((4, H, W, 1)).astype("float32")
    a = S.explain(model, x, name, **params)
    assert a.dtype == np.float32 and a.shape == (N, H, W)
    assert np.isfinite(a).all()
    assert np.abs(a).max() > 0, "an all-zero map would make the checks below vacuous"


@pytest.mark.parametrize("name", sorted((BUDDING | TOMSETT | ARUN) - SKIP_GENERIC - {"sobel", "random"}))
def test_weights_changed_in_place_give_the_maps_of_a_fresh_model(x, name):
    """Model variants (cascades) assign weights to one model object in place: every
    method's cached state (analyzers, DeepSHAP's explainer) must follow them."""
    params = dict(FAST.get(name, {}))
    if name == "deep_shap":
        params["background"] = np.random.default_rng(2).random((4, H, W, 1)).astype("float32")
    reused, fresh = tiny_classifier(seed=11), tiny_classifier(seed=12)
    S.explain(reused, x, name, **params)  # builds and caches its pieces
    reused.set_weights(fresh.get_weights())
    assert_same_maps(S.explain(reused, x, name, **params), S.explain(fresh, x, name, **params))


def test_channels_summed_and_nhw_input_accepted(model, x):
    a = S.explain(model, x, "gradient")
    b = S.explain(model, x[..., 0], "gradient")  # (N, H, W) gains the channel axis
    np.testing.assert_array_equal(a, b)
    raw = methods_common.innvestigate_analyze(model, x, "gradient", None)
    np.testing.assert_array_equal(a, raw[..., 0])


def test_target_changes_the_explained_class(model, x):
    pred = np.argmax(model.predict(x, verbose=0), axis=1)
    a_default = S.explain(model, x, "gradient")
    a_pred = S.explain(model, x, "gradient", target=pred)
    a_other = S.explain(model, x, "gradient", target=1 - pred)
    # Same class -> the same gradient (index vs max_activation analyzers: two graphs, same math).
    close(a_default, a_pred)
    assert not np.allclose(a_default, a_other)


def test_sobel_equals_scipy_and_needs_no_model(x):
    a = S.explain(None, x, "sobel")
    for i in range(N):
        img = x[i, :, :, 0].astype(np.float64)
        ref = np.hypot(ndimage.sobel(img, axis=0), ndimage.sobel(img, axis=1))
        close(a[i], ref)  # float32 of the float64 result


def test_random_is_deterministic_per_seed_and_batch_independent(x):
    a = S.explain(None, x, "random", seed=3)
    np.testing.assert_array_equal(a, S.explain(None, x, "random", seed=3))
    assert not np.array_equal(a, S.explain(None, x, "random", seed=4))
    np.testing.assert_array_equal(a[2:], S.explain(None, x[2:], "random", seed=3))  # position-free
    assert not np.array_equal(a[0], a[1])
    assert a.min() >= 0 and a.max() < 1
    assert abs(a.mean() - 0.5) < UNIFORM_MEAN_SE * np.sqrt(1 / 12) / np.sqrt(a.size)


def test_model_kind_errors(model, x):
    unet = tiny_unet()
    with pytest.raises(S.ModelKindError, match="unet"):
        S.explain(unet, x, "gradient")
    with pytest.raises(S.ModelKindError, match="segmentation"):
        S.explain(model, x, "unet")
    with pytest.raises(S.ModelKindError, match="needs a model"):
        S.explain(None, x, "gradient")
    with pytest.raises(ValueError, match="expects"):
        S.explain(model, x[:, :8], "gradient")


EAGER_SCRIPT = """
import numpy as np
from tensorflow import keras
inp = keras.Input((8, 8, 1))
model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))
import salbench.saliency as S
import tensorflow as tf
assert tf.executing_eagerly()  # importing salbench.saliency changed nothing
x = np.zeros((1, 8, 8, 1), "float32")
try:
    S.explain(model, x, "gradient")
except S.GraphModeError as err:
    print("GraphModeError:", err)
S.use_graph_mode()
S.use_graph_mode()  # idempotent
try:
    S.explain(model, x, "gradient")  # too late: the model was built in eager mode
except S.ModelKindError as err:
    print("ModelKindError:", err)
"""


def test_eager_mode_and_eager_models_are_rejected_clearly():
    # In a fresh process: this one is already in graph mode (and switching graphs here
    # would drop the Keras session that holds the other tests' variables).
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", EAGER_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "GraphModeError:" in out.stdout and "use_graph_mode()" in out.stdout
    assert "ModelKindError:" in out.stdout and "Call use_graph_mode() first" in out.stdout


def test_unet_returns_the_probability_map(x):
    unet = tiny_unet()
    a = S.explain(unet, x, "unet")
    close(a, unet.predict(x, verbose=0)[..., 0])


def sqrt_model():
    """A classifier whose logits are NaN when pixel (0, 0) < 0.5: sqrt(x00 - 0.5) -> Dense(2)."""
    inp = keras.Input((H, W, 1))
    z = keras.layers.Dense(1)(keras.layers.Flatten()(inp))
    z = keras.layers.Activation(tf.math.sqrt)(z)
    out = keras.layers.Dense(2, activation="softmax")(z)
    m = keras.Model(inp, out)
    k = np.zeros((H * W, 1), "float32")
    k[0, 0] = 1.0
    m.layers[2].set_weights([k, np.array([-0.5], "float32")])
    m.layers[4].set_weights([np.array([[1.0, -1.0]], "float32"), np.zeros(2, "float32")])
    return m


def images_with_bad_pixel(bad):
    x = np.full((N, H, W, 1), 0.8, "float32")
    x[list(bad), 0, 0, 0] = 0.2
    return x


def test_nan_maps_raise_with_method_and_sample_indices():
    m = sqrt_model()
    with pytest.raises(S.NonFiniteMapError) as err:
        S.explain(m, images_with_bad_pixel([1, 4]), "gradient", target=0)
    assert "'gradient'" in str(err.value) and "samples [1, 4]" in str(err.value)
    with pytest.raises(S.NonFiniteMapError) as err:  # indices are global across batches
        S.compute_maps(m, images_with_bad_pixel([3]), "smoothgrad", batch_size=2, progress=False,
                       target=0, nsamples=2)
    assert "'smoothgrad'" in str(err.value) and "samples [3]" in str(err.value)  # batch-local: [1]
    ok = S.explain(m, images_with_bad_pixel([]), "gradient", target=0)
    # d sqrt(x00 - 0.5) / d x00 = 0.5 / sqrt(0.3) at x00 = 0.8; float32 rounding only.
    close(ok[:, 0, 0], np.full(N, 0.5 / np.sqrt(0.3)))
    assert np.count_nonzero(ok) == N


def test_compute_maps_matches_explain_and_slices_targets(model, x):
    target = np.array([0, 1, 1, 0, 1])
    a = S.compute_maps(model, x, "gradient", batch_size=2, progress=False, target=target)
    assert_same_maps(a, S.explain(model, x, "gradient", target=target))
    b = S.compute_maps(model, x, "smoothgrad", batch_size=2, progress=False, nsamples=3)
    assert_same_maps(b, S.explain(model, x, "smoothgrad", nsamples=3))
    with pytest.raises(S.MethodParameterError):
        S.compute_maps(model, x, "gradient", progress=False, target=[0, 1])


def test_cached_maps_keyed_and_stored(model, x, tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    calls = []
    real = maps_mod.compute_maps

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(maps_mod, "compute_maps", counting)
    idx = np.arange(10, 10 + N)
    a = maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx, progress=False)
    b = maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx, progress=False)
    assert len(calls) == 1
    np.testing.assert_array_equal(a, b)
    assert_same_maps(a, S.explain(model, x, "gradient"))
    # Defaults filled in: passing the default explicitly hits the same entry.
    maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx, progress=False, target=None)
    assert len(calls) == 1
    # Any key part changes the entry.
    maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx, progress=False, target=0)
    maps_mod.cached_maps("model-xyz", model, x, "gradient", split="holdout", indices=idx, progress=False)
    maps_mod.cached_maps("model-abc", model, x, "gradient", split="val", indices=idx, progress=False)
    maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx + 1, progress=False)
    assert len(calls) == 5
    entries = sorted((tmp_path / "maps").iterdir())
    assert len(entries) == 5
    key = maps_mod.maps_key("model-abc", "gradient", {}, "holdout", idx)
    entry = tmp_path / "maps" / key
    np.testing.assert_array_equal(np.load(entry / "maps.npy"), a)
    np.testing.assert_array_equal(np.load(entry / "indices.npy"), idx)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["method"] == "gradient" and meta["split"] == "holdout" and meta["params"] == {"target": None}
    with pytest.raises(ValueError, match="indices"):
        maps_mod.cached_maps("model-abc", model, x, "gradient", split="holdout", indices=idx[:2], progress=False)
    # load_model: called on a miss only, so a cached rerun loads no network.
    loads = []

    def load():
        loads.append(1)
        return model

    hit = maps_mod.cached_maps("model-abc", None, x, "gradient", split="holdout", indices=idx, progress=False,
                               load_model=load)
    assert loads == [] and len(calls) == 5
    np.testing.assert_array_equal(hit, a)
    maps_mod.cached_maps("model-new", None, x, "gradient", split="holdout", indices=idx, progress=False,
                         load_model=load)
    assert loads == [1] and len(calls) == 6


def test_array_parameters_are_hashed_by_content():
    bg = np.zeros((2, H, W, 1), "float32")
    k1 = maps_mod.maps_key("m", "deep_shap", {"background": bg}, "holdout", [0])
    k2 = maps_mod.maps_key("m", "deep_shap", {"background": bg.copy()}, "holdout", [0])
    bg2 = bg.copy()
    bg2[0, 0, 0, 0] = 1
    assert k1 == k2 != maps_mod.maps_key("m", "deep_shap", {"background": bg2}, "holdout", [0])


def test_pair_grayscale_matches_pair():
    from saliency.core import VisualizeImageGrayscale

    a = np.random.default_rng(7).normal(size=(3, H, W)).astype("float32")
    g = pair_grayscale(a)
    for i in range(3):
        close(g[i], VisualizeImageGrayscale(a[i][..., None]))
    assert np.array_equal(pair_grayscale(np.ones((1, H, W))), np.zeros((1, H, W), "float32"))


def test_process_is_in_graph_mode():
    assert not tf.executing_eagerly()


def tiny_densenet(seed=3):
    """Concatenations (tensors read by several layers) and batch norm: the shape whose
    analyzer graphs took a minute each to build before `keras_history_of_live_tensors`."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 1))
    z = keras.layers.Conv2D(4, 3, padding="same")(inp)
    for _ in range(2):
        y = keras.layers.BatchNormalization()(z)
        y = keras.layers.Activation("relu")(y)
        y = keras.layers.Conv2D(2, 3, padding="same")(y)
        z = keras.layers.Concatenate()([z, y])
    z = keras.layers.GlobalAveragePooling2D()(z)
    out = keras.layers.Dense(2, activation="softmax")(z)
    m = keras.Model(inp, out)
    m.set_weights([rng.normal(0.5 if "moving_variance" in w.name else 0, 0.5, w.shape).astype("float32") ** 2
                   if "moving_variance" in w.name else rng.normal(0, 0.5, w.shape).astype("float32")
                   for w in m.weights])
    return m


@pytest.mark.parametrize("name", ["gradient", "guided_backprop", "lrp.z", "lrp.alpha_2_beta_1", "deep_taylor", "deconvnet"])
def test_analyzers_built_on_live_tensors_equal_kerass_default_build(x, name):
    import innvestigate
    from keras.src.engine import base_layer_utils

    model = tiny_densenet()
    fast = methods_common.innvestigate_analyze(model, x, name, None)  # built on live tensors
    assert base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION is False  # restored
    default = innvestigate.analyzer.analyzers[name](methods_common.entry(model).logit_model,
                                                    neuron_selection_mode="max_activation")
    default.create_analyzer_model()  # Keras's default: constants evaluated one session call each
    np.testing.assert_array_equal(fast, np.asarray(default.analyze(x), np.float32))
    # Both follow weights assigned after the build (the cascades rely on it).
    other = tiny_densenet(seed=4)
    model.set_weights(other.get_weights())
    np.testing.assert_array_equal(methods_common.innvestigate_analyze(model, x, name, None),
                                  np.asarray(default.analyze(x), np.float32))
    assert np.abs(fast - methods_common.innvestigate_analyze(model, x, name, None)).max() > 0
