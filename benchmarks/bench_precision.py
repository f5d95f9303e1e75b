"""Training throughput in float32 against mixed bf16 (issue 12, `precision: auto`), both
in one run and interleaved (float32, bf16, float32, bf16) so machine load hits both alike.

    python benchmarks/bench_precision.py [--images 512] [--batch 16] [--roles classifier unet]

Trains through `training.fit`, as the profiles do. Prints images/s per precision and role
(mean and range over the repeats), the bf16 / float32 ratio of the means, the CPU model and
which bf16 instructions it has (AMX tiles, AVX-512 BF16); `precision: auto` in the
profiles picks bf16 only where that ratio was measured well above 1.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def batches(x, y, size: int, n: int):
    return lambda: ((x[i:i + size], y[i:i + size]) for i in range(0, n, size))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--roles", nargs="+", default=["classifier"], choices=["classifier", "second", "unet"])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import tensorflow as tf

    from salbench import provenance
    from salbench.config import load_profile
    from salbench.models import training

    profile = load_profile("quick")
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 140, 192, 1), dtype=np.float32)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, args.images)]
    masks = (rng.random((args.images, 140, 192, 1)) < 0.01).astype(np.float32)
    rates: dict[tuple[str, str], list[float]] = {}
    for role in args.roles:
        cfg = getattr(profile, role)
        y = masks if role == "unet" else labels
        loss = training._dice_bce_loss() if role == "unet" else "categorical_crossentropy"
        for _ in range(args.repeats):
            for precision in ("float32", "mixed_bfloat16"):
                tf.keras.backend.clear_session()
                tf.keras.mixed_precision.set_global_policy(precision)
                tf.keras.utils.set_random_seed(0)
                model = training.build_model(cfg, x.shape[1:])
                model.compile(training._optimizer(cfg), loss)
                # salbench's training loop (training.fit): Keras' own fit ran some calls on one core.
                training.fit(model, batches(x, y, args.batch, args.batch * 4), lambda: iter(()), 1, None, [])  # warm-up
                start = time.perf_counter()
                training.fit(model, batches(x, y, args.batch, args.images), lambda: iter(()), 1, None, [])
                rates.setdefault((role, precision), []).append(args.images / (time.perf_counter() - start))
        tf.keras.mixed_precision.set_global_policy("float32")
    flags = provenance.cpu_flags()
    print(f"{provenance.cpu_model()}, {os.cpu_count()} cores, AMX-BF16: {'amx_bf16' in flags}, "
          f"AVX-512 BF16: {'avx512_bf16' in flags}; {args.images} images of 140x192, batch {args.batch}, "
          f"{args.repeats} interleaved repeats")
    print("| role | float32 images/s | mixed bf16 images/s | bf16 / float32 |\n|---|---|---|---|")

    def cell(r):
        return f"{np.mean(r):.1f} ({min(r):.1f}-{max(r):.1f})"

    for role in args.roles:
        f32, bf16 = rates[(role, "float32")], rates[(role, "mixed_bfloat16")]
        print(f"| {role} | {cell(f32)} | {cell(bf16)} | {np.mean(bf16) / np.mean(f32):.2f} |")


if __name__ == "__main__":
    main()
