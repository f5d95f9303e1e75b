"""Table specs: every published table declared once; save_table formats and checks by them."""

import json

import pandas as pd
import pytest

from salbench import compare, outputs, paths, tables
from salbench.config import load_profile


@pytest.fixture
def smoke(monkeypatch, tmp_path):
    profile = load_profile("smoke")  # read configs/ before pointing the root elsewhere
    monkeypatch.setenv("SALBENCH_ROOT", str(tmp_path))
    return profile


def _tukey(**extra):
    return pd.DataFrame({"background": ["perlin", "perlin"], "run": [0, 0], "metric": ["ap", "ap"], "group1": ["a", "a"],
                         "group2": ["b", "c"], "p_adj": [1.23456e-9, 0.5], **extra})


def test_every_committed_table_has_a_spec_and_satisfies_it():
    committed = sorted(p.stem for p in (paths.repo_root() / "tables").glob("*.csv"))
    assert committed and set(committed) <= set(tables.SPECS), sorted(set(committed) - set(tables.SPECS))
    for name in committed:
        tables.read_table(paths.repo_root() / "tables" / f"{name}.csv")  # checks the keys


def test_an_older_table_reads_with_the_key_columns_added_since():
    """Fidelity tables from before the logit margin have no ``output`` column: read, every
    row is the probability's, and the keys still identify the rows."""
    old = pd.DataFrame({"background": ["mri", "perlin"], "unit": [5, 5], "style": ["mean", "mean"], "L": [20, 20],
                        "mean": [0.1, 0.2]})
    spec = tables.get_spec("fidelity_random_baseline")
    with pytest.raises(ValueError, match=r"key column\(s\) \['output'\] missing"):
        spec.check(old)
    new = spec.upgrade(old)
    assert list(new["output"]) == ["probability", "probability"]
    spec.check(new)
    assert spec.upgrade(new) is new  # a current table is left as it is


def test_compare_joins_on_the_spec_keys():
    assert not hasattr(compare, "TABLE_KEYS")
    df = _tukey()
    assert compare.compare_table("localization_tukey", df, df).ok
    with pytest.raises(ValueError, match="duplicate rows"):
        compare.compare_table("localization_tukey", df.assign(group2="b"), df)


def test_unknown_table_lists_the_valid_names():
    with pytest.raises(tables.UnknownTableError, match=r"'nosuch'.*'accuracy'.*'localization_tukey'"):
        tables.get_spec("nosuch")


@pytest.mark.parametrize("name, fmt", [("accuracy", ".4f"), ("localization_scores", ".6f"),
                                       ("localization_mixed_models", ".4g"), ("localization_tukey", ".4g")])
def test_spec_formats(name, fmt):
    assert tables.get_spec(name).float_format == fmt


def test_save_table_formats_from_the_spec(smoke):
    path = outputs.save_table(_tukey(), "localization_tukey", smoke)
    assert path.parent == paths.build_dir() / "outputs" / "smoke" / "tables"
    lines = path.read_text().splitlines()
    assert lines[1].endswith(",1.235e-09") and lines[2].endswith(",0.5")  # 4 significant digits
    assert "1.235e-09" in path.with_suffix(".md").read_text()
    assert "localization_tukey.csv" in json.loads((path.parent / "provenance.json").read_text())
    scores = pd.DataFrame({"background": ["mri"], "model": ["trained"], "method": ["gradient"], "image": [3], "run": [0],
                           "ap": [0.123456789]})
    assert outputs.save_table(scores, "localization_scores", smoke).read_text().splitlines()[1].endswith(",0.123457")


@pytest.mark.parametrize("df, name, fragment", [
    (_tukey().drop(columns="group2"), "localization_tukey", r"key column\(s\) \['group2'\] missing"),
    (_tukey().assign(group2="b"), "localization_tukey", r"duplicate rows for key \['background', 'run', 'metric'"),
    (_tukey(), "tukey", r"unknown table 'tukey'; valid tables: \["),
])
def test_save_table_refuses_bad_tables(smoke, df, name, fragment):
    with pytest.raises((ValueError, KeyError), match=fragment):
        outputs.save_table(df, name, smoke)
    assert not list((paths.build_dir() / "outputs" / "smoke" / "tables").glob("*.csv"))


def test_spec_needs_keys():
    with pytest.raises(ValueError, match="at least one key"):
        tables.TableSpec("x", ())
    assert tables.TableSpec("x", ("k",)).float_format == ".4f"
