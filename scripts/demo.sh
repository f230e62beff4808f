#!/usr/bin/env bash
# The newcomer's demo (see README): a local S3 endpoint (moto) with a versioned sample
# dataset, indexed and labelled, then JupyterLab with the extension configured against it.
# No AWS account is needed. Extra arguments go to `infinstor-jlab demo` (e.g. --no-lab).
# Transforms run locally; Spark too when Java is here (pyspark, a large download, is
# installed only then: without Java it could not run).
set -euo pipefail

cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q --upgrade pip
extras=demo
if command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ]; then
  extras=demo,spark
fi
# Not -q: a first install takes minutes, and pip's lines are its progress.
echo "Installing infinstor_jlab[$extras] into .venv (the first time takes several minutes)..."
python -m pip install --progress-bar on -e ".[$extras]" | grep -v '^Requirement already satisfied' || true
if ! python -c 'import infinstor_jlab' 2>/dev/null; then
  echo "The install failed; see pip's messages above." >&2
  exit 1
fi
exec infinstor-jlab demo "$@"
