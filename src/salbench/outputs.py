"""Writing figures and tables of a run, atomically, with provenance beside them.

Publishing profiles (quick, paper) write to figures/ and tables/; smoke runs write
to build/outputs/smoke/ so tests never touch the committed results. Each output
folder holds provenance.json: for every file, the profile, git SHA, package
versions and time that produced it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd

from salbench import cache, paths, provenance
from salbench.config import Profile


def _record(folder: Path, filename: str, profile: Profile) -> None:
    log = folder / "provenance.json"
    entries = json.loads(log.read_text()) if log.exists() else {}
    rec = provenance.record(**profile.provenance())  # name, seed and any overrides
    rec.pop("created", None)  # keep provenance.json stable across identical reruns
    entries[filename] = rec
    cache.write_json_atomic(log, dict(sorted(entries.items())))


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


def save_figure(fig, name: str, profile: Profile) -> Path:
    """Save `fig` as <name>.png in the run's figure folder."""
    figures, _ = paths.output_dirs(profile.name, profile.publish)
    path = figures / f"{name}.png"
    tmp = _tmp(path)
    fig.savefig(tmp, metadata={"Software": None})  # no version/time stamps: byte-stable
    os.replace(tmp, path)
    _record(figures, path.name, profile)
    return path


def save_table(df: pd.DataFrame, name: str, profile: Profile, float_digits: int = 4,
               significant: bool = False) -> Path:
    """Save `df` as <name>.csv and a Markdown copy <name>.md in the run's table folder.

    Floats get `float_digits` decimals, or `float_digits` significant digits with
    ``significant=True`` (for p values, which fixed decimals would print as 0.0000)."""
    _, tables = paths.output_dirs(profile.name, profile.publish)
    fmt = f".{float_digits}{'g' if significant else 'f'}"
    path = tables / f"{name}.csv"
    tmp = _tmp(path)
    df.to_csv(tmp, index=False, float_format=f"%{fmt}")
    os.replace(tmp, path)
    md = tables / f"{name}.md"
    tmp = _tmp(md)
    tmp.write_text(df.to_markdown(index=False, floatfmt=fmt) + "\n")
    os.replace(tmp, md)
    _record(tables, path.name, profile)
    return path
