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
    rec = provenance.record(profile=profile.name, seed=profile.seed)
    rec.pop("created", None)  # keep provenance.json stable across identical reruns
    entries[filename] = rec
    cache.write_json_atomic(log, dict(sorted(entries.items())))


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


# Resolution (dots per inch) of the figures of non-publishing runs (smoke), in the saved
# file and in the notebook: a preview that keeps a committed smoke notebook of saliency
# map grids under 1 MB (ours; 100 dpi made 03_saliency 2.8 MB).
PREVIEW_DPI = 50


def save_figure(fig, name: str, profile: Profile, dpi: float | None = None) -> Path:
    """Save `fig` as <name>.png in the run's figure folder.

    `dpi` None: matplotlibrc's savefig.dpi for publishing profiles; PREVIEW_DPI for the
    others, set on the figure too so that its inline display in the notebook shrinks."""
    figures, _ = paths.output_dirs(profile.name, profile.publish)
    path = figures / f"{name}.png"
    tmp = _tmp(path)
    if dpi is None and not profile.publish:
        dpi = PREVIEW_DPI
    if dpi is not None:
        fig.set_dpi(dpi)  # IPython's inline display renders at the figure's dpi
    fig.savefig(tmp, dpi=dpi, metadata={"Software": None})  # no version/time stamps: byte-stable
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
