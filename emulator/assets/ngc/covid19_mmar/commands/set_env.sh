#!/usr/bin/env bash
# Sets up the environment every command script of this MMAR sources.
export PYTHONPATH="$PYTHONPATH:/opt/nvidia"
DIR="$( cd "$( dirname "${BASH_SOURCE[0]}" )" >/dev/null 2>&1 && pwd )"
export MMAR_ROOT=${DIR}/..
export PYTHONPATH="$PYTHONPATH:$MMAR_ROOT/BYOC"
echo "MMAR_ROOT set to $MMAR_ROOT"

# Clara Train SDK v3.0: TensorFlow 1.15, one process per GPU
export TF_ENABLE_AUTO_MIXED_PRECISION=1
export TF_CPP_MIN_LOG_LEVEL=2
