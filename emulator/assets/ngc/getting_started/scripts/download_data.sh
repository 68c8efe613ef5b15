#!/usr/bin/env bash
# Downloads the sample spleen data set used by the notebooks into ../data
set -euo pipefail
DATA_DIR=$(pwd)/../data
mkdir -p "${DATA_DIR}"
echo "Sample data goes to ${DATA_DIR}"
