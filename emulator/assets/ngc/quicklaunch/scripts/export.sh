#!/usr/bin/env bash
# Exports the fine-tuned checkpoint to a frozen graph and TensorRT model.
set -euo pipefail
. "$(dirname "$0")/set_paths.sh"
echo "exporting ${MMAR_ROOT}/models"
bash "${MMAR_ROOT}/commands/export.sh"
