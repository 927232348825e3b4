#!/usr/bin/env bash
# The checks the CuPy path must pass on a GPU machine, in one command (about 5-10 minutes on an H200).
#
#   bash benchmarks/gpu_check.sh --fetch     # HERE, with PyPI: the pure-Python wheels the GPU machine lacks
#                                            # into .whl/ (ignored by git), for `carry`
#   bash benchmarks/gpu_check.sh             # THERE: install .whl/ if present, then the checks below
#
# On this workplace's device machine: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=590).
# Its image has CuPy (cupy-cuda13x), NumPy, Numba, pytest, tqdm and threadpoolctl; platformdirs and pooch
# travel as wheels. What it runs, each step's output in $OUT (or ./gpu_check_out) as well:
#   1. the device, CuPy and whether rso's start-up probe accepts it (`rso info`'s reason if not);
#   2. pytest -m gpu: the GPU tests (CuPy backend = NumPy, reference choices on the GPU, the CUDA sweep
#      kernels against their NumPy emulation, every fast evaluator's float64 choices = the reference's);
#   3. the emulation and probe tests (no GPU needed, but run here against the same checkout);
#   4. python benchmarks/bench_evaluators.py --backends cupy --models papernet oneconv --batches 256 5000
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch" ]]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: -d .whl "platformdirs>=4,<5" "pooch>=1.8,<2"
    exit $?
fi

OUT_DIR="${OUT:-./gpu_check_out}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rso-site .whl/*.whl \
        || { echo "installing .whl/ failed"; exit 1; }
    export PYTHONPATH="/tmp/rso-site:${PWD}${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}"
fi
status=0
step() {  # step NAME COMMAND...: run, keep its log, remember a failure
    local name=$1; shift
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$OUT_DIR/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc"
    [[ $rc -eq 0 ]] || status=1
}

step device bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; $PY -c '
import cupy, numpy, numba
print(\"cupy\", cupy.__version__, \"numpy\", numpy.__version__, \"numba\", numba.__version__)
from rso_engine.backend import cupy_unavailable_reason, get_backend
why = cupy_unavailable_reason()
print(\"rso probe:\", why or \"ok, \" + get_backend(\"cupy\").describe())
raise SystemExit(1 if why else 0)'"
step gpu-tests "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu_backend.py tests/test_kernels_cuda.py \
    tests/test_fast_evaluators.py
step emulation-tests "$PY" -m pytest -q -p no:cacheprovider tests/test_kernels_cuda.py tests/test_gpu_backend.py
step bench timeout 300 "$PY" benchmarks/bench_evaluators.py --backends cupy --models papernet oneconv \
    --batches 256 5000 --seconds 2 --min-weights 1 --json "$OUT_DIR/bench.json"
echo "gpu_check: $([[ $status -eq 0 ]] && echo all passed || echo FAILURES, see the logs above)"
exit $status
