#!/bin/sh
# Install, build, and start Tessera on the embedded default: LMDB metadata
# and a local-directory object store under $TESSERA_HOME
# (/var/lib/tessera), exported read-write to 127.0.0.1 only.  Prints how
# to mount it.  Running it again rebuilds and restarts the gateway; the
# volume is kept.
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
HOME_DIR=${TESSERA_HOME:-/var/lib/tessera}
PORT=${TESSERA_PORT:-2049}

sh scripts/install-deps.sh
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build && cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" -s
cd "$TOP"

mkdir -p "$HOME_DIR"
if ! build/tessera status "lmdb://$HOME_DIR/meta" >/dev/null 2>&1; then
	build/tessera format "lmdb://$HOME_DIR/meta" \
		"file://$HOME_DIR/objects" tessera
fi

# rpcbind lets `mount -t nfs host:/ /mnt` find the ports by itself.
pgrep -x rpcbind >/dev/null 2>&1 || rpcbind -w 2>/dev/null || rpcbind || true

PIDFILE=$HOME_DIR/tesserad.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
	echo "stopping the running tesserad (pid $(cat "$PIDFILE"))"
	kill "$(cat "$PIDFILE")"
	while kill -0 "$(cat "$PIDFILE")" 2>/dev/null; do sleep 0.2; done
fi
build/tesserad --meta "lmdb://$HOME_DIR/meta" --listen "0.0.0.0:$PORT" \
	--pidfile "$PIDFILE"
sleep 0.5
kill -0 "$(cat "$PIDFILE")" 2>/dev/null || {
	echo "tesserad did not start; see the system log" >&2
	exit 1
}
cat <<MSG
tesserad is running (pid $(cat "$PIDFILE")), volume in $HOME_DIR.
Mount it from this machine with:
  mkdir -p /mnt/tessera
  mount -t nfs -o vers=3,proto=tcp,port=$PORT,mountport=$PORT,nolock 127.0.0.1:/ /mnt/tessera
(nolock on this machine only: its rpcbind has room for one lock manager,
the kernel's.  Other clients, once the exports let them in, mount with
  mount -t nfs -o vers=3 $(hostname):/ /mnt/tessera
and get NFS locks.)
Stop it with: kill \$(cat $PIDFILE)
MSG
