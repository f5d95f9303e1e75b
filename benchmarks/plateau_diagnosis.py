"""Why the quick VGG-like net sits at chance (issue 12): input statistics, the lesion's
contrast, and the label signal in the gradient at initialisation, raw vs standardized.

    python benchmarks/plateau_diagnosis.py [--n 64]   -> tables/plateau_diagnosis.csv

Gradient signal-to-noise (ours): per-image gradients g_i of the log-odds log p1 - log p0
at He initialisation (seed 7) on the first `n` training images; per weight, signal =
mean g over lesion images - mean g over lesion-free ones, noise = the standard error of
that difference in a batch of 16 (8 per class: pooled per-class SD * sqrt(4 / 16)). The median
|signal| / noise per layer is reported beside its value for no signal at all: with n/2
images per class the estimated difference alone has SE sqrt(16 / n) of the noise, and
the median of |N(0, s^2)| is 0.674 s.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from salbench import config, paths, seeding
from salbench.data import store
from salbench.models import architectures, training

BATCH = 16


def gradient_snr(x, y, mean, sd, standardize: bool) -> dict:
    import tensorflow as tf

    seeding.set_global_determinism(7)
    m = architectures.build_vgg(x.shape[1:], standardize=standardize)
    if standardize:
        architectures.set_standardization(m, mean, sd)
    kernels = [w for w in m.trainable_weights if "kernel" in w.name]
    grads = {w.name.split("/")[0]: [] for w in kernels}
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            p = m(x[i : i + 1])
            d = tf.math.log(p[0, 1]) - tf.math.log(p[0, 0])
        for w, g in zip(kernels, tape.gradient(d, kernels)):
            grads[w.name.split("/")[0]].append(g.numpy().ravel())
    out = {}
    for name, g in grads.items():
        g = np.stack(g)
        a, b = g[y == 1], g[y == 0]
        noise = np.sqrt((a.var(0) + b.var(0)) / 2) * np.sqrt(4 / BATCH)
        out[name] = float(np.median(np.abs(a.mean(0) - b.mean(0)) / np.maximum(noise, 1e-30)))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="training images for the gradient statistics")
    args = ap.parse_args(argv)
    profile = config.load_profile("quick")
    folder = store.ensure_dataset(profile, progress=False)
    rows = []
    with store.SplitReader(folder, "train") as tr:
        y_all = tr.y(slice(0, training.STANDARDIZE_IMAGES))
        gt = tr.gt(slice(0, training.STANDARDIZE_IMAGES)).astype(bool)
        for bg in config.BACKGROUNDS:
            x_all = tr.x(bg, slice(0, training.STANDARDIZE_IMAGES))[..., 0].astype(np.float64)
            mean, sd = training.input_statistics(tr, bg)
            lesion = y_all == 1
            base = {"background": bg, "input_mean": mean, "input_sd": sd,
                    "fraction_zero_pixels": float((x_all == 0).mean()),
                    "lesion_pixels_per_image": float(gt[lesion].sum(axis=(1, 2)).mean()),
                    "lesion_pixel_mean": float(x_all[gt].mean()),
                    "image_mean_difference_lesion_minus_none": float(x_all[lesion].mean() - x_all[~lesion].mean())}
            x = tr.x(bg, slice(0, args.n)).astype(np.float32)
            y = tr.y(slice(0, args.n))
            for std in (False, True):
                snr = gradient_snr(x, y, mean, sd, std)
                rows.append({**base, "input": "standardized" if std else "raw",
                             "snr_if_no_signal": 0.674 * np.sqrt(BATCH / args.n),
                             **{f"snr_{k}": round(v, 3) for k, v in snr.items()}})
                print(rows[-1], flush=True)
    out = paths.repo_root() / "tables" / "plateau_diagnosis.csv"
    pd.DataFrame(rows).to_csv(out, index=False, float_format="%.5g")
    print(out)


if __name__ == "__main__":
    main()
