"""What produced an artifact: config, seed, git SHA and package versions."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from salbench import paths

PACKAGES = (
    "tensorflow", "keras", "innvestigate", "numpy", "scipy", "pandas", "scikit-learn",
    "scikit-image", "statsmodels", "h5py", "nilearn", "nibabel", "shap", "saliency",
    "krippendorff", "matplotlib", "seaborn",
)


# Paths a run itself rewrites: changes there say nothing about the code that ran.
RUN_OUTPUTS = ("figures", "tables", "paper.md")
# Set to 1 to let a publishing run start on a tree with uncommitted changes; the diff
# is then stored beside provenance.json.
ALLOW_DIRTY_ENV = "SALBENCH_ALLOW_DIRTY"


class DirtyTreeError(RuntimeError):
    """A publishing run would not record the exact code that produced its outputs."""


def _git(args: list[str], root: Path) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=True).stdout


def _code_pathspec() -> list[str]:
    return ["--", ".", *(f":(exclude){p}" for p in RUN_OUTPUTS)]


def code_diff(root: Path | None = None) -> str:
    """``git diff HEAD`` of tracked files outside the run's outputs ("" on a clean tree).

    Untracked files are not part of it (as in ``git_sha``): ``git add`` new modules."""
    return _git(["diff", "HEAD", "--binary", *_code_pathspec()], Path(root or paths.repo_root()))


def git_sha(root: Path | None = None) -> str:
    """HEAD's SHA, with ``-dirty`` if tracked code differs from it; "unknown" outside git.

    Changes to the run's own outputs (``RUN_OUTPUTS``) do not make the tree dirty: a
    run rewrites them while it runs."""
    root = Path(root or paths.repo_root())
    try:
        sha = _git(["rev-parse", "HEAD"], root).strip() or "unknown"
        dirty = _git(["status", "--porcelain", "--untracked-files=no", *_code_pathspec()], root).strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def require_exact_code(root: Path | None = None) -> str:
    """For a publishing run: "" if HEAD is exactly the code; else the diff, if allowed.

    On uncommitted changes to tracked code (or outside a git checkout) this raises
    ``DirtyTreeError`` unless the environment sets ``SALBENCH_ALLOW_DIRTY=1``; then it
    returns the ``code_diff`` for the caller to store beside the provenance."""
    root = Path(root or paths.repo_root())
    allowed = os.environ.get(ALLOW_DIRTY_ENV, "")
    if allowed not in ("", "0", "1"):
        raise ValueError(f"{ALLOW_DIRTY_ENV}={allowed!r}: use 1 (allow a dirty tree) or 0")
    sha = git_sha(root)
    if sha.endswith("-dirty") or sha == "unknown":
        if allowed != "1":
            what = ("is not a git checkout, so the code cannot be recorded" if sha == "unknown" else
                    "has uncommitted changes to tracked files outside " + ", ".join(RUN_OUTPUTS))
            raise DirtyTreeError(
                f"{root} {what}; a publishing run (profile.publish) records the exact code: commit first, "
                f"or set {ALLOW_DIRTY_ENV}=1 to run anyway and store the diff beside provenance.json")
        return code_diff(root) if sha != "unknown" else ""
    return ""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (a VM may show only "AMD
    EPYC"): timings differ threefold between CPUs of this kind (AMX or not), so every
    timing names it."""
    try:
        info = {}
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if not line.strip():
                    break
                k, _, v = line.partition(":")
                info[k.strip()] = v.strip()
        if "model name" in info:
            return f"{info['model name']} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The first CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def record(**extra) -> dict:
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "packages": package_versions(),
        **extra,
    }
