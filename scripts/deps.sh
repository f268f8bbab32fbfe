#!/usr/bin/env bash
# deps.sh — install what weft's builds and tests need, from Debian 12 packages only.
#
#   scripts/deps.sh host            compilers, cmake, ninja, liburing, protobuf, gtest, benchmark,
#                                   clang tools, libFuzzer runtime (everything host presets use)
#   scripts/deps.sh cross           cross compilers + qemu-user, then the arm64 and armhf sysroots
#   scripts/deps.sh sysroot ARCH..  (re)build only the given sysroots (Debian arch names: arm64,
#                                   armhf, amd64)
#   scripts/deps.sh browser         headless Chromium for the dashboard's browser test
#                                   (tests/examples/demo_browser_test.py); `weft test` installs it
#   scripts/deps.sh all             host + browser + cross
#   scripts/deps.sh bench           optional benchmark peers: gRPC C++ (bench/run_grpc_compare.sh),
#                                   llhttp and http_parser (weft_http_bench); not part of host or
#                                   all: CI builds without them
# Environment: WEFT_SYSROOT_EXTRA_PKGS (more packages for the sysroots), WEFT_SYSROOTS_DIR
# (where sysroots go, default <repo>/.sysroots), WEFT_DEPS_REFRESH=1 (rebuild them).
#
# Idempotent and cheap on re-run: packages already installed are not passed to apt-get,
# `apt-get update` runs only when a wanted package is unknown or the lists are older than a
# day, and a sysroot is rebuilt only when its package list (or this script's sysroot recipe)
# changed. WEFT_DEPS_REFRESH=1 forces the sysroots to be rebuilt from fresh indexes.
#
# Cross sysroots: no multiarch (dpkg add-architecture) (a foreign index that is mid-sync on the mirror
# then breaks every apt-get install on the machine). Each target arch gets a private apt state
# under .sysroots/.apt/<arch> that downloads .debs, and `dpkg -x` unpacks them into
# .sysroots/<arch>. The sysroot holds only third-party -dev packages; libc and libstdc++ come
# from the Debian cross toolchain in /usr/<triplet>. Unversioned lib*.so links whose runtime
# package is not unpacked are dropped, so those libraries link statically from their .a.
# Google Benchmark ships no static archive in Debian, so its shared library is unpacked too;
# the build tree's RPATH lets qemu find it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSROOTS="${WEFT_SYSROOTS_DIR:-$ROOT/.sysroots}"
export DEBIAN_FRONTEND=noninteractive

HOST_PKGS=(
  build-essential g++ clang lld cmake ninja-build pkg-config file ccache git python3 curl
  ca-certificates
  liburing-dev libprotobuf-dev protobuf-compiler libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev clang-format clang-tidy libclang-rt-14-dev
  mosquitto mosquitto-clients
  libmbedtls-dev libssl-dev openssl
)
CROSS_PKGS=(g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user)
BROWSER_PKGS=(chromium)
# Optional, for benchmarks only: never installed by host/all.
#   libgrpc++-dev protobuf-compiler-grpc   the gRPC peer (bench/grpc/, WEFT_BENCH_GRPC)
#   node-llhttp         llhttp's C sources in /usr/share/llhttp (weft_http_bench)
#   libhttp-parser-dev  http_parser, static libhttp_parser.a (weft_http_bench)
#   libnghttp2-dev      one HTTP/2 stream of nghttp2, the peer of weft-mux-bench (weft-mux-nghttp2)
# bench/ builds each comparison only when its packages are present.
BENCH_PKGS=(libgrpc++-dev protobuf-compiler-grpc node-llhttp libhttp-parser-dev libnghttp2-dev)

# Packages unpacked into every sysroot. Runtime packages are listed only where no static
# archive exists (libbenchmark1debian); the rest link statically.
SYSROOT_PKGS=(
  liburing-dev
  libprotobuf-dev
  zlib1g-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev libbenchmark1debian
  libmbedtls-dev
)
# More -dev packages for the sysroots (a firmware project's own dependencies):
#   WEFT_SYSROOT_EXTRA_PKGS="libssl-dev libsystemd-dev" scripts/deps.sh cross
read -r -a _extra <<<"${WEFT_SYSROOT_EXTRA_PKGS:-}"
SYSROOT_PKGS+=("${_extra[@]}")
# Bump when the unpack/fix-up recipe below changes, so existing sysroots are rebuilt.
SYSROOT_RECIPE=2

log() { printf '[deps] %s\n' "$*" >&2; }
die() { printf '[deps] error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run as root"
  SUDO=(sudo -E)
fi

# --- host apt -------------------------------------------------------------------------

lists_fresh() {  # true when some Packages index is younger than a day
  [[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null |
           head -n1)" ]]
}

APT_UPDATED=0
apt_update() {
  [[ $APT_UPDATED -eq 1 ]] && return 0
  log "apt-get update"
  "${SUDO[@]}" apt-get -q update
  APT_UPDATED=1
}

installed() {  # installed PKG: true when dpkg has it installed
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

has_candidate() {
  local c
  c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  [[ -n "$c" && "$c" != "(none)" ]]
}

apt_install() {
  local missing=() p
  for p in "$@"; do
    installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "already installed: $*"
    return 0
  fi
  if ! lists_fresh; then
    apt_update
  else
    for p in "${missing[@]}"; do
      has_candidate "$p" || { apt_update; break; }
    done
  fi
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get -q install -y --no-install-recommends "${missing[@]}"
}

# --- sysroots -------------------------------------------------------------------------

triplet_of() {
  case "$1" in
    arm64) echo aarch64-linux-gnu ;;
    armhf) echo arm-linux-gnueabihf ;;
    amd64) echo x86_64-linux-gnu ;;
    *) die "unknown sysroot arch '$1' (use arm64, armhf or amd64)" ;;
  esac
}

build_sysroot() {
  local arch="$1" triplet dest state stamp want
  triplet="$(triplet_of "$arch")"
  dest="$SYSROOTS/$arch"
  state="$SYSROOTS/.apt/$arch"
  stamp="$dest/.weft-sysroot"
  want="recipe=$SYSROOT_RECIPE pkgs=${SYSROOT_PKGS[*]}"
  if [[ "${WEFT_DEPS_REFRESH:-0}" != 1 && -f "$stamp" && "$(head -n1 "$stamp")" == "$want" ]]; then
    log "sysroot $arch up to date ($dest)"
    return 0
  fi
  log "building sysroot $arch ($triplet) in $dest"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
  local apt_opts=(
    -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
    -o "Dir::State::Lists=$state/lists" -o "Dir::State::Status=/dev/null"
    -o "Dir::Cache=$state/cache" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
  )
  # Private index: refreshed when older than a day or on WEFT_DEPS_REFRESH. A source that
  # fails to download is a warning (W:), not an error: the other indexes still serve.
  if [[ "${WEFT_DEPS_REFRESH:-0}" == 1 ||
        -z "$(find "$state/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 | head -n1)" ]]; then
    log "apt-get update ($arch, private state)"
    apt-get -q "${apt_opts[@]}" update >&2 ||
      log "warning: apt-get update for $arch reported errors; using what was fetched"
  fi
  local p avail=()
  for p in "${SYSROOT_PKGS[@]}"; do
    if apt-cache "${apt_opts[@]}" show "$p" >/dev/null 2>&1; then
      avail+=("$p")
    else
      log "warning: $p not available for $arch; skipped"
    fi
  done
  [[ ${#avail[@]} -gt 0 ]] || die "no sysroot packages available for $arch (apt index empty?)"
  # apt-get download writes into the current directory. A mirror mid-sync can list a .deb it
  # does not serve yet: refresh the index once and retry.
  if ! (cd "$state/debs" && rm -f ./*.deb && apt-get -q "${apt_opts[@]}" download "${avail[@]}" >&2); then
    log "download for $arch failed; refreshing its index and retrying"
    apt-get -q "${apt_opts[@]}" update >&2 || true
    (cd "$state/debs" && rm -f ./*.deb && apt-get -q "${apt_opts[@]}" download "${avail[@]}" >&2) ||
      die "could not download the $arch sysroot packages"
  fi

  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  local deb
  for deb in "$state/debs"/*.deb; do
    dpkg -x "$deb" "$dest.tmp"
  done
  # Absolute symlinks would point into the host's /usr: re-point them inside the sysroot.
  local link target
  while IFS= read -r -d '' link; do
    target="$(readlink "$link")"
    if [[ "$target" == /* ]]; then
      ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dest.tmp$target")" "$link"
    fi
  done < <(find "$dest.tmp" -type l -print0)
  # Drop dangling links (lib*.so of runtime packages not unpacked): those link statically.
  find "$dest.tmp" -xtype l -delete
  # Drop what no build needs (docs, man pages) to keep the tree small.
  rm -rf "$dest.tmp/usr/share/doc" "$dest.tmp/usr/share/man" "$dest.tmp/usr/share/lintian"
  {
    echo "$want"
    echo "triplet=$triplet"
    for deb in "$state/debs"/*.deb; do basename "$deb"; done
  } >"$dest.tmp/.weft-sysroot"
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
  log "sysroot $arch ready: $(find "$dest" -name '*.a' | wc -l) static archives"
}

# --- commands -------------------------------------------------------------------------

do_host() { apt_install "${HOST_PKGS[@]}"; }

do_cross() {
  local pkgs=("${CROSS_PKGS[@]}") arches=(arm64 armhf)
  # On a non-x86 build machine the x86_64 preset needs a cross compiler and sysroot too.
  if [[ "$(dpkg --print-architecture)" != amd64 ]]; then
    pkgs+=(g++-x86-64-linux-gnu)
    arches+=(amd64)
  fi
  # apt-get download, dpkg -x: both ship with every Debian; make sure of the basics anyway.
  apt_install "${pkgs[@]}" ca-certificates
  local a
  for a in "${arches[@]}"; do build_sysroot "$a"; done
}

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: deps.sh supports Debian 12 only"

[[ $# -ge 1 ]] || usage 2
cmd="$1"
shift
case "$cmd" in
  host) do_host ;;
  cross) do_cross ;;
  all) do_host; apt_install "${BROWSER_PKGS[@]}"; do_cross ;;
  browser) apt_install "${BROWSER_PKGS[@]}" ;;
  bench) apt_install "${BENCH_PKGS[@]}" ;;
  sysroot)
    [[ $# -ge 1 ]] || usage 2
    for a in "$@"; do build_sysroot "$a"; done
    ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac
