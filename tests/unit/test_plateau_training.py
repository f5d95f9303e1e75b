"""Issue 12 training options: the fixed standardization layer, linear warm-up, the
steps-to-95 % measurement, and cache keys that do not move for configs without them."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from salbench import config
from salbench.config import ConfigError, load_profile
from salbench.models import architectures, training

SMOKE = dict(data__n_train=32, data__n_val=8, data__n_holdout=8, classifier__batch_size=8, classifier__max_epochs=1)
VGG_PARAMS = 4_317_794  # trainable weights, with or without the fixed layer
# float32 forward pass of the VGG on standardized input computed two ways (the layer vs
# numpy): a few float32 ulps of the softmax output.
FLOAT32_ATOL = 1e-5


def _old_key(spec: training.ModelSpec) -> str:
    """The key as computed before `standardize` and `warmup_steps` existed (and without `runs`,
    which stopped being part of a model's identity later)."""
    train = {k: v for k, v in config.as_dict(spec.train).items() if k not in ("standardize", "warmup_steps", "runs")}
    return config.config_hash(
        {"role": spec.role, "background": spec.background, "run": spec.run, "seed": spec.seed,
         "data_key": spec.data_key, "training_version": training.TRAINING_VERSION}, train)


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_cache_keys_unchanged_while_options_are_off(name):
    profile = load_profile(name, classifier__standardize=False, classifier__warmup_steps=0)
    spec = training.spec_for(profile, "classifier", "mri", 0)
    if not profile.classifier.standardize and not profile.classifier.warmup_steps:
        assert spec.key == _old_key(spec)
    on = dataclasses.replace(spec, train=dataclasses.replace(spec.train, standardize=True))
    warm = dataclasses.replace(spec, train=dataclasses.replace(spec.train, warmup_steps=10))
    assert len({spec.key, on.key, warm.key}) == 3


def test_config_validation():
    with pytest.raises(ConfigError, match="classifier.warmup_steps=-1"):
        load_profile("smoke", classifier__warmup_steps=-1)
    with pytest.raises(ConfigError, match="second.standardize=true"):
        load_profile("smoke", second__standardize=True)
    with pytest.raises(ConfigError, match="classifier.standardize='yes'|expected true or false"):
        load_profile("smoke", classifier__standardize="yes")
    assert load_profile("paper").classifier.standardize is False
    assert load_profile("paper").classifier.warmup_steps == 0


def test_standardize_layer_is_fixed_and_equals_standardizing_the_input():
    mean, sd = 0.24, 0.28
    std = architectures.build("vgg", (32, 48, 1), standardize=True)
    architectures.set_standardization(std, mean, sd)
    plain = architectures.build("vgg", (32, 48, 1))
    plain.set_weights(std.get_weights()[2:])  # the same trained weights, without the fixed layer
    x = np.random.default_rng(0).random((3, 32, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(std.predict(x, verbose=0), plain.predict((x - mean) / sd, verbose=0),
                               rtol=0, atol=FLOAT32_ATOL)
    layer = std.get_layer(architectures.STANDARDIZE_LAYER)
    assert not layer.trainable and not layer.trainable_weights
    assert architectures.weight_layers(std) == architectures.weight_layers(plain)
    big = architectures.build("vgg", standardize=True)
    assert sum(int(np.prod(w.shape)) for w in big.trainable_weights) == VGG_PARAMS
    with pytest.raises(architectures.ArchitectureError, match="sd=0"):
        architectures.set_standardization(std, mean, 0)


def test_linear_warmup_schedule():
    cfg = dataclasses.replace(load_profile("smoke").classifier, learning_rate=1e-3, warmup_steps=4)
    sched = training._learning_rate(cfg)
    got = [float(sched(step)) for step in range(7)]
    np.testing.assert_allclose(got, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3], rtol=1e-6)
    assert training._learning_rate(dataclasses.replace(cfg, warmup_steps=0)) == 1e-3


class _ScriptedModel:
    """predict_on_batch answers with a scripted accuracy per evaluation."""

    def __init__(self, y, accuracies):
        self.y, self.accuracies, self.calls, self.stop_training = y, list(accuracies), 0, False

    def predict_on_batch(self, x):
        k = int(round(self.accuracies[self.calls] * len(self.y)))
        labels = np.where(np.arange(len(self.y)) < k, self.y, 1 - self.y)
        self.calls += 1
        return np.eye(2)[labels]


@pytest.mark.parametrize("stop", [False, True])
def test_steps_to_target_is_first_evaluation_at_95(stop, monkeypatch):
    monkeypatch.setattr(training, "VAL_EVERY_STEPS", 10)
    monkeypatch.setattr(training, "PREDICT_BATCH", 64)
    y = np.arange(40) % 2
    model = _ScriptedModel(y, [0.5, 0.5, 0.925, 0.95, 0.5, 1.0])
    cb = training._steps_callback(np.zeros((40, 1)), y, max_steps=None, stop_at_target=stop)
    cb.set_model(model)
    for _ in range(60):
        cb.on_train_batch_end(0)
        if model.stop_training:
            break
    assert cb.steps_to_target == 40
    assert cb.curve == [(10, 0.5), (20, 0.5), (30, 0.925), (40, 0.95)]  # no evaluation after the target
    assert model.stop_training is stop and cb.step == (40 if stop else 60)


def test_step_cap_stops_training():
    model = _ScriptedModel(np.zeros(4, int), [])
    cb = training._steps_callback(None, None, max_steps=7, stop_at_target=False)
    cb.set_model(model)
    for _ in range(7):
        assert not model.stop_training
        cb.on_train_batch_end(0)
    assert model.stop_training and cb.steps_to_target is None and model.calls == 0


def _train(tmp_path, monkeypatch, **overrides):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    profile = load_profile("smoke", **{**SMOKE, **overrides})
    return profile, training.train_or_load(profile, "classifier", "perlin", 0, progress=False)


def test_evaluation_does_not_change_the_trained_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "VAL_EVERY_STEPS", 1)
    _, evaluated = _train(tmp_path / "a", monkeypatch)
    curve = evaluated.meta["val_subset_curve"]
    assert evaluated.meta["optimizer_steps"] == 4 and [s for s, _ in curve] == list(range(1, len(curve) + 1))
    assert curve and evaluated.meta["val_subset_images"] == 8
    monkeypatch.setattr(training, "VAL_EVERY_STEPS", 10**9)
    _, plain = _train(tmp_path / "b", monkeypatch)
    assert plain.meta["val_subset_curve"] == [] and plain.meta["steps_to_95"] is None
    assert evaluated.meta["weights_sha256"] == plain.meta["weights_sha256"]


def test_standardized_warmup_training_saves_the_fixed_layer(tmp_path, monkeypatch):
    from salbench.data import store

    profile, m = _train(tmp_path, monkeypatch, classifier__standardize=True, classifier__warmup_steps=3)
    mean, sd = m.meta["input_mean"], m.meta["input_sd"]
    with store.open_split(profile, "train") as tr:
        x = tr.x("perlin", slice(0, 32)).astype(np.float64)
    assert mean == pytest.approx(x.mean(), rel=1e-9) and sd == pytest.approx(x.std(), rel=1e-9)
    kernel, bias = m.load().get_layer(architectures.STANDARDIZE_LAYER).get_weights()
    assert kernel.ravel()[0] == np.float32(1 / sd) and bias[0] == np.float32(-mean / sd)
    table = training.accuracy_table([m])
    assert {"steps_to_95", "seed"} <= set(table.columns) and table.seed.iloc[0] == m.spec.seed
    tf.keras.backend.clear_session()
