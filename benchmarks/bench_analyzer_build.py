"""Building iNNvestigate analyzers: Keras's default against salbench's live-tensor build.

    python benchmarks/bench_analyzer_build.py [--architecture densenet_small] [--methods a,b,...]

For each iNNvestigate analyzer (iNNvestigate names) on a network of the quick profile
(random weights: building does not depend on training), the seconds to build it the way
Keras does by default (every constant input of the reversed graph evaluated in its own
session call) and with ``methods_common.keras_history_of_live_tensors`` (what salbench
does), each in a fresh graph, the ratio of the two, and whether the two analyzers give the
same maps for two random images (they must: bit-identical). Prints a Markdown table and the
CPU model. Issue 12: the DenseNet's analyzers cost 12.5 of 06_trust's 22 minutes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from salbench.provenance import cpu_model


def build_seconds(architecture: str, name: str, live: bool, x: np.ndarray) -> tuple[float, np.ndarray]:
    import innvestigate
    import tensorflow as tf

    from salbench.models import architectures
    from salbench.saliency import methods_common as mc

    tf.compat.v1.reset_default_graph()
    tf.keras.backend.clear_session()
    mc.clear_cache()
    tf.keras.utils.set_random_seed(0)
    model = architectures.build(architecture)
    logit_model = mc.entry(model).logit_model
    analyzer = innvestigate.analyzer.analyzers[name](logit_model, neuron_selection_mode="max_activation")
    t = time.perf_counter()
    if live:
        with mc.keras_history_of_live_tensors():
            analyzer.create_analyzer_model()
    else:
        analyzer.create_analyzer_model()
    seconds = time.perf_counter() - t
    return seconds, np.asarray(analyzer.analyze(x), np.float32)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--architecture", default="densenet_small", help="default: densenet_small (06_trust)")
    p.add_argument("--methods", default="gradient,guided_backprop",
                   help="iNNvestigate analyzer names, comma-separated")
    args = p.parse_args(argv)
    from salbench import saliency

    saliency.use_graph_mode()
    x = np.random.default_rng(0).random((2, 140, 192, 1)).astype(np.float32)
    print(f"CPU: {cpu_model()}; architecture {args.architecture}")
    print("| analyzer | Keras default (s) | live tensors (s) | ratio | same maps |")
    print("|---|---|---|---|---|")
    for name in args.methods.split(","):
        slow, a = build_seconds(args.architecture, name, False, x)
        fast, b = build_seconds(args.architecture, name, True, x)
        print(f"| {name} | {slow:.1f} | {fast:.1f} | {slow / fast:.1f}x | {np.array_equal(a, b)} |", flush=True)


if __name__ == "__main__":
    main()
