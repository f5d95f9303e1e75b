"""The on-disk data set: contents equal the generator, atomic cache, streaming reader, export."""

import numpy as np
import pytest

from salbench.config import load_profile
from salbench.data import generator, store

OVERRIDES = dict(data__n_train=48, data__n_val=8, data__n_holdout=16, data__chunk_size=20)


@pytest.fixture
def profile():
    return load_profile("smoke", **OVERRIDES)


def test_store_equals_generator(tmp_cache, profile):
    folder = store.ensure_dataset(profile, progress=False)
    direct = generator.generate(profile.data, profile.seed, "train", np.arange(48))
    with store.SplitReader(folder, "train") as r:
        assert len(r) == 48
        for bg in ("perlin", "mri"):
            x = r.x(bg)
            assert x.shape == (48, 140, 192, 1) and x.dtype == np.float32
            assert x[..., 0].tobytes() == direct.x[bg].tobytes()
        assert np.array_equal(r.y(), direct.y)
        assert np.array_equal(r.gt(), direct.gt)
        assert np.array_equal(r.mask(), direct.mask)


def read_all(folder):
    out = {}
    for split in ("train", "val", "holdout"):
        with store.SplitReader(folder, split) as r:
            out[split] = [r.x("perlin"), r.x("mri"), r.y(), r.gt(), r.mask(), r.corners()]
    return out


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared-memory", "pipe"])
def test_parallel_writer_is_byte_identical(tmp_cache, profile, monkeypatch, tmp_path, shared_memory):
    folder = store.ensure_dataset(profile, workers=1, progress=False)
    one = read_all(folder)
    monkeypatch.setattr(store, "PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(store, "_shared_memory_fits", lambda nbytes: shared_memory)
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path / "other"))
    folder2 = store.ensure_dataset(profile, workers=2, progress=False)
    assert folder2 != folder
    two = read_all(folder2)
    for split in one:
        for a, b in zip(one[split], two[split]):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), split


def shared_memory_segments():
    from pathlib import Path

    return {p.name for p in Path("/dev/shm").glob("psm_*")}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_parallel_generation_leaves_no_shared_memory_or_entry(tmp_cache, profile, monkeypatch, error):
    class FailingBar:
        def __init__(self, *args, **kwargs):
            self.calls = 0

        def update(self, n):
            self.calls += 1
            if self.calls == 2:  # mid-split, with chunks in flight
                raise error("stop")

        def close(self):
            pass

    monkeypatch.setattr(store, "PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(store, "tqdm", FailingBar)
    before = shared_memory_segments()
    with pytest.raises(error):
        store.ensure_dataset(profile, workers=2, progress=False)
    assert shared_memory_segments() <= before
    assert not list(tmp_cache.glob("data/*/meta.json")) and not list(tmp_cache.glob("data/*.tmp-*"))


def test_interrupted_generation_leaves_no_valid_entry(tmp_cache, profile, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_write_split", boom)
    with pytest.raises(RuntimeError):
        store.ensure_dataset(profile, progress=False)
    monkeypatch.undo()
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_cache))
    assert not list(tmp_cache.glob("data/*/meta.json"))
    assert not list(tmp_cache.glob("data/*.tmp-*"))


def test_key_ignores_chunking_only(profile):
    a = store.data_key(profile.seed, profile.data)
    b = store.data_key(profile.seed, load_profile("smoke", **{**OVERRIDES, "data__chunk_size": 7}).data)
    c = store.data_key(profile.seed + 1, profile.data)
    assert a == b != c


def test_batches_cover_every_image_once(tmp_cache, profile):
    folder = store.ensure_dataset(profile, progress=False)
    with store.SplitReader(folder, "train") as r:
        all_x = r.x("perlin")[..., 0]
        seen = []
        for x, y in r.iter_batches("perlin", 7, rng=np.random.default_rng(0), block_size=16):
            assert x.shape[1:] == (140, 192, 1) and y.shape[1] == 2
            for img in x[..., 0]:
                seen.append(int(np.flatnonzero((all_x == img).all(axis=(1, 2)))[0]))
        assert sorted(seen) == list(range(48))
        assert seen != list(range(48))  # shuffled
        plain = [y.argmax(1) for _, y in r.iter_batches("perlin", 10)]
        assert np.array_equal(np.concatenate(plain), r.y())


def test_export_npz(tmp_cache, profile, tmp_path):
    out = store.export_npz(profile, "mri", "holdout", tmp_path / "h.npz", start=4, count=6)
    with np.load(out) as z:
        assert z["x"].shape == (6, 140, 192, 1) and z["x"].dtype == np.float32
        assert z["y"].tolist() == [0, 1, 0, 1, 0, 1]
        assert z["gt"].shape == (6, 140, 192) and z["gt"].dtype == bool
        assert z["mask"].shape == (6, 140, 192)
        ref = generator.generate(profile.data, profile.seed, "holdout", range(4, 10))
        assert np.array_equal(z["x"][..., 0], ref.x["mri"])
    with pytest.raises(ValueError, match="has 16 images"):
        store.export_npz(profile, "mri", "holdout", tmp_path / "bad.npz", start=10, count=10)


def test_key_changes_with_generator_version(profile, monkeypatch):
    before = store.data_key(profile.seed, profile.data)
    monkeypatch.setattr(store, "DATA_VERSION", store.DATA_VERSION + 1)
    assert store.data_key(profile.seed, profile.data) != before


def test_segmentation_batches_pair_images_with_their_masks(tmp_cache, profile):
    folder = store.ensure_dataset(profile, progress=False)
    with store.SplitReader(folder, "train") as r:
        all_x, all_gt = r.x("mri")[..., 0], r.gt()
        n_seen = 0
        for x, gt in r.iter_batches("mri", 5, rng=np.random.default_rng(1), block_size=16, target="gt"):
            assert gt.dtype == np.float32 and gt.shape == x.shape
            for img, mask in zip(x[..., 0], gt[..., 0]):
                k = int(np.flatnonzero((all_x == img).all(axis=(1, 2)))[0])
                assert np.array_equal(mask.astype(bool), all_gt[k])
                n_seen += 1
        assert n_seen == 48
        with pytest.raises(ValueError, match="target='mask' is not valid"):
            next(r.iter_batches("mri", 5, target="mask"))


def test_batches_with_lesions_are_the_same_batches_plus_their_labels_masks_and_corners(tmp_path, monkeypatch):
    monkeypatch.setenv("SALBENCH_CACHE", str(tmp_path))
    profile = load_profile("smoke")
    folder = store.ensure_dataset(profile, progress=False)
    with store.SplitReader(folder, "train") as r:
        plain = list(r.iter_batches("mri", 7, rng=np.random.default_rng(3), block_size=16))
        rich = list(r.iter_batches("mri", 7, rng=np.random.default_rng(3), block_size=16, lesions=True))
        assert len(plain) == len(rich)
        for (x, t), (x2, t2, y, mask, corners) in zip(plain, rich):
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(t, t2)
            np.testing.assert_array_equal(t.argmax(1), y)
            # Each image's mask and corners are those stored for it: find it by content.
            for k in range(len(x)):
                i = int(np.flatnonzero((r.x("mri") == x[k]).all(axis=(1, 2, 3)))[0])
                np.testing.assert_array_equal(mask[k], r.mask(i))
                np.testing.assert_array_equal(corners[k], r.corners(i))
