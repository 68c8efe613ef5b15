#!/usr/bin/env bash
my_dir="$(dirname "$0")"
. $my_dir/set_env.sh

echo "MMAR_ROOT set to $MMAR_ROOT"
additional_options="$*"

CONFIG_FILE=config/config_validation.json
ENVIRONMENT_FILE=config/environment.json

python3 -u -m nvmidl.apps.evaluate \
    -m $MMAR_ROOT \
    -c $CONFIG_FILE \
    -e $ENVIRONMENT_FILE \
    --set \
    DATASET_JSON=$MMAR_ROOT/config/dataset_0.json \
    output_infer_result=false \
    do_validation=true \
    MMAR_CKPT_DIR=$MMAR_ROOT/models \
    ${additional_options}
