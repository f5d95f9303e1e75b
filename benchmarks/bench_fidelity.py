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

Quantus 0.6.0 (optional: ``pip install -e '.[bench]'``; skipped with one line when ``quantus``
does not import, or with ``--no-quantus``; never part of the tests or ``make reproduce``).
Where the two define the same quantity, both run on the same Keras model (``small_cnn`` with its
softmax layer's weights x3), images (uniform noise) and maps (standard normal, no ties), with
Quantus's ``y_batch`` = the class the engine holds fixed; the benchmark reports wall time, inputs
through the model (Quantus's counted by wrapping its ``TensorFlowModel.predict``), the largest
absolute difference and each one's tracemalloc peak.

* Region perturbation. ``quantus.RegionPerturbation(patch_size=u, order="morf" | "lerf",
  regions_evaluation=L, abs=False, normalise=False, perturb_baseline=v)`` with its default
  ``batch_baseline_replacement_by_indices`` returns, per image, ``f(x) - f(x^(k))`` for k = 1..L,
  the first k patches (by summed attribution) replaced by the constant v, cumulatively: the
  engine's drop curve d_1..d_L of the "mean" style with ``mean_value=v``, ``unit=u``. Compared:
  those curves, and AOPC(L) = sum_k d_k / (L+1) computed from Quantus's curve against the engine's
  ``aopc_*_L<L>``. Differences: (i) Quantus pads a side that u does not divide (half the remainder
  each side), so its patches shift, where salbench keeps a partial last patch: compared only for u
  dividing 140 and 192 (``--quantus-unit``, 4 by default); (ii) Quantus orders with ``np.argsort``
  (quicksort, ties in arbitrary order), salbench with a stable sort over its tie priority: the
  same order only without ties, which the benchmark checks on every map; (iii) Quantus's baseline
  "mean" is the mean of the current, already perturbed image, recomputed at each step, not a fixed
  value, so the float v is passed; (iv) its "uniform" baseline draws one value per image and step
  from the global ``np.random`` (salbench: one per image, unit and channel from a seeded
  generator; same distribution on one channel, other draws) and its "random" order is a fresh
  permutation per image (salbench: orderings shared by all images): neither is compared; (v)
  Quantus has no AOPC: ``get_auc_score`` is ``np.trapz`` over d_1..d_L averaged over images (no
  d_0, no 1/(L+1)).
* Faithfulness correlation. ``quantus.FaithfulnessCorrelation`` draws, per run and image,
  ``subset_size`` of the C*H*W features at random (``np.random.choice``), sets them to the baseline
  and takes Pearson's r between the attribution sum over the subset and the drop, over ``nr_runs``
  runs; the engine perturbs ``n_faithfulness`` fixed units one at a time, the same units for every
  image. They coincide only on one channel with ``subset_size=1``, ``unit=1``, ``nr_runs =
  n_faithfulness`` and the engine's F units set to the pixels Quantus drew: the benchmark records
  them with a perturb_func that calls Quantus's own, seeds ``np.random`` alike before each method
  (so every method gets the same pixels, as in the engine) and scores each image in its own engine
  call (``dataclasses.replace(design, faithfulness_units=...)``). For Quantus's default
  ``subset_size=224`` (scattered pixels) or for units of more than one pixel there is no common
  definition and nothing is compared. The engine computes the drops once per image for every
  method; Quantus re-perturbs and re-predicts for each method.
* Why v = 0.0 and the x3: the random-weight CNN barely moves when noise pixels are replaced by
  their mean 0.5 (drops ~1e-4); with v = 0 and the scaled softmax layer (same cost) the curves reach
  ~1e-2, so an agreement to 1e-5 says something.

Measured (AMD EPYC family 26 model 2, 2 cores shared with another long job, so timings move by
+-30 %), 4 images, 2 methods: the region-perturbation curves (MoRF and LeRF, u = 4, L = 100, drops
up to 9.5e-3) and their AOPC, and F (100 single pixels), are identical: max |diff| = 0, not merely
< 1e-5 (the same float32 inputs give bit-identical probabilities here whatever the batch). Region
perturbation: engine 0.53 s for 1,604 inputs, Quantus 18.1 s for 1,616 inputs in 404 Keras
``predict`` calls of 4 images: 34x. F: 0.28 s (420 inputs) vs 10.1 s (808 inputs): 37x. The ratio
falls as Quantus's calls fill (one Keras ``predict`` per step over all its images, at most its
``batch_size=64``): with 32 images 5.4x (L = 20) and 4.8x (F, 20 runs); with 64 images 4.5-4.7x
(L = 10, two runs), below the 5x target, and 7.4x for F with 100 runs (3.2x with 10 runs, where
each per-image engine call holds only 15 inputs). Handed Keras
``model.predict`` instead of a ``tf.function``, the engine is 1.5-3x slower, so part of the gap is
the call mechanism. tracemalloc peak: engine 24-27 MiB whatever the images (one 13 MiB batch
buffer); Quantus 11-19 MiB with 4 images, 150-156 MiB with 64. Process peak RSS: 842 MiB before
the Quantus part, 1,480 MiB after it.

    python benchmarks/bench_fidelity.py                  # about 2 minutes on 2 shared CPU cores
    python benchmarks/bench_fidelity.py --images 2 --repeats 1 --no-quantus   # a quick look
    python benchmarks/bench_fidelity.py --quantus-only --quantus-images 64 --quantus-l 10   # Quantus's full batch
"""

from __future__ import annotations

import argparse
import dataclasses
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
from salbench.provenance import cpu_model  # noqa: E402
from salbench.metrics.fidelity import DIRECTIONS, unit_order  # noqa: E402

H, W, C, N_CLASSES = 140, 192, 1, 3


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


# --------------------------------------------------------------------------- Quantus 0.6.0

LOGIT_SCALE = 3.0
FILL_VALUE = 0.0
QUANTUS_INSTALL = "pip install -e '.[bench]'  (Quantus 0.6.0 and the two packages it needs beyond salbench's)"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _traced_peak(fn) -> float:
    """tracemalloc peak (MiB) of one untimed call of ``fn``."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def quantus_comparison(args) -> None:
    """Region perturbation (MoRF / LeRF curves, AOPC) and faithfulness F against Quantus 0.6.0."""
    try:
        import quantus
        from quantus.functions.perturb_func import batch_baseline_replacement_by_indices
        from quantus.helpers.model.tf_model import TensorFlowModel
    except ImportError:
        print(f"Quantus comparison skipped: quantus is not installed; install the bench extra: {QUANTUS_INSTALL}")
        return

    n, L, unit, mean_value, bs = args.quantus_images, args.quantus_l, args.quantus_unit, FILL_VALUE, args.batch_size
    if H % unit or W % unit:
        raise SystemExit(f"--quantus-unit {unit} must divide {H} and {W}: Quantus pads a side that it does not "
                         "divide (half on each side), salbench keeps a partial last patch, so the grids differ")
    # small_cnn with its softmax layer's weights scaled by LOGIT_SCALE (same cost), and the constant fill value
    # FILL_VALUE, far from the noise images' mean 0.5: the random-weight net's probabilities then move by up to
    # ~1e-2 along a curve instead of ~1e-4 (fill 0.5, scale 1), so agreement to 1e-5 means something.
    model = small_cnn()
    dense = model.layers[-1]
    dense.set_weights([w * LOGIT_SCALE for w in dense.get_weights()])
    fn = tf.function(lambda xb: model(xb, training=False), input_signature=[tf.TensorSpec([None, H, W, C], tf.float32)])

    def predict(xb: np.ndarray) -> np.ndarray:
        return fn(xb).numpy()

    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(n, H, W, C)).astype(np.float32)
    maps = {f"m{j}": rng.normal(size=(n, H, W)) for j in range(args.methods)}
    label = predict(x).argmax(axis=1)  # y_batch for Quantus: the class the engine holds fixed

    # Count what goes through the model on Quantus's side (its TensorFlowModel.predict wraps Keras predict).
    counts = {"calls": 0, "inputs": 0}
    q_predict = TensorFlowModel.predict

    def counting_predict(self, xb, **kw):
        counts["calls"] += 1
        counts["inputs"] += len(xb)
        return q_predict(self, xb, **kw)

    TensorFlowModel.predict = counting_predict
    q_common = dict(abs=False, normalise=False, perturb_baseline=mean_value, disable_warnings=True,
                    display_progressbar=False, return_aggregate=False)
    q_call = dict(model=model, x_batch=x, y_batch=label, channel_first=False, softmax=True, batch_size=64)

    # ---- Region perturbation: curves d_1..d_L, MoRF and LeRF, "mean" style.
    design = make_design(H, W, unit=unit, rng=np.random.default_rng(1), l_max=L, n_random=0, n_faithfulness=0)
    eng_kw = dict(styles=("mean",), mean_value=mean_value, ls=(L,), batch_size=bs, return_curves=True)

    def run_engine_rp(pred=predict):
        return score_fidelity(pred, x, maps, design, **eng_kw)

    def run_quantus_rp():
        out = {}
        for m, a in maps.items():
            for d in DIRECTIONS:
                metric = quantus.RegionPerturbation(patch_size=unit, order=d, regions_evaluation=L, **q_common)
                out[m, d] = np.asarray(metric(a_batch=a, **q_call), dtype=np.float64)  # (n, L)
        return out

    # Orderings: Quantus sorts the patch sums with np.argsort (not stable), salbench with a stable sort over a
    # tie priority; they coincide where no two of the first L+1 sums tie. Check it on Quantus's own patches.
    grid = design.grid
    # Quantus's patches as flat pixel indices, (units, unit^2), in its own (row-major) order.
    blocks = np.stack(list(quantus.helpers.utils.get_block_indices(np.zeros((1, C, H, W)), unit)), 1)[0]
    same_order, min_gap = True, np.inf
    for a in maps.values():
        for i in range(n):
            q_sums = a[i].reshape(-1)[blocks].sum(-1)
            rel = grid.relevance(a[i])
            srt = np.sort(rel)
            min_gap = min(min_gap, float(np.min(np.diff(srt)) / np.ptp(srt)))
            for d, q_order in (("morf", np.argsort(-q_sums)), ("lerf", np.argsort(q_sums))):
                same_order &= bool(np.array_equal(q_order[:L], unit_order(rel, d, design.tie_order)[:L]))

    # Warm-up: Keras builds its predict function on the first call; the engine's tf.function is traced above.
    score_fidelity(predict, x[:1], {m: a[:1] for m, a in maps.items()}, design, **eng_kw)
    quantus.RegionPerturbation(patch_size=unit, regions_evaluation=1, **q_common)(a_batch=maps["m0"], **q_call)
    counts.update(calls=0, inputs=0)
    t_eng, t_q = [], []
    for _ in range(args.quantus_repeats):
        res, t = _timed(run_engine_rp)
        t_eng.append(t)
        q_curves, t = _timed(run_quantus_rp)
        t_q.append(t)
    q_calls, q_inputs = counts["calls"] // args.quantus_repeats, counts["inputs"] // args.quantus_repeats
    keras_bs = lambda xb: model.predict(xb, verbose=0, batch_size=bs)  # noqa: E731
    res_k, t_eng_keras = _timed(lambda: run_engine_rp(keras_bs))

    ours = res.curves["methods"][:, 0]  # (n, methods, styles, 2, L + 1) of the one output, d_0 = 0
    diff_curve = diff_aopc = 0.0
    for mi, m in enumerate(res.methods):
        for di, d in enumerate(DIRECTIONS):
            q = q_curves[m, d]
            diff_curve = max(diff_curve, float(np.abs(ours[:, mi, 0, di, 1:] - q).max()))
            q_aopc = q.sum(axis=1) / (L + 1)  # Samek / Tomsett AOPC(L) from Quantus's curve, d_0 = 0
            sc = res.scores.set_index("method").loc[m]
            diff_aopc = max(diff_aopc, float(np.abs(sc[f"aopc_{d}_L{L}"].to_numpy() - q_aopc).max()))
    diff_keras = float(np.abs(res_k.curves["methods"][:, 0] - ours).max())
    te, tq = float(np.median(t_eng)), float(np.median(t_q))
    mem_eng = _traced_peak(run_engine_rp)
    mem_q = _traced_peak(run_quantus_rp)

    print(f"\nQuantus {quantus.__version__} comparison (same Keras model, images, maps; y_batch = the engine's "
          f"predicted class; Quantus abs=False, normalise=False, perturb_baseline={mean_value}, softmax=True, "
          f"channel_first=False, batch_size=64)")
    print(f"[RegionPerturbation] {n} images, {len(maps)} methods x (morf, lerf), patch_size = unit = {unit} "
          f"({grid.n_units} patches, no padding), regions_evaluation = L = {L}, baseline = 'mean' style {mean_value}")
    print(f"  orderings of the first L patches identical in every map and direction: {same_order} "
          f"(smallest gap between two sorted patch sums / their range: {min_gap:.1e}; no ties)")
    print(f"  compared: Quantus's per-step f(x) - f(x^(k)), k = 1..L, with the engine's drop curve d_k "
          f"(return_curves); max |diff| = {diff_curve:.2e} "
          f"(the drops themselves reach {np.abs(ours).max():.2e}, median |d_k| {np.median(np.abs(ours[..., 1:])):.1e})")
    print(f"  AOPC(L) = sum_k d_k / (L+1) from Quantus's curve vs the engine's aopc_*_L{L}: "
          f"max |diff| = {diff_aopc:.2e}")
    print(f"  engine : {te:6.2f} s, {res.n_forward} inputs through the model in batches "
          f"of <= {bs} -> {res.n_forward / te:6.0f} inputs/s  (runs: {', '.join(f'{t:.2f}' for t in t_eng)})")
    print(f"  Quantus: {tq:6.2f} s, {q_inputs} inputs in {q_calls} Keras predict calls of <= {n} "
          f"-> {q_inputs / tq:6.0f} inputs/s  (runs: {', '.join(f'{t:.2f}' for t in t_q)})")
    print(f"  speed-up (wall time Quantus / engine) = {tq / te:.1f}x  (target >= 5x)")
    print(f"  engine given Keras model.predict(batch_size={bs}) instead of the tf.function: {t_eng_keras:.2f} s "
          f"({tq / t_eng_keras:.1f}x faster than Quantus; curves differ from the tf.function's by {diff_keras:.1e})")
    print(f"  tracemalloc peak: engine {mem_eng:.1f} MiB, Quantus {mem_q:.1f} MiB")

    # ---- Faithfulness correlation. Quantus draws subset_size features per run (per image, np.random); the
    # engine perturbs n_faithfulness single units. They coincide for unit = 1 pixel, subset_size = 1 and
    # nr_runs = n_faithfulness when the engine's F units are the pixels Quantus drew: record those draws.
    nr = args.n_faithfulness
    drawn: list[np.ndarray] = []

    def recording_perturb(arr, indices, **kw):
        drawn.append(indices[:, 0].copy())
        return batch_baseline_replacement_by_indices(arr=arr, indices=indices, **kw)

    def run_quantus_fc():
        drawn.clear()
        out = {}
        for m, a in maps.items():
            np.random.seed(args.quantus_seed)  # the same pixels for every method, as in the engine
            metric = quantus.FaithfulnessCorrelation(nr_runs=nr, subset_size=1, perturb_func=recording_perturb,
                                                     **q_common)
            out[m] = np.asarray(metric(a_batch=a, **q_call), dtype=np.float64)
        return out

    design1 = make_design(H, W, unit=1, rng=np.random.default_rng(1), l_max=1, n_random=0, n_faithfulness=nr)
    fc_kw = dict(styles=("mean",), mean_value=mean_value, ls=(1,), batch_size=bs, return_curves=True)

    def run_engine_fc(units):  # one call per image: Quantus drew other pixels for each image
        rows, n_fwd = [], 0
        for i in range(n):
            r = score_fidelity(predict, x[i:i + 1], {m: a[i:i + 1] for m, a in maps.items()},
                               dataclasses.replace(design1, faithfulness_units=units[i]), image_ids=[i], **fc_kw)
            rows.append(r)
            n_fwd += r.n_forward
        return rows, n_fwd

    counts.update(calls=0, inputs=0)
    t_eng, t_q = [], []
    for _ in range(args.quantus_repeats):
        q_f, t = _timed(run_quantus_fc)
        t_q.append(t)
        units = np.stack(drawn[:nr], axis=1)  # (n, nr): pixel index y * W + x = the engine's unit at unit = 1
        assert all(np.array_equal(units, np.stack(drawn[k * nr:(k + 1) * nr], 1)) for k in range(len(maps)))
        (rows, n_fwd_fc), t = _timed(lambda: run_engine_fc(units))
        t_eng.append(t)
    q_calls, q_inputs = counts["calls"] // args.quantus_repeats, counts["inputs"] // args.quantus_repeats
    ours_f = np.array([[float(r.scores.set_index("method").loc[m, "faithfulness"]) for r in rows] for m in maps])
    theirs_f = np.array([q_f[m] for m in maps])
    nan_match = bool(np.array_equal(np.isnan(ours_f), np.isnan(theirs_f)))
    diff_f = float(np.nanmax(np.abs(ours_f - theirs_f))) if nan_match and np.isfinite(ours_f).any() else float("nan")
    status = sorted({s for r in rows for s in r.scores["faithfulness_status"]})
    f_values = theirs_f[np.isfinite(theirs_f)]
    drops = np.concatenate([r.curves["faithfulness"].ravel() for r in rows])
    n_distinct = min(len(np.unique(u)) for u in units)
    te, tq = float(np.median(t_eng)), float(np.median(t_q))
    mem_eng = _traced_peak(lambda: run_engine_fc(units))
    mem_q = _traced_peak(run_quantus_fc)
    TensorFlowModel.predict = q_predict
    print(f"[FaithfulnessCorrelation] {n} images, {len(maps)} methods, subset_size = 1 pixel = unit 1, "
          f"nr_runs = n_faithfulness = {nr}, perturb_baseline = {mean_value}, np.random.seed({args.quantus_seed}) "
          f"before each method; the engine perturbs the pixels Quantus drew "
          f"(at least {n_distinct} of {nr} distinct per image)")
    print(f"  compared: Pearson r (F) per image and method; max |diff| = {diff_f:.2e} (F from {f_values.min():.2f} "
          f"to {f_values.max():.2f}, engine status {status}, NaN in the same places: {nan_match}; "
          f"single-pixel drops up to {np.abs(drops).max():.1e})")
    print(f"  engine : {te:6.2f} s, {n_fwd_fc} inputs (one call per image: its F units, plus 2 x {len(maps)} "
          f"ordering steps at L = 1) -> {n_fwd_fc / te:6.0f} inputs/s  (runs: {', '.join(f'{t:.2f}' for t in t_eng)})")
    print(f"  Quantus: {tq:6.2f} s, {q_inputs} inputs in {q_calls} Keras predict calls of <= {n} "
          f"(it re-perturbs per method) -> {q_inputs / tq:6.0f} inputs/s  (runs: {', '.join(f'{t:.2f}' for t in t_q)})")
    print(f"  speed-up (wall time Quantus / engine) = {tq / te:.1f}x  (target >= 5x)")
    print(f"  tracemalloc peak: engine {mem_eng:.1f} MiB, Quantus {mem_q:.1f} MiB")


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
    ap.add_argument("--no-quantus", action="store_true", help="skip the Quantus comparison even if quantus imports")
    ap.add_argument("--quantus-only", action="store_true", help="run only the Quantus comparison")
    ap.add_argument("--quantus-images", type=int, default=4)
    ap.add_argument("--quantus-l", type=int, default=100, help="regions_evaluation = L of the region perturbation")
    ap.add_argument("--quantus-unit", type=int, default=4, help="must divide 140 and 192 (1, 2 or 4)")
    ap.add_argument("--quantus-repeats", type=int, default=2)
    ap.add_argument("--quantus-seed", type=int, default=0)
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

    if args.quantus_only:
        print(f"CPU: {cpu_model()} ({psutil.cpu_count(logical=True)} logical cores visible)")
        quantus_comparison(args)
        return

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
    if not args.no_quantus:
        quantus_comparison(args)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
        print(f"process peak RSS after the Quantus part: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
