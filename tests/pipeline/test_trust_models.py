"""The trust stage on tiny models: cascade step k re-draws exactly the top k layers,
repeatability of a model with itself is 1, and a method that cannot run on the second
architecture is "not applicable" with the reason (not dropped)."""

import numpy as np
import pytest
from fakes import LAYERS, FakeTrained, dense_net

from salbench.config import load_profile
from salbench.pipeline import models as pm
from salbench.pipeline import trust

pytestmark = pytest.mark.graph

N_IMAGES = 2  # the smoke profile's trust.n_images


def model_set(fakes):
    ms = pm.ModelSet(load_profile("smoke"), trained_models=fakes)
    ms.selected_run = lambda background, role="classifier": 0  # fakes have no accuracy table
    return ms


def weights_by_layer(model):
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in LAYERS}


def test_cascade_step_k_redraws_exactly_the_top_k_layers():
    ms = model_set([FakeTrained("fake-a")])
    trained_variant = ms.trained("perlin")
    layers = ms.layers(trained_variant)
    assert layers == LAYERS
    trained = weights_by_layer(ms.model(trained_variant))
    first_random = {}
    for k, v in enumerate(ms.cascade("perlin", "top_down"), 1):
        now = weights_by_layer(ms.model(v))
        differ = [n for n in LAYERS if not all(np.array_equal(a, b) for a, b in zip(now[n], trained[n]))]
        assert differ == LAYERS[-k:], (k, differ)
        assert trust.new_layer(v, layers) == LAYERS[-k]
        for n in differ:  # a layer keeps its random weights at every later step
            first_random.setdefault(n, now[n])
            for a, b in zip(now[n], first_random[n]):
                np.testing.assert_array_equal(a, b)


@pytest.fixture
def images(monkeypatch, tmp_cache):
    x = np.random.default_rng(5).uniform(size=(N_IMAGES, 8, 8, 1)).astype(np.float32)
    monkeypatch.setattr(trust.maps_stage, "holdout_images", lambda profile, background, indices: x[: len(indices)])
    return x


def test_repeatability_of_a_model_with_itself_is_one(images):
    fakes = [FakeTrained("fake-a", 0, run=0), FakeTrained("fake-b", 0, run=1),  # the same weights twice
             FakeTrained("fake-c", 1, role="second", build=dense_net)]
    profile = load_profile("smoke")
    scores = trust.consistency_background(profile, model_set(fakes), "perlin", ["gradient", "grad_cam"],
                                          progress=False)
    rep = scores[scores.kind == "repeatability"]
    assert len(rep) == 2 * N_IMAGES and set(rep.pair) == {"vgg0-vgg1"}
    np.testing.assert_allclose(rep.ssim, 1.0, atol=1e-9)
    repro = scores[scores.kind == "reproducibility"].set_index("method")
    assert np.isfinite(repro.loc["gradient", "ssim"]).all() and (repro.loc["gradient", "ssim"] < 1).all()
    gc = repro.loc[["grad_cam"]]
    assert gc.ssim.isna().all() and gc.note.str.startswith("not applicable: ModelKindError").all()
    unet = scores[scores.kind == "unet"]
    assert unet.ssim.isna().all() and (unet.note == "not applicable: one U-Net run").all()


def test_one_run_is_not_applicable_not_an_error(images):
    profile = load_profile("smoke")
    scores = trust.consistency_background(profile, model_set([FakeTrained("fake-a")]), "perlin", ["gradient"],
                                          progress=False)
    rep = scores[scores.kind == "repeatability"]
    assert len(rep) == N_IMAGES and rep.ssim.isna().all() and (rep.note == "not applicable: one run").all()
    repro = scores[scores.kind == "reproducibility"]
    assert (repro.note == "not applicable: no second architecture").all()

