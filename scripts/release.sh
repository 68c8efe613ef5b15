#!/usr/bin/env bash
# Release artifacts and local installs of terraform-provider-clara.
#
# Usage:
#   scripts/release.sh install              (make install) release build for this machine, placed
#                                           in Terraform's implied filesystem mirror
#                                           ~/.terraform.d/plugins/registry.terraform.io/clara-ml/clara/
#                                           <version>/<os>_<arch>/, so a plain `terraform init` finds it
#                                           (TF_PLUGIN_DIR: another plugin folder; CLARA_INSTALL_BIN:
#                                           install that binary instead of building)
#   scripts/release.sh dist [PLATFORM...]   (make release) registry artifacts in dist/:
#                                           terraform-provider-clara_<v>_<os>_<arch>.zip per platform,
#                                           terraform-provider-clara_<v>_SHA256SUMS and
#                                           terraform-provider-clara_<v>_manifest.json (protocol 5).
#                                           Platforms: linux_amd64 linux_arm64 (default: both);
#                                           linux_arm64 is cross-compiled (rustup target +
#                                           Debian's gcc-aarch64-linux-gnu, installed if missing)
#   scripts/release.sh package BIN PLATFORM DIR   zip one binary as the registry names it
#   scripts/release.sh mirror DIST DIR      lay DIST's zips out as a provider network mirror
#                                           (DIR/registry.terraform.io/clara-ml/clara/index.json,
#                                           <version>.json with h1: and zh: hashes); serve DIR over
#                                           HTTPS (e.g. scripts/serve_https.py) and point
#                                           provider_installation { network_mirror { url = … } } at it
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

NAME=terraform-provider-clara
SOURCE_HOST=registry.terraform.io
SOURCE_NS=clara-ml
SOURCE_TYPE=clara
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[[ -n $VERSION ]] || die "no workspace version in Cargo.toml"

host_platform() {
  local arch
  case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "unsupported machine $(uname -m)" ;;
  esac
  printf 'linux_%s' "$arch"
}

rust_target() {
  case $1 in
    linux_amd64) echo x86_64-unknown-linux-gnu ;;
    linux_arm64) echo aarch64-unknown-linux-gnu ;;
    *) die "unknown platform $1 (linux_amd64, linux_arm64)" ;;
  esac
}

# Cross toolchain for a target that is not this machine's: the Rust standard library through
# rustup, a C cross compiler (aws-lc, ring-free TLS) from Debian's packages.
ensure_cross() {
  local target=$1
  rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
  if [[ $target == aarch64-unknown-linux-gnu ]] && ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    log "installing Debian's gcc-aarch64-linux-gnu (cross C compiler)"
    if [[ $(id -u) == 0 ]]; then
      apt-get update -qq >&2 && apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross >&2
    else
      die "aarch64-linux-gnu-gcc missing: sudo apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    fi
  fi
}

# build PLATFORM: prints the path of the release binary.
build() {
  local platform=$1 target
  target=$(rust_target "$platform")
  if [[ $platform != "$(host_platform)" ]]; then
    ensure_cross "$target"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  fi
  # shellcheck disable=SC2046
  cargo build --release -p "$NAME" --bin "$NAME" --target "$target" $(cargo_locked) >&2
  printf '%s' "$ROOT/target/$target/release/$NAME"
}

# package BIN PLATFORM DIR: DIR/terraform-provider-clara_<v>_<platform>.zip holding
# terraform-provider-clara_v<v>, the layout the registry and network mirrors serve.
package() {
  local bin=$1 platform=$2 dir=$3
  mkdir -p "$dir"
  python3 - "$bin" "$dir/${NAME}_${VERSION}_${platform}.zip" "${NAME}_v${VERSION}" <<'PY'
import sys, zipfile
src, dst, inner = sys.argv[1:]
info = zipfile.ZipInfo(inner, date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read())
PY
  printf '%s' "$dir/${NAME}_${VERSION}_${platform}.zip"
}

dist() {
  local platforms=("$@") out=$ROOT/dist p bin
  ((${#platforms[@]})) || platforms=(linux_amd64 linux_arm64)
  rm -rf "$out"
  mkdir -p "$out"
  for p in "${platforms[@]}"; do
    bin=$(build "$p")
    package "$bin" "$p" "$out" >/dev/null
    log "built $p: $(file -b "$bin" 2>/dev/null | cut -d, -f1-2)"
  done
  cp "$ROOT/terraform-registry-manifest.json" "$out/${NAME}_${VERSION}_manifest.json"
  (cd "$out" && sha256sum ./*.zip ./*_manifest.json | sed 's#  \./#  #' >"${NAME}_${VERSION}_SHA256SUMS")
  log "artifacts in dist/:"
  ls -1 "$out" >&2
}

install() {
  local platform dir bin
  platform=$(host_platform)
  # CLARA_INSTALL_BIN installs an already built binary (tests use the debug build).
  bin=${CLARA_INSTALL_BIN:-$(build "$platform")}
  dir=${TF_PLUGIN_DIR:-$HOME/.terraform.d/plugins}/$SOURCE_HOST/$SOURCE_NS/$SOURCE_TYPE/$VERSION/$platform
  mkdir -p "$dir"
  cp "$bin" "$dir/${NAME}_v${VERSION}.tmp"
  mv "$dir/${NAME}_v${VERSION}.tmp" "$dir/${NAME}_v${VERSION}"
  log "installed $SOURCE_NS/$SOURCE_TYPE v$VERSION ($platform) in $dir"
  log "a configuration with  clara = { source = \"$SOURCE_NS/$SOURCE_TYPE\" }  now runs plain 'terraform init'"
}

# mirror DIST DIR: the provider network mirror protocol's static files.
mirror() {
  local dist=$1 dir=$2
  local base=$dir/$SOURCE_HOST/$SOURCE_NS/$SOURCE_TYPE
  mkdir -p "$base"
  cp "$dist"/*.zip "$base/"
  python3 - "$base" "$VERSION" <<'PY'
import base64, hashlib, json, os, re, sys, zipfile
base, version = sys.argv[1:]
archives = {}
for name in sorted(os.listdir(base)):
    m = re.fullmatch(r".+_" + re.escape(version) + r"_([a-z0-9]+_[a-z0-9]+)\.zip", name)
    if not m:
        continue
    path = os.path.join(base, name)
    # h1: Go's dirhash.Hash1 over the archive's files; zh: sha256 of the zip itself.
    lines = []
    with zipfile.ZipFile(path) as z:
        for f in sorted(z.namelist()):
            lines.append("%s  %s\n" % (hashlib.sha256(z.read(f)).hexdigest(), f))
    h1 = base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()
    zh = hashlib.sha256(open(path, "rb").read()).hexdigest()
    archives[m.group(1)] = {"url": name, "hashes": ["h1:" + h1, "zh:" + zh]}
if not archives:
    sys.exit("no archives for version " + version + " in " + base)
json.dump({"versions": {version: {}}}, open(os.path.join(base, "index.json"), "w"))
json.dump({"archives": archives}, open(os.path.join(base, version + ".json"), "w"), indent=1)
print(" ".join(sorted(archives)))
PY
}

case ${1:-} in
  install) install ;;
  dist)
    shift
    dist "$@"
    ;;
  package)
    [[ $# == 4 ]] || die "usage: $0 package BIN PLATFORM DIR"
    package "$2" "$3" "$4"
    ;;
  mirror)
    [[ $# == 3 ]] || die "usage: $0 mirror DIST DIR"
    mirror "$2" "$3"
    ;;
  *) die "usage: $0 install | dist [PLATFORM...] | package BIN PLATFORM DIR | mirror DIST DIR" ;;
esac
