"""`make lab` passes --allow-root exactly when run as root (Jupyter refuses root otherwise)."""

import shutil
import subprocess

import pytest

from salbench import paths


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("uid, flagged", [("0", True), ("1000", False)])
def test_lab_allows_root_only_as_root(uid, flagged):
    # STAMP=Makefile: an existing prerequisite, so -n prints only the lab command.
    r = subprocess.run(["make", "-n", "lab", f"USER_ID={uid}", "STAMP=Makefile"], cwd=paths.repo_root(),
                       capture_output=True, text=True, check=True)
    lab = [ln for ln in r.stdout.splitlines() if "jupyter lab" in ln]
    assert len(lab) == 1 and lab[0].endswith("notebooks")
    assert ("--allow-root" in lab[0]) is flagged
