#!/bin/sh
# Install the Debian 12 packages Tessera needs to build, run and test.
# Usage: scripts/install-deps.sh [--test]   (--test adds the test tools)
set -eu
export DEBIAN_FRONTEND=noninteractive
BUILD="build-essential autoconf automake libtool pkg-config rpcsvc-proto
 libtirpc-dev libevent-dev liblmdb-dev lmdb-utils libssl-dev
 libcurl4-openssl-dev libzstd-dev rpcbind"
TEST="libnfs-dev libnfs-utils valgrind nfs-common procps iproute2 psmisc
 curl clang libfuzzer-14-dev"
PKGS=$BUILD
[ "${1:-}" = --test ] && PKGS="$BUILD $TEST"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
