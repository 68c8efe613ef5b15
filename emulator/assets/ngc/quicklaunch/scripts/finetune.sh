#!/usr/bin/env bash
# Fine-tunes the pre-trained MMAR: ./finetune.sh [epochs] [learning rate]
set -euo pipefail
. "$(dirname "$0")/set_paths.sh"
EPOCHS="${1:-5}"
LR="${2:-0.0001}"
echo "fine-tuning ${MMAR_ROOT} for ${EPOCHS} epochs at learning rate ${LR}"
bash "${MMAR_ROOT}/commands/train_finetune.sh" --set epochs="${EPOCHS}" learning_rate="${LR}" DATA_ROOT="${DATA_ROOT}"
