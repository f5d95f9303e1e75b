"""Training throughput: the on-disk streaming pipeline vs a bare Keras loop over
in-memory arrays, same model (VGG-like), batch size and precision.

    python benchmarks/bench_training.py [--images 1024] [--batch 16] [--precision mixed_bfloat16]
Target (issue 3): the pipeline at >= 90 % of the bare loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", default="mixed_bfloat16", choices=["float32", "mixed_bfloat16"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SALBENCH_CACHE"] = tmp
        import tensorflow as tf

        from salbench.config import load_profile
        from salbench.data import store
        from salbench.models import training

        n = args.images
        profile = load_profile("smoke", data__n_train=n, data__n_val=32, data__n_holdout=32, data__chunk_size=256)
        folder = store.ensure_dataset(profile, progress=False)
        cfg = profile.classifier
        tf.keras.mixed_precision.set_global_policy(args.precision)
        rates = {}
        with store.SplitReader(folder, "train") as tr:
            x = tr.x("perlin")
            y = np.eye(2, dtype=np.float32)[tr.y()]
            for name in ("bare in-memory fit", "salbench pipeline", "bare in-memory fit (again)"):
                tf.keras.utils.set_random_seed(0)
                model = training.build_model(cfg, x.shape[1:])
                model.compile(training._optimizer(cfg), "categorical_crossentropy")
                if name.startswith("bare"):
                    model.fit(x[: args.batch * 4], y[: args.batch * 4], batch_size=args.batch, verbose=0)  # warm-up
                    start = time.perf_counter()
                    model.fit(x, y, batch_size=args.batch, shuffle=True, verbose=0)
                else:
                    ds = training._dataset(tr, "perlin", args.batch, n, seed=0, target="class")
                    model.fit(ds.take(4), verbose=0)  # warm-up
                    start = time.perf_counter()
                    model.fit(training._dataset(tr, "perlin", args.batch, n, seed=1, target="class"), verbose=0)
                rates[name] = n / (time.perf_counter() - start)
        tf.keras.mixed_precision.set_global_policy("float32")
    bare = (rates["bare in-memory fit"] + rates["bare in-memory fit (again)"]) / 2
    print(f"VGG-like, {n} images of 140x192, batch {args.batch}, {args.precision}, {os.cpu_count()} cores")
    print("| loop | images/s |\n|---|---|")
    for k, v in rates.items():
        print(f"| {k} | {v:.1f} |")
    print(f"\npipeline / bare (mean of the two bare runs): {rates['salbench pipeline'] / bare:.2f}")


if __name__ == "__main__":
    main()
