"""Training throughput: salbench's training loop against Keras' own `fit`, same model
(VGG-like), data, batch size and precision.

    python benchmarks/bench_training.py [--images 1024] [--batch 16] [--precision auto] [--repeats 3]

``--precision auto`` (default) is what the quick profile trains in on this machine
(`training.resolve_precision`): bf16 where the CPU has bf16 instructions, float32
elsewhere, where emulated bf16 is several times slower.

Loops, each timed `--repeats` times, interleaved, on fresh models:

* salbench: the on-disk streaming batches (`training._batches`) through `training.fit`
  (what `salbench.models.training.train` runs);
* keras fit, pipeline: the same batches as a tf.data dataset through Keras' `fit`;
* keras fit, in memory: Keras' `fit` over numpy arrays.

Each row gives images/s and the CPU time over wall time (cores in use). On a 2-core
AMD EPYC, Keras' default step ran some whole `fit` calls on one core (about 50 images/s
against about 90): the minimum and maximum over repeats show it.
Target: every salbench repeat >= 90 % of the fastest Keras repeat (issue 3).
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
    ap.add_argument("--precision", default="auto", choices=["auto", "float32", "mixed_bfloat16"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.images < 4 * args.batch or args.repeats < 1:
        ap.error(f"--images {args.images} must be >= 4 x --batch ({4 * args.batch}) and --repeats >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SALBENCH_CACHE"] = tmp
        import tensorflow as tf

        from salbench import provenance
        from salbench.config import load_profile
        from salbench.data import store
        from salbench.models import training

        n = args.images
        profile = load_profile("smoke", data__n_train=n, data__n_val=32, data__n_holdout=32, data__chunk_size=256)
        folder = store.ensure_dataset(profile, progress=False)
        cfg = profile.classifier
        args.precision = training.resolve_precision(args.precision)
        tf.keras.mixed_precision.set_global_policy(args.precision)
        rates: dict[str, list[tuple[float, float]]] = {}
        with store.SplitReader(folder, "train") as tr:
            x = tr.x("perlin")
            y = np.eye(2, dtype=np.float32)[tr.y()]

            def batches(seed):
                return training._batches(tr, "perlin", args.batch, n, seed=seed, target="class")

            def pipeline(seed):
                spec = (tf.TensorSpec((None, *x.shape[1:]), tf.float32), tf.TensorSpec((None, 2), tf.float32))
                return tf.data.Dataset.from_generator(batches(seed), output_signature=spec).prefetch(2)

            for _ in range(args.repeats):
                for name in ("salbench", "keras fit, pipeline", "keras fit, in memory"):
                    tf.keras.utils.set_random_seed(0)
                    model = training.build_model(cfg, x.shape[1:])
                    model.compile(training._optimizer(cfg), "categorical_crossentropy")
                    if name == "salbench":
                        warm, timed = batches(0), batches(1)
                        training.fit(model, lambda: (b for _, b in zip(range(4), warm())), lambda: iter(()), 1, None, [])
                        run = lambda: training.fit(model, timed, lambda: iter(()), 1, None, [])  # noqa: E731
                    elif name.endswith("in memory"):
                        model.fit(x[: args.batch * 4], y[: args.batch * 4], batch_size=args.batch, verbose=0)  # warm-up
                        run = lambda: model.fit(x, y, batch_size=args.batch, shuffle=True, verbose=0)  # noqa: E731
                    else:
                        model.fit(pipeline(0).take(4), verbose=0)  # warm-up
                        run = lambda: model.fit(pipeline(1), verbose=0)  # noqa: E731
                    cpu, start = time.process_time(), time.perf_counter()
                    run()
                    wall = time.perf_counter() - start
                    rates.setdefault(name, []).append((n / wall, (time.process_time() - cpu) / wall))
        tf.keras.mixed_precision.set_global_policy("float32")
    print(f"VGG-like, {n} images of 140x192, batch {args.batch}, {args.precision}; "
          f"{provenance.cpu_model()}, {os.cpu_count()} cores")
    print("| loop | images/s per repeat | min | max | cores in use per repeat |\n|---|---|---:|---:|---|")
    for name, rs in rates.items():
        per = ", ".join(f"{r:.1f}" for r, _ in rs)
        cores = ", ".join(f"{c:.2f}" for _, c in rs)
        print(f"| {name} | {per} | {min(r for r, _ in rs):.1f} | {max(r for r, _ in rs):.1f} | {cores} |")
    best_keras = max(r for name in rates if name.startswith("keras") for r, _ in rates[name])
    worst = min(r for r, _ in rates["salbench"])
    print(f"\nsalbench's slowest repeat / the fastest Keras repeat: {worst / best_keras:.2f} (target >= 0.90)")


if __name__ == "__main__":
    main()
