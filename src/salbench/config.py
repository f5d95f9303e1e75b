"""Profiles: YAML files of scalars loaded into frozen, validated dataclasses.

`resolve_profile(profile, config_path, sets)` is what the command line uses: a
built-in profile (``--profile``), a profile file anywhere (``--config``) and
``section.key=value`` overrides (``--set``), later ones winning. `load_profile(name
or path, **overrides)` is the same for Python callers, with overrides spelled
``section__key=value`` (e.g. ``data__n_train=64``) or a top-level key (``seed=3``).
`dump_profile` writes a profile back to a YAML file that loads to an equal one.
Every error is one line naming the key, the bad value and what is allowed.

Names are honest (ours): a profile whose values were changed by overrides is named
``<base>+<8 hex of its overrides>`` (e.g. ``quick+1a2b3c4d``), records the changes in
`Profile.overrides` (kept in provenance.json beside every figure and table), and does
not publish to figures/ and tables/ unless the overrides set ``publish=true``. An
override that leaves a value as it was changes nothing and is not recorded. A profile
file may not call itself smoke, quick or paper unless it equals that profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from salbench import paths

PROFILES = ("smoke", "quick", "paper")
BACKGROUNDS = ("perlin", "mri")
SPLITS = ("train", "val", "holdout")


class ConfigError(ValueError):
    """A profile or override that cannot be used; the message says why."""


@dataclass(frozen=True)
class DataConfig:
    """Synthetic lesion data (Budding et al. 2021, section 2)."""

    image_shape: tuple[int, int] = (140, 192)
    n_train: int = 42000
    n_val: int = 6000
    n_holdout: int = 12000
    n_lesions: int = 2
    lesion_diameter: int = 10
    # Intensity left at the lesion centre, as a fraction of the background ("lesions
    # with 30 % intensity"): lesion map = 1 - (1 - lesion_intensity) * window. This is
    # what Budding et al.'s code did (it min-max scaled the inverted window to [0.3, 1]).
    lesion_intensity: float = 0.3
    # Ground truth = window > gt_threshold. 0.0 marks every pixel the lesion darkens
    # (the whole disc of `lesion_diameter`); 0.5 keeps only the core.
    gt_threshold: float = 0.0
    # Window shape: "disc" (radial Hamming, circular lesions as the paper says) or
    # "square" (outer product of 1-D Hamming windows, as Budding's code did).
    lesion_window: str = "disc"
    perlin_res: tuple[int, int] = (5, 8)
    # None: the MNI152 template shipped inside nilearn. Else a folder of NIfTI T1 volumes.
    mri_dir: str | None = None
    # Axial slices kept when at least this fraction of the image is brain.
    mri_min_brain_fraction: float = 0.3
    # Augmentations of MRI slices (and of the shared brain masks), drawn per sample.
    mri_max_shift: int = 6
    mri_flip: bool = True
    mri_gamma_range: float = 0.2
    # Samples per generation job (a worker's unit); how the data are written, not what they
    # are. 64: larger jobs (512) cost the parent more than they saved (bench_data.py).
    chunk_size: int = 64

    def split_size(self, split: str) -> int:
        check_choice("split", split, SPLITS)
        return {"train": self.n_train, "val": self.n_val, "holdout": self.n_holdout}[split]


@dataclass(frozen=True)
class TrainConfig:
    """Classifier training protocol (Budding et al., "Networks & training")."""

    architecture: str = "vgg"
    optimizer: str = "sgd"
    learning_rate: float = 5e-5
    momentum: float = 0.9
    batch_size: int = 128
    val_batch_size: int = 32
    max_epochs: int = 125
    patience: int = 10
    min_delta: float = 5e-4
    loss_stop: float = 0.05
    runs: int = 3
    # Use only the first n training / validation images (None: the whole split).
    n_train_images: int | None = None
    n_val_images: int | None = None
    # "float32" (the paper) or "mixed_bfloat16": bf16 compute with float32 weights,
    # about 4x faster on CPUs with AMX; "auto": mixed_bfloat16 where the CPU has bf16
    # instructions (AMX or AVX-512 BF16) or a GPU is present, else float32
    # (`training.resolve_precision`; benchmarks/bench_precision.py). Saved weights are
    # float32 either way and saliency always runs in float32.
    precision: str = "float32"
    # Ours, not the paper's (see benchmarks/plateau_study.py): a fixed first layer that
    # standardizes the input with the training set's mean and SD, and a linear
    # learning-rate warm-up over this many optimizer steps (0: none). Both off by
    # default, and left out of the model cache key when off.
    standardize: bool = False
    warmup_steps: int = 0
    # Ours (issue 12's plateau study): an easy-to-hard curriculum over the first
    # `curriculum_steps` optimizer steps. At step 0 the lesions keep
    # `curriculum_lesion_intensity` of the background (the data: `data.lesion_intensity`)
    # and the background's in-brain contrast around its mean is `curriculum_contrast`
    # (the data: 1); both move linearly to the data's values by `curriculum_steps`, and
    # from then on the network trains on the data as generated. 0: no curriculum.
    curriculum_steps: int = 0
    curriculum_lesion_intensity: float = 0.0
    curriculum_contrast: float = 1.0
    # Optimizer steps per "epoch" (ours): the unit of max_epochs, patience, loss_stop and
    # validation, so a short run can stop when it has learned instead of at the end of a
    # pass over the data. The data still run in full passes, one after the other. None:
    # one pass over the training images (the paper).
    steps_per_epoch: int | None = None


@dataclass(frozen=True)
class SecondArchConfig(TrainConfig):
    """Another family for Arun et al.'s reproducibility test."""

    architecture: str = "densenet121"
    runs: int = 1


@dataclass(frozen=True)
class UNetConfig(TrainConfig):
    """U-Net segmenting the lesion ground truth: Arun et al.'s high baseline."""

    architecture: str = "unet"
    base_filters: int = 32
    depth: int = 4
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 50
    loss_stop: float = 0.0
    runs: int = 1


@dataclass(frozen=True)
class SaliencyConfig:
    """Which images get maps and with which batch size."""

    # Maps for the first n class-2 (lesion) holdout images and the first n class-1 ones.
    n_images: int = 200
    batch_size: int = 64
    # PatternNet / PatternAttribution: training images the patterns are estimated on,
    # and the precision of per-chunk sums ("float64", or "float32": about 4x faster).
    pattern_n_images: int = 2000
    pattern_chunk_dtype: str = "float64"
    # DeepSHAP: training images in the background sample.
    shap_background: int = 100
    # Arun et al.'s PAIR methods (their code's settings / PAIR defaults): noise samples of
    # SmoothGrad and Smooth IG, path steps of (Smooth) IG, and XRAI's IG steps.
    nsamples: int = 25
    ig_steps: int = 10
    xrai_steps: int = 100


@dataclass(frozen=True)
class LocalizationConfig:
    # The first n class-2 holdout images are scored (Budding et al.: 200).
    n_images: int = 200
    # The randomized-weights comparison scores the first n of those images
    # (None: all n_images); it costs as much as the trained maps again.
    n_randomized_images: int | None = None
    # The classifier runs other than the selected one (issue 14's run-level verdicts and
    # repeatability) are scored on the first n of those images (None: all n_images).
    n_images_other_runs: int | None = None
    n_bootstrap: int = 2000
    alpha: float = 0.05


@dataclass(frozen=True)
class FidelityConfig:
    """Tomsett et al. 2020's perturbation metrics (notebook 05)."""

    # The first n class-2 holdout images are scored (Tomsett: all 10,000 CIFAR-10 test images).
    n_images: int = 1000
    # Perturbation units (side of a square patch, pixels): 1 is Tomsett's pixel; 5 makes
    # 100 steps cover 9.3 % of a 140 x 192 image, as 100 pixels covered 9.8 % of 32 x 32.
    units: tuple[int, ...] = (1, 5)
    headline_unit: int = 5
    l_max: int = 100
    n_random_orderings: int = 100
    n_faithfulness_units: int = 100
    # Percentile bootstrap over images for Krippendorff's alpha (Tomsett: 99.9 % intervals).
    n_bootstrap: int = 10000
    ci: float = 0.999
    # The extension's methods beyond Tomsett's set ("all": every registered classifier method).
    extension: str = "all"
    batch_size: int = 128


@dataclass(frozen=True)
class TrustConfig:
    """Arun et al. 2021's trust criteria beyond localization (notebook 06): cascading
    randomization, repeatability and reproducibility."""

    # The first n lesion images explained (a prefix of `saliency.n_images`; Arun et al.'s
    # README: 100 random positive test images for these tests).
    n_images: int = 100
    # Methods beyond Arun's eight: "budding" (Budding et al.'s Figure 1 methods), "none".
    extension: str = "budding"
    # Empty: Arun's eight plus the extension. Otherwise exactly these registered methods
    # (a small profile's subset; the smoke profile cannot afford iNNvestigate's graph
    # building on the DenseNet for every method).
    methods: tuple[str, ...] = ()
    # Cascades run: "top_down" (the paper; its last step gives the verdicts), and ours,
    # "bottom_up" and "single" (one layer at a time).
    orders: tuple[str, ...] = ("top_down", "bottom_up", "single")
    # Orders in which every method runs; the other orders skip the methods costly per
    # cascade step (`pipeline.trust.COSTLY_PER_STEP`). Empty: every order runs every method.
    full_orders: tuple[str, ...] = ()
    # Images for the costly methods (`pipeline.trust.EXPENSIVE`): a prefix of n_images
    # (None: all n_images).
    n_images_expensive: int | None = None
    # Random partner images per image in the randomization baseline (Arun's code: 50).
    baseline_pairs: int = 50
    # SSIM setting of the baseline, the verdicts and the consistency scores
    # (`metrics.similarity.SSIM_SETTINGS`: "arun", the reproduction, or "ours").
    ssim_setting: str = "arun"
    alpha: float = 0.05


@dataclass(frozen=True)
class Profile:
    name: str
    seed: int
    data: DataConfig
    classifier: TrainConfig = field(default_factory=TrainConfig)
    second: SecondArchConfig = field(default_factory=SecondArchConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    localization: LocalizationConfig = field(default_factory=LocalizationConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    # Whether runs of this profile write figures/ and tables/ (smoke never does).
    publish: bool = False
    # "section.key=value" changes applied on top of the base profile named before the
    # "+" in `name`; empty for a profile used as written.
    overrides: tuple[str, ...] = ()

    def provenance(self) -> dict:
        """What outputs record about the profile that produced them."""
        return {"profile": self.name, "seed": self.seed, **({"overrides": list(self.overrides)} if self.overrides else {})}


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "classifier": TrainConfig,
    "second": SecondArchConfig,
    "unet": UNetConfig,
    "saliency": SaliencyConfig,
    "localization": LocalizationConfig,
    "fidelity": FidelityConfig,
    "trust": TrustConfig,
}
TOP_LEVEL = {"seed": int, "publish": bool}
# Keys of a profile file that describe it rather than configure a stage.
META_KEYS = ("name", "overrides")
PROFILE_SUFFIXES = (".yaml", ".yml")

ARCHITECTURES = ("vgg", "densenet121", "densenet_small", "unet")
OPTIMIZERS = ("sgd", "adam")
PRECISIONS = ("float32", "mixed_bfloat16", "auto")
LESION_WINDOWS = ("disc", "square")
TRUST_ORDERS = ("top_down", "bottom_up", "single")


def check_choice(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {list(allowed)}")


def _coerce(key: str, value, annotation):
    """Check `value` against a dataclass field annotation, converting lists to tuples."""
    hint = annotation if not isinstance(annotation, str) else eval(annotation, vars(typing))  # noqa: S307
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]: a list of any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r}: expected a list")
        return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}={value!r}: expected a list of {len(args)} values")
        return tuple(_coerce(f"{key}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, args)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 reads 1e-4 (no dot) as a string; any float() spelling is a number here.
            try:
                return float(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r}: expected a string")
        return value
    raise ConfigError(f"{key}: unsupported type {hint}")


def _build_section(section: str, cls: type, values: dict):
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a mapping of keys, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown key {section}.{key} (value {value!r}); valid keys: {sorted(known)}"
            )
        kwargs[key] = _coerce(f"{section}.{key}", value, known[key].type)
    return cls(**kwargs)


def data_config_from_dict(values: dict) -> DataConfig:
    """A DataConfig from its `as_dict` form (e.g. a data cache entry's meta.json)."""
    return _build_section("data", DataConfig, values)


def _validate(p: Profile) -> None:
    d = p.data
    h, w = d.image_shape
    if h < 16 or w < 16:
        raise ConfigError(f"data.image_shape={list(d.image_shape)}: each side must be >= 16")
    for key in ("n_train", "n_val", "n_holdout"):
        v = getattr(d, key)
        if v < 2 or v % 2:
            raise ConfigError(f"data.{key}={v}: must be an even count >= 2 (balanced classes)")
    if not 1 <= d.lesion_diameter <= min(h // 2, w):
        raise ConfigError(
            f"data.lesion_diameter={d.lesion_diameter}: must be in 1..{min(h // 2, w)} "
            f"(lesions lie in the top half of a {h}x{w} image)"
        )
    if d.n_lesions < 1 or d.n_lesions > 8:
        raise ConfigError(f"data.n_lesions={d.n_lesions}: must be in 1..8")
    if not 0.0 <= d.lesion_intensity < 1.0:
        raise ConfigError(f"data.lesion_intensity={d.lesion_intensity}: must be in [0, 1) (1 would be no lesion)")
    if not 0.0 <= d.gt_threshold < 1.0:
        raise ConfigError(f"data.gt_threshold={d.gt_threshold}: must be in [0, 1)")
    check_choice("data.lesion_window", d.lesion_window, LESION_WINDOWS)
    ry, rx = d.perlin_res
    if ry < 1 or rx < 1 or h % ry or w % rx:
        raise ConfigError(
            f"data.perlin_res={list(d.perlin_res)}: must be positive and divide image_shape "
            f"{list(d.image_shape)}"
        )
    if not 0.0 < d.mri_min_brain_fraction < 1.0:
        raise ConfigError(f"data.mri_min_brain_fraction={d.mri_min_brain_fraction}: must be in (0, 1)")
    if d.mri_max_shift < 0 or d.mri_max_shift > min(h, w) // 4:
        raise ConfigError(f"data.mri_max_shift={d.mri_max_shift}: must be in 0..{min(h, w) // 4}")
    if not 0.0 <= d.mri_gamma_range < 1.0:
        raise ConfigError(f"data.mri_gamma_range={d.mri_gamma_range}: must be in [0, 1)")
    if d.chunk_size < 1:
        raise ConfigError(f"data.chunk_size={d.chunk_size}: must be >= 1")
    if d.mri_dir is not None and not Path(d.mri_dir).expanduser().is_dir():
        raise ConfigError(f"data.mri_dir={d.mri_dir!r}: not a folder of NIfTI volumes")
    for name in ("classifier", "second", "unet"):
        t = getattr(p, name)
        check_choice(f"{name}.architecture", t.architecture, ARCHITECTURES)
        check_choice(f"{name}.optimizer", t.optimizer, OPTIMIZERS)
        check_choice(f"{name}.precision", t.precision, PRECISIONS)
        for key in ("batch_size", "val_batch_size", "max_epochs", "runs"):
            if getattr(t, key) < 1:
                raise ConfigError(f"{name}.{key}={getattr(t, key)}: must be >= 1")
        if t.patience < 0:
            raise ConfigError(f"{name}.patience={t.patience}: must be >= 0")
        if not t.learning_rate > 0:
            raise ConfigError(f"{name}.learning_rate={t.learning_rate}: must be > 0")
        if not 0 <= t.momentum < 1:
            raise ConfigError(f"{name}.momentum={t.momentum}: must be in [0, 1)")
        if t.min_delta < 0 or t.loss_stop < 0:
            raise ConfigError(f"{name}: min_delta and loss_stop must be >= 0")
        if t.warmup_steps < 0:
            raise ConfigError(f"{name}.warmup_steps={t.warmup_steps}: must be >= 0")
        if t.steps_per_epoch is not None and t.steps_per_epoch < 1:
            raise ConfigError(f"{name}.steps_per_epoch={t.steps_per_epoch}: must be >= 1 or null (one pass)")
        if t.curriculum_steps < 0:
            raise ConfigError(f"{name}.curriculum_steps={t.curriculum_steps}: must be >= 0 (0: no curriculum)")
        if not 0 <= t.curriculum_lesion_intensity < 1:
            raise ConfigError(f"{name}.curriculum_lesion_intensity={t.curriculum_lesion_intensity}: must be in "
                              "[0, 1) (the lesion intensity at the curriculum's first step)")
        if not 0 < t.curriculum_contrast <= 1:
            raise ConfigError(f"{name}.curriculum_contrast={t.curriculum_contrast}: must be in (0, 1] "
                              "(the background contrast at the curriculum's first step)")
        if t.curriculum_steps and name != "classifier":
            raise ConfigError(f"{name}.curriculum_steps={t.curriculum_steps}: only the classifier trains "
                              "with a curriculum; use 0")
        if t.standardize and t.architecture != "vgg":
            raise ConfigError(f"{name}.standardize=true: only the VGG-like classifier has a standardization "
                              f"layer (architecture is {t.architecture!r})")
        for key, limit in (("n_train_images", d.n_train), ("n_val_images", d.n_val)):
            v = getattr(t, key)
            if v is not None and not 2 <= v <= limit:
                raise ConfigError(f"{name}.{key}={v}: must be in 2..{limit} (the split size) or null")
    if p.classifier.curriculum_steps and p.data.lesion_intensity == 0:
        raise ConfigError("classifier.curriculum_steps needs data.lesion_intensity > 0 (the curriculum recovers "
                          "the lesion-free background by dividing by the lesion map; got 0)")
    if p.classifier.architecture != "vgg":
        raise ConfigError(f"classifier.architecture={p.classifier.architecture!r}: must be 'vgg'")
    check_choice("second.architecture", p.second.architecture, ("densenet121", "densenet_small"))
    check_choice("unet.architecture", p.unet.architecture, ("unet",))
    if not 1 <= p.unet.depth <= 4 or p.unet.base_filters < 1:
        raise ConfigError(f"unet.depth={p.unet.depth} must be in 1..4 and unet.base_filters >= 1")
    for name, n in (("saliency.n_images", p.saliency.n_images), ("localization.n_images", p.localization.n_images)):
        if not 1 <= n <= d.n_holdout // 2:
            raise ConfigError(f"{name}={n}: must be in 1..{d.n_holdout // 2} (the class-2 half of data.n_holdout)")
    if p.localization.n_images > p.saliency.n_images:
        raise ConfigError(
            f"localization.n_images={p.localization.n_images}: must be <= saliency.n_images={p.saliency.n_images}"
        )
    n_rand = p.localization.n_randomized_images
    if n_rand is not None and not 2 <= n_rand <= p.localization.n_images:
        raise ConfigError(
            f"localization.n_randomized_images={n_rand}: must be in 2..{p.localization.n_images} "
            f"(localization.n_images) or null"
        )
    n_other = p.localization.n_images_other_runs
    if n_other is not None and not 2 <= n_other <= p.localization.n_images:
        raise ConfigError(
            f"localization.n_images_other_runs={n_other}: must be in 2..{p.localization.n_images} "
            f"(localization.n_images) or null"
        )
    for key in ("batch_size", "pattern_n_images", "shap_background", "nsamples", "ig_steps", "xrai_steps"):
        if getattr(p.saliency, key) < 1:
            raise ConfigError(f"saliency.{key}={getattr(p.saliency, key)}: must be >= 1")
    check_choice("saliency.pattern_chunk_dtype", p.saliency.pattern_chunk_dtype, ("float64", "float32"))
    if p.localization.n_bootstrap < 100:
        raise ConfigError(f"localization.n_bootstrap={p.localization.n_bootstrap}: must be >= 100")
    if not 0 < p.localization.alpha < 1:
        raise ConfigError(f"localization.alpha={p.localization.alpha}: must be in (0, 1)")
    f = p.fidelity
    if not 2 <= f.n_images <= d.n_holdout // 2:
        raise ConfigError(f"fidelity.n_images={f.n_images}: must be in 2..{d.n_holdout // 2} "
                          "(the class-2 half of data.n_holdout)")
    if not f.units or any(u < 1 or u > min(d.image_shape) for u in f.units):
        raise ConfigError(f"fidelity.units={list(f.units)}: each must be in 1..{min(d.image_shape)}")
    if f.headline_unit not in f.units:
        raise ConfigError(f"fidelity.headline_unit={f.headline_unit}: must be one of fidelity.units {list(f.units)}")
    # The claims and paper.md read the headline from the tables as their largest unit.
    if f.headline_unit != max(f.units):
        raise ConfigError(f"fidelity.headline_unit={f.headline_unit}: must be the largest of fidelity.units "
                          f"{list(f.units)} (the tables' headline is their largest unit); use {max(f.units)} or drop "
                          f"the larger units")
    for key in ("l_max", "n_random_orderings", "n_faithfulness_units", "batch_size"):
        if getattr(f, key) < 1:
            raise ConfigError(f"fidelity.{key}={getattr(f, key)}: must be >= 1")
    if f.l_max < 20 or f.l_max % 20:
        raise ConfigError(f"fidelity.l_max={f.l_max}: must be a multiple of 20 (AOPC at L = 20, 40, ...)")
    if f.n_bootstrap < 100:
        raise ConfigError(f"fidelity.n_bootstrap={f.n_bootstrap}: must be >= 100")
    if not 0 < f.ci < 1:
        raise ConfigError(f"fidelity.ci={f.ci}: must be in (0, 1)")
    check_choice("fidelity.extension", f.extension, ("all", "none"))
    t = p.trust
    if not 2 <= t.n_images <= p.saliency.n_images:
        raise ConfigError(f"trust.n_images={t.n_images}: must be in 2..{p.saliency.n_images} (saliency.n_images; "
                          "the randomization baseline pairs different images)")
    check_choice("trust.extension", t.extension, ("budding", "none"))
    bad = [o for o in t.orders if o not in TRUST_ORDERS]
    if bad or "top_down" not in t.orders or len(set(t.orders)) != len(t.orders):
        raise ConfigError(f"trust.orders={list(t.orders)}: distinct values from {list(TRUST_ORDERS)}, including "
                          "'top_down' (its last step gives the verdicts)")
    if t.n_images_expensive is not None and not 2 <= t.n_images_expensive <= t.n_images:
        raise ConfigError(f"trust.n_images_expensive={t.n_images_expensive}: must be in 2..{t.n_images} "
                          "(trust.n_images) or null")
    if t.baseline_pairs < 1:
        raise ConfigError(f"trust.baseline_pairs={t.baseline_pairs}: must be >= 1")
    if not set(t.full_orders) <= set(t.orders) or len(set(t.full_orders)) != len(t.full_orders):
        raise ConfigError(f"trust.full_orders={list(t.full_orders)}: distinct values from trust.orders "
                          f"{list(t.orders)}, or [] for all of them")
    check_choice("trust.ssim_setting", t.ssim_setting, ("arun", "ours"))
    if not 0 < t.alpha < 1:
        raise ConfigError(f"trust.alpha={t.alpha}: must be in (0, 1)")


def profile_path(name: str) -> Path:
    check_choice("profile", name, PROFILES)
    return paths.repo_root() / "configs" / f"{name}.yaml"


def _one_line(text) -> str:
    return " ".join(str(text).split())


def read_yaml(path: Path) -> dict:
    """The top-level mapping of a YAML file; bad YAML is a one-line error with line and column."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such profile file") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err})") from err
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(x for x in (err.context, err.problem) if x)
        raise ConfigError(f"{where}: invalid YAML: {_one_line(what)}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {_one_line(err)}") from err
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections and keys at the top level, got {type(raw).__name__}")
    return raw


def build_profile(name: str, raw: dict, validate: bool = True) -> Profile:
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {name!r}: expected a mapping at the top level")
    kwargs = {"name": name}
    for key, value in raw.items():
        if key in SECTIONS:
            kwargs[key] = _build_section(key, SECTIONS[key], value or {})
        elif key in TOP_LEVEL:
            kwargs[key] = _coerce(key, value, TOP_LEVEL[key])
        elif key == "name":
            kwargs["name"] = check_name(value)
        elif key == "overrides":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"overrides={value!r}: expected a list of 'section.key=value' strings")
            kwargs["overrides"] = tuple(value)
        else:
            raise ConfigError(
                f"unknown key {key!r} (value {value!r}); valid keys: {sorted([*SECTIONS, *TOP_LEVEL, *META_KEYS])}"
            )
    if "seed" not in kwargs:
        raise ConfigError(f"profile {name!r}: missing required key 'seed'")
    kwargs.setdefault("data", DataConfig())
    profile = Profile(**kwargs)
    if validate:
        _validate(profile)
    return profile


def check_name(name) -> str:
    """A profile name names output folders and files: letters, digits and . _ + - only."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
        raise ConfigError(f"name={name!r}: a profile name is letters, digits and . _ + - (starting with a letter or digit)")
    return name


def _is_path(spec) -> bool:
    return isinstance(spec, Path) or str(spec).endswith(PROFILE_SUFFIXES) or os.sep in str(spec)


def _base(spec) -> tuple[dict, str]:
    """(raw mapping, name) of a built-in profile name or a profile file path."""
    if _is_path(spec):
        path = Path(spec).expanduser()
        if path.suffix not in PROFILE_SUFFIXES:
            raise ConfigError(f"{path}: a profile file must end in {' or '.join(PROFILE_SUFFIXES)}")
        raw = read_yaml(path)
        if "name" not in raw:
            try:
                check_name(path.stem)
            except ConfigError as err:
                raise ConfigError(f"{path}: {err}; rename the file or give it a name: key") from None
        return raw, path.stem
    return read_yaml(profile_path(spec)), spec


def parse_set(text: str) -> tuple[str, object]:
    """``section.key=value`` (or ``seed=3``) -> (key, value), the value read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. data.mri_dir=/path/to/niftis")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({_one_line(getattr(err, 'problem', err))})") from err
    return key.strip(), value


def _check_key(key: str, value) -> None:
    """A dotted override key must name a known section and key (or a top-level key)."""
    section, dot, sub = key.partition(".")
    if not dot:
        if key in SECTIONS:
            raise ConfigError(f"{key}={value!r}: set a section's keys one by one, as {key}.KEY=VALUE")
        if key not in TOP_LEVEL and key != "name":
            raise ConfigError(
                f"unknown key {key!r} (value {value!r}); valid: {sorted([*TOP_LEVEL, 'name'])} "
                f"or section.key with a section in {sorted(SECTIONS)}"
            )
        return
    if section not in SECTIONS:
        raise ConfigError(f"override {key}={value!r}: unknown section {section!r}; valid: {sorted(SECTIONS)}")
    known = sorted(f.name for f in fields(SECTIONS[section]))
    if sub not in known:
        raise ConfigError(f"unknown key {key} (value {value!r}); valid keys of {section}: {known}")


def _flatten(raw: dict) -> list[tuple[str, object]]:
    """A profile file's mapping as (dotted key, value) pairs, to layer it as overrides."""
    pairs = []
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            pairs += [(f"{key}.{sub}", v) for sub, v in value.items()]
        elif key == "overrides":
            continue  # provenance of the file's own base, not a setting
        else:
            pairs.append((key, value))
    return pairs


def flat_values(profile: Profile) -> dict[str, object]:
    """Every setting of a profile as {"section.key" or top-level key: value}."""
    out = {"seed": profile.seed, "publish": profile.publish}
    for section in SECTIONS:
        for f in fields(getattr(profile, section)):
            out[f"{section}.{f.name}"] = getattr(getattr(profile, section), f.name)
    return out


def _scalar(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n...\n").strip()


def _resolve(spec, layer: Path | None, pairs: list[tuple[str, object]]) -> Profile:
    raw, name = _base(spec)
    if layer is not None:
        layer_raw = read_yaml(Path(layer).expanduser())
        pairs = _flatten(layer_raw) + list(pairs)
    explicit_name = None
    merged: dict[str, object] = {}  # dotted key -> last value, in first-seen order
    for key, value in pairs:
        _check_key(key, value)
        if key == "name":
            explicit_name = value
        else:
            merged[key] = value
    base = build_profile(name, raw, validate=False)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in merged.items():
        section, dot, sub = key.partition(".")
        if dot:
            raw[section] = {**(raw.get(section) or {}), sub: value}
        else:
            raw[key] = value
    raw.pop("name", None)
    profile = build_profile(base.name, raw, validate=False)
    before, after = flat_values(base), flat_values(profile)
    changed = [k for k in merged if k != "publish" and after[k] != before[k]]
    # A changed profile does not publish by default, so publish=true then is a change too.
    if "publish" in merged and after["publish"] != (False if changed else before["publish"]):
        changed.append("publish")
    if changed:
        kept = [o for o in base.overrides if o.split("=", 1)[0] not in changed]
        overrides = tuple(kept + [f"{k}={_scalar(after[k])}" for k in changed])
        root = base.name.split("+", 1)[0]
        profile = dataclasses.replace(
            profile, overrides=overrides, publish=after["publish"] if "publish" in merged else False,
            name=f"{root}+{config_hash(list(overrides))[:8]}",
        )
    if explicit_name is not None:
        profile = dataclasses.replace(profile, name=check_name(explicit_name))
    _validate(profile)
    if profile.name in PROFILES and profile.overrides:
        raise ConfigError(
            f"a profile with overrides {list(profile.overrides)} cannot be named {profile.name!r} (a built-in "
            "profile's name); leave the name out (it becomes <profile>+<hash>) or choose another"
        )
    if profile.name in PROFILES and (_is_path(spec) or profile.name != spec):
        builtin = build_profile(profile.name, read_yaml(profile_path(profile.name)))
        differ = [k for k, v in flat_values(builtin).items() if flat_values(profile)[k] != v]
        if differ:
            raise ConfigError(
                f"profile {str(spec)!r} calls itself {profile.name!r} but differs from the built-in "
                f"{profile.name!r} in {differ}; give it another name (a name: key, or rename the file)"
            )
    return profile


def resolve_profile(profile: str | None = None, config_path: str | Path | None = None,
                    sets: typing.Sequence[str] = ()) -> Profile:
    """The profile of a command line: `--set` over `--config` over `--profile`.

    `profile` is a built-in name (or a profile file); `config_path` a profile file,
    the base when `profile` is None, else laid key by key over it; `sets` are
    ``section.key=value`` texts (values read as YAML scalars), applied last.
    """
    pairs = [parse_set(s) for s in sets]
    if profile is None and config_path is None:
        raise ConfigError(f"no profile given: use --profile (one of {list(PROFILES)}) or --config FILE.yaml")
    if profile is None:
        return _resolve(config_path, None, pairs)
    return _resolve(profile, config_path, pairs)


def load_profile(name: str | Path, **overrides) -> Profile:
    """Load a built-in profile by name or a profile file by path (``*.yaml``), apply
    overrides (``section__key=value`` or a top-level key), validate."""
    return _resolve(name, None, [(k.replace("__", ".", 1), v) for k, v in overrides.items()])


def dump_profile(profile: Profile, path: str | Path) -> Path:
    """Write `profile` to a YAML file that `load_profile(path)` reads back equal (atomically)."""
    path = Path(path)
    raw = {"name": profile.name, "seed": profile.seed, "publish": profile.publish}
    if profile.overrides:
        raw["overrides"] = list(profile.overrides)
    raw.update({section: as_dict(getattr(profile, section)) for section in SECTIONS})
    text = "# Written by salbench.config.dump_profile; load with salbench.config.load_profile(path).\n"
    text += yaml.safe_dump(raw, sort_keys=False, default_flow_style=False, width=10**9)
    from salbench import atomic

    return atomic.write_text(path, text)


def as_dict(obj) -> dict:
    """Plain JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def config_hash(*parts) -> str:
    """Stable 16-hex hash of dataclasses / JSON-able values."""
    payload = [as_dict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
