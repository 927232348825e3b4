"""Everything rso loads from a file is checked before it reaches a trainer or a compiled kernel.

Property-based (hypothesis): random corruption of a valid checkpoint, session or folder of IDX files
(bytes flipped or cut, header values deleted or replaced, arrays replaced by ones of the wrong shape,
dtype or range) gives either our error naming the file or a load that runs: never another exception,
never a crash. Then the common corruptions one by one, each with its specific message; the segfault
that an out-of-range batch order used to cause, in a subprocess; and the cleanup of temporary files
that a killed save leaves behind.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from helpers import sample
from rso_engine.cli.main import main
from rso_engine.config import RunConfig
from rso_engine.data import DataError, load_dataset
from rso_engine.events import SGDStep, WeightTried
from rso_engine.experiment import CheckpointError, load_checkpoint, make_trainer, save_checkpoint
from rso_engine.files import STALE_SECONDS, remove_stale_temporaries, write_atomic
from rso_engine.session import SessionError, load_session, read_session_info, save_session
from rso_engine.training import TrainingError

N_TRAIN = 64
#: examples per property test; RSO_FUZZ_EXAMPLES=2000 for a longer hunt (--hypothesis-show-statistics: outcomes)
FUZZ = settings(max_examples=int(os.environ.get("RSO_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _config(**changes) -> RunConfig:
    base = dict(model="oneconv", n_train=N_TRAIN, n_test=32, batch_size=8, cycles=2, eval_train_samples=32,
                bn_calibration_samples=32, train_layers=["fc"])
    return RunConfig(**{**base, **changes}).validated()


def _advance(trainer, kind, n: int) -> None:
    seen = 0
    for ev in trainer.events():
        seen += isinstance(ev, kind)
        if seen == n:
            return


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A valid checkpoint (the paper net: BN buffers, a shared batch) and session (RSO + SGD with momentum)."""
    folder = tmp_path_factory.mktemp("valid")
    rso = make_trainer(_config(model="papernet", batch_mode="layer"), sample())
    _advance(rso, WeightTried, 5)
    checkpoint = save_checkpoint(folder / "run.npz", rso)
    rso = make_trainer(_config(), sample())
    sgd = make_trainer(_config(algorithm="sgd", momentum=0.9, sgd_batch_size=16), sample())
    _advance(rso, WeightTried, 7)
    _advance(sgd, SGDStep, 2)
    session = save_session(folder / "run.rso.npz", rso, sgd, extra={"view": {"layer": "fc"}})
    return {"checkpoint": checkpoint, "session": session}


def _read_raw(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(arrays.pop("__header__").tobytes().decode()), arrays


def _write_raw(path: Path, header, arrays: dict[str, np.ndarray], raw_header: bytes | None = None) -> Path:
    body = raw_header if raw_header is not None else json.dumps(header).encode()
    np.savez(path, __header__=np.frombuffer(body, np.uint8), **arrays)
    return path


def _note(outcome: str) -> None:
    """Count an outcome for --hypothesis-show-statistics (inside a property test only)."""
    if currently_in_test_context():
        event(outcome)


def _load(kind: str, path: Path):
    """Load and run a few weights / steps; our errors come back as the exception, not raised."""
    try:
        if kind == "session":
            trainers = load_session(path, dataset=sample()).trainers
        else:
            trainers, _ = load_checkpoint(path, dataset=sample())
    except CheckpointError as exc:  # SessionError is one too
        assert str(path) in str(exc), f"the message names no file: {exc}"
        _note("refused: " + re.sub(r"\d+|'[^']*'|\([^)]*\)", "#", str(exc).replace(str(path), "FILE"))[:90])
        return exc
    for t in trainers:
        try:
            _advance(t, WeightTried if t.algorithm == "rso" else SGDStep, 3)
        except TrainingError:  # weights edited to overflow the network: refused while training
            _note("loaded; training stopped with a TrainingError")
            continue
        _note("loaded and ran")
    return None


def _expect(kind: str, path: Path, match: str) -> None:
    err = _load(kind, path)
    assert err is not None, "the damaged file loaded"
    assert isinstance(err, SessionError if kind == "session" else CheckpointError)
    assert re.search(match, str(err)), f"{match!r} not in {err}"


# ------------------------------------------------------------------ random corruption
def _json_paths(obj, prefix=()):
    yield prefix
    children = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in children:
        yield from _json_paths(value, (*prefix, key))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=4)
    | st.sampled_from([0, -1, 1, 2, 63, 64, 65, 2**31, 2**63, 2**64, "1", "rso", "sgd", "PCG64", 1.5, [], {}]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=4,
)


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def _mutate_json(draw, header, numbers_only: bool = False) -> None:
    paths = [p for p in _json_paths(header) if p]
    if numbers_only:  # a whole number moved near its range: positions, counters, epochs at their edges
        paths = [p for p in paths if _get(header, p).__class__ is int] or paths
        path = draw(st.sampled_from(paths))
        _get(header, path[:-1])[path[-1]] = draw(st.integers(-2, 70) | st.sampled_from([N_TRAIN * 8, 6760, 6761]))
        return
    path = draw(st.sampled_from(paths))
    parent = header
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    op = draw(st.sampled_from(["delete", "replace", "nudge"]))
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "nudge" and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = value + draw(st.sampled_from([-1, 1, -(10**6), 10**6, 2**64])) if draw(st.booleans()) \
            else -value
    else:
        parent[key] = draw(JSON_VALUES)


def _bad_array(draw, arr: np.ndarray) -> np.ndarray:
    op = draw(st.sampled_from(["shape", "dtype", "value", "duplicate", "scalar", "empty", "strings", "layout",
                               "swap"]))
    if op == "swap" and arr.size > 1:  # still a valid array (a permutation stays one): must load and run
        out, i, j = arr.copy(), draw(st.integers(0, arr.size - 1)), draw(st.integers(0, arr.size - 1))
        out.flat[i], out.flat[j] = arr.flat[j], arr.flat[i]
        return out
    if op == "layout":  # the same values, Fortran-ordered or big-endian
        return np.asfortranarray(arr) if arr.ndim > 1 else arr.astype(arr.dtype.newbyteorder(">"))
    if op == "shape":
        return arr.reshape(-1)[: max(arr.size - 1, 0)] if draw(st.booleans()) else np.zeros((*arr.shape, 2))
    if op == "dtype":
        dtype = draw(st.sampled_from([np.int32, np.float16, np.float64, np.uint8, np.bool_, np.complex64]))
        return arr.astype(dtype) if arr.dtype.kind in "biufc" else np.zeros(arr.shape, dtype)
    if op == "scalar":
        return np.array(draw(st.integers(-5, 100)))
    if op == "empty":
        return arr.reshape(-1)[:0]
    if op == "strings":
        return np.array(["x"] * max(arr.size, 1))
    out = arr.copy() if arr.dtype.kind in "biuf" else np.zeros(arr.shape)
    if out.size == 0:
        return np.arange(N_TRAIN + 3)
    i = draw(st.integers(0, out.size - 1))
    if op == "duplicate":
        out.flat[i] = out.flat[(i + 1) % out.size]
    elif out.dtype.kind == "f":
        out.flat[i] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0]))
    else:
        out.flat[i] = draw(st.sampled_from([-1, N_TRAIN, N_TRAIN + 1, 10**10, -(10**10)]))
    return out


@st.composite
def corrupted(draw, src: Path, out: Path) -> Path:
    """``src`` damaged in one of three ways: its bytes, its JSON header, its arrays."""
    how = draw(st.sampled_from(["bytes", "header", "arrays", "header+arrays", "numbers", "numbers+arrays"]))
    if how == "bytes":
        data = bytearray(src.read_bytes())
        if draw(st.booleans()):
            for _ in range(draw(st.integers(1, 4))):
                data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        else:
            data = data[: draw(st.integers(0, len(data) - 1))]
        out.write_bytes(bytes(data))
        return out
    header, arrays = _read_raw(src)
    if "header" in how or "numbers" in how:
        for _ in range(draw(st.integers(1, 3))):
            _mutate_json(draw, header, numbers_only="numbers" in how)
    if "arrays" in how:
        for _ in range(draw(st.integers(1, 2))):
            key = draw(st.sampled_from(sorted(arrays)))
            op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
            if op == "delete":
                del arrays[key]
            elif op == "add":
                arrays[key.rsplit("/", 1)[0] + "/extra"] = np.zeros(3)
            else:
                arrays[key] = _bad_array(draw, arrays[key])
    return _write_raw(out, header, arrays)


@FUZZ
@given(data=st.data())
def test_a_corrupted_checkpoint_is_refused_clearly_or_loads_and_runs(files, tmp_path_factory, data):
    out = data.draw(corrupted(files["checkpoint"], tmp_path_factory.getbasetemp() / "fuzzed.npz"))
    _load("checkpoint", out)


@FUZZ
@given(data=st.data())
def test_a_corrupted_session_is_refused_clearly_or_loads_and_runs(files, tmp_path_factory, data):
    out = data.draw(corrupted(files["session"], tmp_path_factory.getbasetemp() / "fuzzed.rso.npz"))
    try:
        read_session_info(out)  # the cheap look at a file ("Open", `rso session`) never raises another error
    except SessionError:
        pass
    _load("session", out)


# ------------------------------------------------------------------ the common corruptions, one by one
def _edit(src: Path, dst: Path, header_change=None, arrays_change=None) -> Path:
    header, arrays = _read_raw(src)
    if header_change:
        header = header_change(header) or header
    if arrays_change:
        arrays_change(arrays)
    return _write_raw(dst, header, arrays)


def _set(path: str, value):
    def change(h):
        *parents, last = path.split(".")
        node = h
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return change


def _perm_plus(key: str, offset: int):
    def change(a):
        a[key] = a[key] + offset
    return change


SESSION_CASES = [
    ("version 0", _set("version", 0), None, r"unknown format version 0"),
    ("version -1", _set("version", -1), None, r"unknown format version -1"),
    ("version '1'", _set("version", "1"), None, r"unknown format version '1'"),
    ("version true", _set("version", True), None, r"unknown format version True"),
    ("a list header", lambda h: [h], None, r"header is a JSON list, not an object"),
    ("a string header", lambda h: "x", None, r"header is a JSON str"),
    ("no trainers", lambda h: h.pop("trainers") and None, None, r"lists no runs"),
    ("no config", lambda h: h["trainers"][0].pop("config") and None, None, r"run 1 .*config and a state"),
    ("config a list", _set("trainers.0.config", [1]), None, r"run 1 .*config and a state"),
    ("bad config", _set("trainers.0.config.batch_size", "8"), None, r"the config of run 1 is not valid.*batch_size"),
    ("roles", _set("extra.roles", ["sgd", "rso"]), None, r"roles"),
    ("app a list", _set("extra.app", [1]), None, r"window's settings"),
    ("history row", _set("trainers.0.state.history.0", [1, 2]), None, r"history row 1 must be a list of 8"),
    ("history type", _set("trainers.0.state.history.0.2", "x"), None, r"history row 1: train_loss must be a number"),
    ("history nan", _set("trainers.0.state.history.0.3", float("nan")), None, r"test_loss is nan"),
    ("position pos", _set("trainers.0.state.rso.position.pos", 10**6), None, r"rso.position.pos is 1000000, out of"),
    ("position group", _set("trainers.0.state.rso.position.group", 1), None, r"rso.position.group is 1, out of"),
    ("position key", _set("trainers.0.state.rso.position.step", 1), None, r"rso.position has the fields"),
    ("position type", _set("trainers.0.state.rso.position.cycle", 0.5), None, r"rso.position.cycle must be a whole"),
    ("steps", _set("trainers.0.state.rso.steps", -1), None, r"rso.steps is -1"),
    ("counter", _set("trainers.1.state.forward_samples", None), None, r"run 2 \(sgd\): forward_samples must be"),
    ("seconds", _set("trainers.0.state.seconds", float("inf")), None, r"seconds is inf"),
    ("rng fields", _set("trainers.0.state.rso.delta_rng.state", {"state": 1}), None, r"rso.delta_rng.state has the"),
    ("rng value", _set("trainers.0.state.rso.delta_rng.state.inc", -5), None, r"rso.delta_rng.state.inc is -5"),
    ("rng name", _set("trainers.0.state.rso.delta_rng.bit_generator", "MT19937"), None, r"'MT19937', not 'PCG64'"),
    ("stream rng", _set("trainers.0.state.rso.stream.rng", 3), None, r"batch stream's random state must be"),
    ("stream pos", _set("trainers.0.state.rso.stream.pos", 65), None, r"batch stream's position is 65"),
    ("sigma", lambda h: h["trainers"][0]["state"]["rso"]["sigma"].update({"fc.weight": float("nan")}), None,
     r"rso.sigma.fc.weight is nan"),
    ("sgd epoch", _set("trainers.1.state.sgd.epoch", 3), None, r"sgd.epoch is 3, out of range 0..2"),
    ("sgd step", _set("trainers.1.state.sgd.step_in_epoch", 4), None, r"sgd.step_in_epoch is 4, out of range 0..3"),
    ("perm out of range", None, _perm_plus("t0/rso/perm", 10**10), r"rso/perm is not an order of the 64 training"),
    ("perm repeats", None, lambda a: a["t0/rso/perm"].__setitem__(0, a["t0/rso/perm"][1]), r"repeats an index"),
    ("perm floats", None, lambda a: a.update({"t0/rso/perm": a["t0/rso/perm"] * 1.0}), r"must hold whole numbers"),
    ("perm short", None, lambda a: a.update({"t0/rso/perm": a["t0/rso/perm"][:10]}), r"rso/perm has shape \(10,\)"),
    ("perm missing", None, lambda a: a.pop("t0/rso/perm"), r"the array rso/perm is missing"),
    ("sgd perm", None, _perm_plus("t1/sgd/perm", -1), r"sgd/perm is not an order"),
    ("param shape", None, lambda a: a.update({"t0/param/fc.weight": np.zeros((10, 10), np.float32)}),
     r"param/fc.weight has shape \(10, 10\); this run needs \(10, 784\)"),
    ("param nan", None, lambda a: a["t0/param/fc.bias"].__setitem__(3, np.nan), r"param/fc.bias holds NaN"),
    ("param ints", None, lambda a: a.update({"t0/param/fc.bias": np.zeros(10, np.int64)}), r"holds int64 values"),
    ("param missing", None, lambda a: a.pop("t0/param/conv1.weight"), r"param/conv1.weight is missing"),
    ("param unknown", None, lambda a: a.update({"t0/param/fc2.weight": np.zeros(3)}), r"include param/fc2.weight"),
    ("velocity", None, lambda a: a.update({"t1/velocity/fc.bias": np.zeros(3, np.float32)}),
     r"velocity/fc.bias has shape"),
]


@pytest.mark.parametrize("header_change, arrays_change, match", [c[1:] for c in SESSION_CASES],
                         ids=[c[0] for c in SESSION_CASES])
def test_each_common_corruption_of_a_session_gets_its_own_message(files, tmp_path, header_change, arrays_change,
                                                                  match):
    bad = _edit(files["session"], tmp_path / "bad.rso.npz", header_change, arrays_change)
    _expect("session", bad, match)


CHECKPOINT_CASES = [
    ("shared batch", lambda a: a["t0/rso/shared_batch"].__setitem__((0, 0), 64), r"shared_batch holds indices"),
    ("shared batch shape", lambda a: a.update({"t0/rso/shared_batch": np.zeros((2, 8), np.int64)}),
     r"shared_batch has shape \(2, 8\); this run needs \(1, 8\)"),
    ("bn buffer shape", lambda a: a.update({"t0/buffer/bn1.mean": np.zeros(3, np.float32)}), r"bn1.mean has shape"),
    ("bn variance", lambda a: a["t0/buffer/bn2.var"].__setitem__(0, -1.0), r"buffer/bn2.var holds negative"),
    ("bn buffer missing", lambda a: a.pop("t0/buffer/bn6.var"), r"buffer/bn6.var is missing"),
]


@pytest.mark.parametrize("arrays_change, match", [c[1:] for c in CHECKPOINT_CASES],
                         ids=[c[0] for c in CHECKPOINT_CASES])
def test_each_common_corruption_of_a_checkpoint_gets_its_own_message(files, tmp_path, arrays_change, match):
    _expect("checkpoint", _edit(files["checkpoint"], tmp_path / "bad.npz", arrays_change=arrays_change), match)


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe{", r"header is not readable JSON \(UnicodeDecodeError\)"),
    (b"{not json", r"header is not readable JSON \(JSONDecodeError\)"),
    (b"[" * 100_000 + b"]" * 100_000, r"header is not readable JSON \(RecursionError\)"),
])
def test_an_unreadable_header_is_named(files, tmp_path, raw, match):
    _, arrays = _read_raw(files["checkpoint"])
    _expect("checkpoint", _write_raw(tmp_path / "bad.npz", None, arrays, raw_header=raw), match)


def test_any_other_failure_while_restoring_becomes_a_checkpoint_error(files, monkeypatch):
    from rso_engine.training import RSOTrainer

    def boom(self, meta, arrays):
        raise ZeroDivisionError("unforeseen")

    monkeypatch.setattr(RSOTrainer, "load_state_dict", boom)
    _expect("checkpoint", files["checkpoint"], r"run\.npz is damaged: the saved state of run 1 \(rso\) cannot be "
                                               r"restored \(ZeroDivisionError: unforeseen\)")


def test_an_out_of_range_batch_order_is_refused_instead_of_crashing_the_process(files, tmp_path):
    """It used to reach the compiled dense kernel and segfault (exit 139); now `rso compare --resume` says why."""
    bad = _edit(files["session"], tmp_path / "bad.rso.npz", arrays_change=_perm_plus("t0/rso/perm", 10**10))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "rso_engine.cli", "compare", "--resume", str(bad)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "rso: error: " in proc.stderr and "rso/perm is not an order" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rso_session_says_continue_only_for_a_session_that_can_be_continued(files, tmp_path, capsys):
    assert main(["session", str(files["session"])]) == 0
    assert f"continue it with `rso compare --resume {files['session']}`" in capsys.readouterr().out
    bad = _edit(files["session"], tmp_path / "bad.rso.npz", _set("trainers.0.state.rso.position.pos", 10**6))
    assert main(["session", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert "oneconv" in out and "continue it" not in out  # the table, then why it cannot go on
    assert "cannot be continued" in err and "rso.position.pos is 1000000" in err
    broken = _edit(files["session"], tmp_path / "broken.rso.npz", _set("trainers.1.state.history", [[1]]))
    assert main(["session", str(broken)]) == 2
    assert "history row 1" in capsys.readouterr().err


# ------------------------------------------------------------------ IDX folders
def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


@pytest.fixture(scope="module")
def idx_folder() -> dict[str, bytes]:
    rng = np.random.default_rng(5)
    return {
        "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": _idx((np.arange(12) % 10).astype(np.uint8)),
        "t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": _idx((np.arange(6) % 10).astype(np.uint8)),
    }


@FUZZ
@given(data=st.data())
def test_a_corrupted_idx_folder_is_refused_clearly_or_loads_correctly(idx_folder, tmp_path_factory, data):
    folder = tmp_path_factory.getbasetemp() / "fuzzed-idx"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    gz = data.draw(st.booleans())
    victim = data.draw(st.sampled_from(sorted(idx_folder)))
    for name, blob in idx_folder.items():
        blob = gzip.compress(blob, mtime=0) if gz else blob
        if name == victim:
            buf = bytearray(blob)
            if data.draw(st.booleans()):
                for _ in range(data.draw(st.integers(1, 3))):
                    buf[data.draw(st.integers(0, min(len(buf) - 1, 40)) if data.draw(st.booleans())
                                  else st.integers(0, len(buf) - 1))] ^= 1 << data.draw(st.integers(0, 7))
            else:
                buf = buf[: data.draw(st.integers(0, len(buf) - 1))]
            blob = bytes(buf)
        (folder / (name + (".gz" if gz else ""))).write_bytes(blob)
    try:
        ds = load_dataset(data_dir=folder)
    except DataError as exc:
        assert str(folder) in str(exc)
        _note("refused: " + re.sub(r"\d+", "#", str(exc).replace(str(folder), "DIR"))[:70])
        return
    event("loaded")
    assert ds.train_x.shape[1:] == (1, 28, 28) and ds.test_x.shape[1:] == (1, 28, 28)
    assert ds.n_train == len(ds.train_y) > 0 and ds.n_test == len(ds.test_y) > 0
    assert np.isfinite(ds.train_x).all() and np.isfinite(ds.test_x).all()
    assert 0 <= ds.train_y.min() and ds.train_y.max() <= 9 and 0 <= ds.test_y.min() and ds.test_y.max() <= 9


# ------------------------------------------------------------------ temporary files of killed saves
def _age(path: Path, seconds: float) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)
    return path


def test_a_save_removes_the_stale_temporaries_of_its_own_target_and_nothing_else(tmp_path):
    old = STALE_SECONDS + 60
    for name in (".run.npz.a1b2c3d4.tmp", ".run.npz.zz_9xk0q.tmp"):  # leftovers of killed saves of run.npz
        (tmp_path / name).write_bytes(b"half a file")
        _age(tmp_path / name, old)
    keep = {
        ".run.npz.abcdefgh.tmp": STALE_SECONDS / 2,  # young: perhaps another process's save under way
        ".other.npz.abcdefgh.tmp": old,  # another target's
        ".run.npz.x.abcdefgh.tmp": old,  # the target "run.npz.x"'s
        ".run.npz.ABCDEFGH.tmp": old,  # not a name mkstemp makes
        ".run.npz.abcdefghi.tmp": old,
        "run.npz.tmp": old,
        "notes.tmp": old,
    }
    for name, age in keep.items():
        (tmp_path / name).write_bytes(b"x")
        _age(tmp_path / name, age)
    (tmp_path / ".run.npz.dir12345.tmp").mkdir()  # a folder of that name: not ours
    _age(tmp_path / ".run.npz.dir12345.tmp", old)
    outside = tmp_path.parent / f"{tmp_path.name}-target.bin"
    outside.write_bytes(b"x")
    (tmp_path / ".run.npz.link1234.tmp").symlink_to(outside)
    _age(tmp_path / ".run.npz.link1234.tmp", old)

    write_atomic(tmp_path / "run.npz", b"new")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*keep, ".run.npz.dir12345.tmp", ".run.npz.link1234.tmp", "run.npz"])
    assert outside.exists() and (tmp_path / "run.npz").read_bytes() == b"new"
    assert remove_stale_temporaries(tmp_path / "run.npz", older_than=0) == [tmp_path / ".run.npz.abcdefgh.tmp"]


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "run.rso.npz"
    code = ("import os, sys; import rso_engine.files as f\n"
            "f.os.replace = lambda *a: os._exit(9)  # killed between writing and renaming\n"
            f"f.write_atomic({str(target)!r}, b'x' * 1000)\n")
    proc = subprocess.run([sys.executable, "-c", code], timeout=60, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 9
    (tmp,) = [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    write_atomic(target, b"one")
    assert tmp.exists()  # too young to be judged a leftover: it could be a save under way
    _age(tmp, STALE_SECONDS + 1)
    write_atomic(target, b"two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.rso.npz"]

