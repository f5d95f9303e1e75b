"""Cached stages: a folder per (stage, key) that exists only once complete.

`cached(stage, key, build, meta)` calls `build(tmp_dir)` inside a temporary folder
and renames it into place only after `build` returned and `meta.json` was written,
so an interrupted run leaves a `*.tmp-*` folder that is never read as an entry.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from salbench import paths, provenance

META = "meta.json"


class CacheError(RuntimeError):
    pass


def entry_dir(stage: str, key: str) -> Path:
    return paths.cache_dir() / stage / key


def is_complete(path: Path) -> bool:
    return (path / META).is_file()


def read_meta(path: Path) -> dict:
    return json.loads((path / META).read_text())


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def cached(stage: str, key: str, build: Callable[[Path], dict | None], meta: dict | None = None) -> Path:
    """Return the folder of a complete entry, building it first if needed.

    `build(tmp)` writes its files into `tmp` and may return extra metadata.
    """
    final = entry_dir(stage, key)
    if is_complete(final):
        return final
    if final.exists():  # a folder without meta.json is not an entry: rebuild it
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{key}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        extra = build(tmp) or {}
        write_json_atomic(tmp / META, provenance.record(stage=stage, key=key, **(meta or {}), **extra))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def invalidate(path: Path) -> None:
    """Remove an entry (e.g. a corrupted model) so that the next call rebuilds it."""
    shutil.rmtree(path, ignore_errors=True)


def clean_stale_tmp() -> int:
    """Delete temporary folders left by interrupted runs; return how many."""
    root = paths.cache_dir()
    n = 0
    if root.exists():
        for p in root.glob("*/*.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n
