"""Time the localization metrics on a Budding-sized workload.

200 images x 20 methods of 140 x 192 pixels (the paper's evaluation set for one
background): brain masks are random ellipses, the ground truth two discs of 10 px
diameter inside the brain, and each "method" a random float32 map with a method-
dependent amount of lesion signal. Prints seconds per metric alone and for all four
together (``score_maps`` sorts the scored pixels twice per image and shares the
curves between metrics).

    python benchmarks/bench_metrics.py                 # full size
    python benchmarks/bench_metrics.py --images 20 --methods 2   # a quick look
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import sklearn

from salbench.metrics import DEFAULT_METRICS, score_maps

H, W = 140, 192
DISC_DIAMETER = 10


def make_data(n_images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:H, :W]
    masks = np.zeros((n_images, H, W), bool)
    gt = np.zeros((n_images, H, W), bool)
    rad = (DISC_DIAMETER - 1) / 2
    for i in range(n_images):
        cy, cx = H / 2 + rng.uniform(-5, 5), W / 2 + rng.uniform(-5, 5)
        ay, ax = rng.uniform(0.38, 0.46) * H, rng.uniform(0.38, 0.46) * W
        masks[i] = ((r - cy) / ay) ** 2 + ((c - cx) / ax) ** 2 <= 1
        placed = 0
        while placed < 2:  # disc centres drawn until the whole disc lies in the brain
            y0, x0 = rng.integers(0, H), rng.integers(0, W)
            disc = (r - y0) ** 2 + (c - x0) ** 2 <= rad**2
            if disc.sum() and masks[i][disc].all() and not (gt[i] & disc).any():
                gt[i] |= disc
                placed += 1
    return masks, gt


def method_maps(gt: np.ndarray, j: int, n_methods: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng([seed, j])
    signal = 3.0 * j / max(1, n_methods - 1)
    return (rng.standard_normal(gt.shape, dtype=np.float32) + np.float32(signal) * gt).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--methods", type=int, default=20)
    ap.add_argument("--pixels", choices=["brain", "all"], default="brain")
    args = ap.parse_args()

    masks, gt = make_data(args.images)
    maps = [method_maps(gt, j, args.methods) for j in range(args.methods)]
    n = args.images * args.methods
    print(f"{args.images} images x {args.methods} methods = {n} maps of {H}x{W}; pixels={args.pixels}; "
          f"mean scored pixels/image = {masks.sum((1, 2)).mean() if args.pixels == 'brain' else H * W:.0f}; "
          f"lesion pixels/image = {gt.sum((1, 2)).mean():.0f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"{platform.machine()}")

    runs = [(name,) for name in DEFAULT_METRICS] + [tuple(DEFAULT_METRICS)]
    rows = []
    for metrics in runs:
        t0 = time.perf_counter()
        for a in maps:
            score_maps(a, gt, masks, metrics=metrics, pixels=args.pixels)
        sec = time.perf_counter() - t0
        rows.append((" + ".join(metrics), sec, 1e3 * sec / n))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'metrics':<{width}}  {'seconds':>8}  {'ms/map':>7}")
    for label, sec, ms in rows:
        print(f"{label:<{width}}  {sec:8.1f}  {ms:7.2f}")


if __name__ == "__main__":
    main()
