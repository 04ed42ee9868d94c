#!/usr/bin/env bash
# Debian packages the hub needs to build: samael (SAML) links libxmlsec1 and libxml2
# through bindgen (libclang) and pkg-config, and openssl. Idempotent: does nothing when
# they are present; otherwise installs them with apt-get (as root, or through sudo).
set -euo pipefail
need=()
pkg-config --exists xmlsec1 2>/dev/null || need+=(libxmlsec1-dev)
pkg-config --exists libxml-2.0 2>/dev/null || need+=(libxml2-dev)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
pkg-config --exists libxslt 2>/dev/null || need+=(libxslt1-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# libclang itself (bindgen loads it), not libclang-cpp, which other packages bring along.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "==> installing ${need[*]} (needed to build the SAML support)"
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" pkg-config >/dev/null
