#!/bin/sh
# Inside the test VM (busybox sh, root), for kernel-raft-test.sh: a
# write-and-verify job through HAProxy while the host kills the gateway
# behind it.  Files of random data and small files, each written with
# fsync; after the sixth big file the guest prints KTEST_KILL_NOW on its
# console and goes on: the writes in flight wait for the client to
# reconnect (through HAProxy, to another gateway) and retransmit.  Then
# everything is read back through a cold cache (a remount) and compared.
# Only idempotent operations run across the kill (open O_CREAT|O_TRUNC,
# WRITE, COMMIT, GETATTR, LOOKUP): a retransmitted RENAME or REMOVE may
# see its own first execution (tesserad(8), THREE GATEWAYS).
# Prints TAP lines; exits 1 if a check failed.
. "/host${TEST_SCRIPT%/*}/guest-common.sh"   # check, remount
D=$M/kraft
NBIG=${KRAFT_FILES:-16}
NSMALL=${KRAFT_SMALL:-64}

t_write() {
	mkdir -p $D/small
	i=1
	while [ $i -le $NBIG ]; do
		dd if=/dev/urandom of=/tmp/s$i bs=64k count=16 2>/dev/null
		i=$((i + 1))
	done
	i=1
	while [ $i -le $NBIG ]; do
		t=$(up)
		dd if=/tmp/s$i of=$D/f$i bs=64k conv=fsync 2>/dev/null
		k=1
		while [ $k -le $((NSMALL / NBIG)) ]; do
			echo "small $i.$k" | dd of=$D/small/s$i.$k conv=fsync \
				2>/dev/null
			k=$((k + 1))
		done
		echo "note: file $i written in $(echo "$t $(up)" |
			awk '{printf "%.1f", $2-$1}') s"
		if [ $i = 6 ]; then
			echo KTEST_KILL_NOW > /dev/console
			echo "note: asked the host to kill the gateway at $(up)"
		fi
		i=$((i + 1))
	done
	echo KTEST_WRITES_DONE > /dev/console
}

t_verify() {
	remount
	i=1
	while [ $i -le $NBIG ]; do
		[ "$(md5sum < $D/f$i)" = "$(md5sum < /tmp/s$i)" ] ||
			{ echo "f$i differs"; return 1; }
		i=$((i + 1))
	done
	i=1
	while [ $i -le $NBIG ]; do
		k=1
		while [ $k -le $((NSMALL / NBIG)) ]; do
			[ "$(cat $D/small/s$i.$k)" = "small $i.$k" ] ||
				{ echo "small/s$i.$k differs"; return 1; }
			k=$((k + 1))
		done
		i=$((i + 1))
	done
	[ "$(ls $D | wc -l)" = $((NBIG + 1)) ]
	[ "$(ls $D/small | wc -l)" = $((NBIG * (NSMALL / NBIG))) ]
}

check "write $NBIG files of 1 MiB and $NSMALL small ones, fsync each, \
the gateway killed midway" t_write
check "every byte read back through a cold cache" t_verify
dmesg | grep -iE 'nfs: server|not responding|xs_tcp|rpc.*(error|timed out)' | tail -n 10 | sed 's/^/#   dmesg: /'
tap_end
