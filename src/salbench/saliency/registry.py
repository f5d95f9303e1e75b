"""The saliency-method registry: a name -> a function computing maps for a batch.

Methods register with `@register(name, ...)` (a `salbench.registry.Registry` of kind
"saliency method"); `explain` (in `salbench.saliency`) looks them up, rejects unknown
names and parameters, and checks the result.
"""

from __future__ import annotations

import numpy as np

from salbench.errors import NonFiniteMapError  # noqa: F401 (re-exported)
from salbench.registry import Entry, ParameterError, Registry, UnknownEntryError

UnknownMethodError = UnknownEntryError
MethodParameterError = ParameterError
Method = Entry

METHODS = Registry("saliency method")


def register(name: str, *, signed: bool, papers: tuple[str, ...], needs_model: bool = True, version: int = 1,
             profile_params=None, resources=None):
    """Register `fn(model, x_batch, **params)`; its keyword defaults are the method's parameters.

    `version` enters the cache key of this method's maps only; `profile_params` maps a
    parameter to the profile setting that supplies it, `resources` to what a stage
    must build for it (see `salbench.registry.Entry`)."""
    return METHODS.register(name, papers=papers, needs_model=needs_model, version=version, signed=signed,
                            profile_params=profile_params, resources=resources)


def get(name: str) -> Method:
    return METHODS[name]


def check_params(method: Method, params: dict) -> dict:
    return method.check_params(params)


def check_finite(name: str, maps: np.ndarray, sample_ids=None) -> None:
    bad = ~np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    if bad.any():
        where = np.flatnonzero(bad)
        ids = where if sample_ids is None else np.asarray(sample_ids)[where]
        raise NonFiniteMapError(f"method {name!r} returned NaN/Inf maps for samples {ids.tolist()}")


def methods_of(paper: str) -> list[str]:
    return METHODS.of_paper(paper)
