"""Profiles: YAML files of scalars loaded into frozen, validated dataclasses.

`load_profile(name, **overrides)` is the one entry point. Overrides use
`section__key=value` (e.g. ``data__n_train=64``) or a top-level key (``seed=3``).
Every error names the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
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
    chunk_size: int = 512

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
    # about 4x faster on CPUs with AMX. Saved weights are float32 either way and
    # saliency always runs in float32.
    precision: str = "float32"


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
    n_bootstrap: int = 2000
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
    # Whether runs of this profile write figures/ and tables/ (smoke never does).
    publish: bool = False


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "classifier": TrainConfig,
    "second": SecondArchConfig,
    "unet": UNetConfig,
    "saliency": SaliencyConfig,
    "localization": LocalizationConfig,
}
TOP_LEVEL = {"seed": int, "publish": bool}

ARCHITECTURES = ("vgg", "densenet121", "densenet_small", "unet")
OPTIMIZERS = ("sgd", "adam")
PRECISIONS = ("float32", "mixed_bfloat16")
LESION_WINDOWS = ("disc", "square")


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
        for key, limit in (("n_train_images", d.n_train), ("n_val_images", d.n_val)):
            v = getattr(t, key)
            if v is not None and not 2 <= v <= limit:
                raise ConfigError(f"{name}.{key}={v}: must be in 2..{limit} (the split size) or null")
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
    for key in ("batch_size", "pattern_n_images", "shap_background", "nsamples", "ig_steps", "xrai_steps"):
        if getattr(p.saliency, key) < 1:
            raise ConfigError(f"saliency.{key}={getattr(p.saliency, key)}: must be >= 1")
    check_choice("saliency.pattern_chunk_dtype", p.saliency.pattern_chunk_dtype, ("float64", "float32"))
    if p.localization.n_bootstrap < 100:
        raise ConfigError(f"localization.n_bootstrap={p.localization.n_bootstrap}: must be >= 100")
    if not 0 < p.localization.alpha < 1:
        raise ConfigError(f"localization.alpha={p.localization.alpha}: must be in (0, 1)")


def profile_path(name: str) -> Path:
    check_choice("profile", name, PROFILES)
    return paths.repo_root() / "configs" / f"{name}.yaml"


def build_profile(name: str, raw: dict) -> Profile:
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {name!r}: expected a mapping at the top level")
    kwargs = {"name": name}
    for key, value in raw.items():
        if key in SECTIONS:
            kwargs[key] = _build_section(key, SECTIONS[key], value or {})
        elif key in TOP_LEVEL:
            kwargs[key] = _coerce(key, value, TOP_LEVEL[key])
        else:
            raise ConfigError(
                f"unknown key {key!r} (value {value!r}); valid keys: {sorted([*SECTIONS, *TOP_LEVEL])}"
            )
    if "seed" not in kwargs:
        raise ConfigError(f"profile {name!r}: missing required key 'seed'")
    kwargs.setdefault("data", DataConfig())
    profile = Profile(**kwargs)
    _validate(profile)
    return profile


def load_profile(name: str, **overrides) -> Profile:
    """Load configs/<name>.yaml, apply overrides (``section__key=value``), validate."""
    raw = yaml.safe_load(profile_path(name).read_text()) or {}
    for key, value in overrides.items():
        if "__" in key:
            section, sub = key.split("__", 1)
            if section not in SECTIONS:
                raise ConfigError(f"override {key}={value!r}: unknown section {section!r}; valid: {sorted(SECTIONS)}")
            raw.setdefault(section, {})
            raw[section] = {**(raw[section] or {}), sub: value}
        else:
            raw[key] = value
    return build_profile(name, raw)


def as_dict(obj) -> dict:
    """Plain JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def config_hash(*parts) -> str:
    """Stable 16-hex hash of dataclasses / JSON-able values."""
    payload = [as_dict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
