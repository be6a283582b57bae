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
. "/host${TEST_SCRIPT%/*}/guest-common.sh"   # check, lk, st, await...
D=$M/klr
C=/tmp/nfs/klr

note() { echo "note: $* at $(up)"; }

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
	host_word 480 "$M/klr-reclaimed" "$M/klr-noreclaim"
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
	mount2
	lk hold /tmp/nfs2/klr/f w /tmp/klr.w /tmp/klr.wgo &
	echo $! > /tmp/klr.waiter
	echo KTEST_WAITER > /dev/console
	host_word 480 "$M/klr-blocked"
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
	umount2
}

test_tree $D
: > $D/f
locker_up

check "a write lock held through HAProxy; another process is refused" \
	t_hold
check "its gateway killed: reclaimed through another, still refused" \
	t_failover
check "released: the waiting process gets it, then another" t_release
rm -rf $D
tap_end
