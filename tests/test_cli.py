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
