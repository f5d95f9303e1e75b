"""Which holdout images each analysis explains and scores (one place for the rule)."""

from __future__ import annotations

import numpy as np

from salbench.config import Profile

SPLIT = "holdout"


def explained_indices(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Holdout indices explained: the first n class-2 images (odd indices) and the first
    n class-1 images (even indices), n = saliency.n_images."""
    n = profile.saliency.n_images
    return 2 * np.arange(n) + 1, 2 * np.arange(n)


def scored_indices(profile: Profile) -> np.ndarray:
    """The lesion images scored against the ground truth: a prefix of the explained ones."""
    lesion_idx, _ = explained_indices(profile)
    return lesion_idx[: profile.localization.n_images]


def randomized_indices(profile: Profile) -> np.ndarray:
    """The scored images that also get randomized-weights maps (a prefix, so pairs stay paired)."""
    n = profile.localization.n_randomized_images
    idx = scored_indices(profile)
    return idx if n is None else idx[:n]


def scored_indices_of_run(profile: Profile, selected: bool) -> np.ndarray:
    """The scored images of a classifier run: all of them for the selected run, the first
    `localization.n_images_other_runs` for the others (a prefix, so runs stay paired)."""
    idx = scored_indices(profile)
    n = profile.localization.n_images_other_runs
    return idx if selected or n is None else idx[:n]
