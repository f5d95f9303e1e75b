"""Architectures, training rules, determinism, save/load across processes and modes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from salbench.config import load_profile
from salbench.models import architectures, training

# Budding et al.'s VGG-like net at 140 x 192: 4,317,794 weights ("about 4.3 million").
VGG_PARAMS = 4_317_794
SMOKE = dict(data__n_train=32, data__n_val=8, data__n_holdout=8, classifier__batch_size=16, classifier__max_epochs=1)


def test_vgg_shape_and_parameters():
    m = architectures.build("vgg")
    assert m.count_params() == VGG_PARAMS
    assert m.output_shape == (None, 2)
    convs = [l for l in m.layers if isinstance(l, tf.keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    assert sum(isinstance(l, tf.keras.layers.MaxPooling2D) for l in m.layers) == 4
    assert m.get_layer("fc1").units == 128 and m.get_layer("predictions").activation.__name__ == "softmax"
    assert m.get_layer("fc1").kernel_initializer.__class__.__name__ == "HeNormal"


def test_densenet_and_unet_shapes():
    assert architectures.build("densenet_small").output_shape == (None, 2)
    unet = architectures.build("unet", base_filters=4, depth=3)
    assert unet.output_shape == (None, 140, 192, 1)


def test_unknown_architecture_and_bad_input():
    with pytest.raises(architectures.ArchitectureError, match="unknown architecture 'resnet'"):
        architectures.build("resnet")
    with pytest.raises(architectures.ArchitectureError, match="input_shape=\\(140, 192, 3\\)"):
        architectures.build("vgg", (140, 192, 3))
    m = architectures.build("vgg")
    with pytest.raises(architectures.ArchitectureError, match="does not fit model input"):
        architectures.check_input(m, np.zeros((2, 128, 128, 1), np.float32))


def test_reinitialize_changes_only_named_layers():
    m = architectures.build("vgg")
    before = {l.name: [w.copy() for w in l.get_weights()] for l in m.layers}
    architectures.reinitialize(m, ["fc1"], seed=3)
    assert not np.allclose(m.get_layer("fc1").get_weights()[0], before["fc1"][0])
    assert np.allclose(m.get_layer("block1_conv1").get_weights()[0], before["block1_conv1"][0])
    with pytest.raises(architectures.ArchitectureError, match="no layer 'nope'"):
        architectures.reinitialize(m, ["nope"], seed=3)


def test_random_weights_depend_on_the_layer_not_on_other_layers():
    m = architectures.build("vgg")
    one = architectures.random_weights(m, "fc1", seed=3)
    architectures.reinitialize(m, ["predictions", "block4_conv2"], seed=3)
    again = architectures.random_weights(m, "fc1", seed=3)
    for a, b in zip(one, again):
        np.testing.assert_array_equal(a, b)
    architectures.reinitialize(m, ["block1_conv1", "fc1"], seed=3)  # the list passed in does not matter
    for a, b in zip(one, m.get_layer("fc1").get_weights()):
        np.testing.assert_array_equal(a, b)
    other_seed = architectures.random_weights(m, "fc1", seed=4)
    assert not np.array_equal(one[0], other_seed[0])
    with pytest.raises(architectures.ArchitectureError, match="no weight layer 'flatten'"):
        architectures.random_weights(m, "flatten", seed=3)


def test_random_weights_reset_batchnorm_to_its_initial_state():
    inp = tf.keras.Input((4, 4, 1))
    out = tf.keras.layers.BatchNormalization(name="bn")(tf.keras.layers.Conv2D(3, 1, name="conv")(inp))
    m = tf.keras.Model(inp, out)
    bn = m.get_layer("bn")
    bn.set_weights([np.full(3, 2.0, np.float32), np.full(3, 0.5, np.float32), np.full(3, 0.7, np.float32),
                    np.full(3, 9.0, np.float32)])
    architectures.reinitialize(m, ["bn"], seed=1)
    gamma, beta, mean, var = bn.get_weights()
    np.testing.assert_array_equal(gamma, 1.0)
    np.testing.assert_array_equal(beta, 0.0)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(var, 1.0)
    assert architectures.weight_layers(m) == ["conv", "bn"]


def _epochs_run(train_cfg, losses):
    """Drive the training callbacks with a scripted loss per epoch; return epochs run."""
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    cbs = training._callbacks(train_cfg, 1, "t", progress=False)
    for cb in cbs:
        cb.set_model(model)
        cb.on_train_begin()
    model.stop_training = False
    for epoch, loss in enumerate(losses):
        for cb in cbs:
            cb.on_epoch_begin(epoch)
            cb.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
        if model.stop_training:
            return epoch + 1
    return len(losses)


def test_early_stopping_patience_and_min_delta():
    cfg = load_profile("paper").classifier  # patience 10, min_delta 5e-4, loss_stop 0.05
    # Improves once, then plateaus within min_delta of the best: stops `patience` epochs later.
    losses = [1.0, 0.9] + [0.9 - 0.8 * cfg.min_delta] * 40
    assert _epochs_run(cfg, losses) == 2 + cfg.patience
    # A slow decline counts once its cumulative gain exceeds min_delta: training goes on.
    slow = [1.0] + [1.0 - 0.3 * cfg.min_delta * k for k in range(1, 40)]
    assert _epochs_run(cfg, slow) == 40


def test_loss_threshold_stops_training():
    cfg = load_profile("paper").classifier
    losses = [1.0, 0.5, 0.2, 0.049, 0.01, 0.005] + [0.001] * 30
    assert _epochs_run(cfg, losses) == 4  # stops at the first epoch with loss < 0.05


def _tiny_model(seed):
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((6,))
    out = tf.keras.layers.Dense(2, activation="softmax")(tf.keras.layers.Dense(5, activation="relu")(inp))
    model = tf.keras.Model(inp, out)
    model.compile(tf.keras.optimizers.legacy.Adam(0.05), "categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("steps_per_epoch", [None, 3])
def test_fit_matches_keras_fit(steps_per_epoch):
    """`training.fit` (fed from Python) is Keras' fit: same weights, same per-epoch logs,
    with epochs of one pass of 4 batches (the last one short) or of 3 batches of a stream."""
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(26, 6)).astype(np.float32), rng.integers(0, 2, 26)
    y = np.eye(2, dtype=np.float32)[labels]
    xv, yv = x[:10] + 0.1, y[:10]

    def one_pass(a, b, size):
        return lambda: ((a[i:i + size], b[i:i + size]) for i in range(0, len(a), size))

    ours = _tiny_model(1)
    ours_hist = training.fit(ours, one_pass(x, y, 8), one_pass(xv, yv, 4), 3, steps_per_epoch, [])
    keras_model = _tiny_model(1)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    keras_hist = keras_model.fit(train_ds.repeat() if steps_per_epoch else train_ds,
                                 validation_data=tf.data.Dataset.from_tensor_slices((xv, yv)).batch(4), epochs=3,
                                 steps_per_epoch=steps_per_epoch, verbose=0).history
    assert sorted(ours_hist) == sorted(keras_hist) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for k in keras_hist:
        np.testing.assert_allclose(ours_hist[k], keras_hist[k], rtol=1e-5)
    for a, b in zip(ours.get_weights(), keras_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert ours.optimizer.iterations.numpy() == 3 * (steps_per_epoch or 4)


def test_forward_is_keras_predict():
    model = _tiny_model(2)
    x = np.random.default_rng(3).normal(size=(7, 6)).astype(np.float32)
    np.testing.assert_allclose(training.forward(model, x), model.predict(x, verbose=0), rtol=1e-6)


def test_compiled_steps_do_not_keep_models_alive():
    import gc
    import weakref

    model = _tiny_model(4)
    x, y = np.zeros((4, 6), np.float32), np.eye(2, dtype=np.float32)[np.zeros(4, int)]
    training.fit(model, lambda: iter([(x, y)]), lambda: iter([(x, y)]), 1, None, [])
    training.forward(model, x)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None


def test_fit_callbacks_stop_and_empty_data_is_an_error():
    class StopAfterTwo(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    x, y = np.zeros((8, 6), np.float32), np.eye(2, dtype=np.float32)[np.zeros(8, int)]
    batches = lambda: iter([(x, y)])  # noqa: E731
    hist = training.fit(_tiny_model(0), batches, batches, 10, None, [StopAfterTwo()])
    assert len(hist["loss"]) == 2
    with pytest.raises(ValueError, match="no batch"):
        training.fit(_tiny_model(0), lambda: iter(()), batches, 1, None, [])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import os

    os.environ["SALBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    profile = load_profile("smoke", **SMOKE)
    m = training.train_or_load(profile, "classifier", "perlin", 0, progress=False)
    yield profile, m
    del os.environ["SALBENCH_CACHE"]


def test_training_artifacts(trained):
    profile, m = trained
    assert (m.folder / "weights.h5").is_file() and (m.folder / "history.csv").is_file()
    assert m.meta["epochs"] == 1 and 0.0 <= m.meta["holdout_accuracy"] <= 1.0
    assert len(m.meta["weights_sha256"]) == 64 and m.meta["git_sha"]
    assert list(m.history().columns[:2]) == ["epoch", "accuracy"]


def test_training_is_deterministic(trained, tmp_path, monkeypatch):
    profile, m = trained
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "again"))
    again = training.train_or_load(profile, "classifier", "perlin", 0, progress=False)
    assert again.folder != m.folder
    a, b = m.load(), again.load()
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_save_load_identical_in_graph_mode_process(trained, tmp_path):
    profile, m = trained
    x = np.random.default_rng(0).random((4, 140, 192, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    here = m.load().predict(x, verbose=0)
    script = textwrap.dedent(f"""
        import os, json, numpy as np
        os.environ["SALBENCH_CACHE"] = {str(m.folder.parents[1])!r}
        import tensorflow as tf
        tf.compat.v1.disable_eager_execution()
        from salbench.models import training
        from salbench import cache
        spec = training.spec_for(training.load_profile("smoke", **{SMOKE!r}), "classifier", "perlin", 0)
        tm = training.TrainedModel(spec, cache.entry_dir("models", spec.key), cache.read_meta(cache.entry_dir("models", spec.key)))
        assert not tf.executing_eagerly()
        np.save({str(tmp_path / "p.npy")!r}, tm.load().predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    assert np.array_equal(np.load(tmp_path / "p.npy"), here)


def test_corrupted_weights_are_rejected_and_retrained(trained):
    profile, m = trained
    weights = m.folder / "weights.h5"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(training.CorruptModelError, match="checksum mismatch"):
        m.load()
    again = training.train_or_load(profile, "classifier", "perlin", 0, progress=False)
    assert (again.folder / "weights.h5").read_bytes() == good  # retrained, deterministically


def test_bad_run_index():
    with pytest.raises(ValueError, match="runs 0..1"):
        training.spec_for(load_profile("smoke"), "classifier", "perlin", 5)


def test_a_models_key_does_not_depend_on_how_many_runs_there_are():
    two = training.spec_for(load_profile("smoke"), "classifier", "perlin", 0)
    three = training.spec_for(load_profile("smoke", classifier__runs=3), "classifier", "perlin", 0)
    assert two.key == three.key
    other_lr = training.spec_for(load_profile("smoke", classifier__learning_rate=0.5), "classifier", "perlin", 0)
    assert other_lr.key != two.key


class _ArrayReader:
    def __init__(self, x):
        self._x = x

    def x(self, background, index):
        return self._x[index]


def test_recalibrate_batchnorm_sets_population_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (96, 4, 4, 1)).astype(np.float32)
    inp = tf.keras.Input((4, 4, 1))
    bn = tf.keras.layers.BatchNormalization(name="bn")
    model = tf.keras.Model(inp, bn(inp))
    used = training.recalibrate_batchnorm(model, _ArrayReader(x), "mri", batch_size=32, n=96)
    assert used == 96
    # Mean of the three batch means (equal batches) = the sample mean; variance likewise averaged.
    batch_means = [x[i:i + 32].mean() for i in range(0, 96, 32)]
    batch_vars = [x[i:i + 32].var(ddof=1) for i in range(0, 96, 32)]  # Keras stores the unbiased variance
    np.testing.assert_allclose(bn.moving_mean.numpy()[0], np.mean(batch_means), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy()[0], np.mean(batch_vars), rtol=1e-3)
    assert bn.momentum == 0.99  # restored
    assert training.recalibrate_batchnorm(architectures.build("vgg"), _ArrayReader(x), "mri", 32, 96) == 0
