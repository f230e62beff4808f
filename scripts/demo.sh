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
python -m pip install -q -e ".[$extras]"
exec infinstor-jlab demo "$@"
