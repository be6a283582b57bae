#!/bin/bash
# The Linux kernel NFSv3 client against tesserad on a volume stored in S3
# (a throwaway radosgw, t/s3/radosgw.sh) with the disk cache and writeback
# on: kernel-test.sh's guest checks, run once on that configuration.
# Exit: as kernel-test.sh; 77 when radosgw or QEMU cannot be had.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$HERE/../.." && pwd)}
RGW=$top_srcdir/t/s3/radosgw.sh
export S3_PORT=${S3_PORT:-7480}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESSERAKEY}
export S3_SECRET_KEY=${S3_SECRET_KEY:-TESSERASECRET}
ENDPOINT=http://127.0.0.1:$S3_PORT
started=0

cleanup() {
	[ $started = 1 ] && "$RGW" stop >/dev/null 2>&1
}
trap cleanup EXIT

if ! "$RGW" status >/dev/null 2>&1; then
	"$RGW" start >/dev/null 2>&1 ||
		{ echo "# SKIP: radosgw is not available"; exit 77; }
	started=1
fi
bucket=tessera-kernel-$$
# radosgw wants the payload hash header, which curl signs when given.
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" \
	--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
	-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
	-X PUT "$ENDPOINT/$bucket" >/dev/null ||
	{ echo "# cannot create bucket $bucket"; exit 1; }
echo "# kernel-s3-test: volume in s3://$bucket on radosgw, writeback on"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
KTEST_STORAGE="s3://$bucket?endpoint=$ENDPOINT" KTEST_WRITEBACK=1 \
	bash "$HERE/kernel-test.sh"
