#!/usr/bin/env bash
# GPU check of the CuPy backend (issue #7): one short script, well under 10 minutes in total.
#
#   bash verification/gpu_check.sh            # from anywhere; runs in the repository root
#
# Steps (each with its own time limit):
#   1. the GPU is visible (nvidia-smi);
#   2. CuPy is installed from wheels if it is not importable: `pip install cupy-cuda12x
#      array-api-compat array-api-strict` (set WHEELHOUSE=/path to install offline from a folder of
#      wheels with --no-index);
#   3. the CuPy tests: `pytest tests/test_backends.py -k cupy` (per-sample results equal to NumPy's
#      for the same samples to 1e-12, sampler moments, unbiasedness against the oracle);
#   4. `gsbref verify --quick --backend cupy` (skipped only by an older gsbref whose CLI lacks it;
#      it says so in `gsbref verify --help`);
#   5. benchmarks/backends.py (CuPy / NumPy wall-time ratios at S*d = 1e6).
# Outputs go to $GPU_CHECK_OUT (default ./gpu_check_out).  Exit status 0 iff no step failed
# unexpectedly: a failure listed in EXPECTED_FAILURES below is reported but does not fail the
# check, and an expected failure that passes is reported so the list can be trimmed.
set -u -o pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUTDIR="${GPU_CHECK_OUT:-gpu_check_out}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python}"

# Expected failures, one per entry: a pytest node id (as in `pytest -rA`), or "verify:<pattern>"
# matched against the FAIL lines of `gsbref verify`.  Reason after "#".
EXPECTED_FAILURES=(
  # none yet: every estimator runs on any array namespace, and this check has never run on a GPU;
  # add an entry (with its reason) for each failure the first GPU run shows and that is not a bug
)

status=0
note() { printf '\n== %s\n' "$*"; }

note "1/5 GPU"
if ! timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
  echo "no NVIDIA GPU visible: nothing to check"; exit 2
fi

note "2/5 CuPy"
if ! timeout 60 "$PY" -c "import cupy" 2>/dev/null; then
  if [ -n "${WHEELHOUSE:-}" ]; then
    timeout 300 "$PY" -m pip install -q --no-index --find-links "$WHEELHOUSE" cupy-cuda12x array-api-compat array-api-strict || { echo "pip install failed"; exit 2; }
  else
    timeout 300 "$PY" -m pip install -q cupy-cuda12x array-api-compat array-api-strict || { echo "pip install failed"; exit 2; }
  fi
fi
timeout 120 "$PY" -c "
import cupy, array_api_compat
print('cupy', cupy.__version__, '| array_api_compat', array_api_compat.__version__, '|',
      cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())
x = cupy.arange(4.0); assert float((x * x).sum()) == 14.0
" || { echo "CuPy is not usable"; exit 2; }

note "3/5 pytest tests/test_backends.py -k cupy"
timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_backends.py -k cupy -rA \
  --junitxml="$OUTDIR/pytest_cupy.xml" 2>&1 | tee "$OUTDIR/pytest_cupy.txt"
pytest_rc=${PIPESTATUS[0]}
"$PY" - "$OUTDIR/pytest_cupy.xml" "${EXPECTED_FAILURES[@]}" <<'EOF' || status=1
import sys, xml.etree.ElementTree as ET
path, expected = sys.argv[1], [e for e in sys.argv[2:] if not e.startswith("verify:")]
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as exc:
    print(f"no pytest report ({exc}): the pytest step did not finish"); sys.exit(1)
failed, passed, skipped = [], [], []
for tc in root.iter("testcase"):
    node = f"{tc.get('classname', '').replace('.', '/')}.py::{tc.get('name')}"
    if tc.find("failure") is not None or tc.find("error") is not None:
        failed.append(node)
    elif tc.find("skipped") is not None:
        skipped.append(node)
    else:
        passed.append(node)
unexpected = [n for n in failed if not any(n.endswith(e) or e in n for e in expected)]
fixed = [e for e in expected if any(n.endswith(e) for n in passed)]
print(f"cupy tests: {len(passed)} passed, {len(failed)} failed ({len(failed) - len(unexpected)} expected), {len(skipped)} skipped")
for n in unexpected: print("UNEXPECTED FAILURE:", n)
for e in fixed: print("expected failure now passes (remove it from EXPECTED_FAILURES):", e)
if skipped: print("skipped on a GPU machine:", *skipped, sep="\n  ")
sys.exit(1 if unexpected or not passed or skipped else 0)
EOF
[ "$pytest_rc" -ne 0 ] && [ "$status" -eq 0 ] && echo "(pytest exit status $pytest_rc: only expected failures)"

note "4/5 gsbref verify --quick --backend cupy"
if timeout 60 "$PY" -m gsbref verify --help 2>/dev/null | grep -q -- "--backend" \
   && timeout 60 "$PY" -c "import sys; from gsbref import cli; sys.exit(0 if 'cupy' in getattr(cli, '_BUILT_BACKENDS', getattr(cli, 'BACKENDS', ())) else 1)"; then
  timeout 300 "$PY" -m gsbref verify --quick --backend cupy 2>&1 | tee "$OUTDIR/verify_cupy.txt"
  verify_rc=${PIPESTATUS[0]}
  if [ "$verify_rc" -ne 0 ]; then
    unexpected=0
    while IFS= read -r line; do
      ok=0
      for e in "${EXPECTED_FAILURES[@]}"; do
        case "$e" in verify:*) pat="${e#verify:}"; [[ "$line" == *"$pat"* ]] && ok=1 ;; esac
      done
      [ "$ok" -eq 0 ] && { echo "UNEXPECTED: $line"; unexpected=1; }
    done < <(grep -E "FAIL|Error|Traceback" "$OUTDIR/verify_cupy.txt" || true)
    [ "$unexpected" -ne 0 ] && status=1
    echo "verify exit status $verify_rc"
  fi
else
  echo "skipped: this gsbref verify does not offer --backend cupy yet"
fi

note "5/5 benchmarks/backends.py (CuPy / NumPy)"
timeout 240 "$PY" benchmarks/backends.py --skip-strict --total 1000000 --repeat 3 2>&1 | tee "$OUTDIR/bench_cupy.txt" \
  || echo "benchmark did not finish (not a failure of the check)"

note "result: $([ $status -eq 0 ] && echo PASS || echo FAIL) (outputs in $OUTDIR)"
exit $status
