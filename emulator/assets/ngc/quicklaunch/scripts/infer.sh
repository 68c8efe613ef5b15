#!/usr/bin/env bash
# Inference on the held-out studies: ./infer.sh [checkpoint dir]
set -euo pipefail
. "$(dirname "$0")/set_paths.sh"
CKPT_DIR="${1:-${MMAR_ROOT}/models}"
echo "inference with ${CKPT_DIR} on the testing split of dataset_0.json"
bash "${MMAR_ROOT}/commands/infer.sh" MMAR_CKPT_DIR="${CKPT_DIR}" DATA_ROOT="${DATA_ROOT}"
