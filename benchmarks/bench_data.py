"""Data generation benchmark: images/s per background at paper size, and peak RSS
(parent + workers) while writing a paper-size data set to a temporary cache.

    python benchmarks/bench_data.py [--write-images N]   (default: the full 60,000)
Targets (issue 2): >= 2,000 images/s on the 2-core machine; peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import psutil

from salbench.config import load_profile
from salbench.data import generator, mri, perlin, store


def per_background_rates(cfg, seed, n=2000):
    bank = mri.slice_bank(cfg)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(n):
        perlin.noise(perlin.draw_gradients(rng, cfg), cfg)
    perlin_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(n):
        bank.image(bank.draw_geometry(rng), rng)
    mri_rate = n / (time.perf_counter() - t)
    t = time.perf_counter()
    generator.generate(cfg, seed, "train", np.arange(n))
    both = n / (time.perf_counter() - t)
    return perlin_rate, mri_rate, both


class PeakRSS:
    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    def _poll(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write-images", type=int, default=None, help="images in all splits (default: paper size)")
    args = parser.parse_args()
    paper = load_profile("paper")
    overrides = {}
    if args.write_images:
        n = args.write_images
        overrides = dict(data__n_train=int(n * 0.7) // 2 * 2, data__n_val=int(n * 0.1) // 2 * 2,
                         data__n_holdout=int(n * 0.2) // 2 * 2, saliency__n_images=2, localization__n_images=2,
                         localization__n_randomized_images=2, trust__n_images=2, fidelity__n_images=2)
    profile = load_profile("paper", **overrides)
    p_rate, m_rate, both = per_background_rates(paper.data, paper.seed)
    print(f"cores: {os.cpu_count()}")
    print("| stage | images/s (one process) |\n|---|---|")
    print(f"| Perlin background only | {p_rate:,.0f} |\n| MRI background only | {m_rate:,.0f} |")
    print(f"| full sample (both backgrounds, mask, lesions, GT) | {both:,.0f} |")
    total = profile.data.n_train + profile.data.n_val + profile.data.n_holdout
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        os.environ["SALBENCH_CACHE"] = tmp
        with PeakRSS() as rss:
            t = time.perf_counter()
            store.ensure_dataset(profile, progress=False)
            seconds = time.perf_counter() - t
    print(f"\nwrote {total:,} samples (both backgrounds) with {store.default_workers()} workers in {seconds:.0f} s: "
          f"{total / seconds:,.0f} images/s per background pair, {2 * total / seconds:,.0f} background images/s")
    print(f"peak RSS (parent + workers): {rss.peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
