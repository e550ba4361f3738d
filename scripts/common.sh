# Shared by scripts/sample.sh and scripts/test.sh: install the Debian
# packages aralwatch needs (only those missing), then configure and build.
set -euo pipefail

AW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AW_PACKAGES=(build-essential cmake pkg-config libgdal-dev gdal-bin
    libproj-dev libtiff-dev libdeflate-dev libzstd-dev libisal-dev libcmocka-dev libyaml-dev libjansson-dev libssl-dev
    libsqlite3-dev python3-gdal python3-numpy python3-yaml python3-jsonschema
    # the MPI build (-DAW_MPI=ON) and its tests: Open MPI
    libopenmpi-dev openmpi-bin
    # scripts/test.sh: libFuzzer targets (clang, its libFuzzer/sanitizer
    # runtime and OpenMP runtime), valgrind memcheck, and headless Chromium
    # to render report.html in e2e.test_report
    clang libclang-rt-14-dev libomp-14-dev valgrind chromium)

aw_install_deps() {
    local missing=()
    for p in "${AW_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "aralwatch: installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# aw_build DIR [cmake options...]
aw_build() {
    local dir=$1
    shift
    cmake -S "$AW_ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}
