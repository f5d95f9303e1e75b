"""Writing figures and tables of a run, atomically, with provenance beside them.

Publishing profiles (quick, paper) write to figures/ and tables/; smoke runs write
to build/outputs/smoke/ so tests never touch the committed results. Each output
folder holds provenance.json: for every file, the profile, git SHA, package
versions and time that produced it. A publishing run refuses to write on a tree
with uncommitted code changes unless SALBENCH_ALLOW_DIRTY=1, in which case the
diff is stored beside provenance.json (``provenance-<hash>.diff``) and named in
the file's entry (``provenance.require_exact_code``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from salbench import atomic, paths, provenance, tables
from salbench.config import Profile


def _check_code(profile: Profile) -> str:
    """A publishing run must record exact code: "" or the allowed diff (provenance)."""
    return provenance.require_exact_code() if profile.publish else ""


def _record(folder: Path, filename: str, profile: Profile, diff: str = "", derived_from: str = "") -> None:
    log = folder / "provenance.json"
    entries = json.loads(log.read_text()) if log.exists() else {}
    rec = provenance.record(**profile.provenance())  # name, seed and any overrides
    if derived_from:
        rec["derived_from"] = derived_from
    rec.pop("created", None)  # keep provenance.json stable across identical reruns
    if diff:
        # Named by content: files written before and after an edit keep their own diff.
        diff_name = f"provenance-{hashlib.sha256(diff.encode()).hexdigest()[:12]}.diff"
        if not (folder / diff_name).exists():
            atomic.write_text(folder / diff_name, diff)
        rec["git_diff"] = diff_name
    entries[filename] = rec
    # A file no stage writes any more (deleted from the folder) has no provenance to keep.
    entries = {name: e for name, e in entries.items() if name == filename or (folder / name).exists()}
    atomic.write_json(log, dict(sorted(entries.items())))
    used = {e.get("git_diff") for e in entries.values()}
    for stale in folder.glob("provenance-*.diff"):
        if stale.name not in used:
            stale.unlink()


# Resolution (dots per inch) of the figures of non-publishing runs (smoke), in the saved
# file and in the notebook: a preview that keeps a committed smoke notebook of saliency
# map grids under 1 MB (ours; 100 dpi made 03_saliency 2.8 MB).
PREVIEW_DPI = 50


def save_figure(fig, name: str, profile: Profile, dpi: float | None = None) -> Path:
    """Save `fig` as <name>.png in the run's figure folder.

    `dpi` None: matplotlibrc's savefig.dpi for publishing profiles; PREVIEW_DPI for the
    others, set on the figure too so that its inline display in the notebook shrinks."""
    diff = _check_code(profile)
    figures, _ = paths.output_dirs(profile.name, profile.publish)
    path = figures / f"{name}.png"
    if dpi is None and not profile.publish:
        dpi = PREVIEW_DPI
    if dpi is not None:
        fig.set_dpi(dpi)  # IPython's inline display renders at the figure's dpi
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None})  # no version/time stamps: byte-stable
    _record(figures, path.name, profile, diff)
    return path


def save_table(df: pd.DataFrame, name: str, profile: Profile, derived_from: str = "") -> Path:
    """Save `df` as <name>.csv and a Markdown copy <name>.md in the run's table folder.

    `name` must be declared in `salbench.tables.SPECS`, which gives the number format;
    a table whose key columns are missing or not unique is refused (ValueError).
    `derived_from`: for a table computed from other published tables rather than by a
    run (``python -m salbench retie``), what it was computed from; kept in provenance."""
    spec = tables.get_spec(name)
    spec.check(df)
    diff = _check_code(profile)
    _, folder = paths.output_dirs(profile.name, profile.publish)
    fmt = spec.float_format
    path = folder / f"{name}.csv"
    with atomic.atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=f"%{fmt}")
    atomic.write_text(folder / f"{name}.md", df.to_markdown(index=False, floatfmt=fmt) + "\n")
    _record(folder, path.name, profile, diff, derived_from)
    return path
