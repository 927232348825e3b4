"""The `rso` command line: train, compare, sweep, info, resume, and one-line errors."""

import pytest

from rso_engine.cli import main

TINY = ["--n-train", "128", "--n-test", "100", "--batch-size", "16", "--eval-train-samples", "64"]


def test_train_prints_backend_and_final_table(capsys, tmp_path):
    hist = tmp_path / "h.csv"
    code = main(["train", "--model", "oneconv", "--cycles", "1", "--train-layers", "conv1", "--evaluator",
                 "reference", "--history", str(hist), "--save-config", str(tmp_path / "c.json"), *TINY])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("backend: ")
    assert "test acc" in out and "evaluator: reference" in out
    assert len(hist.read_text().splitlines()) == 3  # header, cycle 0, cycle 1
    assert '"train_layers": [\n    "conv1"' in (tmp_path / "c.json").read_text()


def test_train_checkpoint_and_resume(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    args = ["train", "--model", "mlp", "--train-layers", "fc2", "--evaluator", "reference", *TINY]
    assert main([*args, "--cycles", "1", "--checkpoint", str(ck)]) == 0
    assert ck.exists()
    assert main(["train", "--resume", str(ck)]) == 0
    assert "resuming" in capsys.readouterr().out


def test_compare_and_sweep_tables(capsys):
    assert main(["compare", "--model", "oneconv", "--cycles", "1", "--train-layers", "conv1", *TINY]) == 0
    out = capsys.readouterr().out
    assert "rso" in out and "sgd" in out and "weight updates" in out
    assert main(["sweep", "--batch-sizes", "8", "16", "--cycles", "1", "--train-layers", "conv1",
                 *TINY[:4], "--eval-train-samples", "64"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[-4].split() == ["model", "batch", "time", "(s)", "test", "loss", "test", "accuracy"]
    assert [row.split()[1] for row in table[-2:]] == ["8", "16"]


def test_info_lists_backend_models_and_datasets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend: " in out and "papernet" in out and "mnist-sample" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope"], "invalid choice"),
    (["train", "--batch-size", "0"], "must be ≥ 1"),
    (["train", "--dataset", "nope"], "nope"),
    (["train", "--batch-size", "5000", "--n-train", "10"], "larger than the 10 training images"),
    (["train", "--resume", "/nonexistent.npz"], "no such file"),
    (["train", "--config", "/nonexistent.json"], "cannot read config file"),
])
def test_bad_arguments_give_one_clear_line(capsys, argv, message):
    with pytest.raises(SystemExit) if "invalid choice" in message or "≥" in message else _nothing():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- presets, figures, sessions, reports
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUICK = ["--cycles", "1", "--train-layers", "conv1", "--evaluator", "reference", *TINY]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture
def user_presets(tmp_path, monkeypatch):
    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "presets"


def test_presets_list_show_save_and_use(capsys, tmp_path, user_presets):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "quick-demo" in out and "course-oneconv-b512" in out and "built-in" in out and str(user_presets) in out
    assert main(["presets", "show", "paper-mnist"]) == 0
    assert '"batch_size": 5000' in capsys.readouterr().out
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text('{"model": "mlp", "batch_size": 16}')
    assert main(["presets", "save", "mine", "--from-config", str(cfg_file), "--cycles", "3",
                 "--description", "my run"]) == 0
    assert "saved to" in capsys.readouterr().out
    assert main(["presets", "list"]) == 0
    assert "mine" in capsys.readouterr().out.split("built-in")[-1]
    assert main(["train", "--preset", "mine", "--cycles", "1", "--train-layers", "fc2", "--evaluator", "reference",
                 *TINY]) == 0
    assert "model: mlp" in capsys.readouterr().out
    assert main(["train", *QUICK, "--save-preset", "from-train", "--description", "saved while training"]) == 0
    assert (user_presets / "from-train.json").is_file()
    assert main(["presets", "save", "small-paper", "--preset", "paper-mnist", "--batch-size", "500"]) == 0
    from rso_engine.presets import load_preset

    assert load_preset("small-paper").notes["description"] == "based on preset paper-mnist; changed: batch_size=500"
    assert main(["presets", "delete", "mine"]) == 0
    assert not (user_presets / "mine.json").exists()


def test_preset_then_config_then_options(tmp_path, user_presets):
    from rso_engine.cli import build_parser, config_from_args

    cfg_file = tmp_path / "c.json"
    cfg_file.write_text('{"cycles": 4, "seed": 3}')
    args = build_parser().parse_args(["train", "--preset", "paper-mnist", "--config", str(cfg_file), "--seed", "5"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.batch_size, cfg.stay_decay) == ("papernet", 5000, 1e-4)  # from the preset
    assert cfg.cycles == 4  # the config file overrides the preset's 50 ...
    assert cfg.seed == 5  # ... and an option overrides the config file


def test_anneal_to_reaches_the_config_and_the_header(capsys):
    from rso_engine.cli import build_parser, config_from_args

    cfg = config_from_args(build_parser().parse_args(["train", "--anneal-to", "0.3"]))
    assert (cfg.anneal, cfg.anneal_to) == (True, 0.3)
    assert config_from_args(build_parser().parse_args(["train", "--no-anneal"])).anneal is False
    assert main(["train", "--model", "mlp", "--train-layers", "fc2", "--evaluator", "reference", "--cycles", "2",
                 "--anneal-to", "0.3", *TINY]) == 0
    assert "σ annealed from σ_d to σ_d·0.65 over 2 cycles" in capsys.readouterr().out  # 0.3 + 0.7 / 2


@pytest.mark.parametrize("value", ["0", "1.5"])
def test_anneal_to_outside_0_1_is_refused_naming_the_field(capsys, value):
    assert main(["train", "--anneal-to", value, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rso: error: anneal_to must be a number in (0, 1]") and len(err.splitlines()) == 1


def test_anneal_to_with_no_anneal_is_a_contradiction(capsys):
    assert main(["train", "--no-anneal", "--anneal-to", "0.3", *TINY]) == 2
    assert "give one" in capsys.readouterr().err


def test_compare_plots_headless_and_saves_a_resumable_session(capsys, tmp_path):
    png, svg, session = tmp_path / "cmp.png", tmp_path / "cmp.svg", tmp_path / "s.rso.npz"
    assert main(["compare", *QUICK, "--plot", str(png), "--plot", str(svg), "--plot-size", "640x360",
                 "--x-axis", "forward_samples", "--session", str(session)]) == 0
    out = capsys.readouterr().out
    assert f"figure written to {png}" in out and f"session saved to {session}" in out
    assert _png_size(png) == (640, 360)
    import xml.etree.ElementTree as ET

    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert main(["session", str(session)]) == 0
    out = capsys.readouterr().out
    assert "rso session version 1" in out and "1 of 1" in out
    assert main(["compare", "--resume", str(session)]) == 0  # already finished: prints the tables again
    assert "resuming session" in capsys.readouterr().out


def test_report_writes_the_study_folder(capsys, tmp_path):
    out_dir = tmp_path / "rep"
    assert main(["report", "course-batch-sweep", "--out", str(out_dir), "--dataset", "mnist-sample",
                 "--batch-sizes", "8", "16", "--no-sgd", "--plot-size", "480x300", *QUICK]) == 0
    out = capsys.readouterr().out
    assert out.startswith("backend: ") and f"report written to {out_dir / 'report.md'}" in out
    assert _png_size(out_dir / "batch-sweep.png") == (480, 300)
    report = (out_dir / "report.md").read_text()
    assert "command: `rso report course-batch-sweep --out" in report and "| OneConv | 16 |" in report


@pytest.mark.parametrize("argv, message", [
    (["train", "--preset", "nope"], "unknown preset 'nope'; available presets: quick-demo"),
    (["compare", "--plot", "x.gif"], "use a .png, .svg or .pdf"),
    (["compare", "--plot-size", "big"], "is not WIDTHxHEIGHT"),
    (["compare", "--resume", "/nonexistent.rso.npz"], "no such file"),
    (["report", "nope", "--out", "x"], "invalid choice"),
    (["presets", "save", "quick-demo"], "is a built-in preset; choose another name"),
])
def test_new_options_fail_with_one_clear_line(capsys, argv, message, user_presets):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_resume_keeps_the_saved_settings_adds_cycles_and_refuses_other_changes(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    args = ["train", "--model", "mlp", "--train-layers", "fc2", "--evaluator", "reference", *TINY]
    assert main([*args, "--cycles", "1", "--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(ck), "--model", "twoconv", "--batch-size", "32"]) == 2
    err = capsys.readouterr().err
    assert "--model twoconv (saved: mlp)" in err and "--batch-size 32 (saved: 16)" in err
    assert err.count("\n") == 1  # one line
    assert main(["train", "--resume", str(ck), "--model", "mlp"]) == 0  # the same value is fine
    assert "already finished" in capsys.readouterr().out
    assert main(["train", "--resume", str(ck), "--cycles", "2", "--checkpoint", str(ck)]) == 0
    out = capsys.readouterr().out
    assert "cycles 1 → 2" in out and out.rstrip().splitlines()[-1].split()[1] == "2"  # ran the second cycle
    assert main(["train", "--resume", str(ck), "--preset", "quick-demo"]) == 2
    assert "--preset" in capsys.readouterr().err


def test_a_failing_sgd_keeps_the_rso_results(capsys, tmp_path):
    code = main(["compare", "--model", "mlp", "--train-layers", "fc2", "--cycles", "1", "--lr", "1e12", *TINY,
                 "--history", str(tmp_path / "h.csv")])
    out, err = capsys.readouterr()
    assert code == 1
    assert "SGD failed:" in err and "learning rate" in err and "the other run's results are shown" in err
    rows = [line.split() for line in out.splitlines()]
    assert ["rso", "1", "0.2"][:2] in [r[:2] for r in rows]  # RSO's summary row: cycle 1
    assert ["sgd", "failed"] in rows
    assert (tmp_path / "h.csv").read_text().count("\nrso,") == 2  # RSO's history is written


def test_output_files_that_cannot_be_written_are_refused_before_training(capsys, tmp_path):
    base = ["--cycles", "1", "--train-layers", "fc2", "--model", "mlp", *TINY]
    for argv, says in ((["train", "--checkpoint", str(tmp_path)], "is a folder"),
                       (["train", "--history", str(tmp_path / "no" / "h.csv")], "does not exist"),
                       (["compare", "--session", str(tmp_path)], "is a folder")):
        assert main([*argv, *base]) == 2
        out, err = capsys.readouterr()
        assert says in err and "algorithm" not in out  # no training table: refused up front
    (tmp_path / "file").write_text("x")
    assert main(["report", "course-batch-sweep", "--out", str(tmp_path / "file"), *TINY]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error():
    """`rso info | head -1`: the reader goes away; rso ends quietly, with status 0."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "rso_engine.cli", "info"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Broken pipe" not in err and "Traceback" not in err
