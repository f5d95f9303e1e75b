"""Throughput and memory of the fidelity engine (``salbench.metrics.score_fidelity``).

The engine's job is to keep the model busy: it builds the perturbed inputs of many
images, methods, orderings and steps into one float32 buffer and calls ``predict``
once per full batch. This benchmark compares its forward throughput (inputs sent
through ``predict`` per second, clean pass included, all perturbation and AOPC /
F bookkeeping counted in its time) with the bare ``predict`` on ready-made batches
of the same size, on a small Keras CNN (one compiled ``tf.function``, batch
dimension left open so the partial last batch does not retrace). Target: ratio
>= 0.9. It also times the engine with a predict that returns at once: its own
cost per input, the ceiling on throughput with a fast (GPU) model. Peak memory: ``tracemalloc`` peak of the numpy/Python allocations during
the engine run (TensorFlow's own allocator is not traced) next to the size the
perturbed inputs would take if materialized, and the process's peak RSS.

Quantus (``RegionPerturbation``, ``FaithfulnessCorrelation``) is not compared here:
it is not installed in the project environment.

    python benchmarks/bench_fidelity.py                  # about a minute on 2 CPU cores
    python benchmarks/bench_fidelity.py --images 2 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import tensorflow as tf  # noqa: E402

from salbench.metrics import make_design, score_fidelity  # noqa: E402

H, W, C, N_CLASSES = 140, 192, 1, 3


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def small_cnn(seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.Sequential([
        tf.keras.layers.Input((H, W, C)),
        tf.keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
        tf.keras.layers.GlobalAveragePooling2D(),
        tf.keras.layers.Dense(N_CLASSES, activation="softmax"),
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--methods", type=int, default=2)
    ap.add_argument("--unit", type=int, default=5)
    ap.add_argument("--l-max", type=int, default=100)
    ap.add_argument("--n-random", type=int, default=4)
    ap.add_argument("--n-faithfulness", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="alternating bare / engine timings; the median is reported")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(args.images, H, W, C)).astype(np.float32)
    maps = {f"m{j}": rng.normal(size=(args.images, H, W)) for j in range(args.methods)}
    design = make_design(H, W, unit=args.unit, rng=np.random.default_rng(1), l_max=args.l_max,
                         n_random=args.n_random, n_faithfulness=args.n_faithfulness)
    model = small_cnn()
    fn = tf.function(lambda xb: model(xb, training=False),
                     input_signature=[tf.TensorSpec([None, H, W, C], tf.float32)])

    def predict(xb: np.ndarray) -> np.ndarray:
        return fn(xb).numpy()

    kw = dict(styles=("mean", "uniform"), mean_value=0.5, value_range=(0.0, 1.0), batch_size=args.batch_size)
    bs = args.batch_size
    ready = rng.uniform(0, 1, size=(bs, H, W, C)).astype(np.float32)
    predict(ready)  # trace once
    score_fidelity(predict, x[:1], {m: a[:1] for m, a in maps.items()}, design, **kw)  # warm-up
    n_fwd = 0

    bare_rates, engine_rates = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = score_fidelity(predict, x, maps, design, **kw)
        t_engine = time.perf_counter() - t0
        n_fwd = res.n_forward
        n_batches = -(-n_fwd // bs)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            predict(ready)
        t_bare = time.perf_counter() - t0
        engine_rates.append(n_fwd / t_engine)
        bare_rates.append(n_batches * bs / t_bare)

    # The engine's own cost (perturbing, batching, AOPC and F): a predict that returns at once.
    const = np.full((bs, N_CLASSES), 1.0 / N_CLASSES, np.float32)
    const[:, 0] += 0.1
    const[:, 1:] -= 0.05
    t0 = time.perf_counter()
    n_noop = score_fidelity(lambda xb: const[:len(xb)], x, maps, design, **kw).n_forward
    t_noop = time.perf_counter() - t0

    tracemalloc.start()
    score_fidelity(predict, x, maps, design, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    n_units = design.grid.n_units
    per_image = 2 * ((2 * args.methods + args.n_random) * args.l_max + args.n_faithfulness)
    materialized = args.images * per_image * H * W * C * 4
    eng, bare = float(np.median(engine_rates)), float(np.median(bare_rates))
    print(f"CPU: {cpu_model()} ({psutil.cpu_count(logical=True)} logical cores visible); "
          f"python {platform.python_version()}, numpy {np.__version__}, tensorflow {tf.__version__}")
    print(f"workload: {args.images} images {H}x{W}x{C}, {args.methods} methods, 2 styles, unit={args.unit} "
          f"({n_units} units), l_max={args.l_max}, {args.n_random} random orderings, "
          f"{args.n_faithfulness} F units; {n_fwd} forward passes, batch {bs}")
    print(f"bare predict : {bare:8.0f} inputs/s  (runs: {', '.join(f'{r:.0f}' for r in bare_rates)})")
    print(f"engine       : {eng:8.0f} inputs/s  (runs: {', '.join(f'{r:.0f}' for r in engine_rates)})")
    print(f"engine alone (no-op predict): {n_noop / t_noop:8.0f} inputs/s = {1e6 * t_noop / n_noop:.0f} us per input")
    print(f"ratio engine / bare = {eng / bare:.3f}  (target >= 0.9)")
    print(f"tracemalloc peak during the engine run: {peak / 2**20:.1f} MiB "
          f"(one batch buffer = {bs * H * W * C * 4 / 2**20:.1f} MiB; all perturbed inputs materialized "
          f"would be {materialized / 2**20:.0f} MiB)")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB "
          "(TensorFlow included)")


if __name__ == "__main__":
    main()
