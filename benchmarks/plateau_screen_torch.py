"""GPU screen for the plateau study (issue 12): many training variants of the VGG-like
classifier, several seeds each, in minutes on a GPU, to choose what the CPU study
(`benchmarks/plateau_study.py`, the repository's Keras trainer) then confirms.

    python benchmarks/plateau_screen_torch.py --export-bank build/mri_bank.npz   # here: the MRI slices
    python benchmarks/plateau_screen_torch.py --bank build/mri_bank.npz --out DIR # on a GPU machine

This is a PyTorch copy of `architectures.build_vgg` (four blocks of two 3x3 ReLU
convolutions and 2x2 max pooling, 32-256 filters, Dense 128, Dense 2; Keras' he_normal,
a truncated normal, and zero biases), trained with Adam (Keras' epsilon 1e-7) on the
quick profile's data made by `salbench.data.generator` (12,000 training images, the
first 256 validation images, 1,000 holdout images). It is a screen, not the pipeline:
its numbers are labelled `framework=torch` and are evidence about the optimisation
problem, not about the committed models; the settings it picks are adopted only after
the Keras trainer reproduces them (`plateau_study.py`, and the quick run's own
`steps_to_95` in `tables/accuracy.csv`).

Variant keys (see VARIANTS): lr, warmup (linear, steps), batch, standardize (the
training-set pixel mean and SD), precision (bf16 autocast or fp32), optimizer (adam or
sgd with momentum 0.9), curriculum_steps with lesion_start (the lesion intensity at
step 0, annealed linearly to the data's 0.3 by curriculum_steps) and contrast_start
(the background's in-brain contrast at step 0, annealed to 1).

Differences from the Keras trainer, none of which the screen's comparisons depend on:
the standardisation uses torch's sample SD (Keras: the population SD; relative
difference 1e-8 over 2,048 images), bf16 autocast is on unless `precision: fp32`
(the quick profile: bf16 where the CPU has it), and PyTorch's random streams.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "baseline": {},
    "fp32": {"precision": "fp32"},
    "standardize": {"standardize": True},
    "std_lr3e-4_wu100": {"standardize": True, "lr": 3e-4, "warmup": 100},
    "lesion_curriculum300": {"curriculum_steps": 300, "lesion_start": 0.0},
    "lesion_curriculum300_std_lr3e-4_wu100": {"curriculum_steps": 300, "lesion_start": 0.0, "standardize": True,
                                              "lr": 3e-4, "warmup": 100},
    "contrast_curriculum300": {"curriculum_steps": 300, "lesion_start": 0.0, "contrast_start": 0.25},
    "contrast_curriculum300_std": {"curriculum_steps": 300, "lesion_start": 0.0, "contrast_start": 0.25,
                                   "standardize": True},
    "batch64_lr2e-4": {"batch": 64, "lr": 2e-4},
    "std_sgd1e-2_wu100": {"standardize": True, "optimizer": "sgd", "lr": 1e-2, "warmup": 100},
    "std_lr1e-4_batch32": {"standardize": True, "batch": 32},
    "contrast_curriculum300_std_lr3e-4_wu100": {"curriculum_steps": 300, "lesion_start": 0.0, "contrast_start": 0.25,
                                                "standardize": True, "lr": 3e-4, "warmup": 100},
    "contrast_curriculum600_std": {"curriculum_steps": 600, "lesion_start": 0.0, "contrast_start": 0.1,
                                   "standardize": True},
}
DEFAULTS = {"lr": 1e-4, "warmup": 0, "batch": 16, "standardize": False, "precision": "bf16", "optimizer": "adam",
            "curriculum_steps": 0, "lesion_start": 0.3, "contrast_start": 1.0}
LESION_INTENSITY = 0.3
EVAL_EVERY = 50
N_VAL = 256


def export_bank(path: Path) -> None:
    from salbench import config
    from salbench.data import mri

    cfg = config.load_profile("quick").data
    bank = mri.slice_bank(cfg)
    np.savez_compressed(path, images=bank.images, masks=bank.masks)
    print(f"{path}: {bank.images.shape[0]} slices, {path.stat().st_size / 1e6:.1f} MB")


def _generate(args):
    split, start, stop, bank_path = args
    from salbench import config
    from salbench.data import generator, mri

    cfg = config.load_profile("quick").data
    with np.load(bank_path) as z:
        bank = mri.SliceBank.__new__(mri.SliceBank)
        bank.images, bank.masks, bank.cfg = z["images"], z["masks"], cfg
        bank.masks_f32 = bank.masks.astype(np.float32)
    mri.slice_bank = lambda _cfg: bank
    s = generator.generate(cfg, config.load_profile("quick").seed, split, np.arange(start, stop))
    window = generator.lesion_windows(s.y, s.corners, cfg)
    lesion_map = generator.lesion_map_of(window, cfg.lesion_intensity)
    clean = {bg: s.x[bg] / lesion_map for bg in s.x}
    return clean, window, s.mask, s.y


def make_data(bank_path: Path, folder: Path, n_train: int, workers: int) -> None:
    """Lesion-free images, lesion windows, brain masks and labels per split, as .npy."""
    from multiprocessing import get_context

    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("val", N_VAL), ("holdout", 1000)):
        if (folder / f"{split}_y.npy").exists():
            continue
        chunks = [(split, a, min(a + 250, n), str(bank_path)) for a in range(0, n, 250)]
        with get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_generate, chunks)
        for bg in ("perlin", "mri"):
            np.save(folder / f"{split}_{bg}.npy", np.concatenate([p[0][bg] for p in parts]))
        np.save(folder / f"{split}_window.npy", np.concatenate([p[1] for p in parts]))
        np.save(folder / f"{split}_mask.npy", np.concatenate([p[2] for p in parts]))
        np.save(folder / f"{split}_y.npy", np.concatenate([p[3] for p in parts]))


def build_vgg(torch, nn):
    layers, c_in = [], 1
    for filters in (32, 64, 128, 256):
        for _ in range(2):
            layers += [nn.Conv2d(c_in, filters, 3, padding=1), nn.ReLU()]
            c_in = filters
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(256 * 8 * 12, 128), nn.ReLU(), nn.Linear(128, 2)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # Keras' he_normal (truncated at 2 SD)
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            nn.init.zeros_(m.bias)
    return model


def compose(torch, clean, window, mask, lesion_intensity: float, contrast: float):
    """Images with lesions of `lesion_intensity` on a background whose in-brain contrast
    around each image's in-brain mean is scaled by `contrast` (1, 0.3: the data as generated)."""
    if contrast != 1.0:
        m = mask.float()
        mean = (clean * m).sum((1, 2, 3), keepdim=True) / m.sum((1, 2, 3), keepdim=True).clamp_min(1)
        clean = (mean + contrast * (clean - mean)) * m
    return clean * (1.0 - (1.0 - lesion_intensity) * window.float())


def run_one(job: dict, data: dict, device: str) -> dict:
    import torch
    from torch import nn

    v = {**DEFAULTS, **VARIANTS[job["variant"]]}
    bg, seed, cap = job["background"], job["seed"], job["cap"]
    torch.manual_seed(seed)
    model = build_vgg(torch, nn).to(device)
    x_tr, w_tr, m_tr, y_tr = (data[f"train_{bg}"], data["train_window"], data["train_mask"], data["train_y"])
    n = len(y_tr)
    if v["standardize"]:
        sample = compose(torch, x_tr[:2048], w_tr[:2048], m_tr[:2048], LESION_INTENSITY, 1.0)
        mean, sd = sample.mean().item(), sample.std().item()
    else:
        mean, sd = 0.0, 1.0
    if v["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=v["lr"], momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=v["lr"], eps=1e-7)
    autocast = torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                              enabled=v["precision"] == "bf16")

    def forward(x):
        with autocast:
            return model((x - mean) / sd).float()

    def accuracy(split):
        model.eval()
        with torch.no_grad():
            x = compose(torch, data[f"{split}_{bg}"], data[f"{split}_window"], data[f"{split}_mask"],
                        LESION_INTENSITY, 1.0)
            pred = torch.cat([forward(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
        model.train()
        return (pred == data[f"{split}_y"]).float().mean().item()

    rng = np.random.default_rng(seed)
    order, pos = rng.permutation(n), 0
    steps_to = {0.95: None, 0.99: None}
    curve, start = [], time.time()
    for step in range(1, cap + 1):
        if pos + v["batch"] > n:
            order, pos = rng.permutation(n), 0
        idx = torch.as_tensor(order[pos : pos + v["batch"]], device=device)
        pos += v["batch"]
        frac = min(step / v["curriculum_steps"], 1.0) if v["curriculum_steps"] else 1.0
        lesion = v["lesion_start"] + frac * (LESION_INTENSITY - v["lesion_start"])
        contrast = v["contrast_start"] + frac * (1.0 - v["contrast_start"])
        x = compose(torch, x_tr[idx], w_tr[idx], m_tr[idx], lesion, contrast)
        lr = v["lr"] * min(step / v["warmup"], 1.0) if v["warmup"] else v["lr"]
        for g in opt.param_groups:
            g["lr"] = lr
        loss = nn.functional.cross_entropy(forward(x), y_tr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0:
            acc = accuracy("val")
            curve.append((step, round(acc, 4), round(loss.item(), 4)))
            for target in steps_to:
                if steps_to[target] is None and acc >= target:
                    steps_to[target] = step
            if steps_to[0.99] is not None:
                break
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    return {**job, **{k: v[k] for k in DEFAULTS}, "framework": f"torch {torch.__version__}", "device": device_name,
            "steps_to_95": steps_to[0.95], "steps_to_99": steps_to[0.99],
            "steps_run": step, "holdout_accuracy": round(accuracy("holdout"), 4),
            "seconds": round(time.time() - start, 1), "curve": curve}


def load_data(folder: str, device: str) -> dict:
    import torch

    data = {}
    for f in Path(folder).glob("*.npy"):
        a = np.load(f)
        t = torch.as_tensor(a.astype(np.int64) if f.stem.endswith("_y") else a, device=device)
        data[f.stem] = t if f.stem.endswith("_y") else t[:, None]
    return data


def worker(rank: int, jobs: list, folder: str, out: str, device: str, deadline: float) -> None:
    import torch

    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    data = load_data(folder, device)
    with open(Path(out) / f"screen_{rank}.jsonl", "a") as fh:
        for job in jobs:
            if time.time() > deadline:
                print(f"worker {rank}: deadline reached, {len(jobs) - jobs.index(job)} of {len(jobs)} jobs not run",
                      flush=True)
                break
            row = run_one(job, data, device)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(json.dumps({k: row[k] for k in ("variant", "background", "seed", "steps_to_95", "steps_to_99",
                                                   "holdout_accuracy", "seconds")}), flush=True)


CSV_COLUMNS = ["variant", "background", "seed", "steps_to_95", "steps_to_99", "steps_run", "cap",
               "holdout_accuracy", "seconds", *DEFAULTS, "framework", "device"]


def collect(jsonl: list[Path], out: Path, unrecorded: dict | None = None):
    """The screen's rows (one per run, from the workers' .jsonl files) as one CSV; rows
    from before `framework` and `device` were recorded get `unrecorded`'s values."""
    import pandas as pd

    rows = [json.loads(line) for f in jsonl for line in Path(f).read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    for key, value in (unrecorded or {}).items():
        df[key] = df[key].fillna(value) if key in df else value
    df = df[CSV_COLUMNS].sort_values(["variant", "background", "seed"], kind="stable")
    df[["steps_to_95", "steps_to_99"]] = df[["steps_to_95", "steps_to_99"]].astype("Int64")  # empty: never reached
    df.to_csv(out, index=False)
    return df


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export-bank", type=Path)
    ap.add_argument("--collect", nargs="+", type=Path, help="merge these .jsonl files into --csv and exit")
    ap.add_argument("--csv", type=Path, default=Path("tables/plateau_screen.csv"))
    ap.add_argument("--device-of-old-rows", help="with --collect: the device of rows from before it was recorded")
    ap.add_argument("--bank", type=Path)
    ap.add_argument("--data", type=Path, default=Path("/tmp/plateau_screen_data"))
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--backgrounds", nargs="+", default=["perlin", "mri"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--cap", type=int, default=3000)
    ap.add_argument("--n-train", type=int, default=12000)
    ap.add_argument("--workers", type=int, default=6, help="training processes sharing the device")
    ap.add_argument("--data-workers", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--smoke", action="store_true", help="first train one variant for 100 steps in this process")
    ap.add_argument("--budget", type=float, default=480, help="seconds after which no new job starts")
    args = ap.parse_args(argv)
    if args.export_bank:
        export_bank(args.export_bank)
        return
    if args.collect:
        unrecorded = {"framework": "torch (version not recorded)"}
        if args.device_of_old_rows:
            unrecorded["device"] = args.device_of_old_rows
        collect(args.collect, args.csv, unrecorded)
        return
    if args.bank is None:
        sys.exit("--bank FILE (made by --export-bank) is required to make the data")
    start = time.time()
    make_data(args.bank, args.data, args.n_train, args.data_workers)
    print(f"data: {time.time() - start:.1f} s", flush=True)
    deadline = start + args.budget
    if args.smoke:
        row = run_one({"variant": args.variants[-1], "background": "mri", "seed": 99, "cap": 100},
                      load_data(str(args.data), args.device), args.device)
        print("smoke:", json.dumps(row), f"{time.time() - start:.1f} s", flush=True)
    jobs = [{"variant": v, "background": b, "seed": s, "cap": args.cap}
            for s in args.seeds for v in args.variants for b in args.backgrounds]
    args.out.mkdir(parents=True, exist_ok=True)
    import torch.multiprocessing as mp

    procs = [mp.get_context("spawn").Process(target=worker, args=(r, jobs[r :: args.workers], str(args.data),
                                                                  str(args.out), args.device, deadline))
             for r in range(args.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(f"total: {time.time() - start:.1f} s", flush=True)
    collect(sorted(args.out.glob("screen_*.jsonl")), args.out / "plateau_screen.csv")


if __name__ == "__main__":
    main()
