# shellcheck shell=sh
# t/kernel/guest-common.sh - what the guest scripts share (guest-tests.sh,
# guest-raft.sh, guest-locks.sh, guest-lock-raft.sh): TAP checks, the
# host's / as a chroot with the mount inside it, a second mount, locks
# taken by locker.pl, and the words exchanged with the host through the
# volume (common.sh, kt_serve and kt_tell).  Read by busybox sh inside the
# VM from the host's / (9p, at /host), as the scripts themselves:
#   . "/host${TEST_SCRIPT%/*}/guest-common.sh"
# Inside the chroot the mount is /tmp/nfs (and the second one /tmp/nfs2).
M=${MNT:-/mnt/nfs}
G=/host/tmp             # the chroot's /tmp, as the guest sees it
n=0
nfail=0
up() { cut -d' ' -f1 /proc/uptime; }

# check NAME FUNCTION: run FUNCTION in a subshell with set -e (not in an
# `if`, where set -e would be ignored) and print its TAP line; lines of
# its output that start with "note: " are shown as comments.
check() {
	name=$1
	shift
	n=$((n + 1))
	echo "# starting $n - $name"
	echo "$n - $name" > /tmp/current
	t0=$(up)
	# set -x: the trace's tail shows which command failed.
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

# test_tree DIR: the mount named, DIR (on it) made afresh; bails out if
# it cannot be made
test_tree() {
	echo "# kernel $(uname -r), mount: $(grep " $M " /proc/mounts)"
	rm -rf "$1"
	mkdir "$1" || { echo "Bail out! cannot mkdir $1"; exit 1; }
}

# the plan, a summary, the verdict
tap_end() {
	echo "1..$n"
	echo "# $((n - nfail)) passed, $nfail failed of $n"
	[ $nfail = 0 ]
}

# chroot_up: the host's / ready as a chroot (proc, sys, dev; a tmpfs on
# its /tmp with the mount bound at /tmp/nfs)
chroot_up() {
	for d in proc sys dev; do
		grep -q " /host/$d " /proc/mounts && continue
		mount --bind /$d /host/$d || return 1
	done
	mount -t tmpfs tmp /host/tmp && mkdir -p /host/tmp/nfs /host/tmp/nfs2 &&
		mount --bind "$M" /host/tmp/nfs
}

# remount: the mount made again, its caches dropped (a cold read next)
remount() {
	cd /
	umount /host/tmp/nfs 2>/dev/null || true
	umount "$M" || return 1
	echo 3 > /proc/sys/vm/drop_caches
	mount -t nfs -o "$NFS_MNT_OPTS" "$NFS_SRC" "$M" || return 1
	grep -q ' /host/tmp ' /proc/mounts && mount --bind "$M" /host/tmp/nfs
	return 0
}

# mount2 / umount2: a second mount of the volume at /mnt/nfs2 (/tmp/nfs2
# in the chroot), with nosharecache: another superblock, so another page
# cache and lock owner as far as the client is concerned
mount2() {
	mkdir -p /mnt/nfs2 /host/tmp/nfs2
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$NFS_SRC" /mnt/nfs2 &&
		mount --bind /mnt/nfs2 /host/tmp/nfs2
}
umount2() { umount /host/tmp/nfs2 && umount /mnt/nfs2; }

# ---- locks --------------------------------------------------------------

# locker_up: the chroot up with locker.pl (next to the test script) in
# its /tmp, for lk.  The tmpfs on the chroot's /tmp would hide a source
# tree under the host's /tmp (a CI clone made there), so the locker is
# read first.
L=${TEST_SCRIPT%/*}/locker.pl
locker_up() {
	cp "/host$L" /tmp/locker.pl ||
		{ echo "Bail out! cannot read /host$L"; exit 1; }
	chroot_up && chroot /host /usr/bin/perl -e 1 ||
		{ echo "Bail out! cannot chroot into the host root for perl"; exit 1; }
	cp /tmp/locker.pl /host/tmp/locker.pl && L=/tmp/locker.pl ||
		{ echo "Bail out! cannot copy the locker into the chroot"; exit 1; }
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

# ---- words with the host ------------------------------------------------

# host_word HALF-SECONDS FILE...: until one of FILE... (the host's word,
# left on the volume) exists; the dentry cache is dropped in between, to
# forget "not there".  A stall detector, not a measure.
host_word() {
	hw_n=$1
	shift
	i=0
	while :; do
		for hw_f; do [ -e "$hw_f" ] && return 0; done
		i=$((i + 1))
		[ $i -le "$hw_n" ] ||
			{ echo "no word from the host ($*)"; ls -la "$M"; return 1; }
		sleep 0.5
		echo 2 > /proc/sys/vm/drop_caches
	done
}

# host_ask KIND NAME TEXT [HALF-SECONDS]: leave TEXT as the request
# ktest-KIND.NAME at the volume's root for the host's kt_do_KIND
# (common.sh, kt_serve) and wait for its answer (default 60 s), then in
# /tmp/answer.NAME.  Only with a host helper (KTEST_HOST=1).
host_ask() {
	printf '%s\n' "$3" > "$M/ktest-$1.$2.tmp" &&
		mv "$M/ktest-$1.$2.tmp" "$M/ktest-$1.$2" || return 1
	host_word "${4:-120}" "$M/ktest-$1-done.$2" || return 1
	cat "$M/ktest-$1-done.$2" > "/tmp/answer.$2"
}
