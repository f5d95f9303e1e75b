"""Model variants: cascades re-draw exactly the layers they name, with the same random
weights for a layer at every step, and leave every other weight trained."""

import numpy as np
import pytest
from fakes import LAYERS, FakeTrained, dense_net

from salbench.config import load_profile
from salbench.pipeline import models as pm

pytestmark = pytest.mark.graph


@pytest.fixture
def models():
    return pm.ModelSet(load_profile("smoke"), trained_models=[FakeTrained("fake-0")])


def weights_by_layer(model):
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in LAYERS}


def test_cascade_steps_redraw_exactly_the_named_layers(models):
    trained = weights_by_layer(models.model(models.trained("perlin", run=0)))
    steps = models.cascade("perlin", "top_down", run=0)
    assert [v.step for v in steps] == [1, 2, 3, 4]
    assert [v.reinit for v in steps] == [("predictions",), ("fc", "predictions"), ("conv2", "fc", "predictions"),
                                         tuple(LAYERS)]
    random_seen = {}
    for variant in [*steps, *models.cascade("perlin", "bottom_up", run=0), *models.cascade("perlin", "single", run=0)]:
        now = weights_by_layer(models.model(variant))
        for name in LAYERS:
            same = all(np.array_equal(a, b) for a, b in zip(now[name], trained[name]))
            if name in variant.reinit:
                assert not np.array_equal(now[name][0], trained[name][0]), (variant, name)
                if name in random_seen:  # the same random weights at every step and order
                    for a, b in zip(now[name], random_seen[name]):
                        np.testing.assert_array_equal(a, b)
                random_seen[name] = now[name]
            else:
                assert same, (variant, name)
    # The same random weights from a new model set (no memo): they follow from the seeding alone.
    fresh = pm.ModelSet(load_profile("smoke"), trained_models=[FakeTrained("fake-0")])
    for variant in fresh.cascade("perlin", "single", run=0):
        (name,) = variant.reinit
        for a, b in zip(fresh.model(variant).get_layer(name).get_weights(), random_seen[name]):
            np.testing.assert_array_equal(a, b)
    # Back to the trained variant: every weight trained again.
    back = weights_by_layer(models.model(models.trained("perlin", run=0)))
    for name in LAYERS:
        for a, b in zip(back[name], trained[name]):
            np.testing.assert_array_equal(a, b)


def test_variant_keys(models):
    trained = models.trained("perlin", run=0)
    full = models.randomized("perlin", run=0)
    top, bottom = models.cascade("perlin", "top_down", run=0), models.cascade("perlin", "bottom_up", run=0)
    assert models.key(trained) == "fake-0-sha-fake-0"
    # The same layers re-drawn: the same model, whatever the family.
    assert models.key(top[-1]) == models.key(bottom[-1]) == models.key(full)
    keys = {models.key(v) for v in [*top, *bottom]}
    assert len(keys) == 2 * len(LAYERS) - 1
    with pytest.raises(ValueError, match="order"):
        models.cascade("perlin", "sideways", run=0)


def test_predict_fn_gives_probabilities_and_logits(models):
    x = np.random.default_rng(1).uniform(size=(5, 8, 8)).astype(np.float32)
    variant = models.randomized("perlin", run=0)
    probs = models.predict_fn(variant, batch_size=2)(x)
    logits = models.predict_fn(variant, "logits", batch_size=2)(x)
    model = models.model(variant)
    np.testing.assert_allclose(probs, model.predict(x[..., None], verbose=0), rtol=1e-5, atol=1e-6)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), probs, rtol=1e-4, atol=1e-6)
    # The predict function keeps its variant even after another variant was loaded.
    models.model(models.trained("perlin", run=0))
    np.testing.assert_allclose(models.predict_fn(variant, batch_size=2)(x), probs, rtol=1e-6)


def flat(model):
    return [w.copy() for w in model.get_weights()]


def assert_weights(got, expected, what):
    assert len(got) == len(expected), what
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b, err_msg=str(what))


def test_runs_of_one_architecture_share_one_model_and_show_their_own_weights():
    """Switching runs assigns weights in place: every variant, in any order, shows the
    weights a model set holding only its run would show."""
    fakes = [FakeTrained(f"fake-{seed}", seed, run=seed) for seed in range(3)]
    other = FakeTrained("fake-d", 9, role="second", build=dense_net)
    ms = pm.ModelSet(load_profile("smoke"), trained_models=[*fakes, other])
    alone = {f.spec.run: pm.ModelSet(load_profile("smoke"), trained_models=[f]) for f in fakes}
    expected = {}
    for run, single in alone.items():
        for v in [single.trained("perlin", run=run), single.randomized("perlin", run=run),
                  *single.cascade("perlin", "bottom_up", run=run)[:2]]:
            expected[v] = flat(single.model(v))
    shared = ms.model(ms.trained("perlin", run=0))
    order = list(expected)
    for v in [*order, *order[::-1], order[5], order[0], order[9], order[2]]:
        got = ms.model(v)
        assert got is shared, v
        assert_weights(flat(got), expected[v], v)
    # Naming variants of other runs does not switch the shared model.
    held = ms.model(order[0])
    ms.randomized("perlin", run=1), ms.cascade("perlin", "top_down", run=2)
    assert_weights(flat(held), expected[order[0]], "after naming other runs' variants")
    assert ms.model(ms.trained("perlin", role="second", run=0)) is not shared
    assert len(ms._loaded) == 2
    for f in fakes:  # trained weights are exactly the run's own
        assert_weights(flat(ms.model(ms.trained("perlin", run=f.spec.run))), f.weights, f.key)


def test_loaded_models_are_evicted(monkeypatch):
    monkeypatch.setattr(pm, "MAX_LOADED", 1)
    fakes = [FakeTrained("fake-a", 1, run=0), FakeTrained("fake-b", 2, role="second", build=dense_net)]
    ms = pm.ModelSet(load_profile("smoke"), trained_models=fakes)
    first = ms.model(ms.randomized("perlin", run=0))
    ms.model(ms.trained("perlin", role="second", run=0))
    assert list(ms._loaded) == [fakes[1].architecture_key]
    assert not ms._trained_weights.keys() & {"fake-a"} and not any(k[0] == "fake-a" for k in ms._random_weights)
    again = ms.model(ms.trained("perlin", run=0))  # reloaded, trained again
    assert again is not first and list(ms._loaded) == [fakes[0].architecture_key]
    assert_weights(flat(again), fakes[0].weights, "reloaded")


def test_random_weights_in_graph_mode_leave_the_models_graph_alone():
    """Drawn in a throwaway graph: the model's graph does not grow, and the values are
    those the model's own graph gives (Keras' seeded initializers are stateless)."""
    import tensorflow as tf
    from tensorflow import keras

    from salbench.models import architectures

    model = architectures.build_vgg((28, 36, 1))
    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_operations())
    drawn = architectures.random_weights(model, "fc1", seed=5)
    assert len(graph.get_operations()) == before
    layer, names = model.get_layer("fc1"), architectures.weight_layers(model)
    for j, w in enumerate(layer.weights):
        cfg = keras.initializers.serialize(getattr(layer, w.name.split("/")[-1].split(":")[0] + "_initializer"))
        if "seed" in cfg.get("config", {}):
            cfg["config"]["seed"] = architectures.weight_seed(5, names.index("fc1"), j)
        in_model_graph = keras.backend.get_value(keras.initializers.deserialize(cfg)(tuple(w.shape)))
        np.testing.assert_array_equal(drawn[j], in_model_graph)
