#!/usr/bin/env bash
# Shared by sanitize.sh and debug_tests.sh: a throwaway copy of the work tree built in its own venv,
# so the shared development venv and the in-place build are never touched.
#
# Usage (sourced): VENV=... COPY=... BUILD_ENV="IM2COL_...=1" build_throwaway
# Leaves the copy at $COPY with the freshly built extension in $COPY/im2col/, deps in $VENV.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

build_throwaway() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "== creating $VENV"
        python3 -m venv "$VENV"
    fi
    # torch first and pinned, as in the README, so pip does not pick another build.
    echo "== installing test dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q torch==2.13.0
    "$VENV/bin/python" -m pip install -q numpy pytest pytest-benchmark hypothesis threadpoolctl \
        cython setuptools build matplotlib

    echo "== copying the work tree (tracked and new files, no build products) to $COPY"
    rm -rf "$COPY"
    mkdir -p "$COPY"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) \
        | (cd "$COPY" && tar -xf -)
    # A stale generated C file would be reused by cythonize and hide a directive change.
    rm -f "$COPY"/csrc/*.c "$COPY"/im2col/*.so

    echo "== building with $BUILD_ENV"
    (cd "$COPY" && env $BUILD_ENV "$VENV/bin/python" -m pip install -q -e . --no-build-isolation)
    ls "$COPY"/im2col/_kernels*.so >/dev/null
}
