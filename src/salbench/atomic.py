"""Atomic file writes: a file appears under its final name complete or not at all.

Every writer in salbench goes through `atomic_path`: write to a temporary name in
the same folder, then `os.replace` (atomic on POSIX); on any error or Ctrl-C the
temporary file is removed, and a file that existed before is left as it was.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_MARK = ".tmp-"


def tmp_name(path: Path) -> Path:
    """A hidden temporary sibling of `path` carrying this process's id (see `is_stale`)."""
    path = Path(path)
    return path.with_name(f".{path.stem}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))
