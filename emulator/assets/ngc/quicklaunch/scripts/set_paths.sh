#!/usr/bin/env bash
# Paths shared by the quick-launch scripts. Override any of them in the environment.
QUICKLAUNCH_ROOT="${QUICKLAUNCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
MMAR_ROOT="${MMAR_ROOT:-${QUICKLAUNCH_ROOT}/../clara_train_covid19_3d_ct_classification}"
DATA_ROOT="${DATA_ROOT:-/workspace/data/covid19}"
export QUICKLAUNCH_ROOT MMAR_ROOT DATA_ROOT
