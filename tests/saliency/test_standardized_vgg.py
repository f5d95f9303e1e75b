"""Saliency methods on the VGG-like net with its fixed standardization layer (issue 12).

The layer is part of the model, so every method explains the function of the raw image:
a gradient map is the plain network's gradient at the standardized image divided by
the SD (chain rule), and every registered method builds and returns finite maps.
"""

import numpy as np
import pytest

import salbench.saliency as S
from salbench.models import architectures

pytestmark = pytest.mark.graph

H, W, N = 32, 48, 3
MEAN, SD = 0.24, 0.28  # about the Perlin training set's pixel mean and SD
# Methods that need extra inputs (fitted patterns, a U-Net) are tested elsewhere.
SKIP = {"patternnet", "patternattribution", "unet"}
FAST = {"smoothgrad": {"nsamples": 3}, "smooth_ig": {"nsamples": 2, "x_steps": 3},
        "xrai": {"steps": 4, "algorithm": "fast"}, "integrated_gradients": {"x_steps": 4}}
# Two float32 graphs of the same gradient (one with the extra 1x1 layer): a few ulps of the map's scale.
GRADIENT_ATOL_OF_MAX = 1e-5


@pytest.fixture(scope="module")
def models():
    std = architectures.build("vgg", (H, W, 1), standardize=True)
    # Seeded He-normal weights (the builder's initializers are unseeded), zero biases.
    rng = np.random.default_rng(0)
    std.set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)] + [
        (rng.normal(0, np.sqrt(2 / np.prod(w.shape[:-1])), w.shape) if w.ndim > 1 else np.zeros(w.shape)).astype(np.float32)
        for w in std.get_weights()[2:]])
    architectures.set_standardization(std, MEAN, SD)
    plain = architectures.build("vgg", (H, W, 1))
    plain.set_weights(std.get_weights()[2:])
    return std, plain


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).random((N, H, W, 1)).astype("float32")


def test_gradient_is_chain_rule_through_the_fixed_layer(models, x):
    std, plain = models
    target = np.argmax(std.predict(x, verbose=0), axis=1)
    a = S.explain(std, x, "gradient", target=target)
    ref = S.explain(plain, (x - MEAN) / SD, "gradient", target=target) / SD
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(a, ref, rtol=0, atol=GRADIENT_ATOL_OF_MAX * float(np.abs(ref).max()))


@pytest.mark.parametrize("name", sorted(set(S.list_methods()) - SKIP))
def test_every_method_runs_on_the_standardized_vgg(models, x, name):
    std, _ = models
    params = dict(FAST.get(name, {}))
    if name == "deep_shap":
        params["background"] = np.random.default_rng(4).random((4, H, W, 1)).astype("float32")
    a = S.explain(std, x, name, **params)
    assert a.dtype == np.float32 and a.shape == (N, H, W) and np.isfinite(a).all()
    if S.get_method(name).needs_model:
        assert np.abs(a).max() > 0, name
