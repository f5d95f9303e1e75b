"""Unusable NIfTI volumes in data.mri_dir: one-line errors naming the file, nothing written."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from salbench.config import ConfigError, DataConfig
from salbench.data import mri


def _write(path, data):
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), str(path))
    return path


def _brain(shape=(40, 48, 30)):
    rng = np.random.default_rng(0)
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    inside = zz**2 + yy**2 + xx**2 < 0.8
    return np.where(inside, 0.5 + 0.5 * rng.random(shape), 0.0)


def _bank(folder):
    return mri.slice_bank(DataConfig(mri_dir=str(folder)))


def _one_line_error(folder) -> str:
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(ConfigError) as err:
        _bank(folder)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written beside the volumes
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_a_good_volume_loads(tmp_path):
    _write(tmp_path / "ok.nii.gz", _brain())
    assert len(_bank(tmp_path)) > 0


def test_truncated_nifti_names_the_file(tmp_path):
    good = _write(tmp_path / "ok.nii.gz", _brain())
    data = good.read_bytes()
    good.unlink()
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    msg = _one_line_error(tmp_path)
    assert msg.startswith(f"{bad}: cannot read this NIfTI file (corrupt or truncated?)"), msg


def test_corrupt_nifti_names_the_file(tmp_path):
    bad = tmp_path / "noise.nii.gz"
    bad.write_bytes(gzip.compress(b"not a nifti header" * 50))
    assert _one_line_error(tmp_path).startswith(f"{bad}: cannot read this NIfTI file")
    bad.write_bytes(b"\x00\x01garbage, not even gzip")
    assert _one_line_error(tmp_path).startswith(f"{bad}: cannot read this NIfTI file")


def test_all_zero_volume_names_the_file(tmp_path):
    _write(tmp_path / "a_ok.nii.gz", _brain())
    zero = _write(tmp_path / "b_zero.nii.gz", np.zeros((40, 48, 30)))
    msg = _one_line_error(tmp_path)
    assert msg.startswith(f"{zero}: no brain voxels (volume of shape (40, 48, 30), max intensity 0)"), msg


def test_non_finite_volume_names_the_file(tmp_path):
    data = _brain()
    data[3, 4, 5] = np.nan
    bad = _write(tmp_path / "nan.nii", data)
    assert _one_line_error(tmp_path) == f"{bad}: the volume holds 1 NaN or Inf voxels"
