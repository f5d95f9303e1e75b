"""Cache keys of maps: a method's own version, machine-independent resource paths."""

import dataclasses

import numpy as np

from salbench.pipeline import maps as pmaps
from salbench.saliency import registry


def test_a_method_version_changes_only_its_own_keys(monkeypatch):
    before = {m: pmaps.maps_key("model", m, {}, "holdout", [1, 3]) for m in ("gradient", "lrp_z")}
    bumped = dataclasses.replace(registry.METHODS["lrp_z"], version=registry.METHODS["lrp_z"].version + 1)
    monkeypatch.setitem(registry.METHODS._entries, "lrp_z", bumped)
    assert pmaps.maps_key("model", "gradient", {}, "holdout", [1, 3]) == before["gradient"]
    assert pmaps.maps_key("model", "lrp_z", {}, "holdout", [1, 3]) != before["lrp_z"]


def test_patterns_path_enters_the_key_relative_to_the_cache(tmp_path, monkeypatch):
    keys = []
    for root in ("a", "b"):
        cache = tmp_path / root / "cache"
        monkeypatch.setenv("SALBENCH_CACHE", str(cache))
        path = cache / "patterns" / "k1" / "patterns.npz"
        assert pmaps.jsonable(path) == "cache:patterns/k1/patterns.npz"
        keys.append(pmaps.maps_key("model", "patternnet", {"patterns": path}, "holdout", [1]))
    assert keys[0] == keys[1]
    other = pmaps.maps_key("model", "patternnet", {"patterns": cache / "patterns" / "k2" / "patterns.npz"},
                           "holdout", [1])
    assert other != keys[0]


def test_method_parameters_come_from_the_registry():
    from salbench.config import load_profile

    profile = load_profile("smoke")
    assert registry.METHODS["smooth_ig"].params_from_profile(profile) == {
        "nsamples": profile.saliency.nsamples, "x_steps": profile.saliency.ig_steps}
    assert registry.METHODS["xrai"].params_from_profile(profile) == {"steps": profile.saliency.xrai_steps}
    assert registry.METHODS["gradient"].params_from_profile(profile) == {}
    assert registry.METHODS["patternnet"].resources == {"patterns": "patterns"}
    assert registry.METHODS["deep_shap"].resources == {"background": "shap_background"}
    arrays = pmaps.jsonable({"a": np.zeros(3, np.float32)})
    assert arrays["a"]["shape"] == [3]
