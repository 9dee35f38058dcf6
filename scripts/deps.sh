#!/usr/bin/env bash
# Installs the Debian 12 packages roj needs to build and test. As root it
# runs apt-get; otherwise it prints the command to run and fails.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config clang
          libpcre2-dev libutf8proc-dev libcjson-dev libcmocka-dev
          libopenblas-dev libpng-dev libyaml-dev libsqlite3-dev
          libnats-dev nats-server libssl-dev openssl)
if [[ "${ROJ_DEPS_EXTRA:-}" != "" ]]; then
    read -r -a extra <<<"$ROJ_DEPS_EXTRA"
    packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "roj: missing Debian packages: ${missing[*]}" >&2
    echo "roj: install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "roj: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# nats-server's package enables a systemd unit that listens on
# 127.0.0.1:4222. Where systemd runs, policy-rc.d keeps it from starting
# during the install; roj's tests start their own servers on other ports.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
