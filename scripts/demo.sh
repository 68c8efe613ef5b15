#!/usr/bin/env bash
# The README's `make demo`: build, start Azurite and the local Azure ML + NGC emulator, apply
# examples/covid19-ct-finetune (the whole walkthrough) with the freshly built provider, print
# its outputs, show that a second plan is empty, destroy, and always stop the stack.
#
# Usage: scripts/demo.sh            (or: make demo)
# Environment: TERRAFORM=/path picks terraform (default: scripts/tools.sh terraform);
#   CLARA_DEMO_KEEP=1 keeps the temp dir (emulator state, logs, CLI config, TF state);
#   LOCKED= turns cargo's --locked off.
#
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

EXAMPLE=${CLARA_DEMO_EXAMPLE:-examples/covid19-ct-finetune}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "terraform"
terraform_env
TERRAFORM=$(ensure_terraform)
export TERRAFORM
"$TERRAFORM" version | sed -n 1p

step "cargo build --workspace --bins"
# shellcheck disable=SC2046
cargo build --workspace --bins $(cargo_locked)

[[ -d $EXAMPLE ]] || die "$EXAMPLE not found"
work=$(make_tmpdir demo)
ok=0
cleanup() {
  local rc=$?
  stop_stack
  if [[ $ok == 1 && ${CLARA_DEMO_KEEP:-0} != 1 ]]; then
    rm -rf "$work"
  else
    log "demo files kept in $work (emulator log: $work/emulator/emulator.log)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "start Azurite and clara-emulator"
start_stack "$work/stack"
write_cli_config "$work/terraformrc"
log "TF_CLI_CONFIG_FILE=$TF_CLI_CONFIG_FILE (dev_overrides -> target/debug)"

# Work on a copy so no state or .terraform lands in the repo (examples are self-contained).
cp -R "$EXAMPLE" "$work/example"
cd "$work/example"
# dev_overrides: `terraform init` is not needed (nor wanted) for the clara provider.

step "terraform get ($EXAMPLE: installs the local module; dev_overrides serve the provider)"
"$TERRAFORM" get >/dev/null

step "terraform apply -auto-approve ($EXAMPLE)"
"$TERRAFORM" apply -auto-approve -input=false

step "terraform output"
"$TERRAFORM" output

step "terraform plan -detailed-exitcode (must be empty)"
set +e
"$TERRAFORM" plan -detailed-exitcode -input=false
plan_rc=$?
set -e
case $plan_rc in
  0) log "second plan is empty" ;;
  2) die "second plan is not empty: the provider is not idempotent" ;;
  *) die "terraform plan failed (exit $plan_rc)" ;;
esac

step "terraform destroy -auto-approve"
"$TERRAFORM" destroy -auto-approve -input=false

ok=1
step "demo: OK"
