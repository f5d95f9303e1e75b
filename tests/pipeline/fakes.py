"""Stand-ins for trained models: what `pipeline.models.ModelSet` needs of one (spec,
key, meta, architecture_key, load(), load_into()), around tiny Keras networks, for the graph-mode pipeline tests."""

from dataclasses import dataclass

import numpy as np
from tensorflow import keras

LAYERS = ["conv1", "conv2", "fc", "predictions"]


def conv_net():
    inp = keras.Input((8, 8, 1))
    z = keras.layers.Conv2D(3, 3, padding="same", activation="relu", kernel_initializer="he_normal", name="conv1")(inp)
    z = keras.layers.Conv2D(3, 3, padding="same", activation="relu", kernel_initializer="he_normal", name="conv2")(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(4, activation="relu", kernel_initializer="he_normal", name="fc")(z)
    out = keras.layers.Dense(2, activation="softmax", kernel_initializer="he_normal", name="predictions")(z)
    return keras.Model(inp, out)


def dense_net():
    """A second architecture without a conv layer: Grad-CAM cannot run on it."""
    inp = keras.Input((8, 8, 1))
    z = keras.layers.Flatten()(inp)
    z = keras.layers.Dense(6, activation="relu", name="fc")(z)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(z)
    return keras.Model(inp, out)


@dataclass
class Spec:
    role: str = "classifier"
    background: str = "perlin"
    run: int = 0


class FakeTrained:
    """What ModelSet needs of a trained model: spec, key, architecture_key, load(), load_into()."""

    def __init__(self, key, weights_seed=0, role="classifier", run=0, build=conv_net):
        self.spec, self.key, self.build = Spec(role=role, run=run), key, build
        self.meta = {"weights_sha256": f"sha-{key}"}
        rng = np.random.default_rng(weights_seed)
        self.weights = [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in build().get_weights()]

    @property
    def architecture_key(self):
        return (self.build.__name__,)

    def load(self):
        model = self.build()
        model.set_weights(self.weights)
        return model

    def load_into(self, model):
        model.set_weights(self.weights)
