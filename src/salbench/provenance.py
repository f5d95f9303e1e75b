"""What produced an artifact: config, seed, git SHA and package versions."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess

from salbench import paths

PACKAGES = (
    "tensorflow", "keras", "innvestigate", "numpy", "scipy", "pandas", "scikit-learn",
    "scikit-image", "statsmodels", "h5py", "nilearn", "nibabel", "shap", "saliency",
    "krippendorff", "matplotlib", "seaborn",
)


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=paths.repo_root(), capture_output=True, text=True, timeout=10
        )
        sha = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=paths.repo_root(), capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def record(**extra) -> dict:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "packages": package_versions(),
        **extra,
    }
