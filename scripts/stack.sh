#!/usr/bin/env bash
# A local stack to play in: Azurite + clara-emulator in the background, with the provider
# environment written to .run/env.
#
# Usage (or: make up / make env / make down):
#   scripts/stack.sh up      build, start Azurite and clara-emulator (state in .run/stack),
#                            write .run/env (export lines, incl. a CLI config whose
#                            dev_overrides serve target/debug); no-op when already up
#   scripts/stack.sh env     print .run/env (fails when the stack is not up)
#   scripts/stack.sh status  exit 0 when both processes are running
#   scripts/stack.sh down    stop both (SIGTERM, SIGKILL after 10 s); nothing is left running
#
# Then:  source .run/env && terraform -chdir=examples/covid19-ct-finetune apply
# .run/env only sets (and unsets stale endpoint overrides of) variables, so sourcing it never
# exits or changes your shell otherwise.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

RUN=$ROOT/.run
DIR=$RUN/stack
ENV_FILE=$RUN/env

running() { [[ -f $1 ]] && kill -0 "$(<"$1")" 2>/dev/null; }

is_up() { running "$DIR/azurite/azurite.pid" && running "$DIR/emulator.pid"; }

up() {
  if is_up; then
    log "stack already up (emulator pid $(<"$DIR/emulator.pid")); 'make down' stops it"
    return 0
  fi
  down_quiet
  terraform_env
  # shellcheck disable=SC2046
  cargo build --workspace --bins $(cargo_locked)
  rm -rf "$DIR"
  mkdir -p "$DIR"
  # Children inherit an ignored SIGHUP: the stack outlives this script and its terminal.
  trap '' HUP
  start_stack "$DIR"
  echo "$EMULATOR_PID" >"$DIR/emulator.pid"
  write_cli_config "$DIR/terraformrc"
  {
    echo "# clara local stack: source this file (make up wrote it; make down stops the stack)"
    # The emulator is a custom cloud read from ARM_METADATA_HOSTNAME; older per-endpoint
    # overrides left in the shell would win over it.
    echo "unset ARM_RESOURCE_MANAGER_ENDPOINT ARM_AUTHORITY_HOST AZURE_AUTHORITY_HOST ARM_ENVIRONMENT"
    for v in TF_CLI_CONFIG_FILE SSL_CERT_FILE ARM_METADATA_HOSTNAME \
      ARM_SUBSCRIPTION_ID ARM_TENANT_ID ARM_CLIENT_ID ARM_CLIENT_SECRET \
      CLARA_RESOURCE_GROUP_NAME CLARA_WORKSPACE_NAME NGC_CLI_API_URL NGC_CLI_AUTH_URL \
      CLARA_STORAGE_BLOB_ENDPOINT CLARA_CACHE_DIR CLARA_ARM_POLL_MIN_MS CLARA_JOB_POLL_SCALE \
      CHECKPOINT_DISABLE; do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  # Local modules must be installed before a plan; `get` does it without looking the
  # dev-overridden provider up in a registry (as `init` would).
  local example
  for example in examples/*/; do
    if grep -qs '^module ' "$example"*.tf; then
      TF_CLI_CONFIG_FILE=$DIR/terraformrc "${TERRAFORM:-$(ensure_terraform)}" -chdir="$example" get >/dev/null
    fi
  done
  log "stack up: emulator $CLARA_ENDPOINT, Azurite $AZURITE_BLOB_ENDPOINT"
  log "next:  source .run/env && terraform -chdir=examples/covid19-ct-finetune apply"
  log "stop:  make down"
}

down_quiet() {
  if [[ -f $DIR/emulator.pid ]]; then
    stop_pid "$(<"$DIR/emulator.pid")" clara-emulator
    rm -f "$DIR/emulator.pid"
  fi
  [[ -d $DIR/azurite ]] && stop_azurite "$DIR/azurite"
  rm -f "$ENV_FILE"
}

case ${1:-} in
  up) up ;;
  down)
    down_quiet
    log "stack down"
    ;;
  env)
    is_up && [[ -f $ENV_FILE ]] || die "the stack is not up: run 'make up'"
    cat "$ENV_FILE"
    ;;
  status) is_up ;;
  *) die "usage: $0 up|env|status|down" ;;
esac
