"""The model set of a profile and its variants: trained runs, and copies with some
layers re-initialised (full randomization, cascades top-down and bottom-up, one layer
at a time), for every stage that explains or scores a model.

A `ModelVariant` is a frozen value naming a model; `ModelSet.key(variant)` is its
cache key (maps and patterns of a variant are cached under it). Re-initialisation
uses each layer's own initializer seeded by (profile seed, trained model, the layer's
index among the weight layers, the weight's index), so a layer gets the same random
weights at every step of every cascade, and two variants that re-draw the same layers are the same model (they share
one key). BatchNorm layers are reset to their initial state: gamma, beta and the
moving statistics (`salbench.models.architectures.random_weights`).

Loaded models: one Keras object per network architecture (`TrainedModel.architecture_key`:
the runs of a role on both backgrounds share it), at most `MAX_LOADED` at a time (least
recently used evicted). A run or variant is made by assigning weights to that object in
place, so a 10-step cascade or three runs hold one model, and saliency's per-model
analyzers and compiled functions are built once per architecture (building them took most
of a smoke run's time). A model returned by `model(variant)` shows that variant until
the next `model()` or `predict_fn` call for a model of the same architecture: use it at
once (as `pipeline.maps` does), never hold it across such a call.

Training needs eager mode and the analyses graph mode: a `ModelSet` made in graph mode
trains missing models in a child Python process (eager), then loads them.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salbench import config, seeding
from salbench.batching import map_batches
from salbench.config import Profile
from salbench.models import architectures, training
from salbench.saliency import methods_common, require_graph_mode

ROLES = ("classifier", "second", "unet")
ORDERS = ("trained", "randomized", "top_down", "bottom_up", "single")
# Bump when re-initialisation changes the weights a variant gets.
REINIT_VERSION = 1
# Keras model objects kept loaded (one per architecture).
MAX_LOADED = 3
PREDICT_BATCH = 64


@dataclass(frozen=True)
class ModelVariant:
    """One model to explain: a trained run, with the layers in `reinit` re-initialised.

    `order` and `step` say where the variant sits in a family (``top_down`` step k:
    the top k weight layers re-drawn; ``bottom_up`` step k: the bottom k; ``single``
    step k: only the k-th layer from the top); they label tables and do not enter
    the cache key."""

    role: str
    background: str
    run: int
    reinit: tuple[str, ...] = ()
    order: str = "trained"
    step: int = 0

    def __post_init__(self):
        config.check_choice("role", self.role, ROLES)
        config.check_choice("background", self.background, config.BACKGROUNDS)
        config.check_choice("order", self.order, ORDERS)

    @property
    def randomized(self) -> bool:
        return bool(self.reinit)

    @property
    def label(self) -> str:
        return self.order if self.order in ("trained", "randomized") else f"{self.order}/{self.step}"


def _train_child(profile_file: str) -> None:
    profile = pickle.loads(Path(profile_file).read_bytes())
    training.train_all(profile)


def train_in_child(profile: Profile) -> None:
    """Train the profile's missing models in a child Python process (eager mode),
    relaying its output; raise with its last lines if it fails."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.pkl"
        path.write_bytes(pickle.dumps(profile))
        cmd = [sys.executable, "-m", "salbench.pipeline.models", str(path)]
        print("training the missing models in a child process (graph mode cannot train) ...", flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        tail: list[str] = []
        for line in proc.stdout:
            sys.stdout.write(line)
            tail = (tail + [line.rstrip()])[-15:]
        if proc.wait() != 0:
            raise RuntimeError("training in a child process failed (exit code "
                               f"{proc.returncode}); its last lines:\n" + "\n".join(tail))


def ensure_trained(profile: Profile, progress: bool = True) -> list[training.TrainedModel]:
    """Every model of the profile, trained here (eager mode) or in a child process
    (graph mode) where the cache lacks it."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return training.train_all(profile, progress=progress)
    found = [training.cached_model(profile, *ids) for ids in training.model_ids(profile)]
    if any(m is None for m in found):
        train_in_child(profile)
        found = [training.cached_model(profile, *ids) for ids in training.model_ids(profile)]
        missing = [ids for ids, m in zip(training.model_ids(profile), found) if m is None]
        if missing:
            raise RuntimeError(f"models {missing} are still missing after training")
    return found


class ModelSet:
    """The profile's trained models and their variants, loaded in this (graph-mode)
    process on demand."""

    def __init__(self, profile: Profile, progress: bool = True, trained_models=None):
        """`trained_models` (tests): use these instead of the profile's cached models."""
        require_graph_mode("ModelSet (it loads the models to explain)")
        self.profile = profile
        self.trained_models = ensure_trained(profile, progress) if trained_models is None else list(trained_models)
        self._loaded: OrderedDict[tuple, object] = OrderedDict()  # architecture key -> model
        # architecture key -> (trained key, layers re-drawn): what its model shows now
        self._state: dict[tuple, tuple[str, tuple[str, ...]]] = {}
        self._trained_weights: dict[str, dict[str, list]] = {}  # trained key -> layer -> arrays
        self._random_weights: dict[tuple[str, str], list] = {}
        self._functions: dict[tuple[int, str], object] = {}

    # ------------------------------------------------------------------ naming

    def runs(self, background: str, role: str = "classifier") -> list[training.TrainedModel]:
        return [m for m in self.trained_models if m.spec.background == background and m.spec.role == role]

    def selected_run(self, background: str, role: str = "classifier") -> int:
        """The run analysed by default: the best on holdout (Budding et al.)."""
        return training.selected(self.trained_models, background, role).spec.run

    def trained_model(self, variant: ModelVariant) -> training.TrainedModel:
        for m in self.runs(variant.background, variant.role):
            if m.spec.run == variant.run:
                return m
        raise ValueError(f"{variant}: no such run; runs: {[m.spec.run for m in self.runs(variant.background, variant.role)]}")

    def trained(self, background: str, role: str = "classifier", run: int | None = None) -> ModelVariant:
        run = self.selected_run(background, role) if run is None else run
        return ModelVariant(role, background, run)

    def layers(self, variant: ModelVariant) -> list[str]:
        """Weight layers of the variant's network, input to output (the same for every run
        of an architecture: a loaded model is read as it is, without switching runs)."""
        trained = self.trained_model(variant)
        model = self._loaded.get(trained.architecture_key)
        return architectures.weight_layers(self._base(trained) if model is None else model)

    def randomized(self, background: str, role: str = "classifier", run: int | None = None) -> ModelVariant:
        """Every weight layer re-drawn."""
        base = self.trained(background, role, run)
        layers = self.layers(base)
        return ModelVariant(role, background, base.run, tuple(layers), "randomized", len(layers))

    def cascade(self, background: str, order: str, role: str = "classifier", run: int | None = None) -> list[ModelVariant]:
        """Steps 1..L of a cascade over the L weight layers: ``top_down`` (Adebayo et al.;
        Arun et al.: cumulatively from the output layer down), ``bottom_up`` (cumulatively
        from the first layer up) or ``single`` (one layer at a time, from the top)."""
        config.check_choice("order", order, ("top_down", "bottom_up", "single"))
        base = self.trained(background, role, run)
        layers = self.layers(base)
        top_first = layers[::-1]
        out = []
        for k in range(1, len(layers) + 1):
            chosen = {"top_down": top_first[:k], "bottom_up": layers[:k], "single": [top_first[k - 1]]}[order]
            reinit = tuple(name for name in layers if name in chosen)
            out.append(ModelVariant(role, background, base.run, reinit, order, k))
        return out

    def randomization_seed(self, trained: training.TrainedModel) -> int:
        return seeding.stage_int_seed(self.profile.seed, f"randomize/{trained.key}")

    def key(self, variant: ModelVariant) -> str:
        """Cache key of the variant: its trained model's config and weights (a model
        retrained under the same config, e.g. after corruption, gets new maps), and the
        layers re-drawn."""
        trained = self.trained_model(variant)
        base = f"{trained.key}-{str(trained.meta.get('weights_sha256', 'unknown'))[:16]}"
        if not variant.reinit:
            return base
        return config.config_hash("variant", REINIT_VERSION, base, sorted(variant.reinit),
                                  self.randomization_seed(trained))

    # ------------------------------------------------------------------ loading

    def _base(self, trained: training.TrainedModel):
        """The Keras object of `trained`'s architecture showing `trained`'s weights (the
        layers some variant re-drew stay re-drawn until `model` restores them)."""
        arch = trained.architecture_key
        model = self._loaded.get(arch)
        if model is None:
            model = trained.load()
            self._loaded[arch] = model
            self._trained_weights[trained.key] = _layer_weights(model)
            self._state[arch] = (trained.key, ())
            while len(self._loaded) > MAX_LOADED:
                self._evict(next(iter(self._loaded)))
        elif self._state[arch][0] != trained.key:
            saved = self._trained_weights.get(trained.key)
            if saved is None:
                trained.load_into(model)
                self._trained_weights[trained.key] = _layer_weights(model)
            else:
                _assign(model, saved)
            self._state[arch] = (trained.key, ())
        self._loaded.move_to_end(arch)
        return model

    def _evict(self, arch: tuple) -> None:
        model = self._loaded.pop(arch)
        methods_common.forget(model)
        self._functions = {k: v for k, v in self._functions.items() if k[0] != id(model)}
        self._state.pop(arch, None)
        keys = {m.key for m in self.trained_models if m.architecture_key == arch}
        self._trained_weights = {k: v for k, v in self._trained_weights.items() if k not in keys}
        self._random_weights = {k: v for k, v in self._random_weights.items() if k[0] not in keys}

    def model(self, variant: ModelVariant):
        """The Keras model of `variant` (weights assigned in place; see the module doc)."""
        trained = self.trained_model(variant)
        model = self._base(trained)
        arch = trained.architecture_key
        current = self._state[arch][1]
        if current != variant.reinit:
            valid = architectures.weight_layers(model)
            unknown = sorted(set(variant.reinit) - set(valid))
            if unknown:
                raise ValueError(f"{variant}: no weight layer(s) {unknown}; valid: {valid}")
            seed = self.randomization_seed(trained)
            changes = {}
            for name in set(current) ^ set(variant.reinit):
                if name in variant.reinit:
                    rk = (trained.key, name)
                    if rk not in self._random_weights:
                        self._random_weights[rk] = architectures.random_weights(model, name, seed)
                    changes[name] = self._random_weights[rk]
                else:
                    changes[name] = self._trained_weights[trained.key][name]
            _assign(model, changes)
            self._state[arch] = (trained.key, variant.reinit)
        return model

    def predict_fn(self, variant: ModelVariant, output: str = "probabilities", batch_size: int = PREDICT_BATCH):
        """A batched callable x (N, H, W, 1) -> (N, K) of the variant's probabilities or
        logits (the softmax-free model saliency explains), compiled once per model."""
        from tensorflow import keras

        config.check_choice("output", output, ("probabilities", "logits"))

        def predict(x) -> np.ndarray:
            model = self.model(variant)
            key = (id(model), output)
            fn = self._functions.get(key)
            if fn is None:
                if output == "logits":
                    fn = lambda b: methods_common.logits(model, b)  # noqa: E731
                else:
                    compiled = keras.backend.function([model.inputs[0]], [model.outputs[0]])
                    fn = lambda b: compiled([b])[0]  # noqa: E731
                self._functions[key] = fn
            x = np.asarray(x, dtype=np.float32)
            if x.ndim == 3:
                x = x[..., None]
            return map_batches(fn, x, batch_size)

        return predict


def _layer_weights(model) -> dict[str, list]:
    """Every layer's weights (fixed layers too: the VGG's standardization differs by background)."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _assign(model, weights: dict[str, list]) -> None:
    """Set the named layers' weights in one call (one session run in graph mode)."""
    from tensorflow import keras

    pairs = []
    for name, arrays in weights.items():
        variables = model.get_layer(name).weights
        if len(variables) != len(arrays):
            raise ValueError(f"layer {name!r} of {model.name!r} has {len(variables)} weights, got {len(arrays)}")
        pairs += zip(variables, arrays)
    keras.backend.batch_set_value(pairs)


if __name__ == "__main__":  # the child process of `train_in_child`
    _train_child(sys.argv[1])
