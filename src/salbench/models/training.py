"""Training protocol (Budding et al., "Networks & training"), model cache and loading.

A trained model is a cache entry ``models/<key>`` holding ``weights.h5`` (float32
weights only), ``history.csv``, and ``meta.json`` with the architecture, configs,
seed, holdout metrics, provenance and the SHA-256 of the weights file. Loading
rebuilds the architecture under the float32 policy and loads the weights, so a
model trained in eager mode (and possibly bf16 compute) loads identically in a
process with eager execution disabled (as iNNvestigate needs). A weights file whose
checksum does not match is rejected with `CorruptModelError`; `train_or_load`
then deletes the entry and retrains.
"""

from __future__ import annotations

import csv
import functools
import logging
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salbench import cache, config, seeding
from salbench.config import (  # noqa: F401 (tests)
    BACKGROUNDS,
    Profile,
    TrainConfig,
    UNetConfig,
    check_choice,
    load_profile,
)
from salbench.data import store

logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices, not errors
_log = logging.getLogger(__name__)

STAGE = "models"
# Bump when a change to the training code changes the weights a config produces.
TRAINING_VERSION = 2
WEIGHTS = "weights.h5"
PREDICT_BATCH = 64
# Steps-to-target measurement (ours, issue 12): every `VAL_EVERY_STEPS` optimizer steps
# the classifier's accuracy on the first `VAL_SUBSET_IMAGES` validation images (a fixed
# subset, so evaluations are comparable and cheap) is recorded until it first reaches
# `TARGET_ACCURACY`; that step is `steps_to_95`. Evaluation is inference only (no
# weight, optimizer, RNG or BatchNorm state changes), so the weights trained are the same.
VAL_EVERY_STEPS = 50
VAL_SUBSET_IMAGES = 256
TARGET_ACCURACY = 0.95
# Images of the training split whose pixel mean and SD the `standardize` layer uses.
STANDARDIZE_IMAGES = 2048
# Train-config keys added after models were cached; left out of the cache key while at
# these defaults so existing configs keep their keys (and their cached weights).
_KEY_OPTIONAL = {"standardize": False, "warmup_steps": 0, "curriculum_steps": 0,
                 "curriculum_lesion_intensity": 0.0, "curriculum_contrast": 1.0, "steps_per_epoch": None}


class CorruptModelError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """What identifies one trained model."""

    role: str  # "classifier" | "second" | "unet"
    background: str
    run: int
    seed: int
    train: TrainConfig
    data_key: str

    @property
    def key(self) -> str:
        # `runs` is how many siblings a model has, not what it is: run 0 of a 1-run and a
        # 2-run profile are the same model.
        train = {k: v for k, v in config.as_dict(self.train).items()
                 if k != "runs" and not (k in _KEY_OPTIONAL and v == _KEY_OPTIONAL[k])}
        # "auto" is keyed by what it resolves to here: bf16 and float32 weights never mix.
        train["precision"] = resolve_precision(self.train.precision)
        return config.config_hash(
            {"role": self.role, "background": self.background, "run": self.run, "seed": self.seed,
             "data_key": self.data_key, "training_version": TRAINING_VERSION},
            train,
        )


def spec_for(profile: Profile, role: str, background: str, run: int) -> ModelSpec:
    check_choice("role", role, ("classifier", "second", "unet"))
    check_choice("background", background, BACKGROUNDS)
    train = getattr(profile, role)
    if not 0 <= run < train.runs:
        raise ValueError(f"run={run}: {role} has runs 0..{train.runs - 1} in profile {profile.name!r}")
    seed = seeding.stage_int_seed(profile.seed, f"train/{role}/{background}", run)
    return ModelSpec(role, background, run, seed, train, store.data_key(profile.seed, profile.data))


# --------------------------------------------------------------------------- build


def architecture_key(train: TrainConfig, input_shape) -> tuple:
    """What `build_model` builds from: two models with the same key have the same
    layers, names and weight shapes (their weights may differ)."""
    if isinstance(train, UNetConfig):
        return ("unet", tuple(input_shape), train.base_filters, train.depth)
    return (train.architecture, tuple(input_shape), bool(train.standardize))


def build_model(train: TrainConfig, input_shape):
    from salbench.models import architectures

    if isinstance(train, UNetConfig):
        return architectures.build("unet", input_shape, base_filters=train.base_filters, depth=train.depth)
    if train.standardize:
        return architectures.build(train.architecture, input_shape, standardize=True)
    return architectures.build(train.architecture, input_shape)


def input_statistics(reader: store.SplitReader, background: str, n: int = STANDARDIZE_IMAGES) -> tuple[float, float]:
    """Pixel mean and SD (population, float64) over the first `n` images of a split."""
    total = total_sq = count = 0.0
    for start in range(0, min(n, len(reader)), 512):
        x = reader.x(background, slice(start, min(start + 512, n))).astype(np.float64)
        total += x.sum()
        total_sq += np.square(x).sum()
        count += x.size
    mean = total / count
    return float(mean), float(np.sqrt(max(total_sq / count - mean**2, 0.0)))


def _learning_rate(train: TrainConfig):
    """A float (no warm-up), or a linear warm-up from lr / warmup_steps to lr over the
    first `warmup_steps` optimizer steps, then constant (ours)."""
    if train.warmup_steps == 0:
        return train.learning_rate
    import tensorflow as tf

    class LinearWarmup(tf.keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, lr: float, steps: int):
            self.lr, self.steps = lr, steps

        def __call__(self, step):
            frac = tf.minimum((tf.cast(step, tf.float32) + 1.0) / self.steps, 1.0)
            return self.lr * frac

        def get_config(self):
            return {"lr": self.lr, "steps": self.steps}

    return LinearWarmup(train.learning_rate, train.warmup_steps)


def _optimizer(train: TrainConfig):
    import tensorflow as tf

    # Legacy optimizers work in both eager and graph mode (iNNvestigate processes).
    opt = tf.keras.optimizers.legacy
    lr = _learning_rate(train)
    if train.optimizer == "sgd":
        return opt.SGD(learning_rate=lr, momentum=train.momentum)
    return opt.Adam(learning_rate=lr)


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
BF16_GPU_CAPABILITY = (8, 0)  # NVIDIA Ampere and later have bf16 tensor cores


@functools.lru_cache(maxsize=None)
def resolve_precision(precision: str) -> str:
    """The precision a model trains in here: `precision` itself, or for "auto"
    mixed_bfloat16 on a CPU with bf16 instructions (BF16_CPU_FLAGS; measured in
    benchmarks/bench_precision.py) or a visible GPU of compute capability >= 8.0, float32
    elsewhere (bf16 emulated in float32 units is slower than float32)."""
    if precision != "auto":
        return precision
    from salbench import provenance

    if provenance.cpu_flags() & set(BF16_CPU_FLAGS) or _bf16_gpu():
        return "mixed_bfloat16"
    return "float32"


def _bf16_gpu() -> bool:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= BF16_GPU_CAPABILITY:
            return True
    return False


def _set_precision(precision: str) -> None:
    from tensorflow import keras

    keras.mixed_precision.set_global_policy(precision)


# ----------------------------------------------------------------------- callbacks


def _callbacks(train: TrainConfig, steps: int, desc: str, progress: bool):
    from tensorflow import keras

    from salbench.progress import tqdm

    # A run never stops inside its curriculum: it would end having seen only eased data.
    curriculum_epochs = int(np.ceil(train.curriculum_steps / steps))

    class LossThreshold(keras.callbacks.Callback):
        """Stop when the training loss falls below `loss_stop` (Budding et al.: 0.05)."""

        def on_epoch_end(self, epoch, logs=None):
            if (train.loss_stop > 0 and epoch + 1 >= curriculum_epochs and logs
                    and logs.get("loss", np.inf) < train.loss_stop):
                self.model.stop_training = True

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.bar = tqdm(total=steps, desc=f"{desc} epoch {epoch + 1}/{train.max_epochs}", unit="batch",
                            disable=not progress, leave=False)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

        def on_epoch_end(self, epoch, logs=None):
            self.bar.close()
            if progress and logs:
                print(f"{desc} epoch {epoch + 1}: " + ", ".join(f"{k}={v:.4f}" for k, v in logs.items()), flush=True)

    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=train.patience, min_delta=train.min_delta,
                                          start_from_epoch=curriculum_epochs)
    return [early, LossThreshold(), Progress()]


def _steps_callback(x_val: np.ndarray | None, y_val: np.ndarray | None, max_steps: int | None, stop_at_target: bool):
    """Count optimizer steps; every VAL_EVERY_STEPS record the accuracy on (x_val, y_val)
    until it first reaches TARGET_ACCURACY (then stop evaluating, or stop training if
    `stop_at_target`); stop training after `max_steps` steps (None: no cap)."""
    from tensorflow import keras

    class StepsToTarget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0
            self.steps_to_target = None
            self.curve: list[tuple[int, float]] = []

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if x_val is not None and self.steps_to_target is None and self.step % VAL_EVERY_STEPS == 0:
                p = np.concatenate([forward(self.model, x_val[s : s + PREDICT_BATCH])
                                    for s in range(0, len(x_val), PREDICT_BATCH)])
                acc = float((np.asarray(p).argmax(1) == y_val).mean())
                self.curve.append((self.step, acc))
                _log.info("step %d: validation-subset accuracy %.4f", self.step, acc)
                if acc >= TARGET_ACCURACY:
                    self.steps_to_target = self.step
                    if stop_at_target:
                        self.model.stop_training = True
            if max_steps is not None and self.step >= max_steps:
                self.model.stop_training = True

    return StepsToTarget()


# ------------------------------------------------------------------------ datasets


class Curriculum:
    """The easy-to-hard curriculum of `TrainConfig.curriculum_steps` (ours, issue 12).

    Batch k (0-based) is used at optimizer step k + 1; at step t, with f = min(t / steps, 1),
    the lesions keep lesion_start + f * (intensity - lesion_start) of the background and
    the background's in-brain contrast around each image's in-brain mean is
    contrast_start + f * (1 - contrast_start). The lesion-free background is recovered
    exactly (up to float32 rounding) from the stored image and lesion corners, since the
    data multiply it by 1 - (1 - intensity) * window. From step `steps` on, batches pass
    through unchanged."""

    def __init__(self, train: TrainConfig, data_cfg: config.DataConfig):
        self.steps = train.curriculum_steps
        self.lesion_start, self.contrast_start = train.curriculum_lesion_intensity, train.curriculum_contrast
        self.data_cfg = data_cfg
        self.intensity = data_cfg.lesion_intensity

    def at(self, step: int) -> tuple[float, float]:
        """(lesion intensity, background contrast) of the batch used at optimizer step `step`."""
        f = min(step / self.steps, 1.0)
        return (self.lesion_start + f * (self.intensity - self.lesion_start),
                self.contrast_start + f * (1.0 - self.contrast_start))

    def apply(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, corners: np.ndarray, step: int) -> np.ndarray:
        if step >= self.steps:
            return x
        from salbench.data import generator

        lesion, contrast = self.at(step)
        window = generator.lesion_windows(y, corners, self.data_cfg)[..., None]
        clean = x / generator.lesion_map_of(window, self.intensity)
        if contrast != 1.0:
            m = mask[..., None].astype(np.float32)
            mean = (clean * m).sum((1, 2, 3), keepdims=True) / np.maximum(m.sum((1, 2, 3), keepdims=True), 1.0)
            clean = (mean + contrast * (clean - mean)) * m
        return clean * generator.lesion_map_of(window, lesion)


def _batches(reader: store.SplitReader, background: str, batch_size: int, n: int, seed: int | None, target: str,
             curriculum: Curriculum | None = None):
    """A function returning a fresh pass of (x, target) batches over the split (target
    "class" or "gt"); `seed` None: no shuffling, else every pass draws its own order from
    one stream; `curriculum`: its step counts batches across passes."""
    rng = np.random.default_rng(seed) if seed is not None else None
    batches_made = [0]

    def one_pass():
        if curriculum is None or batches_made[0] >= curriculum.steps:  # no (more) curriculum: plain batches
            yield from reader.iter_batches(background, batch_size, rng=rng, n=n, target=target)
            return
        for x, t, y, mask, corners in reader.iter_batches(background, batch_size, rng=rng, n=n, target=target,
                                                         lesions=True):
            batches_made[0] += 1
            yield curriculum.apply(x, y, mask, corners, batches_made[0]), t

    return one_pass


_COMPILED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fit(model, train_pass, val_pass, epochs: int, steps_per_epoch: int | None, callbacks) -> dict[str, list[float]]:
    """Keras' `fit` loop, fed from Python: each batch is passed to a compiled
    `model.train_step` as an argument. Epochs are `steps_per_epoch` batches of a stream
    of passes of `train_pass()` (None: one pass each); after each, `model.test_step` over
    one pass of `val_pass()` gives the ``val_`` logs. Callbacks get Keras' calls and logs
    (epoch-mean loss and metrics); returns the History dict.

    Why not `model.fit`: on a 2-core AMD EPYC (TF 2.14, oneDNN), a whole `fit` call over
    tf.data ran, at random, on both cores or on one (about 90 or 50 VGG-like images/s,
    same model and data, in about 4 calls of 10); batches fed from Python ran on both
    cores in every call (benchmarks/bench_training.py)."""
    import itertools

    import tensorflow as tf
    from tensorflow import keras

    steps = _COMPILED_STEPS.get(model)
    if steps is None or steps[0] is not model.optimizer:  # traced once per model and `compile`
        ref = weakref.ref(model)  # the cache must not keep the model alive
        steps = (model.optimizer, tf.function(lambda data: ref().train_step(data), reduce_retracing=True),
                 tf.function(lambda data: ref().test_step(data), reduce_retracing=True))
        _COMPILED_STEPS[model] = steps
    _, train_step, test_step = steps

    def as_floats(logs):
        return {k: float(v) for k, v in logs.items()}

    cbs = keras.callbacks.CallbackList(callbacks, add_history=True, model=model, epochs=epochs, steps=steps_per_epoch,
                                       verbose=0)
    stream = itertools.chain.from_iterable(train_pass() for _ in itertools.count()) if steps_per_epoch else None
    model.stop_training = False
    cbs.on_train_begin()
    for epoch in range(epochs):
        model.reset_metrics()
        cbs.on_epoch_begin(epoch)
        batches = itertools.islice(stream, steps_per_epoch) if steps_per_epoch else train_pass()
        logs = {}
        for step, (x, y) in enumerate(batches):
            cbs.on_train_batch_begin(step)
            logs = as_floats(train_step((x, y)))
            cbs.on_train_batch_end(step, logs)
        if not logs:
            raise ValueError("fit: the training data gave no batch (n_train_images 0 or an empty split?)")
        model.reset_metrics()
        val_logs = {}
        for x, y in val_pass():
            val_logs = as_floats(test_step((x, y)))
        epoch_logs = {**logs, **{f"val_{k}": v for k, v in val_logs.items()}}
        model.reset_metrics()
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return model.history.history


def _dice_bce_loss():
    import tensorflow as tf

    bce = tf.keras.losses.BinaryCrossentropy()

    def loss(y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        inter = tf.reduce_sum(y_true * y_pred)
        dice = 1.0 - (2.0 * inter + 1.0) / (tf.reduce_sum(y_true) + tf.reduce_sum(y_pred) + 1.0)
        return bce(y_true, y_pred) + dice

    return loss


# ------------------------------------------------------------------------ evaluate


_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward(model, x: np.ndarray) -> np.ndarray:
    """The model's inference output for one batch, as numpy. A compiled call instead of
    Keras' `predict`, which goes through tf.data and, like `fit` (see `fit`), ran on one
    core at random; in a graph-mode process, Keras' own `predict_on_batch`."""
    import tensorflow as tf

    if not tf.executing_eagerly():
        return model.predict_on_batch(x)
    fn = _FORWARD.get(model)
    if fn is None:
        ref = weakref.ref(model)  # the cache must not keep the model alive
        fn = _FORWARD[model] = tf.function(lambda batch: ref()(batch, training=False), reduce_retracing=True)
    return fn(tf.convert_to_tensor(x, tf.float32)).numpy()


def predict(model, reader: store.SplitReader, background: str, n: int | None = None, batch_size: int = PREDICT_BATCH):
    n = len(reader) if n is None else n
    out = [forward(model, reader.x(background, slice(s, min(s + batch_size, n)))) for s in range(0, n, batch_size)]
    return np.concatenate(out)


def evaluate_holdout(model, spec: ModelSpec, holdout: store.SplitReader) -> dict:
    y = holdout.y()
    p = predict(model, holdout, spec.background)
    if spec.role == "unet":
        gt = holdout.gt()
        seg = p[..., 0] > 0.5
        inter = (seg & gt).sum()
        dice = float(2 * inter / max(seg.sum() + gt.sum(), 1))
        detect = seg.reshape(len(y), -1).any(axis=1).astype(int)
        return {"holdout_accuracy": float((detect == y).mean()), "holdout_dice": dice}
    return {"holdout_accuracy": float((p.argmax(1) == y).mean()), "holdout_dice": float("nan")}


# --------------------------------------------------------------------------- train


def train(spec: ModelSpec, folder_data: Path, out: Path, progress: bool = True,
          max_steps: int | None = None, stop_at_target: bool = False) -> dict:
    """Train one model into folder `out`; return metadata (history, holdout metrics,
    for classifiers `steps_to_95` and `val_subset_curve`: see VAL_EVERY_STEPS).
    `max_steps` caps the optimizer steps and `stop_at_target` stops at the first
    evaluation reaching TARGET_ACCURACY: both for studies (benchmarks/plateau_study.py);
    the models of a profile are trained with neither."""
    import tensorflow as tf

    t = spec.train
    seeding.set_global_determinism(spec.seed)
    precision = resolve_precision(t.precision)
    _set_precision(precision)
    standardization = None
    try:
        with store.SplitReader(folder_data, "train") as tr, store.SplitReader(folder_data, "val") as va:
            n_train = t.n_train_images or len(tr)
            n_val = t.n_val_images or len(va)
            input_shape = tr.x(spec.background, slice(0, 1)).shape[1:]
            model = build_model(t, input_shape)
            if t.standardize:
                from salbench.models import architectures

                standardization = input_statistics(tr, spec.background, min(n_train, STANDARDIZE_IMAGES))
                architectures.set_standardization(model, *standardization)
            target = "gt" if spec.role == "unet" else "class"
            n_sub = min(n_val, VAL_SUBSET_IMAGES)
            counter = _steps_callback(va.x(spec.background, slice(0, n_sub)) if target == "class" else None,
                                      va.y(slice(0, n_sub)) if target == "class" else None, max_steps, stop_at_target)
            if target == "class":
                model.compile(_optimizer(t), "categorical_crossentropy", metrics=["accuracy"])
            else:
                model.compile(_optimizer(t), _dice_bce_loss())
            curriculum = (Curriculum(t, config.data_config_from_dict(cache.read_meta(folder_data)["data_config"]))
                          if t.curriculum_steps else None)
            train_pass = _batches(tr, spec.background, t.batch_size, n_train, spec.seed, target, curriculum)
            val_pass = _batches(va, spec.background, t.val_batch_size, n_val, None, target)
            steps = t.steps_per_epoch or int(np.ceil(n_train / t.batch_size))
            desc = f"{spec.role}/{t.architecture}/{spec.background}/run{spec.run}"
            start = time.time()
            history = fit(model, train_pass, val_pass, t.max_epochs, t.steps_per_epoch,
                          [counter, *_callbacks(t, steps, desc, progress)])
            recalibrated = recalibrate_batchnorm(model, tr, spec.background, t.batch_size, n_train)
            seconds = time.time() - start
    finally:
        _set_precision("float32")
    weights = out / WEIGHTS
    model.save_weights(str(weights))
    epochs = len(next(iter(history.values())))
    with open(out / "history.csv", "w", newline="") as f:
        wr = csv.writer(f)
        keys = sorted(history)
        wr.writerow(["epoch", *keys])
        for e in range(epochs):
            wr.writerow([e + 1, *(f"{history[k][e]:.6g}" for k in keys)])
    # Evaluate the saved float32 weights, exactly what later stages load.
    tf.keras.backend.clear_session()
    model = load_weights_into(spec.train, input_shape, weights)
    with store.SplitReader(folder_data, "holdout") as ho:
        metrics = evaluate_holdout(model, spec, ho)
    return {
        "role": spec.role, "background": spec.background, "run": spec.run, "seed": spec.seed,
        "architecture": t.architecture, "train_config": config.as_dict(t), "data_key": spec.data_key,
        "input_shape": list(input_shape), "epochs": epochs, "train_seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs, 1), 1),
        "weights_sha256": cache.sha256_file(weights), "batchnorm_recalibration_images": recalibrated,
        "precision": precision, "optimizer_steps": counter.step, "steps_to_95": counter.steps_to_target,
        "val_subset_images": n_sub if target == "class" else 0, "val_subset_curve": counter.curve,
        **({"input_mean": standardization[0], "input_sd": standardization[1]} if standardization else {}),
        **metrics,
    }


BN_RECALIBRATION_IMAGES = 2048


def recalibrate_batchnorm(model, reader: store.SplitReader, background: str, batch_size: int, n: int) -> int:
    """Set every BatchNormalization layer's moving mean and variance to the average of
    its batch statistics over the first `BN_RECALIBRATION_IMAGES` training images,
    with the final weights ("precise BN", Wu & Johnson 2021).

    Why: Keras' moving averages (momentum 0.99) lag the weights during short training,
    and the DenseNet then predicts one class in inference mode while it is ~98 %
    accurate with batch statistics (measured on the MRI background). Returns the
    number of images used (0 for models without BatchNormalization)."""
    from tensorflow import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    old = [bn.momentum for bn in bns]
    used = 0
    try:
        for k, start in enumerate(range(0, min(n, BN_RECALIBRATION_IMAGES), batch_size), 1):
            for bn in bns:
                bn.momentum = 1.0 - 1.0 / k  # running mean of the batch statistics
            x = reader.x(background, slice(start, min(start + batch_size, n)))
            model(x, training=True)
            used += len(x)
    finally:
        for bn, m in zip(bns, old):
            bn.momentum = m
    return used


def load_weights_into(train: TrainConfig, input_shape, weights: Path):
    model = build_model(train, tuple(input_shape))
    model.load_weights(str(weights))
    return model


@dataclass
class TrainedModel:
    spec: ModelSpec
    folder: Path
    meta: dict

    @property
    def key(self) -> str:
        return self.spec.key

    def history(self):
        import pandas as pd

        return pd.read_csv(self.folder / "history.csv")

    @property
    def architecture_key(self) -> tuple:
        """Equal for models of the same network (`architecture_key`)."""
        return architecture_key(self.spec.train, self.meta["input_shape"])

    def _checked_weights(self) -> Path:
        weights = self.folder / WEIGHTS
        if not weights.is_file() or cache.sha256_file(weights) != self.meta.get("weights_sha256"):
            raise CorruptModelError(
                f"{weights}: missing or checksum mismatch (expected {self.meta.get('weights_sha256')}); "
                "delete the entry or call train_or_load to retrain"
            )
        return weights

    def load(self):
        """The model with float32 weights, built in the current execution mode."""
        weights = self._checked_weights()
        try:
            return load_weights_into(self.spec.train, self.meta["input_shape"], weights)
        except (OSError, ValueError, KeyError) as err:
            raise CorruptModelError(f"{weights}: cannot be loaded ({err})") from err

    def load_into(self, model) -> None:
        """Assign this model's weights to `model`, a network of the same `architecture_key`
        (no new graph: what `pipeline.models.ModelSet` does to switch runs)."""
        weights = self._checked_weights()
        try:
            model.load_weights(str(weights))
        except (OSError, ValueError, KeyError) as err:
            raise CorruptModelError(f"{weights}: cannot be loaded into {model.name!r} ({err})") from err


def cached_model(profile: Profile, role: str, background: str, run: int) -> TrainedModel | None:
    """The cached model for (profile, role, background, run) if it exists and its weights
    match their checksum; None otherwise (a corrupted entry is deleted)."""
    spec = spec_for(profile, role, background, run)
    entry = cache.entry_dir(STAGE, spec.key)
    if not cache.is_complete(entry):
        return None
    trained = TrainedModel(spec, entry, cache.read_meta(entry))
    try:
        if cache.sha256_file(entry / WEIGHTS) == trained.meta.get("weights_sha256"):
            return trained
    except OSError:
        pass
    cache.invalidate(entry)  # corrupted: never used
    return None


def train_or_load(profile: Profile, role: str, background: str, run: int, progress: bool = True) -> TrainedModel:
    """The cached model for (profile, role, background, run), training it if needed.
    A corrupted cached model is deleted and retrained, never used."""
    found = cached_model(profile, role, background, run)
    if found is not None:
        return found
    spec = spec_for(profile, role, background, run)
    folder_data = store.ensure_dataset(profile, progress=progress)
    folder = cache.cached(STAGE, spec.key, lambda tmp: train(spec, folder_data, tmp, progress))
    return TrainedModel(spec, folder, cache.read_meta(folder))


def model_ids(profile: Profile) -> list[tuple[str, str, int]]:
    """(role, background, run) of every model of the profile, in training order."""
    return [(role, background, run) for background in BACKGROUNDS for role in ("classifier", "second", "unet")
            for run in range(getattr(profile, role).runs)]


def train_all(profile: Profile, progress: bool = True) -> list[TrainedModel]:
    """Every model of the profile: classifier runs and second architecture per
    background, and one U-Net per background."""
    return [train_or_load(profile, role, background, run, progress) for role, background, run in model_ids(profile)]


def accuracy_table(models: list[TrainedModel]):
    """One row per model; `selected` marks the best holdout run per (background, role)
    (Budding et al.: the best of three runs is analysed)."""
    import pandas as pd

    rows = [{
        "background": m.spec.background, "architecture": m.meta["architecture"], "role": m.spec.role,
        "run": m.spec.run, "seed": m.spec.seed, "epochs": m.meta["epochs"],
        "holdout_accuracy": m.meta["holdout_accuracy"], "holdout_dice": m.meta["holdout_dice"],
        "seconds_per_epoch": m.meta["seconds_per_epoch"], "optimizer_steps": m.meta.get("optimizer_steps"),
        "precision": m.meta.get("precision", m.meta["train_config"]["precision"]),
        # None for U-Nets and for models cached before the measurement existed.
        "steps_to_95": m.meta.get("steps_to_95"), "key": m.key,
    } for m in models]
    df = pd.DataFrame(rows)
    best = df.groupby(["background", "role"])["holdout_accuracy"].transform("max")
    first_best = df.assign(is_best=df.holdout_accuracy == best).groupby(["background", "role"])["is_best"].cumsum()
    df["selected"] = (df.holdout_accuracy == best) & (first_best == 1)
    return df


def selected(models: list[TrainedModel], background: str, role: str = "classifier") -> TrainedModel:
    table = accuracy_table(models)
    key = table[(table.background == background) & (table.role == role) & table.selected]["key"].iloc[0]
    return next(m for m in models if m.key == key)


def history_table(models: list[TrainedModel]):
    """Tidy learning curves: background, model, epoch, split (train/val), loss."""
    import pandas as pd

    frames = []
    for m in models:
        h = m.history()
        name = f"{m.spec.role}:{m.meta['architecture']} run {m.spec.run}"
        for split, col in (("train", "loss"), ("val", "val_loss")):
            frames.append(pd.DataFrame({"background": m.spec.background, "model": name, "epoch": h["epoch"],
                                        "split": split, "loss": h[col]}))
    return pd.concat(frames, ignore_index=True)
