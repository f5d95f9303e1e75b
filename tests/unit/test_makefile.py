"""`make lab` passes --allow-root exactly when run as root (Jupyter refuses root otherwise)."""

import shutil
import subprocess

import pytest

from salbench import paths


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("uid, flagged", [("0", True), ("1000", False)])
def test_lab_allows_root_only_as_root(uid, flagged, tmp_path):
    # A stamp made now is newer than pyproject.toml and the lock, so -n prints only the lab
    # command (an older one, e.g. the Makefile itself in a fresh clone, would re-run setup).
    stamp = tmp_path / "installed"
    stamp.touch()
    r = subprocess.run(["make", "-n", "lab", f"USER_ID={uid}", f"STAMP={stamp}"], cwd=paths.repo_root(),
                       capture_output=True, text=True, check=True, timeout=60)
    lab = [ln for ln in r.stdout.splitlines() if "jupyter lab" in ln]
    assert len(lab) == 1 and lab[0].endswith("notebooks")
    assert ("--allow-root" in lab[0]) is flagged
