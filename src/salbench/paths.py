"""Where things live. `SALBENCH_ROOT` and `SALBENCH_CACHE` override the defaults."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("SALBENCH_ROOT")
    if env:
        return Path(env).resolve()
    # src/salbench/paths.py -> repository root (editable install).
    return Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    return repo_root() / "build"


def cache_dir() -> Path:
    env = os.environ.get("SALBENCH_CACHE")
    return Path(env).resolve() if env else build_dir() / "cache"


def output_dirs(profile_name: str, publish: bool) -> tuple[Path, Path]:
    """(figures, tables) for a run: the repository's own for publishing profiles,
    build/outputs/<profile>/ otherwise, so smoke runs never touch figures/ or tables/."""
    if publish:
        figures, tables = repo_root() / "figures", repo_root() / "tables"
    else:
        base = build_dir() / "outputs" / profile_name
        figures, tables = base / "figures", base / "tables"
    figures.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    return figures, tables
