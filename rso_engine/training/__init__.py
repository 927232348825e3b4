"""Trainers: the shared base (data, evaluation, counters, state), RSO (Algorithm 1, the one owner of the
sweep order, the σ schedule and the sweep position) and the SGD baseline with its optimizer object."""

from .base import Stopwatch, Trainer, TrainingError
from .rso import RSOTrainer, describe_sigma_schedule, sigma_scale
from .sgd import SGDTrainer

__all__ = [
    "RSOTrainer", "SGDTrainer", "Stopwatch", "Trainer", "TrainingError", "describe_sigma_schedule", "sigma_scale",
]
