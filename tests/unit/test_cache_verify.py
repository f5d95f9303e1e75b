"""Every cache entry is verified against the SHA-256 in its meta.json when read: a
truncated or same-size overwritten file is named in one line and rebuilt (cached) or
refused (read_entry), never used."""

import json
import logging

import numpy as np
import pytest

from salbench import cache
from salbench.config import load_profile
from salbench.data import store

SMALL = dict(data__n_train=24, data__n_val=8, data__n_holdout=8, data__chunk_size=8)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero_same_size(path):
    path.write_bytes(bytes(path.stat().st_size))


CORRUPTIONS = {"truncated": truncate, "zeroed": zero_same_size}


def maps_like(tmp):
    np.save(tmp / "maps.npy", np.random.default_rng(0).random((4, 8, 8), dtype=np.float32))
    np.save(tmp / "indices.npy", np.arange(4))


def patterns_like(tmp):
    rng = np.random.default_rng(1)
    np.savez(tmp / "patterns.npz", conv1=rng.random((3, 3, 1, 4)), dense=rng.random((16, 2)))


BUILDERS = {"maps": (maps_like, "maps.npy"), "patterns": (patterns_like, "patterns.npz")}


def test_meta_records_size_and_sha256_of_every_file(tmp_cache):
    path = cache.cached("maps", "k", maps_like)
    files = json.loads((path / "meta.json").read_text())["files"]
    assert sorted(files) == ["indices.npy", "maps.npy"]
    for name, rec in files.items():
        assert rec["size"] == (path / name).stat().st_size
        assert rec["sha256"] == cache.sha256_file(path / name)


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("stage", BUILDERS)
def test_corrupt_entry_is_named_and_rebuilt(tmp_cache, stage, how, caplog):
    build, name = BUILDERS[stage]
    calls = []

    def counted(tmp):
        calls.append(1)
        build(tmp)

    path = cache.cached(stage, "key1", counted)
    good = (path / name).read_bytes()
    CORRUPTIONS[how](path / name)
    cache._VERIFIED.clear()  # a later process
    with caplog.at_level(logging.ERROR, logger="salbench.cache"):
        again = cache.cached(stage, "key1", counted)
    assert len(calls) == 2 and (again / name).read_bytes() == good
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert f"cache entry {stage}/key1: {name}" in msgs[0] and "rebuilding" in msgs[0]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_read_entry_refuses_corrupt_entry(tmp_cache, how):
    path = cache.cached("maps", "key2", maps_like)
    assert cache.read_entry("maps", "key2") == path
    CORRUPTIONS[how](path / "maps.npy")
    cache._VERIFIED.clear()
    with pytest.raises(cache.CorruptEntryError, match=r"^cache entry maps/key2: maps\.npy [^\n]*$"):
        cache.read_entry("maps", "key2")
    with pytest.raises(cache.CacheError, match="does not exist"):
        cache.read_entry("maps", "never-built")


def test_corruption_after_verification_in_same_process_is_caught(tmp_cache):
    path = cache.cached("maps", "key3", maps_like)
    cache.read_entry("maps", "key3")
    truncate(path / "maps.npy")  # the size check is never memoised
    with pytest.raises(cache.CorruptEntryError, match="truncated"):
        cache.read_entry("maps", "key3")


def test_entry_without_checksums_or_with_bad_meta_is_rebuilt(tmp_cache):
    path = cache.cached("maps", "key4", maps_like)
    meta = json.loads((path / "meta.json").read_text())
    del meta["files"]  # as written by salbench before checksums
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(cache.CorruptEntryError, match="records no checksums"):
        cache.read_entry("maps", "key4")
    assert "files" in cache.read_meta(cache.cached("maps", "key4", maps_like))
    zero_same_size(path / "meta.json")
    with pytest.raises(cache.CorruptEntryError, match="meta.json unreadable"):
        cache.read_entry("maps", "key4")


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corrupt_data_set_is_refused_by_reader_and_regenerated(tmp_cache, how):
    profile = load_profile("smoke", **SMALL)
    folder = store.ensure_dataset(profile, workers=1, progress=False)
    with store.SplitReader(folder, "val") as r:
        x_good = r.x("mri")
    CORRUPTIONS[how](folder / "val.h5")
    cache._VERIFIED.clear()
    with pytest.raises(cache.CorruptEntryError, match=r"^cache entry data/\w+: val\.h5 [^\n]*$"):
        store.SplitReader(folder, "val")
    with store.open_split(profile, "val") as r:  # ensure_dataset regenerates it
        assert np.array_equal(r.x("mri"), x_good)


def test_plain_folder_reader_names_unreadable_file(tmp_path):
    (tmp_path / "val.h5").write_bytes(b"not hdf5")
    with pytest.raises(cache.CacheError, match=r"val\.h5: not a readable HDF5 data file"):
        store.SplitReader(tmp_path, "val")
