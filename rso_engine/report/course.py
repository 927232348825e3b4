"""The course project's published numbers, the landmark every study report sets its results beside."""

from __future__ import annotations

from typing import Any

_COURSE_ROWS = (  # model, batch, cycles, time (s), test loss, test accuracy
    ("oneconv", 32, 10, 212, 0.632, 0.8075),
    ("oneconv", 64, 10, 345, 0.553, 0.8353),
    ("oneconv", 256, 10, 1641, 0.372, 0.8929),
    ("oneconv", 512, 10, 2834, 0.297, 0.9152),
    ("oneconv", 1024, 10, 5046, 0.301, 0.9148),
    ("twoconv", 32, 10, 1457, 0.513, 0.8504),
    ("twoconv", 512, 10, 19186, 0.193, 0.9397),
    ("twoconv", 1000, 10, 36464, 0.126, 0.9604),
    ("papernet", 256, 1, 5240, None, None),
)
#: The course project's table (Julia/Flux on a CPU, full MNIST, 10 rounds of RSO; None where it has no number).
COURSE_RESULTS: tuple[dict[str, Any], ...] = tuple(
    dict(zip(("model", "batch_size", "cycles", "seconds", "test_loss", "test_accuracy"), row)) for row in _COURSE_ROWS
)
#: How reports name the models.
MODEL_LABELS = {"oneconv": "OneConv", "twoconv": "TwoConv", "papernet": "Paper net", "mlp": "MLP"}


def model_label(model: str) -> str:
    """The name a report gives ``model`` (``"oneconv"`` → ``"OneConv"``)."""
    return MODEL_LABELS.get(model, model)


def course_result(model: str, batch_size: int, cycles: int) -> dict[str, Any] | None:
    """The course project's row for that model, batch size and number of cycles, if it ran one."""
    for ref in COURSE_RESULTS:
        if (ref["model"], ref["batch_size"], ref["cycles"]) == (model, batch_size, cycles):
            return ref
    return None
