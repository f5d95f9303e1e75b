"""Errors shared by packages that must not import each other (metrics never imports
the saliency package, which switches TensorFlow to graph mode)."""


class NonFiniteMapError(ValueError):
    """A saliency map holds NaN or Inf; the message names the method and/or images."""


class ReportError(ValueError):
    """paper.md's or the README's markers or a generator's arguments are wrong, or a table
    lacks a value (``salbench.report``); a user's error, reported in one line."""
