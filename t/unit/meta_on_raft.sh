#!/bin/sh
# The file-system layer's unit tests again, on a one-node raft:// group
# (TESSERA_TEST_META=raft, t/unit/meta_test.h) instead of LMDB: the
# engine must be invisible to the layer above it.  TAP lines of each
# test, prefixed with its name; fails if any of them fails.
set -u
: "${top_builddir:=.}"
rc=0
for t in meta_dir_test meta_data_test meta_perm_test meta_schema_test \
	meta_fsck_test meta_lock_test meta_quota_test meta_dump_test; do
	echo "# $t on raft://"
	TESSERA_TEST_META=raft "$top_builddir/t/unit/$t" >"$t.raft.out" 2>&1
	st=$?
	grep -E '^(not ok|Bail)' "$t.raft.out" | sed "s/^/# $t: /"
	if [ $st -ne 0 ]; then
		echo "not ok - $t on raft:// (exit $st)"
		tail -20 "$t.raft.out"
		rc=1
	else
		echo "ok - $t on raft:// ($(grep -c '^ok' "$t.raft.out") checks)"
	fi
	rm -f "$t.raft.out"
done
exit $rc
