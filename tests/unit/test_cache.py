import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from salbench import cache, seeding


def test_entry_is_built_once(tmp_cache):
    calls = []

    def build(tmp):
        calls.append(1)
        (tmp / "a.txt").write_text("hello")

    p1 = cache.cached("stage", "k1", build)
    p2 = cache.cached("stage", "k1", build)
    assert p1 == p2 and len(calls) == 1
    meta = json.loads((p1 / "meta.json").read_text())
    assert meta["stage"] == "stage" and "git_sha" in meta and "tensorflow" in meta["packages"]


def test_interrupted_build_leaves_no_entry(tmp_cache):
    def build(tmp):
        (tmp / "half.bin").write_bytes(b"x" * 10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached("stage", "k2", build)
    assert not cache.is_complete(cache.entry_dir("stage", "k2"))
    assert not any(tmp_cache.glob("stage/k2*"))


def test_folder_without_meta_is_rebuilt(tmp_cache):
    final = cache.entry_dir("stage", "k3")
    final.mkdir(parents=True)
    (final / "stale.bin").write_bytes(b"old")  # e.g. copied by hand, never completed
    path = cache.cached("stage", "k3", lambda tmp: (tmp / "new.bin").write_bytes(b"new") and None)
    assert not (path / "stale.bin").exists() and (path / "new.bin").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_stale_tmp_removes_only_dead_writers(tmp_cache):
    stage = tmp_cache / "stage"
    dead = stage / f"k4.tmp-{_dead_pid()}-deadbeef"
    live = stage / f"k5.tmp-{os.getpid()}-cafe0001"
    young_legacy = stage / "k6.tmp-0badc0de"
    old_legacy = stage / "k7.tmp-00c0ffee"
    for p in (dead, live, young_legacy, old_legacy):
        p.mkdir(parents=True)
        (p / "half.bin").write_bytes(b"x")
    old = time.time() - cache.LEGACY_TMP_AGE_S - 60
    for p in (old_legacy, old_legacy / "half.bin"):
        os.utime(p, (old, old))
    assert cache.clean_stale_tmp() == 2
    assert not dead.exists() and not old_legacy.exists()
    assert live.exists() and young_legacy.exists()


def test_build_removes_stale_tmp_and_names_tmp_by_pid(tmp_cache):
    dead = tmp_cache / "stage" / f"k8.tmp-{_dead_pid()}-deadbeef"
    dead.mkdir(parents=True)
    seen = []

    def build(tmp):
        seen.append(tmp.name)
        (tmp / "a.bin").write_bytes(b"a")

    cache.cached("stage", "k9", build)
    assert not dead.exists()
    assert seen[0].startswith(f"k9.tmp-{os.getpid()}-")


def test_write_json_atomic_replaces(tmp_path):
    p = tmp_path / "x.json"
    cache.write_json_atomic(p, {"a": 1})
    cache.write_json_atomic(p, {"a": 2})
    assert json.loads(p.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


def test_stage_streams_are_independent_and_stable():
    a = seeding.stage_rng(1, "train").random(4)
    b = seeding.stage_rng(1, "saliency").random(4)
    again = seeding.stage_rng(1, "train").random(4)
    assert not np.allclose(a, b)
    assert np.array_equal(a, again)
    assert seeding.stage_int_seed(1, "train", 0) != seeding.stage_int_seed(1, "train", 1)


def test_concurrent_build_that_finishes_second_uses_the_first_entry(tmp_cache):
    def racing(tmp):
        (tmp / "mine.bin").write_bytes(b"second")
        cache.cached("stage", "k10", lambda t: (t / "theirs.bin").write_bytes(b"first") and None)

    path = cache.cached("stage", "k10", racing)
    assert (path / "theirs.bin").exists() and not (path / "mine.bin").exists()
    assert not list(tmp_cache.glob("stage/k10.tmp-*"))
