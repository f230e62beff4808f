#!/usr/bin/env bash
# Lint and test infinstor_jlab: the project's one test command (see README).
#
# Creates (or reuses) a virtualenv at .venv, installs the package editable with its
# test extras (this runs `jlpm install` and builds the labextension, so Node.js must
# be on PATH), then runs ruff, the TypeScript/JSON lint (prettier + eslint) and pytest.
# Extra arguments are passed to pytest.
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

jlpm lint:check

# pytest exits 5 when it collects no tests; with set -e that fails the run, as it should.
python -m pytest -q "$@"
