"""Throughput of salbench.saliency methods versus the bare library calls.

    python benchmarks/bench_saliency.py [--n 64] [--batch-size 64] [--methods a,b,...]

On the VGG-like classifier of Budding et al. (140x192x1, random He weights: speed does
not depend on training), every method computes maps for `n` images (fewer for the
expensive ones, see EXPENSIVE_N) in batches of `batch_size` through
``salbench.saliency.explain``; the "bare" column times the library call a user would
write without salbench:

* iNNvestigate methods: ``analyzer.analyze(x)`` on an already built analyzer of the
  softmax-free model (so the ratio is salbench's own overhead);
* PAIR methods: PAIR's per-image API (``GetMask`` / ``GetSmoothedMask``, IG steps in one
  call via PAIR's ``batch_size``) with a call_model_function running the same Keras
  gradient function (so the ratio is the gain from batching images);
* DeepSHAP: ``DeepExplainer.shap_values(x, ranked_outputs=1)`` on a built explainer;
* Sobel / random: the plain scipy / numpy loop.

Analyzers, explainers and gradient functions are built by a warm-up call that is not
timed. The script prints a Markdown table and XRAI's seconds per image.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import salbench.saliency as S  # noqa: E402
from salbench.saliency import methods_common as mc  # noqa: E402

S.use_graph_mode()  # iNNvestigate and the gradient functions need it before any model is built

try:
    from tensorflow import keras  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("tensorflow is required")

SHAPE = (140, 192, 1)
# Images per method when `--n` would take minutes on a CPU (gradient evaluations per image:
# smoothgrad 25, smooth_ig 250, xrai 200, deep_shap 2 x background size).
EXPENSIVE_N = {"smoothgrad": 16, "smooth_ig": 4, "xrai": 4, "deep_shap": 16}
BACKGROUND = 32


def vgg():
    try:
        from salbench.models.architectures import build_vgg

        return build_vgg(SHAPE)
    except ImportError:  # the models package may not exist yet: same architecture inline
        L = keras.layers
        inp = keras.Input(SHAPE)
        x = inp
        for filters in (32, 64, 128, 256):
            for _ in range(2):
                x = L.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)
            x = L.MaxPooling2D(2)(x)
        x = L.Dense(128, activation="relu", kernel_initializer="he_normal")(L.Flatten()(x))
        return keras.Model(inp, L.Dense(2, activation="softmax")(x), name="vgg")


def bare_factory(model, background):
    """name -> function(x) doing the bare library work for that method."""
    from saliency import core as pair

    cmf = mc.call_model_function_factory(model)

    def args_for(xi):
        return {"target": np.argmax(mc.logits(model, xi[None]), axis=1)}

    def inn(name, postprocess_abs=False):
        a = mc.analyzer(model, name, "max_activation")

        def run(x):
            out = a.analyze(x)
            return np.abs(out) if postprocess_abs else out
        return run

    def per_image(fn):
        return lambda x: np.stack([fn(xi) for xi in x])

    def grad_cam_one(xi):
        return pair.GradCam().GetMask(xi, cmf, args_for(xi), should_resize=True, three_dims=False)

    def sobel_loop(x):
        from scipy import ndimage
        return np.stack([np.hypot(ndimage.sobel(xi[..., 0], axis=0), ndimage.sobel(xi[..., 0], axis=1))
                         for xi in x.astype(np.float64)])

    gbp = inn("guided_backprop")
    shap_ex = {}

    def deep_shap(x):
        import shap
        if "e" not in shap_ex:
            shap_ex["e"] = shap.DeepExplainer(mc.entry(model).logit_model, background)
        return shap_ex["e"].shap_values(x, ranked_outputs=1, check_additivity=False)

    zeros = np.zeros(SHAPE, np.float32)
    return {
        "gradient": inn("gradient"),
        "sensitivity": inn("gradient", postprocess_abs=True),
        "gradient_x_input": inn("input_t_gradient"),
        "lrp_z": inn("lrp.z"),
        "lrp_alpha2_beta1": inn("lrp.alpha_2_beta_1"),
        "deep_taylor": inn("deep_taylor"),
        "guided_backprop": gbp,
        "deconvnet": inn("deconvnet"),
        "smoothgrad": per_image(lambda xi: pair.GradientSaliency().GetSmoothedMask(xi, cmf, args_for(xi))),
        "integrated_gradients": per_image(lambda xi: pair.IntegratedGradients().GetMask(
            xi, cmf, args_for(xi), x_baseline=zeros, x_steps=10, batch_size=10)),
        "smooth_ig": per_image(lambda xi: pair.IntegratedGradients().GetSmoothedMask(
            xi, cmf, args_for(xi), x_baseline=zeros, x_steps=10, batch_size=10)),
        "grad_cam": per_image(grad_cam_one),
        "guided_grad_cam": lambda x: gbp(x)[..., 0] * per_image(grad_cam_one)(x),
        "xrai": per_image(lambda xi: pair.XRAI().GetMask(xi, cmf, args_for(xi), batch_size=100)),
        "deep_shap": deep_shap,
        "sobel": sobel_loop,
        "random": lambda x: np.stack([np.random.default_rng(0).random(x.shape[1:3]) for _ in x]),
    }


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64, help="images per method (capped per method by EXPENSIVE_N)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--methods", default="", help="comma-separated subset (default: all classifier methods)")
    a = p.parse_args(argv)

    model = vgg()
    rng = np.random.default_rng(0)
    x_all = rng.random((a.n,) + SHAPE, dtype=np.float32)
    background = rng.random((BACKGROUND,) + SHAPE, dtype=np.float32)
    bare = bare_factory(model, background)
    skip = {"unet": "needs a segmentation model", "patternnet": "needs fitted patterns",
            "patternattribution": "needs fitted patterns"}
    names = [m for m in (a.methods.split(",") if a.methods else S.list_methods()) if m not in skip]

    import tensorflow as tf
    print(f"# salbench.saliency benchmark: VGG-like {SHAPE}, random weights, batch {a.batch_size}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}")
    print()
    print("| method | images | salbench maps/s | bare maps/s | ratio | bare call |")
    print("|---|---:|---:|---:|---:|---|")
    xrai_spi = None
    for name in names:
        n = min(a.n, EXPENSIVE_N.get(name, a.n))
        x = x_all[:n]
        params = {"background": background} if name == "deep_shap" else {}
        S.explain(model, x[:1], name, **params)  # warm-up: builds analyzers / functions
        bare[name](x[:1])
        t_ours = timed(S.compute_maps, model, x, name, batch_size=a.batch_size, progress=False, **params)
        t_bare = timed(bare[name], x)
        kind = ("iNNvestigate analyze" if name in ("gradient", "sensitivity", "gradient_x_input", "lrp_z",
                                                   "lrp_alpha2_beta1", "deep_taylor", "guided_backprop",
                                                   "deconvnet")
                else "shap DeepExplainer" if name == "deep_shap"
                else "scipy/numpy loop" if name in ("sobel", "random")
                else "PAIR per image")
        print(f"| {name} | {n} | {n / t_ours:.2f} | {n / t_bare:.2f} | {t_bare / t_ours:.2f} | {kind} |",
              flush=True)
        if name == "xrai":
            xrai_spi = (t_ours / n, t_bare / n)
    for name, why in skip.items():
        print(f"| {name} | - | - | - | - | not run: {why} |")
    print()
    print("ratio = bare time / salbench time (> 1: salbench is faster).")
    if xrai_spi is not None:
        print(f"XRAI cost: {xrai_spi[0]:.2f} s per image through salbench, {xrai_spi[1]:.2f} s per image with "
              "PAIR's per-image XRAI (200 gradient evaluations + Felzenszwalb segmentation + greedy "
              "region search per image).")


if __name__ == "__main__":
    from salbench import workers

    workers.main_is_guarded()  # XRAI's region search may use worker processes
    main()
