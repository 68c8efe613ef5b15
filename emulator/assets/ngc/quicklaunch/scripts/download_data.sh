#!/usr/bin/env bash
# Lists the studies of the MMAR's dataset_0.json that are not yet under DATA_ROOT.
set -euo pipefail
. "$(dirname "$0")/set_paths.sh"
mkdir -p "${DATA_ROOT}"
echo "MMAR_ROOT=${MMAR_ROOT}"
echo "DATA_ROOT=${DATA_ROOT}"
python3 - "${MMAR_ROOT}/config/dataset_0.json" "${DATA_ROOT}" <<'PY'
import json, os, sys
dataset, root = sys.argv[1], sys.argv[2]
with open(dataset) as f:
    d = json.load(f)
missing = [s["image"] for k in ("training", "validation", "testing") for s in d.get(k, [])
           if not os.path.exists(os.path.join(root, s["image"]))]
print(f"{len(missing)} studies to fetch from TCIA into {root}")
PY
