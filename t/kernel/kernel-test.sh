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
#      KEEP_LOG      copy the VM's console log there
#      KTEST_STORAGE the volume's storage URL (default: file:// in the
#                    temporary dir; e.g. s3://bucket?endpoint=... with the
#                    AWS_* credentials in the environment)
#      KTEST_WRITEBACK=1  serve with a disk cache and writeback on
#      KERNEL_WORK, TIMEOUT, ACCEL, TEST_SCRIPT: passed on to run.sh
# With tesserad and libnfs-utils, a helper loop lets the guest change the
# exports and reload them (host_helper below; guest-tests.sh host_exports).
# Exit: 0 all guest checks passed, 1 something failed, 77 QEMU and the
# guest tools cannot be installed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$HERE/../.." && pwd)}
SERVER=${SERVER:-tessera}
# The kernel cache lives next to this script unless that is read-only (a
# distcheck tree): then in /tmp, still shared between runs.
if [ -z "${KERNEL_WORK:-}" ] && ! [ -w "$HERE" ]; then
	export KERNEL_WORK=${TMPDIR:-/tmp}/tessera-kernel-work
fi

echo "# kernel-test: setup"
bash "$HERE/setup.sh" >/dev/null
rc=$?
[ $rc = 77 ] && { echo "# SKIP: cannot install QEMU and guest tools"; exit 77; }
[ $rc = 0 ] || { echo "# setup.sh failed ($rc)"; exit 1; }

TMP=$(mktemp -d /tmp/tessera-kernel.XXXXXX)
SRV=
RPCB=
RUN=
HELPER=
cleanup() {
	# run.sh has its own process group (setsid): this ends QEMU too.
	[ -n "$RUN" ] && kill -- -"$RUN" 2>/dev/null
	for p in $HELPER $SRV $RPCB; do
		kill "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

listening() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
free_port() {
	local p
	for _ in $(seq 100); do
		# below the ephemeral range (32768-60999 by default), where an
		# outgoing connection can take a port between probe and bind
		p=$((20000 + RANDOM % 12000))
		listening "$p" || { echo "$p"; return 0; }
	done
	return 1
}
wait_listen() {   # PORT PID
	for _ in $(seq 100); do
		listening "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

PORT=$(free_port) || { echo "# no free port"; exit 1; }
case $SERVER in
tessera)
	for b in tessera tesserad; do
		[ -x "$top_builddir/$b" ] ||
			{ echo "# $top_builddir/$b not built"; exit 1; }
	done
	"$top_builddir/tessera" format "lmdb://$TMP/meta" \
		"${KTEST_STORAGE:-file://$TMP/obj}" \
		kvol > "$TMP/format.log" 2>&1 ||
		{ echo "# tessera format failed:"; sed 's/^/#   /' "$TMP/format.log"
		  exit 1; }
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
	MNT_PORT=$(free_port) || exit 1
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

if ! wait_listen "$PORT" "$SRV" || ! wait_listen "$MNT_PORT" "$SRV"; then
	echo "# $SERVER did not start listening on $PORT:"
	tail -n 30 "$TMP/server.log" | sed 's/^/#   /'
	exit 1
fi
echo "# kernel-test: $SERVER (pid $SRV) on 127.0.0.1:$PORT"

# What the guest asks of the host (guest-tests.sh, host_exports): it
# writes an exports file as ktest-exports.NAME at the volume's root; this
# loop installs it, reloads tesserad (SIGHUP) and answers with an empty
# ktest-reloaded.NAME once the reload is logged.  A ktest-quota.NAME
# holding "PATH BYTES INODES" (host_quota) is run as `tessera quota set`,
# answered by ktest-quota-done.NAME.  A ktest-tessera.NAME holding the
# arguments of a `tessera` command, META standing for the volume's
# metadata URL (host_tessera), is run, answered by ktest-tessera-done.NAME
# holding its exit status and output.
host_helper() {
	local q="?version=3&nfsport=$PORT&mountport=$PORT" seen=" " f n before
	local qpath qbytes qinodes targs
	: > "$TMP/empty"
	while kill -0 "$SRV" 2>/dev/null; do
		sleep 0.5
		for f in $(nfs-ls "nfs://127.0.0.1/$q" 2>/dev/null |
			   awk '{print $NF}' |
			   grep -E '^ktest-tessera\.[a-z0-9-]+$'); do
			n=tessera-${f#ktest-tessera.}
			[[ $seen == *" $n "* ]] && continue
			targs=$(nfs-cat "nfs://127.0.0.1//$f$q" 2>/dev/null) ||
				continue
			targs=${targs//META/lmdb://$TMP/meta}
			# word splitting of the guest's line is the point here
			# shellcheck disable=SC2086
			{ "$top_builddir/tessera" $targs > "$TMP/tessera.out" 2>&1
			  echo "exit $?" >> "$TMP/tessera.out"; }
			cat "$TMP/tessera.out" >> "$TMP/server.log"
			nfs-cp "$TMP/tessera.out" \
				"nfs://127.0.0.1//ktest-tessera-done.${f#ktest-tessera.}$q" \
				>/dev/null 2>&1
			seen="$seen$n "
		done
		for f in $(nfs-ls "nfs://127.0.0.1/$q" 2>/dev/null |
			   awk '{print $NF}' |
			   grep -E '^ktest-quota\.[a-z0-9-]+$'); do
			n=quota-${f#ktest-quota.}
			[[ $seen == *" $n "* ]] && continue
			read -r qpath qbytes qinodes < <(nfs-cat \
				"nfs://127.0.0.1//$f$q" 2>/dev/null) || continue
			"$top_builddir/tessera" quota set "lmdb://$TMP/meta" \
				"$qpath" --bytes "$qbytes" --inodes "$qinodes" \
				>> "$TMP/server.log" 2>&1
			nfs-cp "$TMP/empty" \
				"nfs://127.0.0.1//ktest-quota-done.${f#ktest-quota.}$q" \
				>/dev/null 2>&1
			seen="$seen$n "
		done
		for f in $(nfs-ls "nfs://127.0.0.1/$q" 2>/dev/null |
			   awk '{print $NF}' |
			   grep -E '^ktest-exports\.[a-z0-9-]+$'); do
			n=${f#ktest-exports.}
			[[ $seen == *" $n "* ]] && continue
			nfs-cat "nfs://127.0.0.1//$f$q" > "$TMP/exports.new" \
				2>/dev/null || continue
			mv "$TMP/exports.new" "$TMP/exports"
			before=$(grep -c reload "$TMP/server.log")
			kill -HUP "$SRV"
			for _ in $(seq 100); do
				[ "$(grep -c reload "$TMP/server.log")" -gt \
				  "$before" ] && break
				sleep 0.1
			done
			nfs-cp "$TMP/empty" "nfs://127.0.0.1//ktest-reloaded.$n$q" \
				>/dev/null 2>&1
			seen="$seen$n "
		done
	done
}
if [[ "${GUEST_ENV:-}" == *KTEST_HOST=1* ]]; then
	host_helper &
	HELPER=$!
fi

# In the background and waited for, so a signal reaches the trap at once.
LOG=$TMP/console.log setsid -w bash "$HERE/run.sh" "$PORT" "$MNT_PORT" \
	"$EXPORT" &
RUN=$!
wait $RUN
rc=$?
RUN=
[ -n "${KEEP_LOG:-}" ] && cp "$TMP/console.log" "$KEEP_LOG"
if ! kill -0 "$SRV" 2>/dev/null; then
	echo "# $SERVER died during the test"
	rc=1
fi
if [ $rc != 0 ]; then
	echo "# server log (last 40 lines):"
	tail -n 40 "$TMP/server.log" | sed 's/^/#   /'
	exit 1
fi
exit 0
