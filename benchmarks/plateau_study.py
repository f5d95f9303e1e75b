"""Plateau study (issue 12, section 1): optimizer steps until the quick profile's
VGG-like classifier first reaches 95 % validation accuracy, per training variant.

    python benchmarks/plateau_study.py --variants standardize --backgrounds perlin mri --seeds 0 1 2 [--cap 1200]

Each run trains the quick profile's classifier on the quick profile's data with the
variant's settings (overrides of `classifier`), evaluating the first
`training.VAL_SUBSET_IMAGES` validation images every `training.VAL_EVERY_STEPS` steps,
and stops at the first evaluation >= 95 % or at `--cap` steps (then censored,
reported as ">cap"). Seed index i uses the seed of the profile's classifier run i, so
`baseline` seed 0 is the quick profile's own run, cut at the cap. Rows are appended to
`tables/plateau_study.csv` (a (variant, background, seed, cap) row already there is
skipped), with the holdout accuracy of the weights at the stop and the CPU model.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from salbench import config, paths, seeding
from salbench.provenance import cpu_model
from salbench.data import store
from salbench.models import training

# Overrides of the quick profile's `classifier` section (Adam 1e-4, batch 16, mixed bf16).
VARIANTS = {
    "baseline": {},
    "float32": {"precision": "float32"},
    "standardize": {"standardize": True},
    "standardize_lr3e-4_warmup100": {"standardize": True, "learning_rate": 3e-4, "warmup_steps": 100},
    "standardize_lr5e-4_warmup100": {"standardize": True, "learning_rate": 5e-4, "warmup_steps": 100},
    "standardize_lr1e-3_warmup100": {"standardize": True, "learning_rate": 1e-3, "warmup_steps": 100},
    "lr1e-3_warmup100": {"learning_rate": 1e-3, "warmup_steps": 100},
    # The GPU screen's choice (benchmarks/plateau_screen_torch.py): a 300-step curriculum from
    # black lesions on a background at a quarter of its contrast, with the setting above.
    "curriculum300_standardize_lr3e-4_warmup100": {
        "standardize": True, "learning_rate": 3e-4, "warmup_steps": 100, "curriculum_steps": 300,
        "curriculum_lesion_intensity": 0.0, "curriculum_contrast": 0.25},
}
COLUMNS = ["variant", "background", "seed_index", "seed", "steps_to_95", "cap", "optimizer_steps",
           "final_val_subset_accuracy", "holdout_accuracy_at_stop", "seconds", "standardize", "learning_rate",
           "warmup_steps", "curriculum_steps", "precision", "batch_size", "cpu_model"]


def run_one(profile: config.Profile, folder_data: Path, variant: str, background: str, seed_index: int,
            cap: int) -> dict:
    train_cfg = dataclasses.replace(profile.classifier, **VARIANTS[variant])
    seed = seeding.stage_int_seed(profile.seed, f"train/classifier/{background}", seed_index)
    spec = training.ModelSpec("classifier", background, seed_index, seed, train_cfg,
                              store.data_key(profile.seed, profile.data))
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        meta = training.train(spec, folder_data, Path(tmp), progress=False, max_steps=cap, stop_at_target=True)
    curve = meta["val_subset_curve"]
    reached = meta["steps_to_95"]
    return {
        "variant": variant, "background": background, "seed_index": seed_index, "seed": seed,
        "steps_to_95": str(reached) if reached is not None else f">{cap}", "cap": cap,
        "optimizer_steps": meta["optimizer_steps"],
        "final_val_subset_accuracy": round(curve[-1][1], 4) if curve else float("nan"),
        "holdout_accuracy_at_stop": round(meta["holdout_accuracy"], 4), "seconds": round(time.time() - start, 1),
        "standardize": train_cfg.standardize, "learning_rate": train_cfg.learning_rate,
        "warmup_steps": train_cfg.warmup_steps, "curriculum_steps": train_cfg.curriculum_steps, "precision": meta["precision"],
        "batch_size": train_cfg.batch_size, "cpu_model": cpu_model(),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--backgrounds", nargs="+", default=list(config.BACKGROUNDS), choices=config.BACKGROUNDS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--cap", type=int, default=1200, help="optimizer steps before a run is censored")
    ap.add_argument("--out", type=Path, default=paths.repo_root() / "tables" / "plateau_study.csv")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("salbench.models.training").setLevel(logging.INFO)  # the accuracy curve, live
    if args.cap < training.VAL_EVERY_STEPS:
        ap.error(f"--cap={args.cap}: must be >= {training.VAL_EVERY_STEPS} (one evaluation)")
    profile = config.load_profile("quick")
    folder_data = store.ensure_dataset(profile, progress=False)
    done = pd.read_csv(args.out) if args.out.is_file() else pd.DataFrame(columns=COLUMNS)
    if "curriculum_steps" not in done:  # rows from before the option existed
        done["curriculum_steps"] = 0
    for variant in args.variants:
        for background in args.backgrounds:
            for i in args.seeds:
                if ((done.variant == variant) & (done.background == background) & (done.seed_index == i)
                        & (done.cap == args.cap)).any():
                    continue
                row = run_one(profile, folder_data, variant, background, i, args.cap)
                print(", ".join(f"{k}={row[k]}" for k in COLUMNS[:10]), flush=True)
                done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)[COLUMNS]
                args.out.parent.mkdir(parents=True, exist_ok=True)
                tmp = args.out.with_suffix(f".tmp{os.getpid()}")
                done.to_csv(tmp, index=False)
                tmp.replace(args.out)


if __name__ == "__main__":
    main()
