"""Errors shared by packages that must not import each other (metrics never imports
the saliency package, which switches TensorFlow to graph mode)."""


class NonFiniteMapError(ValueError):
    """A saliency map holds NaN or Inf; the message names the method and/or images."""
