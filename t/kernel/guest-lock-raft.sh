#!/bin/sh
# Inside the test VM (busybox sh, root), for kernel-lock-raft-test.sh: an
# fcntl lock held through HAProxy in front of three raft:// gateways
# while the host kills the gateway behind it.  A process holds a write
# lock; another is refused it; the guest prints KTEST_KILL_NOW on its
# console and waits for the host's word (the file klr-reclaimed at the
# volume's root, written through HAProxy once a surviving gateway has
# adopted this client, told it to reclaim with SM_NOTIFY and seen the
# lock reclaimed); another process is still refused the lock; a third
# waits for it (a blocking lock through a second mount); the holder
# releases it, the waiter gets it (GRANTED from the surviving gateway),
# and once it lets go the other process gets it too.
# The locks are taken by locker.pl through the host's / (chroot), as in
# guest-locks.sh.  Prints TAP lines; exits 1 if a check failed.
M=${MNT:-/mnt/nfs}
D=$M/klr
C=/tmp/nfs/klr
L=$(dirname "$TEST_SCRIPT")/locker.pl
G=/host/tmp
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
	grep '^note: ' /tmp/check.out | sed 's/^/#   /'
	echo "#   ($name: $(echo "$t0 $(up)" | awk '{printf "%.1f", $2-$1}')s)"
}
note() { echo "note: $* at $(up)"; }

lk() { chroot /host /usr/bin/perl "$L" "$@"; }
st() { lk "$@"; echo $?; }
# until FILE exists: a stall detector, not a measure of time (240 s)
await() {
	i=0
	until [ -e "$1" ]; do
		i=$((i + 1))
		[ $i -le 2400 ] || { echo "no $1 after 240 s"; return 1; }
		sleep 0.1
	done
}

# (the holder outlives the check's subshell: its pid is kept in a file)
t_hold() {
	lk hold $C/f w /tmp/klr.held /tmp/klr.go &
	echo $! > /tmp/klr.holder
	await $G/klr.held
	note "held"
	[ "$(st try $C/f w)" = 1 ]
	[ "$(st try $C/f r)" = 1 ]
}

t_failover() {
	echo KTEST_KILL_NOW > /dev/console
	note "asked the host to kill the gateway"
	i=0
	until [ -e "$M/klr-reclaimed" ] || [ -e "$M/klr-noreclaim" ]; do
		i=$((i + 1))
		[ $i -le 480 ] || { echo "no word from the host"; return 1; }
		sleep 0.5
		echo 2 > /proc/sys/vm/drop_caches   # forget "not there"
	done
	[ -e "$M/klr-reclaimed" ]
	note "the host saw the lock reclaimed"
	kill -0 "$(cat /tmp/klr.holder)"    # the holder never lost it
	[ "$(st try $C/f w)" = 1 ]
	[ "$(st range $C/f 100 1 r)" = 1 ]
}

# The waiter locks through a second mount (nosharecache: another
# superblock), else the client would queue it behind the holder's lock
# itself and never ask the server; so the server answers BLOCKED and,
# once the lock is free, calls the guest back with GRANTED.  The host
# says when a gateway keeps the blocked request (klr-blocked).
t_release() {
	mkdir -p /mnt/nfs2 /host/tmp/nfs2
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$NFS_SRC" /mnt/nfs2
	mount --bind /mnt/nfs2 /host/tmp/nfs2
	lk hold /tmp/nfs2/klr/f w /tmp/klr.w /tmp/klr.wgo &
	echo $! > /tmp/klr.waiter
	echo KTEST_WAITER > /dev/console
	i=0
	until [ -e "$M/klr-blocked" ]; do
		i=$((i + 1))
		[ $i -le 480 ] || { echo "no word from the host"; return 1; }
		sleep 0.5
		echo 2 > /proc/sys/vm/drop_caches
	done
	note "the host saw the waiter's request blocked"
	[ ! -e $G/klr.w ]
	touch $G/klr.go
	i=0
	while kill -0 "$(cat /tmp/klr.holder)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 2400 ] || { echo "the holder did not unlock"; return 1; }
		sleep 0.1
	done
	note "the holder is gone"
	await $G/klr.w
	note "the waiting process took the lock"
	[ "$(st try $C/f r)" = 1 ]
	touch $G/klr.wgo
	wait "$(cat /tmp/klr.waiter)"
	[ "$(st try $C/f w)" = 0 ]
	note "taken and released by another process"
	umount /host/tmp/nfs2
	umount /mnt/nfs2
}

echo "# kernel $(uname -r), mount: $(grep " $M " /proc/mounts)"
rm -rf $D
mkdir $D || { echo "Bail out! cannot mkdir $D"; exit 1; }
: > $D/f
cp "/host$L" /tmp/klk-locker.pl ||
	{ echo "Bail out! cannot read /host$L"; exit 1; }
mount -t tmpfs tmp /host/tmp && mkdir -p /host/tmp/nfs &&
	mount --bind "$M" /host/tmp/nfs && chroot /host /usr/bin/perl -e 1 ||
	{ echo "Bail out! cannot chroot into the host root for perl"; exit 1; }
cp /tmp/klk-locker.pl /host/tmp/locker.pl && L=/tmp/locker.pl ||
	{ echo "Bail out! cannot copy the locker into the chroot"; exit 1; }

check "a write lock held through HAProxy; another process is refused" \
	t_hold
check "its gateway killed: reclaimed through another, still refused" \
	t_failover
check "released: the waiting process gets it, then another" t_release
rm -rf $D
echo "1..$n"
echo "# $((n - nfail)) passed, $nfail failed of $n"
[ $nfail = 0 ]
