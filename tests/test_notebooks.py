"""Notebook conventions and every profile accepted by every notebook (papermill --prepare-only)."""

import json
import re
import subprocess
import sys

import nbformat
import papermill as pm
import pytest

from salbench import cli, paths
from salbench.config import PROFILES, load_profile

NOTEBOOKS = cli.notebooks()


def test_notebooks_exist_in_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:2] == ["01_data", "02_train"]
    assert names == sorted(names)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_conventions(nb):
    cells = nbformat.read(nb, as_version=4).cells
    assert cells[0].cell_type == "markdown"
    assert "parameters" in cells[1].metadata.get("tags", [])
    params = pm.inspect_notebook(str(nb))
    assert params["profile"]["default"] == '"smoke"'
    for c in cells:
        if c.cell_type == "code":
            assert not re.search(r"^\s*(def|class) ", c.source, re.M), "no def/class in notebooks"
            assert not any(o.get("output_type") == "error" for o in c.get("outputs", []))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_is_accepted(nb, profile, tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(nb), str(out), parameters={"profile": profile}, prepare_only=True)
    injected = [c for c in nbformat.read(out, 4).cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and f'profile = "{profile}"' in injected[0].source
    load_profile(profile)


def test_runner_rejects_undeclared_parameter():
    with pytest.raises(SystemExit, match="not declared"):
        cli.reproduce("smoke", only=["01_data"], params={"learning_rate": 0.1})


def test_runner_rejects_unknown_notebook():
    with pytest.raises(SystemExit, match="no such notebook"):
        cli.reproduce("smoke", only=["99_nothing"])


def test_cli_rejects_bad_profile():
    r = subprocess.run([sys.executable, "-m", "salbench", "reproduce", "--profile", "huge"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "invalid choice: 'huge'" in r.stderr


def test_cli_export_error_is_clear(tmp_cache, tmp_path):
    r = subprocess.run([sys.executable, "-m", "salbench", "data", "export", "--profile", "smoke",
                        "--background", "mri", "--split", "val", "--start", "10", "--count", "50",
                        "--out", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert r.returncode == 2 and "the val split has 16 images" in r.stderr


@pytest.mark.slow
def test_runner_executes_smoke_data_notebook_outside_results(tmp_cache):
    executed = cli.reproduce("smoke", only=["01"], progress=False)
    assert executed[0].name == "01_data__smoke.ipynb" and executed[0].exists()
    prov = json.loads((paths.build_dir() / "outputs" / "smoke" / "figures" / "provenance.json").read_text())
    assert prov["data_examples.png"]["profile"] == "smoke"
    # Smoke runs never write the published results.
    published = paths.repo_root() / "figures" / "provenance.json"
    if published.exists():
        assert all(v["profile"] != "smoke" for v in json.loads(published.read_text()).values())
