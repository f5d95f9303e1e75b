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
    """The key as computed before `standardize`, `warmup_steps`, the curriculum and `steps_per_epoch` existed (and
    without `runs`, which stopped being part of a model's identity later)."""
    new = ("standardize", "warmup_steps", "curriculum_steps", "curriculum_lesion_intensity", "curriculum_contrast",
           "steps_per_epoch")
    train = {k: v for k, v in config.as_dict(spec.train).items() if k not in (*new, "runs")}
    train["precision"] = training.resolve_precision(train["precision"])  # "auto" came later too
    return config.config_hash(
        {"role": spec.role, "background": spec.background, "run": spec.run, "seed": spec.seed,
         "data_key": spec.data_key, "training_version": training.TRAINING_VERSION}, train)


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_cache_keys_unchanged_while_options_are_off(name):
    profile = load_profile(name, classifier__standardize=False, classifier__warmup_steps=0,
                           classifier__curriculum_steps=0, classifier__curriculum_contrast=1.0,
                           classifier__steps_per_epoch=None)
    spec = training.spec_for(profile, "classifier", "mri", 0)
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
    """predict_on_batch (what `training.forward` is patched to call) answers with a scripted
    accuracy per evaluation."""

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
    monkeypatch.setattr(training, "forward", lambda m, x: m.predict_on_batch(x))
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


# ------------------------------------------------------------------- curriculum

CURRICULUM = dict(classifier__curriculum_steps=4, classifier__curriculum_lesion_intensity=0.0,
                  classifier__curriculum_contrast=0.25)


def _curriculum_batch(n=6):
    """A smoke-profile batch with its labels, brain masks and corners, and the curriculum."""
    from salbench.data import generator

    profile = load_profile("smoke", **CURRICULUM)
    s = generator.generate(profile.data, profile.seed, "train", np.arange(n))
    x = s.x["perlin"][..., None]
    return profile, training.Curriculum(profile.classifier, profile.data), x, s


def test_curriculum_schedule_ends_at_the_data():
    _, cur, _, _ = _curriculum_batch()
    np.testing.assert_allclose([cur.at(t) for t in (0, 2, 4, 9)],
                               [(0.0, 0.25), (0.15, 0.625), (0.3, 1.0), (0.3, 1.0)], rtol=1e-12)


def test_curriculum_batches_equal_regenerated_data_and_pass_through_after_it():
    from salbench.data import generator

    profile, cur, x, s = _curriculum_batch()
    assert cur.apply(x, s.y, s.mask, s.corners, 4) is x  # from step `steps` on: the data as generated
    # Contrast 1 and the data's intensity: the recovered lesion-free image times the lesion map is x.
    cur.lesion_start, cur.contrast_start = profile.data.lesion_intensity, 1.0
    np.testing.assert_allclose(cur.apply(x, s.y, s.mask, s.corners, 0), x, rtol=0, atol=1e-6)
    # Black lesions (intensity 0) are the data regenerated with lesion_intensity 0.
    cur.lesion_start = 0.0
    black = generator.generate(dataclasses.replace(profile.data, lesion_intensity=0.0), profile.seed, "train",
                               np.arange(len(s.y)))
    np.testing.assert_allclose(cur.apply(x, s.y, s.mask, s.corners, 0), black.x["perlin"][..., None],
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("background", ["perlin", "mri"])
def test_curriculum_contrast_keeps_the_in_brain_mean_and_zero_outside(background):
    profile, cur, _, s = _curriculum_batch()
    x = s.x[background][..., None]
    assert not x[..., 0][~s.mask].any()  # both backgrounds are zero outside the stored brain mask
    cur.lesion_start = profile.data.lesion_intensity  # contrast only
    out = cur.apply(x, s.y, s.mask, s.corners, 0)[..., 0]
    clean = x[..., 0]
    for k in np.flatnonzero(s.y == 0):  # lesion-free images: contrast alone
        inside = s.mask[k]
        assert out[k][inside].mean() == pytest.approx(clean[k][inside].mean(), rel=1e-5)
        assert out[k][inside].std() == pytest.approx(0.25 * clean[k][inside].std(), rel=1e-4)
        assert not out[k][~inside].any()


def test_curriculum_config_validation_and_keys():
    for key, value, match in (("curriculum_steps", -1, "classifier.curriculum_steps=-1"),
                              ("curriculum_lesion_intensity", 1.0, "curriculum_lesion_intensity=1.0"),
                              ("curriculum_contrast", 0.0, "curriculum_contrast=0.0")):
        with pytest.raises(ConfigError, match=match):
            load_profile("smoke", **{f"classifier__{key}": value})
    with pytest.raises(ConfigError, match="second.curriculum_steps=5: only the classifier"):
        load_profile("smoke", second__curriculum_steps=5)
    assert load_profile("paper").classifier.curriculum_steps == 0
    off = training.spec_for(load_profile("smoke"), "classifier", "mri", 0)
    on = training.spec_for(load_profile("smoke", **CURRICULUM), "classifier", "mri", 0)
    assert off.key == _old_key(off) and on.key != off.key


def test_curriculum_training_runs_and_is_deterministic(tmp_path, monkeypatch):
    _, a = _train(tmp_path / "a", monkeypatch, **CURRICULUM)
    _, b = _train(tmp_path / "b", monkeypatch, **CURRICULUM)
    _, plain = _train(tmp_path / "c", monkeypatch)
    assert a.meta["weights_sha256"] == b.meta["weights_sha256"] != plain.meta["weights_sha256"]
    assert a.meta["train_config"]["curriculum_steps"] == 4
    tf.keras.backend.clear_session()


def test_steps_per_epoch_cuts_passes_without_changing_the_data_order(tmp_path, monkeypatch):
    # Epochs of one pass (4 steps of 8 of the 32 images) either way: the same weights.
    _, passes = _train(tmp_path / "a", monkeypatch, classifier__max_epochs=2)
    _, cut = _train(tmp_path / "b", monkeypatch, classifier__max_epochs=2, classifier__steps_per_epoch=4)
    assert passes.meta["weights_sha256"] == cut.meta["weights_sha256"] and cut.meta["optimizer_steps"] == 8
    # Epochs of half a pass: three of them are 6 steps; validation and loss_stop after each.
    _, half = _train(tmp_path / "c", monkeypatch, classifier__max_epochs=3, classifier__steps_per_epoch=2,
                     classifier__loss_stop=0.0, classifier__patience=10)
    assert half.meta["optimizer_steps"] == 6 and half.meta["epochs"] == 3
    with pytest.raises(ConfigError, match="classifier.steps_per_epoch=0"):
        load_profile("smoke", classifier__steps_per_epoch=0)
    tf.keras.backend.clear_session()


@pytest.mark.parametrize("flags, gpu, expected", [
    ({"avx2"}, False, "float32"), ({"avx512_bf16"}, False, "mixed_bfloat16"),
    ({"amx_bf16", "amx_tile"}, False, "mixed_bfloat16"), (set(), True, "mixed_bfloat16")])
def test_precision_auto_resolves_by_machine_and_keys_by_the_result(flags, gpu, expected, monkeypatch):
    from salbench import provenance

    monkeypatch.setattr(provenance, "cpu_flags", lambda: flags)
    monkeypatch.setattr(training, "_bf16_gpu", lambda: gpu)
    training.resolve_precision.cache_clear()
    try:
        assert training.resolve_precision("auto") == expected
        assert training.resolve_precision("float32") == "float32"  # explicit settings are never changed
        auto = training.spec_for(load_profile("smoke", classifier__precision="auto"), "classifier", "mri", 0)
        fixed = training.spec_for(load_profile("smoke", classifier__precision=expected), "classifier", "mri", 0)
        assert auto.key == fixed.key
    finally:
        training.resolve_precision.cache_clear()


def test_curriculum_steps_count_across_epochs_and_training_never_stops_inside_it(tmp_path, monkeypatch):
    seen = []
    apply = training.Curriculum.apply

    def spy(self, x, y, mask, corners, step):
        seen.append(step)
        return apply(self, x, y, mask, corners, step)

    monkeypatch.setattr(training.Curriculum, "apply", spy)
    # Epochs of 2 steps, a 5-step curriculum, and a loss_stop every epoch would meet:
    # the run must still train until the epoch in which the curriculum ends.
    _, m = _train(tmp_path, monkeypatch, classifier__curriculum_steps=5, classifier__steps_per_epoch=2,
                  classifier__max_epochs=6, classifier__loss_stop=1e9, classifier__patience=0)
    assert m.meta["optimizer_steps"] == 6 and m.meta["epochs"] == 3
    # Batches 1-4 of the first pass (4 steps of 8 of the 32 images) go through the curriculum;
    # the second pass starts at step 5, still inside it, so it does too; nothing is read ahead.
    assert seen == [1, 2, 3, 4, 5, 6]
    tf.keras.backend.clear_session()


def test_curriculum_needs_lesions_to_divide_by():
    with pytest.raises(ConfigError, match="data.lesion_intensity > 0"):
        load_profile("smoke", data__lesion_intensity=0.0, **CURRICULUM)
    load_profile("smoke", data__lesion_intensity=0.0)  # without a curriculum 0 is fine
