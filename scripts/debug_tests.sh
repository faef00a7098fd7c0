#!/usr/bin/env bash
# Build the extension with IM2COL_DEBUG=1 (Cython bounds and initialisation checks on, -O0 -g) in a
# throwaway venv and copy of the repo, then run the test suite against it. An index that leaves a
# memoryview raises IndexError there instead of silently reading or writing out of bounds.
#
#   scripts/debug_tests.sh                     # whole suite
#   scripts/debug_tests.sh tests/test_fuzz.py  # any pytest arguments
#
# Environment: DEBUG_VENV (default /tmp/im2col-debug-venv), DEBUG_COPY (default /tmp/im2col-debug-src),
# HYPOTHESIS_PROFILE (default ci).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/_throwaway_build.sh
. "$HERE/_throwaway_build.sh"

VENV=${DEBUG_VENV:-/tmp/im2col-debug-venv}
COPY=${DEBUG_COPY:-/tmp/im2col-debug-src}
BUILD_ENV="IM2COL_DEBUG=1"
build_throwaway

# The generated C must have the checks in, or a clean run proves nothing.
if ! grep -q "__Pyx_RaiseBufferIndexError" "$COPY"/csrc/_kernels.c; then
    echo "debug_tests: the generated C has no bounds checks" >&2
    exit 2
fi

cd "$COPY"
# An index error inside a `noexcept nogil` helper (the plane routines) cannot propagate: Cython
# prints it as "Exception ignored" through sys.unraisablehook and the kernel carries on. pytest
# turns that hook into PytestUnraisableExceptionWarning, made an error below. Positive control: a
# column buffer one element short must be reported that way.
control=$("$VENV/bin/python" - 2>&1 <<'PY' || true
import numpy as np
from im2col import _kernels
from im2col._validation import Geometry
x, col = np.arange(16, dtype=np.uint32), np.empty(9 * 4 - 1, dtype=np.uint32)  # needs 9·4
try:  # geometry, input strides (n, c, h, w), n_stride, row_stride, threads
    g = Geometry(N=1, C=1, H=4, W=4, kh=3, kw=3, sh=1, sw=1, pt=0, pb=0, pl=0, pr=0, dh=1, dw=1, OH=2, OW=2)
    _kernels.im2col(x, col, _kernels.Geometry2d(g), (16, 16, 4, 1), 36, 4, 1)
except TypeError as e:
    print("CONTROL-SKIPPED: the kernel's signature changed:", e)
PY
)
if grep -q "IndexError" <<<"$control"; then
    echo "== control: the bounds-checked build reports a deliberate out-of-bounds write"
elif grep -q "CONTROL-SKIPPED" <<<"$control"; then
    echo "== control skipped (update it): $(grep CONTROL-SKIPPED <<<"$control")"
else
    echo "debug_tests: the bounds-checked build did not report a deliberate out-of-bounds write:" >&2
    echo "$control" >&2
    exit 2
fi

echo "== running pytest on the bounds-checked build ($(date -u +%FT%TZ))"
start=$(date +%s)
set +e
HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -W error::pytest.PytestUnraisableExceptionWarning "${@:-tests}"
status=$?
set -e
echo "== debug_tests: pytest exit status $status after $(( $(date +%s) - start )) s"
exit $status
