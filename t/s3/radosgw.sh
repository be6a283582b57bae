#!/bin/bash
# radosgw.sh start|stop|status - a throwaway single-node Ceph (one monitor,
# one in-memory OSD, no manager) with radosgw on http://127.0.0.1:${S3_PORT}:
# a real S3 server that verifies SigV4 signatures, for the integration tests.
# Takes about 20 s and 850 MB of RAM; everything lives under $CEPH_DIR.
#
# start installs radosgw, ceph-mon, ceph-osd, uuid-runtime and curl (no
# recommends) when they are missing and creates the S3 user
# $S3_ACCESS_KEY / $S3_SECRET_KEY.  Exit status 77 when radosgw cannot be
# installed or does not come up, so callers can skip.
set -u
C=${CEPH_DIR:-/tmp/tessera-ceph}
PORT=${S3_PORT:-7480}
AK=${S3_ACCESS_KEY:-TESSERAKEY}
SK=${S3_SECRET_KEY:-TESSERASECRET}

install_deps() {
	local p missing=
	for p in radosgw ceph-mon ceph-osd uuid-runtime curl; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || { echo "radosgw.sh: need root to install$missing"; return 1; }
	echo "radosgw.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	{ apt-get update -qq && apt-get install -y -qq \
		--no-install-recommends $missing; } >/dev/null 2>&1
}

stop() {
	local f p i
	for f in "$C"/run/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null
		for i in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
		rm -f "$f"
	done
	return 0
}

up() {
	curl -s -o /dev/null "http://127.0.0.1:$PORT/"
}

start() {
	install_deps || exit 77
	if up; then
		echo "radosgw.sh: something already answers on port $PORT"
		return 0
	fi
	stop
	rm -rf "$C/run" "$C/monmap" "$C"/*.keyring
	mkdir -p "$C/run/mon" "$C/run/osd0" "$C/run/rgw" "$C/run/log"
	local fsid
	fsid=$(uuidgen)
	cat >"$C/ceph.conf" <<EOC
[global]
fsid = $fsid
mon host = 127.0.0.1:6789
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = $C/run
log file = $C/run/log/\$name.log
admin socket = $C/run/\$name.asok
pid file = $C/run/\$name.pid
ms bind ipv4 = true
public addr = 127.0.0.1
[mon.a]
mon data = $C/run/mon
[osd.0]
osd data = $C/run/osd0
osd objectstore = memstore
memstore device bytes = 2147483648
osd journal size = 0
keyring = $C/run/osd0/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $C/run/rgw
keyring = $C/run/rgw/keyring
EOC
	export CEPH_CONF=$C/ceph.conf
	local ceph="ceph -c $C/ceph.conf -k $C/admin.keyring" i
	{
		ceph-authtool --create-keyring "$C/mon.keyring" --gen-key \
			-n mon. --cap mon 'allow *' &&
		ceph-authtool --create-keyring "$C/admin.keyring" --gen-key \
			-n client.admin --cap mon 'allow *' --cap osd 'allow *' \
			--cap mgr 'allow *' &&
		ceph-authtool "$C/mon.keyring" --import-keyring \
			"$C/admin.keyring" &&
		monmaptool --create --clobber --add a 127.0.0.1:6789 \
			--fsid "$fsid" "$C/monmap" &&
		ceph-mon -c "$C/ceph.conf" --mkfs -i a --monmap "$C/monmap" \
			--keyring "$C/mon.keyring" &&
		ceph-mon -c "$C/ceph.conf" -i a &&
		sleep 2 &&
		$ceph osd create &&
		ceph-osd -c "$C/ceph.conf" -i 0 --mkfs --mkkey \
			--no-mon-config &&
		$ceph auth add osd.0 osd 'allow *' mon 'allow profile osd' \
			-i "$C/run/osd0/keyring" &&
		ceph-osd -c "$C/ceph.conf" -i 0 &&
		$ceph auth get-or-create client.rgw.a mon 'allow rw' \
			osd 'allow rwx' -o "$C/run/rgw/keyring" &&
		sleep 3 &&
		radosgw -c "$C/ceph.conf" -n client.rgw.a
	} >"$C/run/log/bootstrap.log" 2>&1 || {
		echo "radosgw.sh: bootstrap failed, see $C/run/log/"
		stop
		exit 77
	}
	for i in $(seq 1 120); do
		up && break
		sleep 0.5
	done
	if ! up; then
		echo "radosgw.sh: radosgw did not answer on port $PORT"
		stop
		exit 77
	fi
	radosgw-admin -c "$C/ceph.conf" -k "$C/admin.keyring" user create \
		--uid=tessera --display-name=tessera --access-key="$AK" \
		--secret="$SK" >/dev/null 2>&1 || {
		echo "radosgw.sh: could not create the S3 user"
		stop
		exit 77
	}
	echo "radosgw ready on http://127.0.0.1:$PORT"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) up && echo running || { echo stopped; exit 1; } ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
