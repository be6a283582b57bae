#!/bin/sh
# NFS lock checks (NLM through the kernel's lock manager), run by busybox
# sh inside the test VM as root against the mount at $MNT, mounted without
# nolock (init, NFS_LOCKS=1: the guest runs Debian's rpcbind and
# rpc.statd).  The locks are taken by locker.pl (next to this script)
# through the host's / (chroot), one process per lock owner.  TAP out,
# exit 1 if any check failed.  See kernel-lock-test.sh.
M=${MNT:-/mnt/nfs}
D=$M/klock               # the test tree, as the guest sees it
C=/tmp/nfs/klock         # the same tree, as the chroot sees it
L=$(dirname "$TEST_SCRIPT")/locker.pl
n=0
nfail=0
up() { cut -d' ' -f1 /proc/uptime; }

check() {
	name=$1
	shift
	n=$((n + 1))
	echo "# starting $n - $name"
	t0=$(up)
	( set -ex; "$@" ) > /tmp/check.out 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		echo "ok $n - $name"
	else
		nfail=$((nfail + 1))
		echo "not ok $n - $name"
		echo "#   exit status $rc; the trace's last lines:"
		tail -n 25 /tmp/check.out | cut -c1-160 | sed 's/^/#   /'
	fi
	echo "#   ($name: $(echo "$t0 $(up)" | awk '{printf "%.1f", $2-$1}')s)"
}

lk() { chroot /host /usr/bin/perl "$L" "$@"; }
# status of a non-blocking attempt: 0 taken, 1 refused, 2 error
st() { lk "$@"; echo $?; }
# until FILE (guest path) exists; a stall detector (a lock the server
# never grants), not a measure of time: 240 s
await() {
	i=0
	until [ -e "$1" ]; do
		i=$((i + 1))
		[ $i -le 2400 ] || { echo "no $1 after 240 s"; return 1; }
		sleep 0.1
	done
}
# marks live on the guest's /tmp (the chroot's /tmp: /host/tmp)
mk() { echo "/tmp/klk.$1"; }
G=/host/tmp

chroot_up() {
	mount -t tmpfs tmp /host/tmp && mkdir -p /host/tmp/nfs /host/tmp/nfs2 &&
		mount --bind "$M" /host/tmp/nfs
}

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
	mkdir -p /mnt/nfs2
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$NFS_SRC" /mnt/nfs2
	mount --bind /mnt/nfs2 /host/tmp/nfs2
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
	umount /host/tmp/nfs2
	umount /mnt/nfs2
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
	mkdir -p /mnt/nfs2
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$NFS_SRC" /mnt/nfs2
	mount --bind /mnt/nfs2 /host/tmp/nfs2
	: > $D/counter
	lk count $C/counter 40 &
	p=$!
	lk count /tmp/nfs2/klock/counter 40
	wait $p
	umount /host/tmp/nfs2
	umount /mnt/nfs2
	echo 3 > /proc/sys/vm/drop_caches
	[ "$(cat $D/counter)" = 80 ]
}

# The gateway restarts while a lock is held: the host restarts tesserad
# (host_restart), which tells this client to reclaim (SM_NOTIFY to its
# statd); the holder keeps its lock and another process is refused.
host_restart() {
	echo x > "$M/klock-restart.tmp" && mv "$M/klock-restart.tmp" "$M/klock-restart"
	i=0
	until [ -e "$M/klock-restarted" ]; do
		i=$((i + 1))
		[ $i -le 240 ] ||
			{ echo "the host did not restart"; ls -la "$M"; return 1; }
		sleep 0.5
		echo 2 > /proc/sys/vm/drop_caches   # forget "not there"
	done
}
t_reclaim() {
	lk hold $C/f5 w "$(mk e1)" "$(mk e1go)" &
	p=$!
	await $G/klk.e1
	host_restart
	# refused (after the grace, which ends once the lock is reclaimed):
	# the holder has it back
	[ "$(st try $C/f5 w)" = 1 ]
	touch $G/klk.e1go
	wait $p
	[ "$(st try $C/f5 w)" = 0 ]
}

echo "# kernel $(uname -r), mount: $(grep " $M " /proc/mounts)"
rm -rf $D
mkdir $D || { echo "Bail out! cannot mkdir $D"; exit 1; }
# The chroot's /tmp becomes a tmpfs (chroot_up): a source tree under
# the host's /tmp (a CI clone made there) would be hidden in it, so the
# locker is read first and goes into that tmpfs.
cp "/host$L" /tmp/klk-locker.pl ||
	{ echo "Bail out! cannot read /host$L"; exit 1; }
chroot_up && chroot /host /usr/bin/perl -e 1 ||
	{ echo "Bail out! cannot chroot into the host root for perl"; exit 1; }
cp /tmp/klk-locker.pl /host/tmp/locker.pl && L=/tmp/locker.pl ||
	{ echo "Bail out! cannot copy the locker into the chroot"; exit 1; }

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
echo "1..$n"
echo "# $((n - nfail)) passed, $nfail failed of $n"
[ $nfail = 0 ]
