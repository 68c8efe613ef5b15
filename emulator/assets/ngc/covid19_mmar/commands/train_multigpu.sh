#!/usr/bin/env bash
my_dir="$(dirname "$0")"
. $my_dir/set_env.sh

echo "MMAR_ROOT set to $MMAR_ROOT"
additional_options="$*"

# Used to train the published model: 2x V100 32 GB
CONFIG_FILE=config/config_train_naturecomm.json
ENVIRONMENT_FILE=config/environment.json
NUM_GPUS=2

mpirun -np $NUM_GPUS -H localhost:$NUM_GPUS -bind-to none -map-by slot \
    -x NCCL_DEBUG=INFO -x LD_LIBRARY_PATH -x PATH -mca pml ob1 -mca btl ^openib \
    --allow-run-as-root \
    python3 -u -m nvmidl.apps.train \
    -m $MMAR_ROOT \
    -c $CONFIG_FILE \
    -e $ENVIRONMENT_FILE \
    --set \
    DATASET_JSON=$MMAR_ROOT/config/dataset_0.json \
    learning_rate=0.0002 \
    multi_gpu=true \
    ${additional_options}
