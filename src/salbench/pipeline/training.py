"""The training stage's tables and figures (notebook 02): the accuracy table and
learning curves of every model of the profile."""

from __future__ import annotations

import pandas as pd

from salbench import outputs, plots
from salbench.config import Profile
from salbench.models import training

ACCURACY_COLUMNS = ["background", "architecture", "role", "run", "seed", "epochs", "steps_to_95", "holdout_accuracy",
                    "holdout_dice", "seconds_per_epoch", "selected"]


def train_all(profile: Profile, progress: bool = True) -> list[training.TrainedModel]:
    """Train (or load from the cache) every model of the profile; needs eager mode."""
    return training.train_all(profile, progress=progress)


def accuracy(models: list[training.TrainedModel]) -> pd.DataFrame:
    return training.accuracy_table(models)[ACCURACY_COLUMNS]


def accuracy_summary(models: list[training.TrainedModel]) -> pd.DataFrame:
    """Classifier holdout accuracy (%) over runs per background: mean, SD, max."""
    table = training.accuracy_table(models)
    return (table[table.role == "classifier"].groupby("background").holdout_accuracy
            .agg(["mean", "std", "max"]).mul(100).round(2))


def write_accuracy(models: list[training.TrainedModel], profile: Profile):
    return outputs.save_table(accuracy(models), "accuracy", profile)


def learning_curves(models: list[training.TrainedModel]):
    return plots.learning_curves(training.history_table(models))
