#!/usr/bin/env bash
# Usage: ./startDocker.sh [jupyter port] [gpu list] [aiaa port]
DOCKER_IMAGE=nvcr.io/nvidia/clara-train-sdk:v3.0

jnotebookPort=${1:-8890}
GPU_IDS=${2:-all}
AIAA_PORT=${3:-5000}

DOCKER_RUN_NAME=claradevday
DATA_DIR=$(pwd)/../data
MMAR_DIR=$(pwd)/..

echo "Starting ${DOCKER_IMAGE}: JupyterLab on ${jnotebookPort}, AIAA on ${AIAA_PORT}, GPUs ${GPU_IDS}"
docker run --rm -it --name=${DOCKER_RUN_NAME} \
    --gpus "\"device=${GPU_IDS}\"" \
    --shm-size=1g --ulimit memlock=-1 --ulimit stack=67108864 \
    -p ${jnotebookPort}:8888 -p ${AIAA_PORT}:${AIAA_PORT} \
    -v ${MMAR_DIR}:/claraDevDay/ \
    -v ${DATA_DIR}:/data/ \
    -w /claraDevDay \
    ${DOCKER_IMAGE} \
    /bin/bash -c "jupyter lab /claraDevDay --ip 0.0.0.0 --allow-root --no-browser --NotebookApp.token=''"
