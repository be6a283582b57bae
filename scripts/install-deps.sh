#!/bin/sh
# Install the Debian 12 packages Tessera needs to build, run and test.
# Usage: scripts/install-deps.sh [--test]   (--test adds the test tools)
set -eu
export DEBIAN_FRONTEND=noninteractive
BUILD="build-essential autoconf automake libtool pkg-config rpcsvc-proto
 libtirpc-dev libevent-dev liblmdb-dev lmdb-utils libssl-dev
 libcurl4-openssl-dev libzstd-dev libdeflate-dev rpcbind libuv1-dev libnfs-dev"
# From bookworm-backports (0.22, the maintained line; see below).
BACKPORTS="libraft-dev"
# debhelper, lintian, logrotate: t/pkg/package-test.sh builds, checks
# and runs the Debian package; clang-format (14): t/unit/format_test.sh.
TEST="libnfs-utils valgrind nfs-common procps iproute2 psmisc
 curl clang libfuzzer-14-dev haproxy debhelper lintian logrotate
 clang-format"
PKGS=$BUILD
[ "${1:-}" = --test ] && PKGS="$BUILD $TEST"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
bpmissing=
for p in $BACKPORTS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		bpmissing="$bpmissing $p"
done
# libraft: bookworm has 0.15, bookworm-backports 0.22 (Canonical's raft
# continued by the cowsql project; the 0.15 line is no longer fixed).
BPLIST=/etc/apt/sources.list.d/bookworm-backports.list
if [ -n "$bpmissing" ] && ! grep -rqs bookworm-backports \
	/etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deb http://deb.debian.org/debian bookworm-backports main" |
		$SUDO tee "$BPLIST" >/dev/null
fi
if [ -n "$missing$bpmissing" ]; then
	echo "installing:$missing$bpmissing"
	$SUDO apt-get update -qq
fi
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ -n "$bpmissing" ]; then
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends \
		-t bookworm-backports $bpmissing >/dev/null
fi
