"""The one registry type: registration checks, lookups and metadata."""

import pytest

from salbench.config import load_profile
from salbench.registry import ParameterError, Registry, UnknownEntryError


def make():
    reg = Registry("test method")

    @reg.register("a", papers=("budding",), signed=True, profile_params={"n": "saliency.nsamples"}, version=3)
    def a(model, x, *, n=1, target=None):
        return n

    return reg


def test_lookup_and_metadata():
    reg = make()
    entry = reg["a"]
    assert list(reg) == ["a"] and entry.version == 3 and entry.signed and entry.papers == ("budding",)
    assert entry.defaults == {"n": 1, "target": None}
    assert entry.params_from_profile(load_profile("smoke")) == {"n": load_profile("smoke").saliency.nsamples}
    assert entry(None, None, n=5) == 5
    assert reg.of_paper("budding") == ["a"] and reg.of_paper("arun") == []


def test_errors_name_the_bad_value_and_the_valid_ones():
    reg = make()
    with pytest.raises(UnknownEntryError, match=r"unknown test method 'b'; valid: \['a'\]"):
        reg["b"]
    with pytest.raises(ParameterError, match=r"\['m'\].*valid: \['n', 'target'\]"):
        reg["a"].check_params({"m": 2})
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", papers=("budding",))(lambda model, x: None)
    with pytest.raises(ValueError, match="unknown paper"):
        reg.register("c", papers=("nobody",))
    with pytest.raises(ValueError, match="not one of its parameters"):
        reg.register("d", papers=("arun",), resources={"patterns": "patterns"})(lambda model, x, *, k=1: None)
    with pytest.raises(ValueError, match="paper='x'"):
        reg.of_paper("x")
