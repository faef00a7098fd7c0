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
echo "== running pytest on the bounds-checked build ($(date -u +%FT%TZ))"
start=$(date +%s)
set +e
HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} "$VENV/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests}"
status=$?
set -e
echo "== debug_tests: pytest exit status $status after $(( $(date +%s) - start )) s"
exit $status
