"""How much the live window costs: engine throughput headless vs inside the running GUI, frame rate, latency.

For each evaluator it measures, over the same number of seconds from the start of the same run:

- ``headless``: a bare ``RSOTrainer.events()`` loop (no GUI, no SGD) — the reference;
- ``runner``: the GUI's engine loop (RSO with the SGD baseline in step, snapshots, landscapes) in a plain
  thread, no window;
- ``window``: the real window at full speed, drawing all four panels at its timer's rate.

In the window run it also records the frame rate (timer ticks that drew a new snapshot, and all ticks),
the input latency (events posted from another thread at random moments, timed until the GUI thread
handles them) and the pause latency (``pause()`` until the engine reports itself paused).

    python benchmarks/gui_throughput.py                   # offscreen, evaluators auto and reference
    python benchmarks/gui_throughput.py --seconds 10 --evaluator auto
    xvfb-run -a python benchmarks/gui_throughput.py --platform xcb   # a real X server

Speeds are machine- and load-dependent: compare the ratios within one run, not figures across machines.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
# the same BLAS threads as `rso-gui` uses (one core left for the GUI), for every measurement alike
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(max(1, (os.cpu_count() or 2) - 1)))


def thread_cpu(tid: int | None) -> float:
    """CPU seconds used so far by the thread with native id ``tid`` (Linux /proc), NaN elsewhere."""
    if tid is None:
        return float("nan")
    try:
        with open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=8.0, help="length of each measurement (default 8)")
    p.add_argument("--evaluator", action="append", help="evaluator(s) to measure (default: auto, reference)")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds (default 3)")
    p.add_argument("--model", default="oneconv")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-sgd", action="store_true", help="run the GUI without the SGD baseline")
    p.add_argument("--platform", default=None, help="Qt platform (default: offscreen unless $DISPLAY is set)")
    return p.parse_args(argv)


def config(args, evaluator):
    from rso_engine.config import RunConfig  # noqa: PLC0415

    return RunConfig(model=args.model, batch_size=args.batch_size, cycles=1000, evaluator=evaluator)


def warm_up(cfg, dataset):
    """Compile/cache whatever the evaluator needs, so no measurement pays for it."""
    from rso_engine.events import WeightTried  # noqa: PLC0415
    from rso_engine.training import RSOTrainer  # noqa: PLC0415

    tr = RSOTrainer(cfg, dataset=dataset)
    n = 0
    t0 = time.perf_counter()
    for ev in tr.events():
        if isinstance(ev, WeightTried):
            n += 1
            if n >= 300 and time.perf_counter() - t0 > 1.0:
                break
    return tr.evaluator.name


def headless(cfg, dataset, seconds):
    from rso_engine.events import WeightTried  # noqa: PLC0415
    from rso_engine.training import RSOTrainer  # noqa: PLC0415

    tr = RSOTrainer(cfg, dataset=dataset)
    gen = tr.events()
    next(gen)  # the evaluation before training, as in the GUI (not timed)
    n = 0
    t0 = time.perf_counter()
    for ev in gen:
        if type(ev) is WeightTried:
            n += 1
            if (n & 15) == 0 and time.perf_counter() - t0 >= seconds:
                break
    return n / (time.perf_counter() - t0)


def runner_only(cfg, dataset, seconds, sgd):
    from rso_engine.vocabulary import RunState  # noqa: PLC0415
    from rso_gui.live.runner import Runner  # noqa: PLC0415

    PAUSED, RUNNING = RunState.PAUSED, RunState.RUNNING

    r = Runner(cfg, dataset=dataset, sgd=sgd)
    th = threading.Thread(target=r.run, daemon=True)
    th.start()
    while r.state != PAUSED:
        time.sleep(0.005)
    r.play()
    while r.state != RUNNING:
        time.sleep(0.001)
    t0 = time.perf_counter()
    s0 = r.rso.steps
    c0 = thread_cpu(r.thread_id)
    time.sleep(seconds)
    n = r.rso.steps - s0
    rate = n / (time.perf_counter() - t0)
    cpu = (thread_cpu(r.thread_id) - c0) / max(n, 1)
    r.stop()
    th.join()
    return rate, cpu


def wait_ms(ms: int) -> None:
    """Run the Qt event loop for ``ms`` milliseconds. (Not QTest.qWait: in PySide6 it keeps the GIL, so the
    engine thread would barely run while the main thread waits.)"""
    from PySide6.QtCore import QEventLoop, QTimer  # noqa: PLC0415

    loop = QEventLoop()
    QTimer.singleShot(max(0, int(ms)), loop.quit)
    loop.exec()


def window_run(app, cfg, dataset, seconds, sgd):
    from PySide6.QtCore import QCoreApplication, QEvent, QObject  # noqa: PLC0415

    from rso_engine.vocabulary import RunState  # noqa: PLC0415
    from rso_gui.controller import Controller  # noqa: PLC0415
    from rso_gui.window import MainWindow  # noqa: PLC0415

    probe_type = QEvent.Type(QEvent.registerEventType())

    class Probe(QObject):
        def __init__(self):
            super().__init__()
            self.delays = []

        def event(self, e):
            if e.type() == probe_type:
                self.delays.append(time.perf_counter() - e.stamp)
                return True
            return super().event(e)

    class Stamped(QEvent):
        def __init__(self):
            super().__init__(probe_type)
            self.stamp = time.perf_counter()

    c = Controller(cfg, dataset=dataset, sgd=sgd)
    w = MainWindow(c, restore=False)
    w.resize(1600, 960)
    w.show()
    t_wait = time.perf_counter()
    while c.state != RunState.PAUSED and time.perf_counter() - t_wait < 120:
        wait_ms(10)
    probe = Probe()
    stop = threading.Event()

    def poster():
        while not stop.is_set():
            time.sleep(random.uniform(0.03, 0.12))
            QCoreApplication.postEvent(probe, Stamped())

    c.start()
    t0 = time.perf_counter()
    s0 = c.runner.rso.steps
    e0, g0 = thread_cpu(c.runner.thread_id), time.thread_time()
    w.frame_times.clear()
    drawn0 = w.frames_drawn
    t_poster = threading.Thread(target=poster, daemon=True)
    t_poster.start()
    wait_ms(int(seconds * 1000))
    elapsed = time.perf_counter() - t0
    n = c.runner.rso.steps - s0
    rate = n / elapsed
    engine_cpu = (thread_cpu(c.runner.thread_id) - e0) / max(n, 1)
    gui_share = (time.thread_time() - g0) / elapsed
    drawn = w.frames_drawn - drawn0
    landscape = c.runner.landscape_seconds
    ticks = list(w.frame_times)
    stop.set()
    t_poster.join()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    # pause latency: pause() until the engine says it is paused, a few times
    pauses = []
    for _ in range(5):
        t = time.perf_counter()
        c.pause()
        while c.state != RunState.PAUSED:
            wait_ms(1)
        pauses.append(time.perf_counter() - t)
        c.start()
        wait_ms(200)
    w.close()
    app.processEvents()
    return {
        "rate": rate,
        "ticks_fps": len(ticks) / elapsed,
        "drawn_fps": drawn / elapsed,
        "gap_p95": sorted(gaps)[int(0.95 * (len(gaps) - 1))] if gaps else float("nan"),
        "gap_max": max(gaps) if gaps else float("nan"),
        "lat_mean": statistics.mean(probe.delays) if probe.delays else float("nan"),
        "lat_p95": sorted(probe.delays)[int(0.95 * (len(probe.delays) - 1))] if probe.delays else float("nan"),
        "lat_max": max(probe.delays) if probe.delays else float("nan"),
        "pause_max": max(pauses),
        "landscape_share": landscape / elapsed,
        "engine_cpu": engine_cpu,
        "gui_share": gui_share,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.platform:
        os.environ["QT_QPA_PLATFORM"] = args.platform
    elif not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    import rso_gui  # noqa: F401, PLC0415  (applies the binding work-around before any Qt call)
    from rso_engine.backend import get_backend  # noqa: PLC0415
    from rso_gui.live.loading import load_dataset_cached  # noqa: PLC0415

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dataset = load_dataset_cached("mnist-sample")
    print(f"backend: {get_backend().describe()} · Qt platform: {app.platformName()} · "
          f"model {args.model}, batch {args.batch_size}, {args.seconds:g} s per measurement, "
          f"SGD baseline {'off' if args.no_sgd else 'on'} in the runner/window rows")  # fmt: skip
    rows = []
    for ev_name in args.evaluator or ["auto", "reference"]:
        cfg = config(args, ev_name)
        name = warm_up(cfg, dataset)
        hs, rs, ws = [], [], []
        for _ in range(args.rounds):  # alternate, so a change in machine load hits all three alike
            hs.append(headless(cfg, dataset, args.seconds))
            rs.append(runner_only(cfg, dataset, args.seconds, not args.no_sgd))
            ws.append(window_run(app, cfg, dataset, args.seconds, not args.no_sgd))
        w = {k: statistics.median(x[k] for x in ws) for k in ws[0]}
        w["gap_max"] = max(x["gap_max"] for x in ws)
        w["lat_max"] = max(x["lat_max"] for x in ws)
        w["pause_max"] = max(x["pause_max"] for x in ws)
        r = statistics.median(x[0] for x in rs)
        w["runner_cpu"] = statistics.median(x[1] for x in rs)
        rows.append((ev_name, name, statistics.median(hs), r, w))

    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"medians of {args.rounds} alternating rounds (maxima: over all rounds); "
        f"load average at the end {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        "| evaluator | headless RSO w/s | GUI engine loop, no window: w/s (vs headless) | window at full speed: w/s "
        "(vs headless, vs no window) | new frames/s | repaints/s | frame gap p95 / max (ms) "
        "| input latency mean / p95 / max (ms) | pause latency max (ms) | landscape share "
        "| engine CPU µs/weight: no window / window | GUI thread CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ev_name, name, h, r, w in rows:
        print(
            f"| {ev_name} ({name}) | {h:,.0f} | {r:,.0f} ({r / h:.0%}) "
            f"| {w['rate']:,.0f} ({w['rate'] / h:.0%}, {w['rate'] / r:.0%}) "
            f"| {w['drawn_fps']:.1f} | {w['ticks_fps']:.1f} | {1e3 * w['gap_p95']:.0f} / {1e3 * w['gap_max']:.0f} "
            f"| {1e3 * w['lat_mean']:.1f} / {1e3 * w['lat_p95']:.1f} / {1e3 * w['lat_max']:.1f} "
            f"| {1e3 * w['pause_max']:.0f} | {w['landscape_share']:.1%} "
            f"| {1e6 * w['runner_cpu']:.0f} / {1e6 * w['engine_cpu']:.0f} | {w['gui_share']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
