"""One registry type for everything a stage looks up by name: saliency methods and
metric families.

An `Entry` carries what the stages need to know without name checks: the papers it
comes from, whether it needs a model, the score direction of a metric, the profile
settings that feed its parameters, the resources a stage must supply (PatternNet's
patterns, DeepSHAP's background), and a version that enters the cache key of that
entry's outputs only (bump it when a change alters them; other entries' caches stay).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

PAPERS = ("budding", "tomsett", "arun")


class UnknownEntryError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class ParameterError(TypeError):
    pass


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable
    papers: tuple[str, ...]
    needs_model: bool = True
    version: int = 1
    # Methods: maps carry a meaningful sign (drawn with a diverging colormap).
    signed: bool | None = None
    # Metrics: True when a larger score is better (ROC-AUC), False when smaller is.
    higher_is_better: bool | None = None
    # Parameter -> dotted profile setting ("saliency.nsamples") that supplies it.
    profile_params: Mapping[str, str] = field(default_factory=dict)
    # Parameter -> resource name a stage provides ("patterns", "shap_background").
    resources: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping = field(default_factory=dict)
    doc: str = ""

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def check_params(self, params: dict) -> dict:
        """`params` over the defaults; a name the entry does not take raises."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ParameterError(f"{self.name!r} has no parameter(s) {unknown}; valid: {sorted(self.defaults)}")
        return {**self.defaults, **params}

    def params_from_profile(self, profile) -> dict:
        """The parameters this entry takes from `profile` (e.g. SmoothGrad's nsamples)."""
        out = {}
        for param, setting in self.profile_params.items():
            value = profile
            for part in setting.split("."):
                value = getattr(value, part)
            out[param] = value
        return out


class Registry(Mapping):
    """Name -> `Entry`, in registration order; `kind` names it in error messages."""

    def __init__(self, kind: str, unknown_error: type[KeyError] = UnknownEntryError):
        self.kind = kind
        self.unknown_error = unknown_error
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, papers: tuple[str, ...], needs_model: bool = True, version: int = 1,
                 signed: bool | None = None, higher_is_better: bool | None = None,
                 profile_params: Mapping[str, str] | None = None, resources: Mapping[str, str] | None = None):
        """Decorator: register `fn`; its keyword-only defaults are the entry's parameters."""
        bad = [p for p in papers if p not in PAPERS]
        if bad:
            raise ValueError(f"{self.kind} {name!r}: unknown paper(s) {bad}; valid: {list(PAPERS)}")

        def deco(fn):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            sig = inspect.signature(fn)
            defaults = {k: p.default for k, p in sig.parameters.items()
                        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}
            for param in (*(profile_params or {}), *(resources or {})):
                if param not in defaults:
                    raise ValueError(f"{self.kind} {name!r}: {param!r} is not one of its parameters {sorted(defaults)}")
            self._entries[name] = Entry(name, fn, tuple(papers), needs_model, int(version), signed,
                                        higher_is_better, dict(profile_params or {}), dict(resources or {}),
                                        defaults, inspect.getdoc(fn) or "")
            return fn

        return deco

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise self.unknown_error(f"unknown {self.kind} {name!r}; valid: {sorted(self._entries)}")
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def of_paper(self, paper: str) -> list[str]:
        if paper not in PAPERS:
            raise ValueError(f"paper={paper!r} is not valid; choose one of {list(PAPERS)}")
        return [e.name for e in self._entries.values() if paper in e.papers]
