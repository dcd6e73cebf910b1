#!/usr/bin/env bash
# Installs what bpfmesh needs on Debian 12 (as root) and prepares bpffs; safe to run again.
set -euo pipefail

PKGS=(make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libyaml-dev libcmocka-dev
      libclang-rt-14-dev node-llhttp libmnl-dev libpcre2-dev libnghttp2-dev pkg-config iproute2 iptables curl socat netcat-openbsd
      wrk iperf3 nghttp2-client python3-h2 python3-grpcio nginx-light haproxy openssl jq procps psmisc gnuplot-nox python3 valgrind gdb)

if [ "$(id -u)" != 0 ]; then
	echo "deps: must run as root (bpf, netns, cgroups, apt)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian starts nginx and haproxy on install; bpfmesh runs its own instances only.
for svc in nginx haproxy; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done

if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	mkdir -p /sys/fs/bpf
	mount -t bpf bpf /sys/fs/bpf
fi
if ! awk '$3 == "cgroup2" { found = 1 } END { exit !found }' /proc/mounts; then
	echo "deps: no cgroup v2 mount in /proc/mounts" >&2
	exit 1
fi
