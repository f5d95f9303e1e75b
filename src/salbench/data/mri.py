"""MRI backgrounds and brain masks from axial slices of T1 volumes.

Default: the MNI152 (ICBM 2009a) T1 template and its brain mask that ship inside
nilearn, so nothing is downloaded. `data.mri_dir` points to a folder of your own
skull-stripped NIfTI volumes (e.g. HCP ``T1w_restore_brain``); their mask is the
voxels above 1 % of the volume's 99.9th percentile.

Each volume is reoriented to RAS, cropped to the brain's bounding box and scaled
(one factor for both axes, no distortion) to fit the image with a margin; image
rows run left-right, columns posterior-anterior. Slices whose brain covers less
than `mri_min_brain_fraction` of the image are discarded (the paper discarded outer
slices without brain tissue).

Because the default is one brain, every sample varies its slice by documented
augmentations drawn from the sample's shared stream: a random kept slice, a
left-right flip (p = 0.5, if `mri_flip`), an integer shift of up to
`mri_max_shift` pixels on each axis; and from the MRI stream a gamma
``x ** g`` with g uniform in [1 - mri_gamma_range, 1 + mri_gamma_range]. The image
is min-max normalised to [0, 1] afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from salbench.config import ConfigError, DataConfig

MARGIN = 0.9  # fraction of the image the cropped brain may fill before shifts


@dataclass(frozen=True)
class Geometry:
    slice_index: int
    flip: bool
    dy: int
    dx: int


class SliceBank:
    """All kept slices at image size, padded by the maximal shift."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, cfg: DataConfig):
        m = cfg.mri_max_shift
        pad = ((0, 0), (m, m), (m, m))
        self.images = np.pad(images, pad).astype(np.float32)
        self.masks = np.pad(masks, pad).astype(bool)
        self.masks_f32 = self.masks.astype(np.float32)
        self.cfg = cfg

    def __len__(self) -> int:
        return self.images.shape[0]

    def draw_geometry(self, rng: np.random.Generator) -> Geometry:
        m = self.cfg.mri_max_shift
        s = int(rng.integers(len(self)))
        flip = bool(rng.random() < 0.5) if self.cfg.mri_flip else False
        dy, dx = (int(v) for v in rng.integers(-m, m + 1, size=2))
        return Geometry(s, flip, dy, dx)

    def _crop(self, arr: np.ndarray, g: Geometry) -> np.ndarray:
        h, w = self.cfg.image_shape
        m = self.cfg.mri_max_shift
        out = arr[g.slice_index, m - g.dy : m - g.dy + h, m - g.dx : m - g.dx + w]
        return out[::-1] if g.flip else out

    def mask(self, g: Geometry) -> np.ndarray:
        return np.ascontiguousarray(self._crop(self.masks, g))

    def mask_f32(self, g: Geometry) -> np.ndarray:
        return self._crop(self.masks_f32, g)

    def image(self, g: Geometry, rng: np.random.Generator) -> np.ndarray:
        """The augmented slice, zero outside the brain, normalised to [0, 1]."""
        x = self._crop(self.images, g)
        r = self.cfg.mri_gamma_range
        gamma = 1.0 + r * (2 * rng.random() - 1)
        x = np.power(x, gamma, dtype=np.float32)
        hi = x.max()
        return (x / hi if hi > 0 else x).astype(np.float32)


def _load_volumes(mri_dir: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    import nibabel as nib

    if mri_dir is None:
        from nilearn import datasets

        t1 = nib.as_closest_canonical(datasets.load_mni152_template(resolution=1))
        brain = nib.as_closest_canonical(datasets.load_mni152_brain_mask(resolution=1))
        data = np.asarray(t1.get_fdata(), np.float32)
        return [(data, np.asarray(brain.get_fdata()) > 0.5)]
    files = sorted(p for p in Path(mri_dir).expanduser().iterdir() if p.name.endswith((".nii", ".nii.gz")))
    if not files:
        raise ConfigError(f"data.mri_dir={mri_dir!r}: no .nii or .nii.gz files found")
    return [_read_volume(f) for f in files]


def _read_volume(f: Path) -> tuple[np.ndarray, np.ndarray]:
    """One volume and its brain mask; a file that cannot be used is a one-line error naming it."""
    import nibabel as nib

    try:
        img = nib.as_closest_canonical(nib.load(str(f)))
        data = np.asarray(img.get_fdata(), np.float32)
    except Exception as err:  # nibabel, gzip and zlib raise many types for one cause: a bad file
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(f"{f}: cannot read this NIfTI file (corrupt or truncated?): {detail}") from err
    if data.ndim != 3:
        raise ConfigError(f"{f}: expected a 3-D volume, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ConfigError(f"{f}: the volume holds {int((~np.isfinite(data)).sum())} NaN or Inf voxels")
    top = float(data.max()) if data.size else 0.0
    if not top > 0:
        raise ConfigError(
            f"{f}: no brain voxels (volume of shape {data.shape}, max intensity {top:g}); "
            "expected a skull-stripped T1 volume with positive intensities"
        )
    return data, data > 0.01 * np.percentile(data, 99.9)


def _slices_of(volume: np.ndarray, brain: np.ndarray, cfg: DataConfig):
    from scipy import ndimage

    h, w = cfg.image_shape
    xs, ys, _ = np.nonzero(brain)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    vol = np.where(brain, volume, 0)[x0:x1, y0:y1]
    msk = brain[x0:x1, y0:y1]
    scale = MARGIN * min(h / vol.shape[0], w / vol.shape[1])
    hi = np.percentile(vol[msk], 99.9)
    images, masks = [], []
    for z in range(vol.shape[2]):
        m = msk[:, :, z]
        if m.sum() * scale * scale < cfg.mri_min_brain_fraction * h * w:
            continue
        sl = np.clip(vol[:, :, z] / hi, 0, 1)
        img = ndimage.zoom(sl, scale, order=1)
        mk = ndimage.zoom(m.astype(np.float32), scale, order=1) > 0.5
        canvas_i = np.zeros((h, w), np.float32)
        canvas_m = np.zeros((h, w), bool)
        oy, ox = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
        canvas_i[oy : oy + img.shape[0], ox : ox + img.shape[1]] = img
        canvas_m[oy : oy + img.shape[0], ox : ox + img.shape[1]] = mk
        images.append(canvas_i * canvas_m)
        masks.append(canvas_m)
    return images, masks


@lru_cache(maxsize=4)
def _bank(mri_dir, image_shape, min_fraction, max_shift, flip, gamma_range) -> SliceBank:
    cfg = DataConfig(
        image_shape=image_shape, mri_dir=mri_dir, mri_min_brain_fraction=min_fraction,
        mri_max_shift=max_shift, mri_flip=flip, mri_gamma_range=gamma_range,
    )
    images, masks = [], []
    for volume, brain in _load_volumes(mri_dir):
        i, m = _slices_of(volume, brain, cfg)
        images += i
        masks += m
    if not images:
        raise ConfigError(
            f"data.mri_min_brain_fraction={min_fraction}: no axial slice has that much brain; lower it"
        )
    return SliceBank(np.stack(images), np.stack(masks), cfg)


def slice_bank(cfg: DataConfig) -> SliceBank:
    return _bank(cfg.mri_dir, tuple(cfg.image_shape), cfg.mri_min_brain_fraction,
                 cfg.mri_max_shift, cfg.mri_flip, cfg.mri_gamma_range)
