"""A publishing run records the exact code: it refuses a dirty tree unless told otherwise."""

import dataclasses
import json
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from salbench import outputs, provenance  # noqa: E402
from salbench.config import load_profile  # noqa: E402


def _git(root, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    publish = dataclasses.replace(load_profile("smoke"), name="quick", publish=True)  # configs/ read first
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "old.csv").write_text("a\n1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    monkeypatch.setenv("SALBENCH_ROOT", str(tmp_path))
    monkeypatch.delenv(provenance.ALLOW_DIRTY_ENV, raising=False)
    return tmp_path, publish


def _accuracy():
    return pd.DataFrame({"background": ["mri"], "architecture": ["vgg"], "role": ["classifier"], "run": [0],
                         "holdout_accuracy": [0.5]})


def test_clean_tree_records_the_bare_sha(repo):
    root, publish = repo
    (root / "tables" / "old.csv").write_text("a\n2\n")  # a run's own outputs do not make the tree dirty
    head = _git(root, "rev-parse", "HEAD").strip()
    assert provenance.git_sha() == head and provenance.require_exact_code() == ""
    outputs.save_table(_accuracy(), "accuracy", publish)
    entry = json.loads((root / "tables" / "provenance.json").read_text())["accuracy.csv"]
    assert entry["git_sha"] == head and "git_diff" not in entry
    assert not list((root / "tables").glob("*.diff"))


def test_dirty_tree_is_refused_before_anything_is_written(repo):
    root, publish = repo
    (root / "code.py").write_text("x = 2\n")
    assert provenance.git_sha().endswith("-dirty")
    with pytest.raises(provenance.DirtyTreeError, match="uncommitted changes.*SALBENCH_ALLOW_DIRTY=1"):
        outputs.save_table(_accuracy(), "accuracy", publish)
    fig = plt.figure()
    with pytest.raises(provenance.DirtyTreeError):
        outputs.save_figure(fig, "f", publish)
    plt.close(fig)
    assert not (root / "tables" / "accuracy.csv").exists() and not (root / "figures").exists()


def test_smoke_runs_are_not_checked(repo, monkeypatch):
    root, publish = repo
    (root / "code.py").write_text("x = 2\n")
    path = outputs.save_table(_accuracy(), "accuracy", dataclasses.replace(publish, name="smoke", publish=False))
    assert path.exists() and not list(path.parent.glob("*.diff"))


def test_opt_out_stores_the_diff_beside_provenance(repo, monkeypatch):
    root, publish = repo
    monkeypatch.setenv(provenance.ALLOW_DIRTY_ENV, "1")
    (root / "code.py").write_text("x = 2\n")
    outputs.save_table(_accuracy(), "accuracy", publish)
    log = json.loads((root / "tables" / "provenance.json").read_text())
    entry = log["accuracy.csv"]
    assert entry["git_sha"].endswith("-dirty")
    diff = (root / "tables" / entry["git_diff"]).read_text()
    assert "-x = 1" in diff and "+x = 2" in diff and "old.csv" not in diff
    # A later edit gets its own diff; the first one goes once no entry names it.
    (root / "code.py").write_text("x = 3\n")
    outputs.save_table(_accuracy(), "accuracy", publish)
    second = json.loads((root / "tables" / "provenance.json").read_text())["accuracy.csv"]["git_diff"]
    assert second != entry["git_diff"] and [p.name for p in (root / "tables").glob("*.diff")] == [second]


def test_bad_opt_out_value_and_no_git(repo, monkeypatch, tmp_path_factory):
    monkeypatch.setenv(provenance.ALLOW_DIRTY_ENV, "yes")
    with pytest.raises(ValueError, match="SALBENCH_ALLOW_DIRTY='yes'"):
        provenance.require_exact_code()
    monkeypatch.delenv(provenance.ALLOW_DIRTY_ENV)
    with pytest.raises(provenance.DirtyTreeError, match="not a git checkout"):
        provenance.require_exact_code(tmp_path_factory.mktemp("nogit"))


def test_provenance_forgets_files_no_longer_in_the_folder(repo):
    root, publish = repo
    tables = root / "tables"
    (tables / "provenance.json").write_text(json.dumps({"gone.csv": {"git_sha": "x"}, "old.csv": {"git_sha": "y"}}))
    outputs.save_table(_accuracy(), "accuracy", publish)
    log = json.loads((tables / "provenance.json").read_text())
    assert "gone.csv" not in log and {"old.csv", "accuracy.csv"} <= set(log)
