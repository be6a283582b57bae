#!/bin/sh
# NFS lock checks (NLM through the kernel's lock manager), run by busybox
# sh inside the test VM as root against the mount at $MNT, mounted without
# nolock (init, NFS_LOCKS=1: the guest runs Debian's rpcbind and
# rpc.statd).  The locks are taken by locker.pl (next to this script)
# through the host's / (chroot), one process per lock owner.  TAP out,
# exit 1 if any check failed.  See kernel-lock-test.sh.
. "/host${TEST_SCRIPT%/*}/guest-common.sh"   # check, lk, st, await...
D=$M/klock               # the test tree, as the guest sees it
C=/tmp/nfs/klock         # the same tree, as the chroot sees it

# marks live on the chroot's /tmp (G, as the guest sees it)
mk() { echo "/tmp/klk.$1"; }

# ---- checks ---------------------------------------------------------------

t_exclusive() {
	lk hold $C/f1 w "$(mk a1)" "$(mk a1go)" &
	p=$!
	await $G/klk.a1
	[ "$(st try $C/f1 r)" = 1 ]
	[ "$(st try $C/f1 w)" = 1 ]
	[ "$(st range $C/f1 100 10 w)" = 1 ]
	touch $G/klk.a1go
	wait $p
	[ "$(st try $C/f1 w)" = 0 ]
}

t_shared() {
	lk hold $C/f2 r "$(mk b1)" "$(mk b1go)" &
	p=$!
	await $G/klk.b1
	lk hold $C/f2 r "$(mk b2)" "$(mk b2go)" &
	q=$!
	await $G/klk.b2            # two shared holders at once
	[ "$(st try $C/f2 r)" = 0 ]
	[ "$(st try $C/f2 w)" = 1 ]
	touch $G/klk.b1go $G/klk.b2go
	wait $p
	wait $q
	[ "$(st try $C/f2 w)" = 0 ]
}

# The waiter locks through a second mount (nosharecache: another
# superblock): through the holder's own mount the Linux client would
# queue it behind the holder's lock itself and never ask the server.
# So the gateway answers BLOCKED (seen on its metrics, read with wget)
# and, once the holder unlocks, calls the guest back with GRANTED.
metric() {
	wget -q -O - "http://$NFS_SERVER:9049/metrics" 2>/dev/null |
		awk -v n="$1" '$1 == n {print $2}'
}
t_blocked() {
	mount2
	g0=$(metric tessera_nlm_granted_callbacks_total)
	lk hold $C/f3 w "$(mk c1)" "$(mk c1go)" &
	p=$!
	await $G/klk.c1
	lk hold /tmp/nfs2/klock/f3 w "$(mk c2)" "$(mk c2go)" &   # blocks
	q=$!
	i=0   # a stall detector (240 s)
	until [ "$(metric tessera_nlm_blocked_requests)" = 1 ]; do
		i=$((i + 1))
		[ $i -le 2400 ] || { echo "no blocked request"; return 1; }
		sleep 0.1
	done
	[ ! -e $G/klk.c2 ]          # the waiter cannot hold it meanwhile
	kill -0 $q
	touch $G/klk.c1go          # released: the server grants the waiter
	wait $p
	await $G/klk.c2
	[ "$(st try $C/f3 r)" = 1 ]
	touch $G/klk.c2go
	wait $q
	[ "$(st try $C/f3 w)" = 0 ]
	umount2
	# by the GRANTED callback, not the client's poll (every 30 s)
	g1=$(metric tessera_nlm_granted_callbacks_total)
	echo "GRANTED accepted: ${g0:-?} before, ${g1:-?} after"
	[ "${g1:-0}" -gt "${g0:-0}" ]
}

t_flock() {
	lk fhold $C/f4 "$(mk d1)" "$(mk d1go)" &
	p=$!
	await $G/klk.d1
	[ "$(st ftry $C/f4)" = 1 ]
	[ "$(st try $C/f4 r)" = 1 ]   # the client maps flock to NLM: whole file
	touch $G/klk.d1go
	wait $p
	[ "$(st ftry $C/f4)" = 0 ]
}

# Two mounts of the volume (nosharecache: two page caches), a process on
# each adding 1 to a number in a file under an fcntl lock, 40 times.
t_counter() {
	mount2
	: > $D/counter
	lk count $C/counter 40 &
	p=$!
	lk count /tmp/nfs2/klock/counter 40
	wait $p
	umount2
	echo 3 > /proc/sys/vm/drop_caches
	[ "$(cat $D/counter)" = 80 ]
}

# The gateway restarts while a lock is held: the host restarts tesserad
# (kernel-lock-test.sh, kt_do_restart), which tells this client to
# reclaim (SM_NOTIFY to its statd); the holder keeps its lock and another
# process is refused.
t_reclaim() {
	lk hold $C/f5 w "$(mk e1)" "$(mk e1go)" &
	p=$!
	await $G/klk.e1
	host_ask restart 1 - 240
	# refused (after the grace, which ends once the lock is reclaimed):
	# the holder has it back
	[ "$(st try $C/f5 w)" = 1 ]
	touch $G/klk.e1go
	wait $p
	[ "$(st try $C/f5 w)" = 0 ]
}

test_tree $D
locker_up

if [ -n "${KLOCK_ONLY:-}" ]; then   # for debugging: one check
	check "$KLOCK_ONLY" "$KLOCK_ONLY"
else
	check "fcntl: an exclusive lock refuses others, shared and exclusive" \
		t_exclusive
	check "fcntl: two shared holders; an exclusive lock refused" t_shared
	check "fcntl: a blocked lock is granted by GRANTED when the holder \
unlocks" t_blocked
	check "flock: emulated with NLM, refuses another process" t_flock
	check "a counter under fcntl from two mounts ends exact" t_counter
	if [ "${KTEST_HOST:-0}" = 1 ]; then
		check "the gateway restarts: the held lock is reclaimed" \
			t_reclaim
	fi
fi
rm -rf $D
tap_end
