#!/usr/bin/env bash
# Lint and test infinstor_jlab: the project's one test command (see README).
#
# Creates (or reuses) a virtualenv at .venv, installs the package editable with its
# test extras (this runs `jlpm install` and builds the labextension, so Node.js must
# be on PATH), then runs ruff (lint and format check), mypy, the TypeScript/JSON lint (prettier + eslint), pytest,
# the S3-backed tests again against LocalStack (scripts/test-other-s3.sh; needs Python
# 3.13, else skipped; SKIP_OTHER_S3=1 skips it), the front end's Jest unit tests and
# the Galata UI tests (ui-tests/, Playwright driving Debian's /usr/bin/chromium against
# a Jupyter server wired to moto; the server listens on port 8888, which must be free).
# Extra arguments are passed to pytest. SKIP_UI_TESTS=1 skips the Galata tests.
set -euo pipefail

cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# Activate so that the venv's jupyter, jlpm and ruff come first on PATH.
# shellcheck disable=SC1091
source .venv/bin/activate

python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"

lint_dirs=()
for d in infinstor_jlab tests benchmarks; do
  if [ -d "$d" ]; then
    lint_dirs+=("$d")
  fi
done
ruff check "${lint_dirs[@]}"
ruff format --check "${lint_dirs[@]}"
# Type check (pyproject.toml [tool.mypy]: services/ and index/ under --strict).
python -m mypy

jlpm lint:check

# pytest exits 5 when it collects no tests; with set -e that fails the run, as it should.
# Two workers (pytest-xdist): each starts its own moto and PostgreSQL; PYTEST_WORKERS=0
# runs in one process.
python -m pytest -q -n "${PYTEST_WORKERS:-2}" "$@"

# The S3-backed tests again on a second S3 implementation (LocalStack).
if [ "${SKIP_OTHER_S3:-0}" != "1" ]; then
  bash scripts/test-other-s3.sh
fi

# Front end unit tests (ts-jest, jsdom).
jlpm test

# UI tests. Browsers are never downloaded: Debian's Chromium (.ci/run installs it).
if [ "${SKIP_UI_TESTS:-0}" != "1" ]; then
  export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
  if [ ! -x "$CHROMIUM_PATH" ]; then
    echo "UI tests need Chromium at $CHROMIUM_PATH (apt-get install chromium)," \
      "or SKIP_UI_TESTS=1." >&2
    exit 1
  fi
  (
    cd ui-tests
    jlpm install
    # CI=1: always start a fresh seeded server (never reuse one on port 8888).
    CI=1 jlpm playwright test
  )
fi
