#!/bin/bash
# s3-test.sh - Tessera on a real S3 server (Ceph radosgw, which checks
# every SigV4 signature):
#   1. t/s3/s3_backend_test: the s3:// backend (PUT/GET/range/HEAD/list
#      with continuation/DELETE, wrong secret, missing bucket, retries
#      through the fault wrapper, zstd+crypt, parallel requests);
#   2. end to end: `tessera format` on s3:// (a wrong secret is refused),
#      tesserad on it, files copied in and out with nfs-cp and compared,
#      again after a restart, on a plain and a zstd+encrypted volume.
# Starts radosgw with t/s3/radosgw.sh unless one already answers on
# $S3_PORT, and stops it afterwards.  Exit 77 (skip) when radosgw cannot be
# installed or started.
set -u
B=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
export S3_PORT=${S3_PORT:-7480}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESSERAKEY}
export S3_SECRET_KEY=${S3_SECRET_KEY:-TESSERASECRET}
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
RGW=$S/t/s3/radosgw.sh
W=$(mktemp -d /tmp/tessera-s3.XXXXXX)
started=0
daemon=

cleanup() {
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	[ $started = 1 ] && "$RGW" stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$W"/*.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
	done
	exit 1
}

if ! "$RGW" status >/dev/null 2>&1; then
	"$RGW" start || { echo "SKIP: radosgw is not available"; exit 77; }
	started=1
fi

echo "# 1. backend test"
"$B/t/s3/s3_backend_test" || fail "s3_backend_test"

if ! command -v nfs-cp >/dev/null; then
	echo "# nfs-cp missing (libnfs-utils): end-to-end part skipped"
	exit 0
fi

echo "# 2. end to end"
bucket=tessera-e2e-$$
# radosgw wants the payload hash header, which curl signs when given
s3curl() {
	curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: \
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}
s3curl -X PUT "$S3_ENDPOINT/$bucket" >/dev/null ||
	fail "cannot create bucket $bucket with curl"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
store="s3://$bucket?endpoint=$S3_ENDPOINT"

AWS_SECRET_ACCESS_KEY=wrong-secret "$B/tessera" format \
	"lmdb://$W/meta-bad" "$store" bad >"$W/format-bad.log" 2>&1 &&
	fail "format with a wrong secret succeeded"
grep -q SignatureDoesNotMatch "$W/format-bad.log" ||
	fail "format with a wrong secret did not say why"
grep -q wrong-secret "$W/format-bad.log" && fail "the secret was printed"
echo "ok - a wrong secret is refused with SignatureDoesNotMatch"
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY

head -c 32 /dev/urandom >"$W/vol.key"
chmod 600 "$W/vol.key"
head -c 3000000 /dev/urandom >"$W/random.bin"
yes "tessera on radosgw" | head -c 5000000 >"$W/text.txt"
echo small >"$W/small.txt"

port=$((20000 + $$ % 20000))
start_daemon() { # META_DIR
	local i
	for i in $(seq 1 20); do
		port=$((port + 1))
		"$B/tesserad" --meta "lmdb://$1" --listen "127.0.0.1:$port" \
			--foreground --no-rpcbind >>"$W/tesserad.log" 2>&1 &
		daemon=$!
		for _ in $(seq 1 100); do
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
				return 0
			kill -0 "$daemon" 2>/dev/null || break
			sleep 0.1
		done
		kill "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
		daemon=
	done
	fail "tesserad did not start"
}
stop_daemon() {
	kill "$daemon"
	wait "$daemon" 2>/dev/null
	daemon=
}
nfs_url() { # FILE
	echo "nfs://127.0.0.1//$1?version=3&nfsport=$port&mountport=$port"
}

read_back() { # NAME WHEN FILE...: each FILE read back through NFS, unchanged
	local name=$1 when=$2 f
	shift 2
	for f; do
		rm -f "$W/back"
		nfs-cp "$(nfs_url "$f")" "$W/back" >/dev/null 2>>"$W/nfs.log" ||
			fail "$name: nfs-cp $f out$when"
		cmp -s "$W/$f" "$W/back" || fail "$name: $f differs$when"
	done
}

volume() { # NAME FORMAT-OPTIONS...
	local name=$1 f
	shift
	"$B/tessera" format "lmdb://$W/meta-$name" \
		"s3://$bucket/$name?endpoint=$S3_ENDPOINT" "$name" \
		--block-size 1M "$@" >"$W/format-$name.log" 2>&1 ||
		fail "tessera format $name"
	start_daemon "$W/meta-$name"
	for f in random.bin text.txt small.txt; do
		nfs-cp "$W/$f" "$(nfs_url "$f")" >/dev/null 2>>"$W/nfs.log" ||
			fail "$name: nfs-cp $f in"
	done
	read_back "$name" "" random.bin text.txt small.txt
	stop_daemon
	start_daemon "$W/meta-$name"
	read_back "$name" " after restart" random.bin text.txt
	stop_daemon
	echo "ok - volume $name: files written and read back through NFS"
}

volume plain
volume sealed --compress zstd --encrypt-key-file "$W/vol.key"

# The blocks are in the bucket, and the sealed volume's are unreadable.
s3curl "$S3_ENDPOINT/$bucket?list-type=2&prefix=sealed" >"$W/list.xml" ||
	fail "cannot list the bucket"
grep -q "<Key>sealed/" "$W/list.xml" || fail "no sealed/ objects in the bucket"
echo "ok - blocks stored in the bucket"
exit 0
