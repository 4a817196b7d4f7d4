#!/usr/bin/env bash
# Install what zipper's WebGPU test path needs on Debian 12 (bookworm): Mesa's software OpenGL ES
# (llvmpipe) behind EGL, which Dawn (the `webgpu` npm package) drives with
# EGL_PLATFORM=surfaceless + backend=opengles + featureLevel 'compatibility' (src/engine/webgpu.ts).
#
#   libegl1 libegl-mesa0   EGL (glvnd) + Mesa's EGL vendor library
#   libgl1-mesa-dri        the llvmpipe driver (swrast_dri.so)
#   libegl-dev             the unversioned libEGL.so symlink: dawn.node dlopens "libEGL.so", not .so.1
#   libgles2               GLESv2 (ENGINE.md's measured set)
#
# Run as root after `apt-get update`. Idempotent; prints one line on success, the apt log on failure.
set -euo pipefail

PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libegl-dev libgles2)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "mesa.sh: run as root (missing: ${missing[*]})" >&2
    exit 1
  fi
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    # No package lists yet (apt-get update not run): update once and retry.
    if apt-get update -qq >>"$log" 2>&1 &&
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
      :
    else
      cat "$log" >&2
      echo "mesa.sh: apt-get install ${missing[*]} failed" >&2
      exit 1
    fi
  fi
  action="installed ${missing[*]}"
else
  action="already installed"
fi

# What Dawn will actually load.
libdir=$(dirname "$(ldconfig -p | awk '/libEGL\.so\.1 .*x86-64|libEGL\.so\.1 .*AArch64/ {print $NF; exit}')")
for f in "$libdir/libEGL.so" "$libdir/dri/swrast_dri.so"; do
  if [ ! -e "$f" ]; then
    echo "mesa.sh: $f missing after install" >&2
    exit 1
  fi
done

echo "mesa.sh: Mesa $(dpkg-query -W -f='${Version}' libegl-mesa0) EGL/GLES (llvmpipe) ready for WebGPU: $action"
