#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs what maildsar needs to build and test, from Debian 12 packages only.
set -euo pipefail

packages=(
  chromium
  build-essential cmake pkg-config ca-certificates
  libgmime-3.0-dev libxapian-dev libpst-dev libboost-program-options-dev
  nlohmann-json3-dev libsqlite3-dev libgtest-dev libgmock-dev
  libphonenumber-dev libidn2-dev libfmt-dev libssl-dev nettle-dev libjemalloc-dev zlib1g-dev libisal-dev
  libpoppler-cpp-dev libzip-dev libxml2-dev libytnef0-dev libarchive-dev
  libpango1.0-dev libcairo2-dev fonts-dejavu-core poppler-utils
  pst-utils xapian-tools gzip python3 zsh groff-base man-db
  clang-16 libclang-rt-16-dev
  openssh-server openssh-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 77; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
