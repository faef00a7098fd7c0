#!/usr/bin/env bash
# Build the Cython extension with AddressSanitizer + UndefinedBehaviorSanitizer (IM2COL_SANITIZE=1)
# in a throwaway venv and copy of the repo, then run the test suite with gcc's ASan runtime preloaded
# (CPython is not instrumented, so the runtime must come first in the process).
#
#   scripts/sanitize.sh                  # whole suite
#   scripts/sanitize.sh tests/test_fuzz.py -x   # any pytest arguments
#
# Environment: ASAN_VENV (default /tmp/im2col-asan-venv), ASAN_COPY (default /tmp/im2col-asan-src),
# HYPOTHESIS_PROFILE (default ci). Exit status: pytest's; any ASan/UBSan report aborts the run.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/_throwaway_build.sh
. "$HERE/_throwaway_build.sh"

VENV=${ASAN_VENV:-/tmp/im2col-asan-venv}
COPY=${ASAN_COPY:-/tmp/im2col-asan-src}
BUILD_ENV="IM2COL_SANITIZE=1"
build_throwaway

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
if [ ! -e "$libasan" ]; then
    echo "sanitize: gcc's libasan.so not found" >&2
    exit 2
fi
# The extension must really be instrumented, or a clean run proves nothing.
if ! ldd "$COPY"/im2col/_kernels*.so | grep libasan >/dev/null; then  # not -q: an early exit SIGPIPEs ldd (pipefail)
    echo "sanitize: the built extension does not link libasan" >&2
    exit 2
fi

cd "$COPY"
# Positive control: the kernels trust their arguments, so a column buffer one element short must be
# reported as a heap-buffer-overflow. Proves that the instrumented build is the one being run.
control=$(LD_PRELOAD="$libasan $libubsan" ASAN_OPTIONS=detect_leaks=0 "$VENV/bin/python" - 2>&1 <<'PY' || true
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
if grep -q "AddressSanitizer: heap-buffer-overflow" <<<"$control"; then
    echo "== control: ASan reports a deliberate overflow in the kernels"
elif grep -q "CONTROL-SKIPPED" <<<"$control"; then
    echo "== control skipped (update it): $(grep CONTROL-SKIPPED <<<"$control")"
else
    echo "sanitize: ASan did not report a deliberate out-of-bounds write:" >&2
    echo "$control" >&2
    exit 2
fi

echo "== running pytest under ASan+UBSan ($(date -u +%FT%TZ))"
start=$(date +%s)
set +e
# detect_leaks=0: CPython keeps interned objects and arenas alive until exit by design.
# halt_on_error / abort_on_error: the first report fails the run with a non-zero status.
LD_PRELOAD="$libasan $libubsan" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0:strict_init_order=1" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests}"
status=$?
set -e
echo "== sanitize: pytest exit status $status after $(( $(date +%s) - start )) s"
exit $status
