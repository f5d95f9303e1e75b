"""Lesion geometry, class balance, determinism and identical lesions across backgrounds."""

import numpy as np
import pytest

from salbench.config import DataConfig
from salbench.data import generator, mri, perlin

CFG = DataConfig(n_train=400, n_val=40, n_holdout=12000)
N = 64
# float32 noise vs the float64 per-pixel loop: a few ulps of float32 in [0, 1].
PERLIN_TOL = 1e-6


@pytest.fixture(scope="module")
def batch():
    return generator.generate(CFG, 11, "train", np.arange(N))


def test_shapes_and_ranges(batch):
    h, w = CFG.image_shape
    for bg in ("perlin", "mri"):
        assert batch.x[bg].shape == (N, h, w) and batch.x[bg].dtype == np.float32
        assert batch.x[bg].min() >= 0.0 and batch.x[bg].max() <= 1.0
        assert np.all(batch.x[bg][~batch.mask] == 0)  # background only inside the brain
    assert batch.gt.dtype == bool and batch.mask.dtype == bool


def test_class_balance(batch):
    assert batch.y.sum() == N // 2
    assert np.array_equal(batch.y, np.arange(N) % 2)


def test_lesion_geometry(batch):
    d = CFG.lesion_diameter
    h = CFG.image_shape[0]
    window = generator.lesion_window(d, "disc")
    for k in range(N):
        if batch.y[k] == 0:
            assert not batch.gt[k].any()
            continue
        corners = batch.corners[k]
        assert len(corners) == CFG.n_lesions == 2
        for r, c in corners:
            assert r + d <= h // 2, "lesion must lie in the top half"
            assert batch.mask[k, r : r + d, c : c + d].all(), "lesion must lie inside the brain mask"
        (r0, c0), (r1, c1) = corners
        assert abs(r0 - r1) >= d or abs(c0 - c1) >= d, "lesions must not overlap"
        assert batch.gt[k].sum() == 2 * (window > CFG.gt_threshold).sum()
        # Diameter: the ground-truth disc spans d pixels across its centre row and column.
        gt_patch = batch.gt[k, r0 : r0 + d, c0 : c0 + d]
        assert gt_patch.any(axis=0).sum() == d and gt_patch.any(axis=1).sum() == d


def test_lesion_intensity_dip(batch):
    lm = generator.lesion_map(batch, CFG)
    k = int(np.flatnonzero(batch.y)[0])
    assert lm[k].min() == pytest.approx(CFG.lesion_intensity, abs=1e-6)  # 30 % intensity left
    assert np.all(lm[batch.y == 0] == 1)
    # The image is the background times the lesion map: unlesioned pixels are unchanged.
    same = generator.generate(CFG, 11, "train", [k])
    assert np.array_equal(same.x["mri"][0], batch.x["mri"][k])


def test_same_lesions_and_masks_across_backgrounds(batch):
    lm = generator.lesion_map(batch, CFG)
    for k in np.flatnonzero(batch.y):
        inside = batch.gt[k]
        # The ratio image / (image without lesions) is the same lesion map in both backgrounds.
        for bg in ("perlin", "mri"):
            nz = inside & (batch.x[bg][k] > 0)
            assert nz.any()
        assert np.all(lm[k][~inside] == 1)


def test_single_index_equals_whole_split():
    cfg = DataConfig(n_train=400, n_val=40, n_holdout=12000)
    alone = generator.generate(cfg, 5, "holdout", [11999])
    batch = generator.generate(cfg, 5, "holdout", [11996, 11997, 11998, 11999])
    for bg in ("perlin", "mri"):
        assert alone.x[bg][0].tobytes() == batch.x[bg][3].tobytes()
    assert np.array_equal(alone.gt[0], batch.gt[3])
    assert np.array_equal(alone.mask[0], batch.mask[3])


def test_rerun_is_byte_identical_and_seed_matters():
    a = generator.generate(CFG, 3, "val", np.arange(8))
    b = generator.generate(CFG, 3, "val", np.arange(8))
    c = generator.generate(CFG, 4, "val", np.arange(8))
    for bg in ("perlin", "mri"):
        assert a.x[bg].tobytes() == b.x[bg].tobytes()
        assert a.x[bg].tobytes() != c.x[bg].tobytes()


def test_splits_draw_different_samples():
    a = generator.generate(CFG, 3, "train", [0, 1])
    b = generator.generate(CFG, 3, "val", [0, 1])
    assert not np.array_equal(a.x["perlin"], b.x["perlin"])


def test_index_out_of_range():
    with pytest.raises(IndexError, match="0..39"):
        generator.generate(CFG, 3, "val", [40])


def test_perlin_matches_per_pixel_reference():
    small = DataConfig(image_shape=(20, 32), perlin_res=(5, 8))
    g = perlin.draw_gradients(np.random.default_rng(0), small)
    ref = perlin.reference_noise(g, (20, 32), (5, 8))
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    np.testing.assert_allclose(perlin.noise(g, small), ref, atol=PERLIN_TOL)


def test_square_window_counts_the_whole_square_as_lesion():
    sq = generator.lesion_window(10, "square")
    disc = generator.lesion_window(10, "disc")
    assert (sq > 0).sum() == 100  # what Budding's code did
    assert 60 <= (disc > 0).sum() < 100
    assert sq.max() == disc.max() == 1.0


def test_gt_threshold_shrinks_ground_truth():
    core = DataConfig(n_train=400, n_val=40, n_holdout=12000, gt_threshold=0.5)
    a = generator.generate(CFG, 1, "train", [1])
    b = generator.generate(core, 1, "train", [1])
    assert 0 < b.gt.sum() < a.gt.sum()
    assert np.array_equal(a.x["mri"], b.x["mri"])  # the threshold changes the labels only


def test_mri_slices_vary():
    bank = mri.slice_bank(CFG)
    assert len(bank) >= 20
    batch = generator.generate(CFG, 2, "train", np.arange(0, 40, 2))
    # No two class-1 MRI images are identical: slices, flips, shifts and gamma vary.
    flat = batch.x["mri"].reshape(20, -1)
    assert len({row.tobytes() for row in flat}) == 20
