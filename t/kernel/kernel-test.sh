#!/bin/bash
# The Linux kernel NFSv3 client against tesserad: format a volume in a
# temporary dir, start tesserad on a free loopback port, boot Debian's
# kernel in QEMU (setup.sh, run.sh) and run guest-tests.sh against the
# mount. Slow (a few minutes under TCG), so not part of `make check`'s
# TESTS; the top-level test runner calls it.
#
# Env: top_builddir  where tesserad and tessera are (default: the source
#                    tree holding this script)
#      SERVER        tessera (default) | ganesha (NFS-Ganesha over a local
#                    dir: for developing the harness itself)
#      KEEP_LOG, KEEP_DIR  (common.sh)
#      KTEST_STORAGE the volume's storage URL (default: file:// in the
#                    temporary dir; e.g. s3://bucket?endpoint=... with the
#                    AWS_* credentials in the environment)
#      KTEST_WRITEBACK=1  serve with a disk cache and writeback on
#      KERNEL_WORK, TIMEOUT, ACCEL, TEST_SCRIPT: passed on to run.sh
# With tesserad and libnfs-utils, a helper loop lets the guest change the
# exports and reload them, set quotas and run tessera (kt_do_* below).
# Exit: 0 all guest checks passed, 1 something failed, 77 QEMU and the
# guest tools cannot be installed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
SERVER=${SERVER:-tessera}

kt_setup kernel-test
kt_tmp kernel
SRV=
RPCB=
HELPER=
kt_procs() { echo $HELPER $SRV $RPCB; }

PORT=$(kt_free_port) || { echo "# no free port"; exit 1; }
case $SERVER in
tessera)
	kt_built
	kt_tessera format.log format "lmdb://$TMP/meta" \
		"${KTEST_STORAGE:-file://$TMP/obj}" kvol
	# / rw for 127.0.0.1, no_root_squash, insecure (the default
	# exports, written out so that the guest can change them, below):
	# the guest's traffic arrives from 127.0.0.1 through slirp.
	echo "/ 127.0.0.1(rw,insecure,no_root_squash)" > "$TMP/exports"
	WB=()
	[ "${KTEST_WRITEBACK:-0}" = 1 ] && mkdir -p "$TMP/cache" &&
		WB=(-o "cache_dirs=$TMP/cache" -o writeback=yes)
	"$top_builddir/tesserad" --meta "lmdb://$TMP/meta" \
		--listen "127.0.0.1:$PORT" --foreground --no-rpcbind \
		--exports "$TMP/exports" \
		"${WB[@]}" > "$TMP/server.log" 2>&1 &
	SRV=$!
	# libnfs-utils talk to the volume for host_helper below
	command -v nfs-cp >/dev/null &&
		export GUEST_ENV="${GUEST_ENV:+$GUEST_ENV }KTEST_HOST=1"
	MNT_PORT=$PORT
	EXPORT=/
	;;
ganesha)
	command -v ganesha.nfsd >/dev/null ||
		{ echo "# apt-get install nfs-ganesha nfs-ganesha-vfs"; exit 1; }
	# Ganesha refuses to start unless it can register with rpcbind.
	if ! listening 111; then
		rpcbind -f & RPCB=$!
		sleep 0.5
	fi
	MNT_PORT=$(kt_free_port) || exit 1
	mkdir -p "$TMP/export" "$TMP/recov"
	cat > "$TMP/ganesha.conf" <<-EOF
	NFS_CORE_PARAM {
	    Protocols = 3; NFS_Port = $PORT; MNT_Port = $MNT_PORT;
	    Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false;
	    Enable_UDP = false; Mount_Path_Pseudo = true;
	}
	NFSV4 { Graceless = true; RecoveryRoot = $TMP/recov; }
	EXPORT {
	    Export_Id = 1; Path = $TMP/export; Pseudo = /export;
	    Access_Type = RW; Squash = No_Root_Squash; Protocols = 3;
	    Transports = TCP; SecType = sys; FSAL { Name = VFS; }
	}
	LOG { Default_Log_Level = EVENT; }
	EOF
	ganesha.nfsd -F -L "$TMP/server.log" -f "$TMP/ganesha.conf" \
		-p "$TMP/ganesha.pid" &
	SRV=$!
	EXPORT=/export
	;;
*)	echo "# unknown SERVER=$SERVER"; exit 1 ;;
esac

for p in "$PORT" "$MNT_PORT"; do
	wait_listen "127.0.0.1:$p" "$SRV" "$SERVER" "$TMP/server.log" || exit 1
done
echo "# kernel-test: $SERVER (pid $SRV) on 127.0.0.1:$PORT"

# What the guest asks of the host (guest-common.sh, host_ask; common.sh,
# kt_serve): an exports file (host_exports in guest-tests.sh), installed
# and tesserad reloaded (SIGHUP), answered once the reload is logged;
# "PATH BYTES INODES" (host_quota), run as `tessera quota set`; the
# arguments of a `tessera` command, META standing for the volume's
# metadata URL (host_tessera), run, answered with its output and exit
# status.
kt_do_exports() {
	local before
	mv "$TMP/request" "$TMP/exports"
	before=$(grep -c reload "$TMP/server.log")
	kill -HUP "$SRV"
	for _ in $(seq 100); do
		[ "$(grep -c reload "$TMP/server.log")" -gt "$before" ] && break
		sleep 0.1
	done
}
kt_do_quota() {
	local qpath qbytes qinodes
	read -r qpath qbytes qinodes < "$TMP/request" || return 1
	"$top_builddir/tessera" quota set "lmdb://$TMP/meta" "$qpath" \
		--bytes "$qbytes" --inodes "$qinodes" >> "$TMP/server.log" 2>&1
	return 0
}
kt_do_tessera() {
	local targs
	targs=$(cat "$TMP/request")
	targs=${targs//META/lmdb://$TMP/meta}
	# word splitting of the guest's line is the point here
	# shellcheck disable=SC2086
	"$top_builddir/tessera" $targs > "$TMP/answer" 2>&1
	echo "exit $?" >> "$TMP/answer"
	cat "$TMP/answer" >> "$TMP/server.log"
}
if [[ "${GUEST_ENV:-}" == *KTEST_HOST=1* ]]; then
	while kill -0 "$SRV" 2>/dev/null; do
		sleep 0.5
		kt_serve tessera
		kt_serve quota
		kt_serve exports
	done &
	HELPER=$!
fi

kt_vm_start "${TEST_SCRIPT:-$HERE/guest-tests.sh}" "$PORT" "$MNT_PORT" "$EXPORT"
kt_vm_wait
kt_server_end "$SERVER" "$SRV"
exit 0
