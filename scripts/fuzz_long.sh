#!/usr/bin/env bash
# The long fuzzing run: tests/test_fuzz.py under the
# 'long' Hypothesis profile (HYPOTHESIS_PROFILE=long: 5000 examples per test, 20000 for the
# invalid-argument test), with Hypothesis' statistics so the number of cases is on record.
#
#   scripts/fuzz_long.sh                       # in this work tree, with the python on PATH
#   FUZZ_COPY=/tmp/im2col-fuzz scripts/fuzz_long.sh
#       # in a snapshot copy of the work tree built in place, so rebuilding the work tree
#       # during a run of many minutes cannot swap the extension underneath it
#
# Arguments replace the default target tests/test_fuzz.py (e.g. "tests/test_fuzz.py::test_conv[2]" for 2-D conv2d, or add
# tests/test_ops.py for its Hypothesis tests too). Exit status: pytest's.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}

cd "$REPO"
if [ -n "${FUZZ_COPY:-}" ]; then
    echo "== snapshot of the work tree in $FUZZ_COPY"
    rm -rf "$FUZZ_COPY"
    mkdir -p "$FUZZ_COPY"
    git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | (cd "$FUZZ_COPY" && tar -xf -)
    cd "$FUZZ_COPY"
    rm -f csrc/*.c
    "$PYTHON" setup.py -q build_ext --inplace >build.log 2>&1 || { cat build.log; exit 2; }
fi
where=$("$PYTHON" -c "import im2col, os; print(os.path.dirname(im2col.__file__))")
echo "== im2col from $where; start $(date -u +%FT%TZ)"
start=$(date +%s)
set +e
HYPOTHESIS_PROFILE=long "$PYTHON" -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
    "${@:-tests/test_fuzz.py}"
status=$?
set -e
echo "== fuzz_long: pytest exit status $status after $(( $(date +%s) - start )) s (end $(date -u +%FT%TZ))"
exit $status
