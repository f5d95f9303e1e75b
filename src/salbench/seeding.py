"""One independent random stream per stage, derived from the profile seed.

A stage name maps to a fixed integer (CRC32), so adding a stage never shifts
another stage's numbers. Data samples get their own stream per (split, index),
which makes every sample a pure function of (seed, split, index).
"""

from __future__ import annotations

import os
import random
import zlib

import numpy as np


def stage_id(name: str) -> int:
    return zlib.crc32(name.encode())


def stage_seed_sequence(seed: int, stage: str, *keys: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, stage_id(stage), *keys])


def stage_rng(seed: int, stage: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng(stage_seed_sequence(seed, stage, *keys))


def stage_int_seed(seed: int, stage: str, *keys: int) -> int:
    """A 31-bit integer seed for libraries that want an int (TensorFlow, Python)."""
    return int(stage_seed_sequence(seed, stage, *keys).generate_state(1)[0] & 0x7FFFFFFF)


def set_global_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and switch TF ops to deterministic kernels."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    random.seed(seed)
    np.random.seed(seed)
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except AttributeError:  # pragma: no cover - older TF
        pass
