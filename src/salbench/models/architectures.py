"""Network architectures: the VGG-like classifier of Budding et al., a DenseNet for
Arun et al.'s reproducibility test, and a U-Net for Arun et al.'s high baseline.

Every builder returns a Keras functional model whose last layer is named
``predictions``: Dense(2, softmax) for classifiers, Conv2D(1, sigmoid) for the U-Net.
Saliency code strips the softmax (`innvestigate.model_wo_softmax`), which works on
these models because the softmax is the activation of that last layer.
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow import keras

L = keras.layers
CLASSIFIERS = ("vgg", "densenet121", "densenet_small")
# DenseNet block sizes: DenseNet-121 (Huang et al. 2017) and a small member of the
# same family for the CPU profile.
DENSENET_BLOCKS = {"densenet121": [6, 12, 24, 16], "densenet_small": [2, 2, 2, 2]}


class ArchitectureError(ValueError):
    pass


STANDARDIZE_LAYER = "standardize"


def build_vgg(input_shape=(140, 192, 1), n_classes: int = 2, standardize: bool = False) -> keras.Model:
    """Budding et al. 2021: four blocks of two 3x3 ReLU convolutions and 2x2 max
    pooling (32, 64, 128, 256 filters), Dense 128 ReLU, Dense softmax; He init.

    `standardize` (ours): a first, non-trainable 1x1 linear convolution named
    ``standardize`` computing (x - mean) / sd. It starts as the identity; training sets
    the training set's mean and SD with `set_standardization`, and its weights are saved
    and loaded with the others, so the model is a function of the raw image and every
    saliency method explains that function. It runs in float32 under any policy."""
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    if standardize:
        x = L.Conv2D(1, 1, activation=None, kernel_initializer="ones", bias_initializer="zeros",
                     trainable=False, dtype="float32", name=STANDARDIZE_LAYER)(x)
    for block, filters in enumerate((32, 64, 128, 256), 1):
        for conv in (1, 2):
            x = L.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                         name=f"block{block}_conv{conv}")(x)
        x = L.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(128, activation="relu", kernel_initializer="he_normal", name="fc1")(x)
    # float32 output even under a mixed-precision policy (numerically stable softmax).
    outputs = L.Dense(n_classes, activation="softmax", kernel_initializer="he_normal",
                      dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg")


def set_standardization(model: keras.Model, mean: float, sd: float) -> None:
    """Make the ``standardize`` layer compute (x - mean) / sd."""
    if not sd > 0:
        raise ArchitectureError(f"sd={sd}: the input standard deviation must be > 0")
    layer = model.get_layer(STANDARDIZE_LAYER)
    layer.set_weights([np.full((1, 1, 1, 1), 1.0 / sd, np.float32), np.full((1,), -mean / sd, np.float32)])


def build_densenet(kind: str, input_shape=(140, 192, 1), n_classes: int = 2) -> keras.Model:
    """Keras-applications DenseNet (weights=None: no download), one input channel,
    `n_classes` softmax outputs. Arun et al. fine-tuned ImageNet weights; with one
    channel and no network access we train from scratch (He init, Keras default for DenseNet)."""
    if kind not in DENSENET_BLOCKS:
        raise ArchitectureError(f"unknown DenseNet {kind!r}; valid: {sorted(DENSENET_BLOCKS)}")
    # The generic builder (any block sizes) is not re-exported by keras.applications.
    from keras.src.applications import densenet

    base = densenet.DenseNet(DENSENET_BLOCKS[kind], include_top=False, weights=None,
                             input_shape=input_shape, pooling="avg")
    outputs = L.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(base.output)
    return keras.Model(base.input, outputs, name=kind)


def build_unet(input_shape=(140, 192, 1), base_filters: int = 32, depth: int = 4) -> keras.Model:
    """U-Net (Ronneberger et al. 2015): `depth` down-sampling levels of two 3x3 ReLU
    convolutions, transposed-convolution up-sampling with skip connections, and a
    1x1 sigmoid output of per-pixel lesion probability. The input is zero-padded to a
    multiple of 2**depth and the output cropped back to the input size."""
    h, w = input_shape[:2]
    step = 2**depth
    ph, pw = math.ceil(h / step) * step - h, math.ceil(w / step) * step - w
    inputs = keras.Input(input_shape, name="input")
    x = L.ZeroPadding2D(((0, ph), (0, pw)), name="pad")(inputs)
    skips = []
    for level in range(depth):
        f = base_filters * 2**level
        x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"down{level}_conv1")(x)
        x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"down{level}_conv2")(x)
        skips.append(x)
        x = L.MaxPooling2D(2, name=f"down{level}_pool")(x)
    f = base_filters * 2**depth
    x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name="bottom_conv1")(x)
    x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name="bottom_conv2")(x)
    for level in reversed(range(depth)):
        f = base_filters * 2**level
        x = L.Conv2DTranspose(f, 2, strides=2, padding="same", kernel_initializer="he_normal", name=f"up{level}_tconv")(x)
        x = L.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"up{level}_conv1")(x)
        x = L.Conv2D(f, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=f"up{level}_conv2")(x)
    x = L.Cropping2D(((0, ph), (0, pw)), name="crop")(x)
    outputs = L.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="unet")


def build(architecture: str, input_shape=(140, 192, 1), **kwargs) -> keras.Model:
    """Build any architecture by name (the profile's `architecture` values)."""
    if len(input_shape) != 3 or input_shape[2] != 1 or min(input_shape[:2]) < 32:
        raise ArchitectureError(
            f"input_shape={tuple(input_shape)}: expected (height, width, 1) with height and width >= 32"
        )
    if architecture == "vgg":
        return build_vgg(input_shape, **kwargs)
    if architecture in DENSENET_BLOCKS:
        return build_densenet(architecture, input_shape)
    if architecture == "unet":
        return build_unet(input_shape, **kwargs)
    raise ArchitectureError(f"unknown architecture {architecture!r}; valid: {[*CLASSIFIERS, 'unet']}")


def check_input(model: keras.Model, x: np.ndarray) -> None:
    """Raise a clear error when a batch does not fit the model's input."""
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise ArchitectureError(f"input batch of shape {tuple(x.shape)} does not fit model input (N, {expected})")


def weight_layers(model: keras.Model) -> list[str]:
    """Names of the layers that hold trained weights, input to output (the units of a
    cascade). A fixed layer (the VGG's ``standardize``) holds none and is no unit."""
    return [layer.name for layer in model.layers if layer.trainable_weights]


def weight_seed(seed: int, layer_index: int, weight_index: int) -> int:
    """The seed of one weight of one layer: a function of (seed, the layer's index among
    the model's weight layers, the weight's index) only, so a layer gets the same random
    weights whichever other layers are re-drawn (every step of every cascade). The
    formula is the one the first randomization code used for the fully randomized
    model, so those weights, and the committed tables made with them, are unchanged."""
    return int(seed) * 1000 + int(layer_index) * 10 + int(weight_index)


def random_weights(model: keras.Model, layer_name: str, seed: int) -> list[np.ndarray]:
    """Fresh values for every weight of one layer, each from the layer's own initializer
    (``<weight>_initializer``: kernel, bias, and for BatchNormalization gamma, beta,
    moving_mean and moving_variance, i.e. a BatchNorm layer is reset to its initial
    state, statistics included), seeded by `weight_seed`. A weight without an
    initializer attribute raises rather than keep its trained value silently."""
    names = weight_layers(model)
    if layer_name not in names:
        raise ArchitectureError(f"model {model.name!r} has no weight layer {layer_name!r}; weight layers: {names}")
    layer = model.get_layer(layer_name)
    new = []
    for j, w in enumerate(layer.weights):
        short = w.name.split("/")[-1].split(":")[0]
        init = getattr(layer, f"{short}_initializer", None)
        if init is None:
            raise ArchitectureError(f"layer {layer.name!r}: weight {short!r} has no initializer to re-draw it from")
        cfg = keras.initializers.serialize(init)
        if "seed" in cfg.get("config", {}):
            cfg["config"]["seed"] = weight_seed(seed, names.index(layer_name), j)
        new.append(_draw(keras.initializers.deserialize(cfg), tuple(w.shape), w.dtype.base_dtype))
    return new


def _draw(initializer, shape: tuple, dtype) -> np.ndarray:
    """Values of one initializer call. In graph mode they are drawn in a throwaway graph:
    drawn in the model's graph, every re-drawn layer added ops to it, and every later
    session call paid for the growth (15 of the smoke 04's 97 s). Keras' seeded
    initializers are stateless, so the values are the same either way (tested)."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return np.asarray(initializer(shape, dtype=dtype), dtype=np.float32)
    with tf.Graph().as_default():
        value = initializer(shape, dtype=dtype)
        with tf.compat.v1.Session() as session:
            return np.asarray(session.run(value), dtype=np.float32)


def reinitialize(model: keras.Model, layer_names, seed: int) -> None:
    """Re-draw the weights of the named layers from their own initializers, in place
    (cascading randomization, Adebayo et al. 2018; Arun et al. 2021); see `random_weights`."""
    names = [layer.name for layer in model.layers]
    for name in layer_names:
        if name not in names:
            raise ArchitectureError(f"model {model.name!r} has no layer {name!r}; layers: {names}")
    for name in layer_names:
        model.get_layer(name).set_weights(random_weights(model, name, seed))
