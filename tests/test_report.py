"""Studies and exports: report folders, the course-layout table, valid PNG/SVG/CSV files, filter grids."""

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine.backend import get_backend
from rso_engine.events import Evaluated
from rso_engine.experiment import HISTORY_FIELDS, make_trainer, save_history
from rso_engine.models import build_model
from rso_engine.plots import (
    PlotError,
    filter_grid_figure,
    filter_tiles,
    histories_figure,
    parse_size,
    save_filter_grid,
    save_histories_plot,
)
from rso_engine.report import RESULT_FIELDS, RunResult, StudyError, course_table, run_study, study_base

NUMPY = get_backend("numpy")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def assert_svg(path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), root.tag
    return root


def tiny_base(study, **changes):
    small = dict(
        dataset="mnist-sample",
        n_train=128,
        n_test=100,
        cycles=1,
        train_layers=["conv1"],
        eval_train_samples=64,
        bn_calibration_samples=64,
        evaluator="reference",
        dtype="float64",
    )
    small.update(changes)
    return study_base(study, changes=small)


def test_the_batch_sweep_writes_a_complete_report_folder(tmp_path):
    out = tmp_path / "sweep"
    lines = []
    result = run_study(
        "course-batch-sweep",
        out,
        tiny_base("course-batch-sweep"),
        batch_sizes=[8, 16],
        dataset=sample(),
        backend=NUMPY,
        plot_size=(640, 320),
        dpi=80,
        log=lines.append,
    )
    assert [r.label for r in result.runs] == ["OneConv RSO b8", "OneConv RSO b16", "OneConv SGD"]
    assert len(lines) == 3 and "test accuracy" in lines[0]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["report.md", "results.csv", "histories.json", "config.json"]
        + [
            f"{stem}.{ext}"
            for stem in ("accuracy-vs-cycles", "accuracy-vs-forward-samples", "batch-sweep")
            for ext in ("png", "svg")
        ]
    )
    for png in out.glob("*.png"):
        assert png_size(png) == (640, 320)
    for svg in out.glob("*.svg"):
        root = assert_svg(svg)
        assert root.get("width") == "576pt" and root.get("height") == "288pt"  # 640/80 in × 72 pt

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert list(rows[0]) == list(RESULT_FIELDS)
    assert [(r["algorithm"], r["batch_size"]) for r in rows] == [("rso", "8"), ("rso", "16"), ("sgd", "32")]
    assert all(0 <= float(r["test_accuracy"]) <= 1 and r["dataset"] == "mnist-sample" for r in rows)
    assert rows[0]["evaluator"] == "reference" and int(rows[1]["forward_samples"]) == 40 * 3 * 16

    report = (out / "report.md").read_text()
    assert "| model | batch | time (s) | test loss | test accuracy | course: time (s)" in report
    assert "| OneConv | 8 |" in report and "| OneConv (SGD) | 32 |" in report
    assert "mnist-sample: 128 training images" in report and "![batch-sweep](batch-sweep.png)" in report
    assert "not full MNIST" in report

    hist = json.loads((out / "histories.json").read_text())
    assert [len(r["history"]) for r in hist["runs"]] == [2, 2, 2]
    assert set(hist["runs"][0]["history"][0]) == set(HISTORY_FIELDS)
    conf = json.loads((out / "config.json").read_text())
    assert conf["study"] == "course-batch-sweep" and conf["base_config"]["train_layers"] == ["conv1"]
    assert [r["config"]["batch_size"] for r in conf["runs"]] == [8, 16, 16]


def test_equal_budget_stops_sgd_at_the_rso_forward_pass_budget(tmp_path):
    result = run_study(
        "equal-budget",
        tmp_path / "eb",
        tiny_base("equal-budget", cycles=2),
        batch_sizes=[8],
        dataset=sample(),
        backend=NUMPY,
        plot_size=(480, 300),
    )
    rso, sgd = result.runs
    budget = rso.history[-1].forward_samples
    assert budget == 2 * 40 * 3 * 8 and sgd.budget == budget
    assert 0 <= sgd.history[-1].forward_samples - budget < sgd.trainer.batch_size  # stopped mid-epoch
    assert sgd.history[-1].forward_samples == sgd.trainer.forward_samples  # evaluated where it stopped
    report = (tmp_path / "eb" / "report.md").read_text()
    assert "## At equal forward-pass budgets" in report and "| OneConv | 8 | 1,920 |" in report

    capped = run_study(
        "equal-budget",
        tmp_path / "cap",
        tiny_base("equal-budget", cycles=2),
        batch_sizes=[8],
        dataset=sample(),
        backend=NUMPY,
        max_sgd_epochs=2,
        plot_size=(480, 300),
    )
    assert capped.runs[1].history[-1].cycle == 2 and "budget capped" in capped.runs[1].note
    assert "budget capped" in (tmp_path / "cap" / "report.md").read_text()
    with pytest.raises(StudyError, match="cannot run without it"):
        run_study("equal-budget", tmp_path / "x", tiny_base("equal-budget"), sgd=False, dataset=sample())


def test_model_comparison_runs_each_model_then_its_sgd(tmp_path):
    result = run_study(
        "model-comparison",
        tmp_path / "mc",
        tiny_base("model-comparison", dtype="float32"),
        batch_sizes=[8],
        dataset=sample(),
        backend=NUMPY,
        plot_size=(480, 300),
        sgd=False,
    )
    assert [r.label for r in result.runs] == ["OneConv RSO b8", "TwoConv RSO b8"]
    with pytest.raises(StudyError, match="unknown study 'nope'"):
        run_study("nope", tmp_path / "n")


def test_the_course_table_shows_the_course_numbers_for_the_same_model_batch_and_cycles():
    t = make_trainer(tiny_config(batch_size=32, cycles=10), sample(), NUMPY, evaluator="reference")
    next(t.events())  # the evaluation before training: one history row, enough for a table
    table = course_table([RunResult("OneConv RSO b32", t, 1.0)])
    assert table.splitlines()[0] == (
        "| model | batch | time (s) | test loss | test accuracy | course: time (s) "
        "| course: test loss | course: test accuracy |"
    )
    assert table.splitlines()[2].endswith("| 212 | 0.632 | 0.8075 |")
    other = make_trainer(tiny_config(batch_size=16, cycles=10), sample(), NUMPY, evaluator="reference")
    next(other.events())
    assert course_table([RunResult("b16", other, 1.0)]).splitlines()[2].endswith("| – | – | – |")


def _history():
    rso = [Evaluated("rso", c, 2.3 - c / 10, 2.3 - c / 9, 0.1 + c / 20, c * 40, c * 1920, c * 0.5) for c in range(4)]
    sgd = [Evaluated("sgd", c, 2.3 - c / 5, 2.3 - c / 4, 0.1 + c / 10, c * 7890, c * 128, c * 0.1) for c in range(4)]
    return rso + sgd


@pytest.mark.parametrize("x_axis", ["cycles", "weight_updates", "forward_samples", "seconds"])
def test_history_plots_export_png_and_svg_at_the_chosen_size(tmp_path, x_axis):
    png = save_histories_plot(tmp_path / "h.png", _history(), x_axis=x_axis, size=(500, 300), dpi=50)
    assert png_size(png) == (500, 300)
    svg = save_histories_plot(tmp_path / "h.svg", _history(), x_axis=x_axis, size="800x400", dpi=100)
    root = assert_svg(svg)
    assert (root.get("width"), root.get("height")) == ("576pt", "288pt")
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_histories_export_to_csv_and_json(tmp_path):
    rows = _history()
    with (save_history(tmp_path / "h.csv", rows)).open() as fh:
        parsed = list(csv.DictReader(fh))
    assert list(parsed[0]) == list(HISTORY_FIELDS) and len(parsed) == 8
    assert json.loads(save_history(tmp_path / "h.json", rows).read_text())["history"][4]["algorithm"] == "sgd"


def test_filter_grids_use_symmetric_per_layer_levels(tmp_path):
    params = build_model("twoconv", seed=1, backend=NUMPY).params_numpy()
    name, tiles = filter_tiles(params, "conv2")
    assert name == "conv2.weight" and tiles.shape == (16, 16, 3, 3)
    fig = filter_grid_figure(params, "conv2")
    vmin, vmax = fig.axes[0].images[0].get_clim()
    assert vmax == -vmin == pytest.approx(np.abs(params["conv2.weight"]).max())
    assert png_size(save_filter_grid(params, "conv1", tmp_path / "f.png", size=(400, 300))) == (400, 300)
    assert_svg(save_filter_grid(params, "conv1", tmp_path / "f.svg"))
    # a dense layer fed by a conv is drawn as one image per (output neuron, input channel)
    assert filter_tiles(params, "fc")[1].shape == (10, 16, 7, 7)
    one = build_model("oneconv", backend=NUMPY).params_numpy()
    assert filter_tiles(one, "fc")[1].shape == (10, 4, 14, 14)
    assert png_size(save_filter_grid(one, "fc.weight", tmp_path / "fc.png")) > (100, 100)
    with pytest.raises(PlotError, match="no layer 'conv9'.*conv1, conv2, fc"):
        filter_tiles(params, "conv9")


def test_plot_arguments_are_checked_clearly(tmp_path):
    assert parse_size("1200x500") == parse_size("1200×500") == parse_size((1200, 500)) == (1200, 500)
    for bad in ("12", "0x100", "100x99999", "axb"):
        with pytest.raises(PlotError, match="size"):
            parse_size(bad)
    with pytest.raises(PlotError, match="unknown x-axis 'epochs'"):
        histories_figure(_history(), x_axis="epochs")
    with pytest.raises(PlotError, match="use a .png, .svg or .pdf"):
        save_histories_plot(tmp_path / "h.gif", _history())
    with pytest.raises(PlotError, match="nothing to plot"):
        histories_figure([])


def test_importing_the_engine_does_not_import_matplotlib():
    code = (
        "import sys, rso_engine, rso_engine.cli, rso_engine.plots, rso_engine.report, rso_engine.session, "
        "rso_engine.presets; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_history_figure_can_have_one_panel(tmp_path):
    assert len(histories_figure(_history(), panels=["loss"]).axes) == 1
    png = save_histories_plot(tmp_path / "acc.png", _history(), panels=("accuracy",), size=(400, 300))
    assert png_size(png) == (400, 300)
    with pytest.raises(PlotError, match="panels must be some of accuracy, loss"):
        histories_figure(_history(), panels=["weights"])


def test_exported_files_get_ordinary_permissions_not_private_temp_file_ones(tmp_path):
    from rso_engine.files import _umask

    png = save_histories_plot(tmp_path / "h.png", _history(), size=(300, 200))
    assert png.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_the_paper_study_runs_each_variant_and_writes_its_claims(tmp_path):
    result = run_study(
        "paper",
        tmp_path / "paper",
        tiny_base("paper", cycles=2, train_layers=["conv1"], dtype="float32"),
        models=["oneconv"],
        batch_sizes=[8],
        dataset=sample(),
        backend=NUMPY,
        plot_size=(480, 300),
    )
    labels = [r.label for r in result.runs]
    assert labels == ["OneConv RSO b8 sequential", "OneConv RSO b8 layer-parallel", "OneConv RSO b8 neuron-parallel",
                      "OneConv RSO b8 fresh prefix per batch", "OneConv RSO b8 input-first",
                      "OneConv RSO b8 reversed in-layer order", "OneConv SGD"]
    configs = {r.label.split("b8 ")[-1]: r.config for r in result.runs}
    assert configs["sequential"].batch_mode == "authors" and configs["sequential"].stay_decay == 1e-4
    assert configs["layer-parallel"].update == "layer-parallel"
    assert configs["fresh prefix per batch"].batch_mode == "weight"
    assert configs["input-first"].layer_order == "input-first"
    text = (tmp_path / "paper" / "report.md").read_text()
    assert "## The paper's claims, our numbers beside them" in text
    assert "| RSO test accuracy after 50 cycles | 99.12% |" in text
    seq = result.runs[0].history
    assert f"{100 * seq[-1].test_accuracy:.2f}% after 2 cycles" in text
    assert "## The variants against the authors' sequential setting" in text
    assert "course: time (s)" not in text  # the paper's layout, not the course project's table
