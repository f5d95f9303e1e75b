"""Methods computed by iNNvestigate 2.1.2 on the softmax-free classifier.

Budding et al. 2021 ("All saliency methods were implemented through the innvestigate
package ... applied using the default parameters, except for LRP-alpha-beta, for
which we set alpha=2 and beta=1") and Tomsett et al. 2020 (sensitivity,
gradient x input and deep Taylor decomposition "provided by the iNNvestigate
toolbox"). Every analyzer uses iNNvestigate's defaults; only the explained neuron
can be changed (``target``).
"""

from __future__ import annotations

import numpy as np

from salbench.saliency.methods_common import (
    check_classifier,
    innvestigate_analyze,
    reduce_channels,
)
from salbench.saliency.registry import MethodParameterError, register


def _run(name: str, model, x_batch, target, head: str = "default") -> np.ndarray:
    check_classifier(model, name)
    return innvestigate_analyze(model, x_batch, name, target, head=head)


def _head(head: str) -> str:
    if head not in ("logit", "one"):
        raise MethodParameterError(f"head={head!r}: choose 'logit' (iNNvestigate's default) or 'one'")
    return "default" if head == "logit" else "one"


@register("gradient", signed=True, papers=("budding", "arun"))
def gradient(model, x_batch, *, target=None):
    """Gradient (Simonyan et al. 2013): d logit_c / d x.

    Papers: Budding et al. 2021 ("Gradient", iNNvestigate ``"gradient"`` with its
    defaults, i.e. ``postprocess=None``); Arun et al. 2021 (GRAD: PAIR's vanilla
    ``GradientSaliency`` on the logit of the predicted class, which is the same
    quantity).
    Formula: the raw, signed gradient of the softmax-free output c with respect to
    the input; c = argmax of the logits (iNNvestigate "max_activation") or `target`.
    Sign: signed (positive = increasing x increases logit c).
    Channels: summed. Arun's code later took |.| and clipped at the 99th percentile
    for display and scoring (`salbench.metrics.similarity.pair_grayscale`); not done here.
    Parameters: target (None | int | one int per sample).
    """
    return reduce_channels(_run("gradient", model, x_batch, target))


@register("sensitivity", signed=False, papers=("tomsett",))
def sensitivity(model, x_batch, *, target=None):
    """Sensitivity analysis (Simonyan et al. 2013) as in Tomsett et al. 2020.

    Formula: max over channels of |d logit_c / d x| (Tomsett: "we convert to sensitivity
    by taking the channel-wise maximum of the magnitude of the gradient"), from
    iNNvestigate's ``"gradient"`` analyzer. For the 1-channel images here this is |grad|.
    Sign: unsigned (>= 0).
    Channels: channel-wise maximum of the magnitude (the paper's choice), not a sum.
    Parameters: target (None | int | one int per sample).
    """
    a = _run("gradient", model, x_batch, target)
    return np.abs(a).max(axis=-1).astype(np.float32)


@register("gradient_x_input", signed=True, papers=("tomsett",))
def gradient_x_input(model, x_batch, *, target=None):
    """Gradient x input (Shrikumar et al. 2016) as in Tomsett et al. 2020.

    Formula: x * d logit_c / d x, elementwise (iNNvestigate ``"input_t_gradient"``);
    equal to epsilon-LRP for ReLU networks without biases (Tomsett, footnote 2).
    Sign: signed.
    Channels: summed.
    Parameters: target (None | int | one int per sample).
    """
    return reduce_channels(_run("input_t_gradient", model, x_batch, target))


@register("lrp_z", signed=True, papers=("budding",))
def lrp_z(model, x_batch, *, target=None):
    """LRP with the z-rule (Bach et al. 2015), iNNvestigate ``"lrp.z"`` defaults.

    Paper: Budding et al. 2021 ("LRP-z").
    Formula: R_i = sum_j z_ij / z_j R_j with z_ij = x_i w_ij and z_j = sum_i z_ij + b_j
    (biases included, iNNvestigate's default; zero denominators are replaced by 1e-7),
    relevance initialised with logit c. Max pooling passes relevance to the winner.
    For a bias-free ReLU network the map sums to logit c (conservation).
    Sign: signed.
    Channels: summed.
    Parameters: target (None | int | one int per sample).
    """
    return reduce_channels(_run("lrp.z", model, x_batch, target))


@register("lrp_alpha2_beta1", signed=True, papers=("budding",))
def lrp_alpha2_beta1(model, x_batch, *, target=None):
    """LRP alpha-beta with alpha=2, beta=1 (Bach et al. 2015; Montavon et al. 2017).

    Paper: Budding et al. 2021 set alpha=2, beta=1 (iNNvestigate ``"lrp.alpha_2_beta_1"``,
    biases included as in iNNvestigate's default class, not the ``_IB`` variant).
    Formula: R_i = sum_j (2 z_ij^+ / z_j^+ - 1 z_ij^- / z_j^-) R_j.
    Sign: signed.
    Channels: summed.
    Parameters: target (None | int | one int per sample).
    """
    return reduce_channels(_run("lrp.alpha_2_beta_1", model, x_batch, target))


@register("deep_taylor", signed=False, papers=("budding", "tomsett"))
def deep_taylor(model, x_batch, *, target=None):
    """Deep Taylor decomposition (Montavon et al. 2017), iNNvestigate ``"deep_taylor"``.

    Papers: Budding et al. 2021 (DTD) and Tomsett et al. 2020 (deep Taylor), both with
    the iNNvestigate defaults for unbounded inputs: Conv/Dense layers with a ReLU use the
    z+ rule (alpha=1, beta=0, biases ignored), kernel layers without activation (here the
    softmax-free logit layer) the w^2 rule, max pooling and flatten pass relevance as
    the gradient does; no z^B rule at the input. Relevance starts at the value of logit c.
    Sign: non-negative when logit c > 0 (Tomsett: "estimate positive relevance only").
    Channels: summed.
    Parameters: target (None | int | one int per sample).
    """
    return reduce_channels(_run("deep_taylor", model, x_batch, target))


@register("guided_backprop", signed=True, papers=("budding", "arun"))
def guided_backprop(model, x_batch, *, head="logit", target=None):
    """Guided backpropagation (Springenberg et al. 2015), iNNvestigate ``"guided_backprop"``.

    Papers: Budding et al. 2021 (iNNvestigate defaults); Arun et al. 2021 (GBP; their
    code used PAIR's TF1 ``GuidedBackprop``, i.e. the gradient of logit c with the ReLU
    gradient overridden).
    Formula: a backward pass from logit c in which, at every ReLU y = relu(z), the signal
    r becomes 1[z > 0] * relu(r) (forward gate and backward rectification); other layers
    pass their gradient (max pooling: to the winning input).
    Start of the backward pass (`head`): iNNvestigate 2.1.2 (like 1.x, which Budding
    used) starts guided backprop and DeConvNet from the *value* of logit c, not from 1
    (its ``ReverseAnalyzerBase._head_mapping`` keeps the output; only ``Gradient``
    overrides it). head="logit" (default) reproduces that: for logit_c > 0 the map is
    logit_c times the textbook one; for logit_c < 0 the rectification passes the other
    units. head="one" starts from 1: the textbook / PAIR map for any class.
    Sign: signed (the first layer's weights can be negative).
    Channels: summed.
    Parameters: head="logit" ("logit" | "one"), target (None | int | one int per sample).
    """
    return reduce_channels(_run("guided_backprop", model, x_batch, target, _head(head)))


@register("deconvnet", signed=True, papers=("budding",))
def deconvnet(model, x_batch, *, head="logit", target=None):
    """DeConvNet (Zeiler & Fergus 2014), iNNvestigate ``"deconvnet"``.

    Paper: Budding et al. 2021 (iNNvestigate defaults).
    Formula: a backward pass from logit c in which, at every ReLU, the signal r becomes
    relu(r) (no forward gate); layers are applied transposed (gradient of the layer
    without its ReLU); max pooling uses the forward switches.
    Start (`head`): "logit" (default, iNNvestigate's) starts from the value of logit c,
    "one" from 1 -- see `guided_backprop`.
    Sign: signed.
    Channels: summed.
    Parameters: head="logit" ("logit" | "one"), target (None | int | one int per sample).
    """
    return reduce_channels(_run("deconvnet", model, x_batch, target, _head(head)))
