"""Cached stages: a folder per (stage, key) that exists only once complete, and is
verified every time it is read.

`cached(stage, key, build, meta)` calls `build(tmp_dir)` inside a temporary folder
``<key>.tmp-<pid>-<random>`` and renames it into place only after `build` returned and
`meta.json` was written, so an interrupted run leaves a temporary folder that is never
read as an entry (and that `clean_stale_tmp` removes once its process is gone).

`meta.json` records the size and SHA-256 of every file of the entry (key ``files``).
A hit is verified against them before it is returned; a corrupt entry (a file missing,
truncated or overwritten) is named in a one-line error and rebuilt by `cached`, or
refused by `read_entry`. Never used.

Cost (measured on this project's machine, page cache warm): SHA-256 runs at about
1.5 GB/s, so the quick profile's 3 GB data set costs about 2 s to verify and a maps or
patterns entry (a few MB) milliseconds. Verification is memoised per process and file
(keyed by size, mtime and inode), so each notebook pays it once per entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from salbench import atomic, paths, provenance

META = "meta.json"
FILES = "files"  # meta.json key: {relative path: {"size": bytes, "sha256": hex}}
# Temporary folders written before they carried their writer's PID: removed only once
# untouched this long (ours), since their writer cannot be asked whether it still runs.
LEGACY_TMP_AGE_S = 6 * 3600

log = logging.getLogger(__name__)

_TMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]+$")
_LEGACY_TMP_RE = re.compile(r"\.tmp-[0-9a-f]{8}$")
# path -> (size, mtime_ns, inode, sha256) of files verified in this process
_VERIFIED: dict[str, tuple] = {}


class CacheError(RuntimeError):
    pass


class CorruptEntryError(CacheError):
    """A cache entry whose files do not match the checksums in its meta.json."""


def entry_dir(stage: str, key: str) -> Path:
    return paths.cache_dir() / stage / key


def is_complete(path: Path) -> bool:
    return (path / META).is_file()


def read_meta(path: Path) -> dict:
    return json.loads((path / META).read_text())


def write_json_atomic(path: Path, obj) -> None:
    atomic.write_json(path, obj)


# --------------------------------------------------------------------------- checksums


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _signature(st: os.stat_result) -> tuple:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def checksums(folder: Path) -> dict[str, dict]:
    """Size and SHA-256 of every file under `folder` except meta.json, by relative path."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and p.name != META:
            st = p.stat()
            digest = sha256_file(p)
            out[p.relative_to(folder).as_posix()] = {"size": st.st_size, "sha256": digest}
    return out


def _label(entry: Path) -> str:
    entry = Path(entry)
    return f"{entry.parent.name}/{entry.name}"


def _entry_meta(entry: Path) -> dict:
    try:
        meta = read_meta(entry)
    except (OSError, ValueError) as err:
        raise CorruptEntryError(f"cache entry {_label(entry)}: meta.json unreadable ({err}) in {entry}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get(FILES), dict):
        raise CorruptEntryError(
            f"cache entry {_label(entry)}: meta.json records no checksums (written by an older salbench) in {entry}")
    return meta


def verify_file(entry: Path, name: str, meta: dict | None = None) -> Path:
    """Path of file `name` of `entry`, after checking its size and SHA-256 against
    meta.json; raises CorruptEntryError (one line naming the entry) otherwise."""
    entry = Path(entry)
    meta = _entry_meta(entry) if meta is None else meta
    want = meta[FILES].get(name)
    path = entry / name
    if want is None:
        raise CorruptEntryError(f"cache entry {_label(entry)}: {name} is not one of its files {sorted(meta[FILES])}")
    try:
        st = path.stat()
    except OSError:
        raise CorruptEntryError(f"cache entry {_label(entry)}: {name} is missing in {entry}") from None
    if st.st_size != want["size"]:
        raise CorruptEntryError(f"cache entry {_label(entry)}: {name} has {st.st_size} bytes, expected "
                                f"{want['size']} (truncated or replaced) in {entry}")
    memo = str(path.resolve())
    if _VERIFIED.get(memo) == (*_signature(st), want["sha256"]):
        return path
    if sha256_file(path) != want["sha256"]:
        _VERIFIED.pop(memo, None)
        raise CorruptEntryError(f"cache entry {_label(entry)}: {name} does not match its SHA-256 "
                                f"(overwritten or damaged) in {entry}")
    _VERIFIED[memo] = (*_signature(path.stat()), want["sha256"])
    return path


def verify_entry(entry: Path) -> Path:
    """`entry` after verifying every file recorded in its meta.json (memoised per process)."""
    meta = _entry_meta(Path(entry))
    for name in meta[FILES]:
        verify_file(entry, name, meta)
    return Path(entry)


def read_entry(stage: str, key: str) -> Path:
    """The verified folder of an existing entry; CacheError if it was never built,
    CorruptEntryError if it does not match its checksums (for stages that cannot be
    rebuilt by the caller)."""
    entry = entry_dir(stage, key)
    if not is_complete(entry):
        raise CacheError(f"cache entry {stage}/{key} does not exist (looked in {entry})")
    return verify_entry(entry)


# --------------------------------------------------------------------------- entries


def cached(stage: str, key: str, build: Callable[[Path], dict | None], meta: dict | None = None) -> Path:
    """Return the folder of a complete, verified entry, building it first if needed.

    `build(tmp)` writes its files into `tmp` and may return extra metadata. A corrupt
    entry is logged in one line and rebuilt.
    """
    final = entry_dir(stage, key)
    if is_complete(final):
        try:
            return verify_entry(final)
        except CorruptEntryError as err:
            log.error("%s; rebuilding it", err)
            invalidate(final)
    if final.exists():  # a folder without meta.json is not an entry: rebuild it
        shutil.rmtree(final)
    clean_stale_tmp()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        extra = build(tmp) or {}
        record = provenance.record(stage=stage, key=key, **(meta or {}), **extra)
        record[FILES] = checksums(tmp)
        write_json_atomic(tmp / META, record)
        for name, want in record[FILES].items():  # just hashed: no need to hash again on the next read
            _VERIFIED[str((final / name).resolve())] = (*_signature((tmp / name).stat()), want["sha256"])
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_complete(final):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent build finished first: use its entry
            return verify_entry(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def invalidate(path: Path) -> None:
    """Remove an entry (e.g. a corrupted model) so that the next call rebuilds it."""
    shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for p in folder.rglob("*"):
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            pass
    return max(times)


def clean_stale_tmp() -> int:
    """Delete temporary folders of builds whose process is gone; return how many.

    A folder ``<key>.tmp-<pid>-<rand>`` is removed only if no process `pid` is alive on
    this machine (never a concurrent writer's); a pre-PID ``<key>.tmp-<rand>`` only once
    untouched for LEGACY_TMP_AGE_S."""
    root = paths.cache_dir()
    n = 0
    if not root.exists():
        return 0
    for p in root.glob("*/*.tmp-*"):
        m = _TMP_RE.search(p.name)
        if m:
            stale = not pid_alive(int(m.group(1)))
        elif _LEGACY_TMP_RE.search(p.name):
            try:
                stale = time.time() - _newest_mtime(p) > LEGACY_TMP_AGE_S
            except OSError:
                continue
        else:
            continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n
