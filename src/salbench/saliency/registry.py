"""The method registry: a name -> a function computing maps for a batch.

Methods register with `@register(name, ...)`; `explain` (in `salbench.saliency`)
looks them up, rejects unknown names and parameters, and checks the result.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from salbench.errors import NonFiniteMapError  # noqa: F401 (re-exported)


class UnknownMethodError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class MethodParameterError(TypeError):
    pass


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable  # fn(model, x_batch, **params) -> (N, H, W) array
    signed: bool  # maps carry a meaningful sign (draw with a diverging colormap)
    papers: tuple[str, ...]  # "budding", "tomsett", "arun"
    needs_model: bool = True
    defaults: dict = field(default_factory=dict)
    doc: str = ""


METHODS: dict[str, Method] = {}


def register(name: str, *, signed: bool, papers: tuple[str, ...], needs_model: bool = True):
    """Register `fn(model, x_batch, **params)`; its keyword defaults are the method's parameters."""

    def deco(fn):
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        sig = inspect.signature(fn)
        defaults = {
            k: p.default for k, p in sig.parameters.items()
            if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
        }
        METHODS[name] = Method(name, fn, signed, papers, needs_model, defaults, inspect.getdoc(fn) or "")
        return fn

    return deco


def get(name: str) -> Method:
    if name not in METHODS:
        raise UnknownMethodError(f"unknown saliency method {name!r}; valid methods: {sorted(METHODS)}")
    return METHODS[name]


def check_params(method: Method, params: dict) -> dict:
    unknown = sorted(set(params) - set(method.defaults))
    if unknown:
        raise MethodParameterError(
            f"method {method.name!r} has no parameter(s) {unknown}; valid: {sorted(method.defaults)}"
        )
    return {**method.defaults, **params}


def check_finite(name: str, maps: np.ndarray, sample_ids=None) -> None:
    bad = ~np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    if bad.any():
        where = np.flatnonzero(bad)
        ids = where if sample_ids is None else np.asarray(sample_ids)[where]
        raise NonFiniteMapError(f"method {name!r} returned NaN/Inf maps for samples {ids.tolist()}")


def methods_of(paper: str) -> list[str]:
    return [m.name for m in METHODS.values() if paper in m.papers]
