"""The results cache (issue 12): a rerun with nothing changed recomputes nothing; any
change to the profile, the models, an input table or the analysis code recomputes."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from salbench.config import load_profile
from salbench.pipeline import results


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _models(*keys, weights="w"):
    return SimpleNamespace(trained_models=[SimpleNamespace(key=k, meta={"weights_sha256": weights}) for k in keys])


def _counted():
    calls = []

    def build():
        calls.append(1)
        rng = np.random.default_rng(len(calls))
        return {"t": pd.DataFrame({"a": rng.random(5), "b": list("vwxyz")})}

    return build, calls


def test_a_rerun_recomputes_nothing_and_returns_the_same_bytes(cache_dir):
    build, calls = _counted()
    profile, inputs = load_profile("smoke"), pd.DataFrame({"x": [1.5, 2.5]})
    first = results.cached("t", profile, _models("k1", "k2"), build, inputs, ["m1"])
    again = results.cached("t", profile, _models("k2", "k1"), build, inputs.copy(), ["m1"])
    assert len(calls) == 1
    pd.testing.assert_frame_equal(first["t"], again["t"], check_exact=True)
    assert first["t"].a.to_numpy().tobytes() == again["t"].a.to_numpy().tobytes()


@pytest.mark.parametrize("change", ["profile", "models", "weights", "input", "extra", "name", "code", "packages"])
def test_any_change_of_what_a_result_depends_on_recomputes(change, cache_dir, monkeypatch):
    build, calls = _counted()
    args = dict(name="t", profile=load_profile("smoke"), models=_models("k1"), inputs=(pd.DataFrame({"x": [1.5]}), 3))
    results.cached(args["name"], args["profile"], args["models"], build, *args["inputs"])
    if change == "profile":
        args["profile"] = load_profile("smoke", localization__n_bootstrap=500)
    elif change == "models":
        args["models"] = _models("k1", "k3")
    elif change == "weights":  # the same config retrained into other weights
        args["models"] = _models("k1", weights="other")
    elif change == "packages":
        from salbench import provenance

        monkeypatch.setattr(provenance, "package_versions", lambda: {"statsmodels": "99"})
    elif change == "input":
        args["inputs"] = (pd.DataFrame({"x": [1.25]}), 3)
    elif change == "extra":
        args["inputs"] = (pd.DataFrame({"x": [1.5]}), 4)
    elif change == "name":
        args["name"] = "u"
    else:
        monkeypatch.setattr(results, "analysis_code_sha", lambda: "edited")
    results.cached(args["name"], args["profile"], args["models"], build, *args["inputs"])
    assert len(calls) == 2


def test_plotting_and_reporting_modules_are_not_analysis_code():
    names = {p.relative_to(p.parents[1]).as_posix() if p.parent.name != "salbench" else p.name
             for p in results.analysis_files()}
    assert {"stats.py", "config.py", "metrics/localization.py", "saliency/registry.py"} <= names
    assert not {"plots.py", "report.py", "claims.py", "claims_tomsett_arun.py", "outputs.py", "tables.py"} & names
    assert "pipeline/localization.py" in names  # its figure wrappers only call plots


def test_frame_digest_sees_values_dtypes_and_index():
    df = pd.DataFrame({"a": [1.0, 2.0]})
    assert results.frame_digest(df) == results.frame_digest(df.copy())
    assert results.frame_digest(df) != results.frame_digest(df.assign(a=[1.0, 2.0000001]))
    assert results.frame_digest(df) != results.frame_digest(df.astype("float32"))
    assert results.frame_digest(df) != results.frame_digest(df.set_axis([1, 2]))


def test_an_interrupted_build_leaves_no_entry(cache_dir):
    def fail():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        results.cached("t", load_profile("smoke"), None, fail)
    assert not any((cache_dir / results.STAGE).glob("*/meta.json"))
    build, calls = _counted()
    results.cached("t", load_profile("smoke"), None, build)
    assert len(calls) == 1


def test_editing_an_analysis_file_changes_the_code_hash(tmp_path, monkeypatch):
    pkg = tmp_path / "salbench"
    (pkg / "pipeline").mkdir(parents=True)
    files = [pkg / "stats.py", pkg / "pipeline" / "trust.py"]
    for f in files:
        f.write_text("x = 1\n")
    monkeypatch.setattr(results, "analysis_files", lambda: files)
    monkeypatch.setattr(results, "__file__", str(pkg / "pipeline" / "results.py"))
    before = results.analysis_code_sha()
    files[1].write_text("x = 2\n")
    assert results.analysis_code_sha() != before
