"""The on-disk data set: one HDF5 file per split inside a cache entry keyed by the
hash of (seed, data config), generated once in chunks by worker processes and
renamed into place only when complete.

Datasets in ``<split>.h5``: ``x_perlin``, ``x_mri`` (float32, N x H x W x 1),
``y`` (int8), ``gt`` and ``mask`` (bool, N x H x W), ``corners`` (int, N x L x 2).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import traceback
import uuid
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory
from pathlib import Path

import h5py
import numpy as np

from salbench import cache, config
from salbench.batching import batch_slices
from salbench.config import BACKGROUNDS, SPLITS, DataConfig, Profile, check_choice
from salbench.data import generator
from salbench.progress import tqdm
from salbench.workers import ignore_sigint

STAGE = "data"
# Images per HDF5 chunk of x: a training batch block reads whole chunks.
H5_CHUNK = 32
# Below this many samples in all splits, starting worker processes costs more than it saves.
PARALLEL_MIN_IMAGES = 4096


# Bump when a change to the generator changes the samples a config produces, so that
# cached data sets (and the models trained on them) are rebuilt.
DATA_VERSION = 2


def data_key(seed: int, cfg: DataConfig) -> str:
    # chunk_size changes how the data are written, not what they are.
    values = config.as_dict(cfg)
    values.pop("chunk_size")
    return config.config_hash({"seed": seed, "data_version": DATA_VERSION}, values)


def _generate_chunk(args):
    cfg, seed, split, start, stop = args
    return start, generator.generate(cfg, seed, split, np.arange(start, stop))


def _arrays(samples: generator.Samples) -> dict[str, np.ndarray]:
    """A chunk's arrays by HDF5 dataset name."""
    return {**{f"x_{bg}": samples.x[bg] for bg in BACKGROUNDS}, "y": samples.y, "gt": samples.gt,
            "mask": samples.mask, "corners": samples.corners}


def _layout(cfg: DataConfig, n: int) -> list[tuple[str, tuple, np.dtype]]:
    """(name, shape, dtype) of a chunk of `n` samples as it travels through shared memory."""
    h, w = cfg.image_shape
    return [*[(f"x_{bg}", (n, h, w), np.dtype(np.float32)) for bg in BACKGROUNDS],
            ("y", (n,), np.dtype(np.int8)), ("gt", (n, h, w), np.dtype(bool)), ("mask", (n, h, w), np.dtype(bool)),
            ("corners", (n, cfg.n_lesions, 2), np.dtype(np.int16))]


# Each array of a slot starts on a cache line.
SLOT_ALIGN = 64


def _slot_offsets(cfg: DataConfig, n: int) -> tuple[list[int], int]:
    """Byte offset of each array of `_layout` in a slot, and the slot's size."""
    offsets, end = [], 0
    for _, shape, dtype in _layout(cfg, n):
        start = -(-end // SLOT_ALIGN) * SLOT_ALIGN
        offsets.append(start)
        end = start + int(np.prod(shape)) * dtype.itemsize
    return offsets, end


def _slot_bytes(cfg: DataConfig, n: int) -> int:
    return _slot_offsets(cfg, n)[1]


def _slot_arrays(buf, cfg: DataConfig, n: int) -> dict[str, np.ndarray]:
    offsets, _ = _slot_offsets(cfg, n)
    return {name: np.ndarray(shape, dtype, buffer=buf, offset=offset)
            for (name, shape, dtype), offset in zip(_layout(cfg, n), offsets)}


def _generate_into(args):
    """Worker: generate a chunk into the parent's shared-memory slot `slot`."""
    cfg, seed, split, start, stop, slot = args
    samples = generator.generate(cfg, seed, split, np.arange(start, stop))
    shm = shared_memory.SharedMemory(name=slot)
    views = {}
    try:
        views = _slot_arrays(shm.buf, cfg, stop - start)
        for name, a in _arrays(samples).items():
            views[name][...] = a
    finally:
        views = None  # release the exported buffer before close()
        shm.close()
    return start, stop


def _shared_memory_fits(nbytes: int) -> bool:
    """Room for the slots in /dev/shm (Docker's default is 64 MB), with a margin."""
    try:
        return shutil.disk_usage("/dev/shm").free >= 2 * nbytes
    except OSError:
        return False


class _ProcessGenerator:
    """`workers` spawned processes generating chunks for every split of a data set.
    Chunks come back through shared memory: pickling them through the pool's pipe kept the
    parent busy for most of a core and held two workers on two cores to about 1,500
    background images/s. Falls back to the pipe where /dev/shm is too small (Docker's
    default is 64 MB)."""

    def __init__(self, cfg: DataConfig, workers: int):
        self.cfg = cfg
        self.n_slots = workers + 1  # one being written while each worker fills another
        self.slot_bytes = _slot_bytes(cfg, cfg.chunk_size)
        self.slots: list[shared_memory.SharedMemory] = []
        # spawn: never fork a process that may hold TensorFlow threads.
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=ignore_sigint)
        try:
            if _shared_memory_fits(self.n_slots * self.slot_bytes):
                for _ in range(self.n_slots):
                    self.slots.append(shared_memory.SharedMemory(create=True, size=self.slot_bytes))
        except BaseException:
            self.close()
            raise

    def run(self, jobs, write) -> None:
        """write(start, arrays by dataset name) for each job, in job order, with at most
        `n_slots` chunks generated ahead (through the pipe too: a split held in memory
        would be 11 GB at paper size)."""
        free, pending, todo = list(range(self.n_slots)), deque(), iter(jobs)

        def submit():
            while free and (job := next(todo, None)) is not None:
                k = free.pop()
                if self.slots:
                    future = self.pool.submit(_generate_into, (*job, self.slots[k].name))
                else:
                    future = self.pool.submit(_generate_chunk, job)
                pending.append((k, future))

        submit()
        while pending:
            k, future = pending.popleft()
            if self.slots:
                start, stop = future.result()
                arrays = _slot_arrays(self.slots[k].buf, self.cfg, stop - start)
            else:
                start, samples = future.result()
                arrays = _arrays(samples)
            try:
                write(start, arrays)
            except BaseException as err:
                # Drop the frames' references to the slot's views, so close() can unmap it.
                arrays = None
                traceback.clear_frames(err.__traceback__)
                raise
            arrays = None
            free.append(k)
            submit()

    def close(self) -> None:
        # Ctrl-C or an error: drop the queued jobs and wait for the running ones, which
        # may still be writing into a slot, before the slots go.
        self.pool.shutdown(wait=True, cancel_futures=True)
        for shm in self.slots:
            try:
                shm.close()
            except BufferError:  # a view still held elsewhere: the mapping goes with it
                pass
            try:
                shm.unlink()
            except FileNotFoundError:
                pass
        self.slots = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_split(path: Path, cfg: DataConfig, seed: int, split: str, processes: "_ProcessGenerator | None",
                 progress: bool) -> None:
    """Write one split; chunks come from `processes`, or from this process when None."""
    n = cfg.split_size(split)
    h, w = cfg.image_shape
    chunk = cfg.chunk_size
    jobs = [(cfg, seed, split, s, min(s + chunk, n)) for s in range(0, n, chunk)]
    with h5py.File(path, "w") as f:
        datasets = {
            **{f"x_{bg}": f.create_dataset(f"x_{bg}", (n, h, w, 1), np.float32, chunks=(min(H5_CHUNK, n), h, w, 1))
               for bg in BACKGROUNDS},
            "y": f.create_dataset("y", (n,), np.int8),
            "gt": f.create_dataset("gt", (n, h, w), bool, chunks=(min(H5_CHUNK, n), h, w), compression="lzf"),
            "mask": f.create_dataset("mask", (n, h, w), bool, chunks=(min(H5_CHUNK, n), h, w), compression="lzf"),
            "corners": f.create_dataset("corners", (n, cfg.n_lesions, 2), np.int16),
        }
        bar = tqdm(total=n, desc=f"data {split}", unit="img", disable=not progress)

        def write(start: int, arrays: dict[str, np.ndarray]) -> None:
            stop = start + len(arrays["y"])
            for name, a in arrays.items():
                datasets[name][start:stop] = a[..., None] if name.startswith("x_") else a
            bar.update(stop - start)

        if processes is not None:
            processes.run(jobs, write)
        else:
            for job in jobs:
                start, samples = _generate_chunk(job)
                write(start, _arrays(samples))
        bar.close()
        f.attrs["split"] = split
        f.attrs["seed"] = seed


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def ensure_dataset(profile: Profile, workers: int | None = None, progress: bool = True) -> Path:
    """The cache folder holding the profile's data set, generating it if needed; a
    cached data set is verified against its checksums first (regenerated if corrupt)."""
    cfg, seed = profile.data, profile.seed
    workers = default_workers() if workers is None else workers

    def build(tmp: Path):
        total = sum(cfg.split_size(split) for split in SPLITS)
        with contextlib.ExitStack() as stack:
            processes = None
            if workers > 1 and total >= PARALLEL_MIN_IMAGES:  # one pool for all splits
                processes = stack.enter_context(_ProcessGenerator(cfg, workers))
            for split in SPLITS:
                _write_split(tmp / f"{split}.h5", cfg, seed, split, processes, progress)
        return {"data_config": config.as_dict(cfg), "seed": seed}

    return cache.cached(STAGE, data_key(seed, cfg), build)


class SplitReader:
    """Read access to one split; arrays are read from disk on demand."""

    def __init__(self, folder: Path, split: str):
        check_choice("split", split, SPLITS)
        self.path = Path(folder) / f"{split}.h5"
        self.split = split
        if cache.is_complete(Path(folder)):  # a cache entry: never read a corrupt file
            cache.verify_file(Path(folder), self.path.name)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise cache.CacheError(f"{self.path}: not a readable HDF5 data file ({err})") from None
        self.n = self._file["y"].shape[0]

    def __len__(self) -> int:
        return self.n

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _rows(self, name: str, index):
        return self._file[name][index]

    def x(self, background: str, index=slice(None)) -> np.ndarray:
        check_choice("background", background, BACKGROUNDS)
        return self._rows(f"x_{background}", index)

    def y(self, index=slice(None)) -> np.ndarray:
        return self._rows("y", index).astype(np.int64)

    def gt(self, index=slice(None)) -> np.ndarray:
        return self._rows("gt", index)

    def mask(self, index=slice(None)) -> np.ndarray:
        return self._rows("mask", index)

    def corners(self, index=slice(None)) -> np.ndarray:
        return self._rows("corners", index).astype(np.int64)

    def iter_batches(self, background: str, batch_size: int, rng: np.random.Generator | None = None,
                     n: int | None = None, block_size: int = 2048, target: str = "class", lesions: bool = False):
        """Yield (x, target) batches over the first `n` images; target "class": one-hot
        labels (N, 2); "gt": ground-truth masks as float32 (N, H, W, 1) for segmentation.
        `lesions`: yield (x, target, y, mask, corners) instead (labels, brain masks and
        lesion corners of the same images, for a curriculum).

        Shuffled (if `rng`) without loading the split: block order is permuted and
        images are permuted inside each block, reading contiguous blocks of at most
        `block_size` images. When n <= block_size this is an exact full shuffle.
        """
        check_choice("target", target, ("class", "gt"))

        def encode(labels):
            return np.eye(2, dtype=np.float32)[labels] if target == "class" else labels

        n = self.n if n is None else n
        starts = np.arange(0, n, block_size)
        if rng is not None:
            starts = rng.permutation(starts)
        carry = None
        for s in starts:
            stop = min(s + block_size, n)
            block = [self.x(background, slice(s, stop)),
                     self.y(slice(s, stop)) if target == "class" else self.gt(slice(s, stop)).astype(np.float32)[..., None]]
            if lesions:
                block += [self.y(slice(s, stop)), self.mask(slice(s, stop)), self.corners(slice(s, stop))]
            if rng is not None:
                order = rng.permutation(stop - s)
                block = [a[order] for a in block]
            if carry is not None:
                block = [np.concatenate([c, a]) for c, a in zip(carry, block)]
            full = (len(block[0]) // batch_size) * batch_size
            for i in range(0, full, batch_size):
                yield self._batch(block, slice(i, i + batch_size), encode)
            carry = [a[full:] for a in block]
        if carry is not None and len(carry[0]):
            yield self._batch(carry, slice(None), encode)

    @staticmethod
    def _batch(block, rows, encode):
        x, t, *rest = (a[rows] for a in block)
        return (x, encode(t), *rest)


def open_split(profile: Profile, split: str) -> SplitReader:
    return SplitReader(ensure_dataset(profile), split)


def export_npz(profile: Profile, background: str, split: str, out: Path, start: int = 0, count: int | None = None) -> Path:
    """Write x, y, gt, mask of samples start..start+count-1 of a split to a compressed .npz.

    Only those samples are generated (each is a pure function of its index, see
    generator.py), so nothing else is built or cached. `out` is written through a
    temporary file beside it that never outlives the call.
    """
    check_choice("background", background, BACKGROUNDS)
    check_choice("split", split, SPLITS)
    cfg = profile.data
    n = cfg.split_size(split)
    if not 0 <= start < n:
        raise ValueError(f"start={start}: must be in 0..{n - 1} (the {split} split has {n} images)")
    count = n - start if count is None else count
    if not 1 <= count <= n - start:
        raise ValueError(
            f"count={count}: must be in 1..{n - start} (the {split} split has {n} images, from start={start})"
        )
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"out={out}: is a folder; give a file path such as {out / 'export.npz'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Created before generating, so that an unwritable folder fails in a second, not after minutes.
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}.npz")
        fh = open(tmp, "wb")
    except OSError as err:
        raise OSError(f"out={out}: cannot write there ({err.strerror or err})") from err
    try:
        with fh:
            h, w = cfg.image_shape
            x = np.empty((count, h, w, 1), np.float32)
            y = np.empty(count, np.int64)
            gt = np.empty((count, h, w), bool)
            mask = np.empty((count, h, w), bool)
            for s in batch_slices(count, cfg.chunk_size):
                samples = generator.generate(cfg, profile.seed, split, np.arange(start + s.start, start + s.stop))
                x[s, ..., 0] = samples.x[background]
                y[s], gt[s], mask[s] = samples.y, samples.gt, samples.mask
            np.savez_compressed(fh, x=x, y=y, gt=gt, mask=mask)
        os.replace(tmp, out)
    except OSError as err:
        raise OSError(f"out={out}: cannot write there ({err.strerror or err})") from err
    finally:
        tmp.unlink(missing_ok=True)
    return out


def summarize(folder: Path) -> "pd.DataFrame":
    """Per split and background: counts, class balance, value ranges, lesion and mask sizes."""
    import pandas as pd

    rows = []
    for split in SPLITS:
        with SplitReader(folder, split) as r:
            y = r.y()
            n_check = min(r.n, 256)  # value statistics from the first images only: cheap at paper size
            gt = r.gt(slice(0, n_check))
            mask = r.mask(slice(0, n_check))
            ys = y[:n_check]
            for bg in BACKGROUNDS:
                x = r.x(bg, slice(0, n_check))
                rows.append({
                    "split": split, "background": bg, "n": r.n,
                    "class2_fraction": float(y.mean()),
                    "x_min": float(x.min()), "x_max": float(x.max()),
                    "lesion_px_class2": float(gt[ys == 1].sum(axis=(1, 2)).mean()) if (ys == 1).any() else 0.0,
                    "lesion_px_class1": float(gt[ys == 0].sum(axis=(1, 2)).mean()) if (ys == 0).any() else 0.0,
                    "brain_fraction": float(mask.mean()),
                })
    return pd.DataFrame(rows)
