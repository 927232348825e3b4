"""The sections of ``rso report paper``: accuracy per cycle against SGD per epoch, the paper's claims with our
numbers beside them, and the cost and accuracy of each variant against the authors' sequential setting."""

from __future__ import annotations

from collections.abc import Sequence

from .results import RunResult, StudyResult
from .tables import md_table, plural, secs

#: the paper's own numbers (MNIST, the 6-conv net; arXiv 2005.05955)
PAPER_CLAIMS = {
    "after_5": 0.98,  # "after updating the weights just 5 times ... 98% on MNIST"
    "rso_50": 0.9912,  # RSO after 50 cycles
    "sgd_50": 0.9927,  # SGD after 50 epochs
}
#: accuracies at which the weight updates RSO and SGD needed are compared
THRESHOLDS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _at(run: RunResult, cycle: int) -> float | None:
    """Test accuracy after ``cycle`` cycles (epochs), or None if the run stopped before."""
    return next((h.test_accuracy for h in run.history if h.cycle == cycle), None)


def _first_reaching(run: RunResult, accuracy: float):
    """The first history row at or above ``accuracy``, or None."""
    return next((h for h in run.history if h.cycle > 0 and h.test_accuracy >= accuracy), None)


def _variant(run: RunResult) -> str:
    return run.label.split(f" b{run.batch_size}", 1)[-1].strip() or "sequential"


def accuracy_table(runs: Sequence[RunResult]) -> str:
    """Test accuracy after each cycle (RSO) or epoch (SGD), one column per run."""
    last = max(h.cycle for r in runs for h in r.history)
    rows = [[c] + [_pct(_at(r, c)) for r in runs] for c in range(last + 1)]
    return md_table(["cycle / epoch", *(r.label for r in runs)], rows)


def claims_table(seq: RunResult, sgd: RunResult | None) -> str:
    """The paper's claims, its number and ours."""
    cycles = seq.history[-1].cycle
    rows = [
        ("RSO test accuracy after each weight was updated 5 times (5 cycles)", _pct(PAPER_CLAIMS["after_5"]),
         _pct(_at(seq, 5)) if cycles >= 5 else f"– (ran {cycles} cycles)"),
        ("RSO test accuracy after 50 cycles", _pct(PAPER_CLAIMS["rso_50"]),
         _pct(_at(seq, 50)) if cycles >= 50 else f"{_pct(seq.history[-1].test_accuracy)} after {cycles} cycles"),
    ]
    if sgd is not None:
        epochs = sgd.history[-1].cycle
        rows.append(("SGD test accuracy after 50 epochs", _pct(PAPER_CLAIMS["sgd_50"]),
                     _pct(_at(sgd, 50)) if epochs >= 50 else f"{_pct(sgd.history[-1].test_accuracy)} after {epochs} "
                     "epochs"))
    return md_table(("claim", "paper (MNIST)", "ours"), rows)


def updates_table(seq: RunResult, sgd: RunResult) -> str:
    """Weight updates (and cycles / epochs) each needed to first reach a test accuracy: the paper's "an order
    of magnitude fewer weight updates than SGD". An RSO weight update is one weight tried; an SGD step
    updates every parameter."""
    rows = []
    for a in THRESHOLDS:
        r, s = _first_reaching(seq, a), _first_reaching(sgd, a)
        if r is None and s is None:
            continue
        ratio = f"{s.weight_updates / r.weight_updates:.1f}×" if r and s else "–"
        rows.append((_pct(a), f"{r.weight_updates:,} ({plural(r.cycle, 'cycles')})" if r else "not reached",
                     f"{s.weight_updates:,} ({plural(s.cycle, 'epochs')})" if s else "not reached", ratio))
    if not rows:
        return "(neither run reached 50% test accuracy)"
    return md_table(("test accuracy", "RSO weight updates", "SGD weight updates", "SGD / RSO"), rows)


def variants_table(runs: Sequence[RunResult]) -> str:
    """Each variant's final accuracy and training time against the sequential run of its model and batch."""
    rows = []
    for run in runs:
        seq = next((r for r in runs if r.config.model == run.config.model and r.batch_size == run.batch_size
                    and _variant(r) == "sequential"), run)
        last, base = run.history[-1], seq.history[-1]
        per_weight = last.seconds / max(last.weight_updates, 1)
        ratio = base.seconds / last.seconds if last.seconds > 0 else float("nan")
        rows.append((_variant(run), run.config.model, run.batch_size, _pct(last.test_accuracy),
                     f"{100 * (last.test_accuracy - base.test_accuracy):+.2f}", secs(last.seconds),
                     f"{1e3 * per_weight:.3g}", f"{ratio:.2f}"))
    return md_table(("variant", "model", "batch", "test accuracy", "vs sequential (points)", "time (s)",
                     "ms per weight", "speed vs sequential"), rows)


def paper_sections(result: StudyResult) -> list[str]:
    """The lines ``report.md`` of the paper study adds after its table."""
    rso = [r for r in result.runs if r.algorithm == "rso"]
    sgd = next((r for r in result.runs if r.algorithm == "sgd"), None)
    seq = next((r for r in rso if _variant(r) == "sequential"), rso[0] if rso else None)
    if seq is None:
        return []
    lines = ["## The paper's claims, our numbers beside them", "", claims_table(seq, sgd), ""]
    ds = result.runs[0].record
    if (ds.dataset, ds.n_train) != ("mnist", 60000):
        why = {"fashion-mnist": "Fashion-MNIST is a harder task for the same network",
               "mnist-sample": "the bundled sample is a small part of MNIST"}.get(ds.dataset, "another task")
        lines += [f"(these runs used {ds.dataset} with {ds.n_train:,} training images, not full MNIST: {why}, so the "
                  "paper's numbers are a landmark, not a like-for-like target)", ""]
    if sgd is not None:
        lines += ["## Weight updates to reach a test accuracy (the paper: an order of magnitude fewer for RSO)", "",
                  updates_table(seq, sgd), "",
                  "An RSO weight update is one weight tried; an SGD step updates every parameter of the model.", ""]
    lines += ["## Test accuracy after each cycle (RSO) and epoch (SGD)", "", accuracy_table(result.runs), ""]
    if len(rso) > 1:
        lines += ["## The variants against the authors' sequential setting", "", variants_table(rso), "",
                  "time (s) is training compute time, in one process; layer-parallel scores many weights at a "
                  "time against the layer's starting state, neuron-parallel runs the sequential evaluators "
                  "(see docs/engine.md).", ""]
    return lines
