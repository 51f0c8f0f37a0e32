#!/usr/bin/env bash
# Installs what `go run ./tools/bench` uses, from Debian packages:
#   wrk         load generator (required)
#   nginx       peer proxy (optional: skipped with a note when absent)
#   haproxy     peer proxy (optional: skipped with a note when absent)
#   linux-perf  `perf record` for -profile (optional)
#   graphviz    `dot`, for the SVG call graph of -profile (optional)
#   util-linux  taskset, for the pinned layout (normally already there)
#
# The bench never uses the packages' system services or configs: it starts
# its own nginx/haproxy on free loopback ports with configs generated in a
# temp dir. This script leaves any system service as it is (an idle one
# costs nothing); it only says so when one is running.
#
# Usage: tools/bench/setup.sh        (as root, or with sudo available)
set -euo pipefail

pkgs=(wrk nginx haproxy linux-perf graphviz util-linux)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "setup.sh: run as root (or install sudo)" >&2
		exit 1
	fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "setup.sh: apt-get not found; install these by hand: ${pkgs[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"

for pidfile in /run/nginx.pid /run/haproxy.pid; do
	if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "note: a system service is running ($pidfile); the bench does not use it." \
			"An idle service does not matter; stop it for the quietest runs if you like."
	fi
done

echo "installed:"
for tool in wrk nginx haproxy perf dot taskset; do
	if path=$(command -v "$tool"); then
		echo "  $tool: $path"
	else
		echo "  $tool: MISSING"
	fi
done
echo "next: go run ./tools/bench -quick"
