#!/bin/sh
# Kernel-client checks, run by busybox sh inside the test VM as root
# against the NFS mount at $MNT (see init). Prints TAP: one "ok N - name" or
# "not ok N - name" per check, the failing command's output as "#" lines,
# then the plan and a summary. Exits 1 if any check failed.
#
# Debian's tools (fio, GNU coreutils' mv -T and chroot --userspec) come from
# the host's / (9p, read-only, at /host) through chroot; inside the chroot the
# mount is /tmp/nfs.
. "/host${TEST_SCRIPT%/*}/guest-common.sh"   # check, chroot_up, host_ask...
D=$M/ktest              # the test tree, as the guest sees it
C=/tmp/nfs/ktest        # the same tree, as the chroot sees it
U=1000                  # the unprivileged user

# eq GOT WANT WHAT: an assertion that says what differed.
eq() {
	[ "$1" = "$2" ] && return 0
	echo "$3: expected '$2', got '$1'"
	return 1
}
# fails CMD...: the command must fail.
fails() {
	if "$@"; then echo "unexpectedly succeeded: $*"; return 1; fi
	return 0
}
# Drop the client's caches so the next read asks the server.
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
zeros() { tr -d '\000' | wc -c | tr -d ' '; }   # non-zero bytes on stdin
# Run a command line in the host's userland as root or as user $U.
inhost() { chroot /host /bin/sh -c "$1"; }
asuser() { chroot /host /usr/sbin/chroot --userspec=$U:$U / /bin/sh -c "$1"; }

# host_tessera NAME "ARGS": have kernel-test.sh run `tessera ARGS` on the
# host, META standing for the volume's metadata URL; returns once it ran,
# its output and "exit N" in /tmp/answer.NAME (KTEST_HOST=1 only).
host_tessera() {
	host_ask tessera "$1" "$2" || return 1
	sed 's/^/note: tessera: /' "/tmp/answer.$1"
	grep -qx "exit 0" "/tmp/answer.$1"
}

# ---- metadata ---------------------------------------------------------

t_metadata() {
	mkdir -p $D/meta/a/b/c
	touch $D/meta/a/b/c/f1 $D/meta/a/b/f2 $D/meta/a/f3
	eq "$(find $D/meta | wc -l)" 7 "entries found"
	mv $D/meta/a/b/f2 $D/meta/a/b/c/f2
	mv $D/meta/a/b $D/meta/b
	cold
	eq "$(cd $D/meta && find . | sort | tr '\n' ' ')" \
	   ". ./a ./a/f3 ./b ./b/c ./b/c/f1 ./b/c/f2 " "tree after mv"
	rm -r $D/meta/b
	[ ! -e $D/meta/b ]
	eq "$(find $D/meta | wc -l)" 3 "entries left"
	rm -r $D/meta
	[ ! -e $D/meta ]
}

# ---- data through a cold cache -----------------------------------------

t_md5_64m() {
	dd if=/dev/urandom of=/tmp/src bs=1M count=64 2>/dev/null
	want=$(md5sum < /tmp/src)
	dd if=/tmp/src of=$D/big bs=1M conv=fsync 2>/dev/null
	eq "$(md5sum < $D/big)" "$want" "md5 while cached"
	remount
	eq "$(stat -c %s $D/big)" 67108864 "size after remount"
	eq "$(md5sum < $D/big)" "$want" "md5 after remount"
	rm -f /tmp/src $D/big
}

# ---- fio with verification, Debian's binary through the chroot --------

fio_run() {
	rc=0
	chroot /host /usr/bin/fio --directory=$C --ioengine=psync \
		--verify_fatal=1 --group_reporting "$@" > /tmp/fio.out 2>&1 ||
		rc=$?
	grep -E 'err=|verify|IOPS' /tmp/fio.out | head -n 20
	[ $rc = 0 ] || { tail -n 20 /tmp/fio.out; return 1; }
	grep -q 'err= 0' /tmp/fio.out
}
t_fio_randwrite() {
	# O_DIRECT so the verify phase reads from the server, not the cache.
	# 1024 random 4 KiB writes spread over 32 MiB: TCG is slow.
	fio_run --name=randv --rw=randwrite --bs=4k --size=32m --io_size=4m \
		--direct=1 --verify=crc32c --do_verify=1
	rm -f $D/randv.*
}
t_fio_seqwrite() {
	fio_run --name=seqv --rw=write --bs=1m --size=32m --end_fsync=1 \
		--verify=md5 --do_verify=0
	remount
	# verify_only re-reads what the first job wrote, through a new mount.
	fio_run --name=seqv --rw=write --bs=1m --size=32m --verify=md5 \
		--verify_only=1
	rm -f $D/seqv.*
}

# ---- POSIX semantics ---------------------------------------------------

t_rename_file_over() {
	cd $D; mkdir rf; cd rf
	echo old > dst; echo new > src
	ln dst dst.link                 # the replaced inode must survive here
	mv src dst
	cold
	[ ! -e src ]
	eq "$(cat dst)" new "dst content"
	eq "$(cat dst.link)" old "old inode via its other link"
	eq "$(stat -c %h dst.link)" 1 "nlink of the replaced inode"
	eq "$(ls | tr '\n' ' ')" "dst dst.link " "directory listing"
}
t_rename_dir_over() {
	cd $D; mkdir rd; cd rd
	mkdir d1 d2 full; echo x > d1/f; echo y > full/g
	inhost "mv -T $C/rd/d1 $C/rd/d2"
	cold
	[ ! -e d1 ]
	eq "$(cat d2/f)" x "file in the renamed dir"
	eq "$(cd d2/.. && pwd)" "$D/rd" "parent of the renamed dir"
	# Over a non-empty directory rename(2) must fail and change nothing.
	fails inhost "mv -T $C/rd/d2 $C/rd/full"
	eq "$(cat full/g)" y "non-empty target untouched"
	eq "$(cat d2/f)" x "source untouched"
	# A directory over a file, a file over a directory: both refused.
	fails inhost "mv -T $C/rd/d2 $C/rd/full/g"
	fails inhost "mv -T $C/rd/full/g $C/rd/d2"
}
t_hardlinks() {
	cd $D; mkdir hl; cd hl
	echo data > h1
	ln h1 h2
	mkdir sub; ln h1 sub/h3
	cold
	eq "$(stat -c %h h1)" 3 "nlink after two links"
	eq "$(stat -c %i h1)" "$(stat -c %i sub/h3)" "same inode"
	echo more >> h2
	cold
	eq "$(cat sub/h3)" "data
more" "content shared"
	rm h1
	cold
	eq "$(stat -c %h h2)" 2 "nlink after unlink"
	rm sub/h3
	eq "$(stat -c %h h2)" 1 "nlink after second unlink"
	fails ln sub sub2                    # no hard links to directories
}
t_symlinks() {
	cd $D; mkdir sl; cd sl
	ln -s target s1
	long=$(printf '%0200d' 0 | tr 0 x)
	ln -s "/nonexistent/$long/path" s2
	cold
	eq "$(readlink s1)" target "readlink"
	eq "$(readlink s2)" "/nonexistent/$long/path" "long readlink"
	[ -L s1 ] && [ ! -e s1 ]              # dangling
	echo hello > target
	eq "$(cat s1)" hello "read through the link"
	eq "$(stat -c %F s1)" "symbolic link" "lstat type"
	mkdir realdir; echo in > realdir/f; ln -s realdir dl
	eq "$(cat dl/f)" in "path through a dir symlink"
	rm s1
	[ -e target ]                        # unlinking a link keeps the target
}
t_chmod_chown() {
	cd $D; mkdir cc; cd cc
	touch f; mkdir d
	chmod 0751 f; chmod 2775 d
	chown 1234:5678 f
	chown 4321 d
	cold
	eq "$(stat -c %a f)" 751 "mode of f"
	eq "$(stat -c %a d)" 2775 "mode of d"
	eq "$(stat -c %u:%g f)" 1234:5678 "owner of f"
	eq "$(stat -c %u d)" 4321 "owner of d"
	touch -d '2001-02-03 04:05:06' f
	cold
	eq "$(stat -c %Y f)" "$(date -d '2001-02-03 04:05:06' +%s)" "mtime"
}
t_other_user() {
	cd $D; mkdir ou; cd ou
	echo secret > secret; chmod 0600 secret
	mkdir pub; chmod 0777 pub
	mkdir priv; chmod 0755 priv
	mkdir sticky; chmod 1777 sticky
	echo r > sticky/rootfile; chmod 0666 sticky/rootfile
	cold
	# One exec as the user for all its steps: each exec over 9p under TCG
	# costs seconds. Each step prints its verdict; any BAD fails the check.
	asuser "
	cd $C/ou
	t() { if sh -c \"\$2\" 2>/dev/null; then r=0; else r=1; fi
	      [ \$r = \$1 ] && echo \"good: \$3\" || echo \"BAD: \$3\"; }
	t 1 'cat secret' 'cannot read a 0600 root file'
	t 1 'echo x >> secret' 'cannot append to a 0600 root file'
	t 1 'touch priv/nope' 'cannot create in a 0755 root dir'
	t 0 'echo mine > pub/u1' 'can create in a 0777 dir'
	t 0 'echo w >> sticky/rootfile' 'can write a 0666 file in a sticky dir'
	t 1 'rm -f sticky/rootfile' 'cannot remove a root-owned file in a sticky dir'
	t 1 'mv sticky/rootfile sticky/moved' 'cannot rename it either'
	t 0 'echo u > sticky/userfile && rm sticky/userfile' 'own file in sticky'
	t 1 'chmod 0777 secret' 'cannot chmod a root-owned file'
	t 0 'chmod 0640 pub/u1' 'can chmod its own file'
	t 1 'chown 0 pub/u1' 'cannot give its file away'
	" > /tmp/asuser.out 2>&1 || true
	grep -v '^good' /tmp/asuser.out || true    # what misbehaved
	eq "$(grep -c '^good' /tmp/asuser.out)" 11 "steps as uid $U that behaved"
	cold
	eq "$(cat pub/u1)" mine "user's file"
	eq "$(stat -c %u:%g pub/u1)" $U:$U "owner of the user's file"
	eq "$(stat -c %a pub/u1)" 640 "mode set by its owner"
	eq "$(cat sticky/rootfile)" "r
w" "root's file in the sticky dir"
	[ ! -e sticky/userfile ] && [ ! -e sticky/moved ]
	eq "$(cat secret)" secret "secret untouched"
	[ ! -e priv/nope ]
}
t_setid() {
	# Linux's file_remove_privs, done by the server (the NFS client
	# leaves it to the server and sends no mode): a write or truncation
	# by anyone but root clears set-user-ID, and set-group-ID with g+x.
	cd $D; mkdir si; cd si
	for f in w t r; do echo x > $f; done
	chmod 04777 w; chmod 06777 t; chmod 06777 r
	echo x > lock; chmod 02767 lock          # sgid without g+x: a lock mark
	echo x > own; chown $U:$U own; chmod 06775 own
	echo x > rootfile; chmod 04755 rootfile
	cold
	asuser "
	cd $C/si
	echo more >> w
	echo more >> lock
	truncate -s 0 t
	chgrp $U own
	chown 0 rootfile 2>/dev/null && echo 'BAD: uid $U chowned a root file'
	chgrp 0 rootfile 2>/dev/null && echo 'BAD: uid $U chgrped a root file'
	true
	" > /tmp/asuser.out 2>&1
	cat /tmp/asuser.out
	eq "$(grep -c '^BAD' /tmp/asuser.out)" 0 "refused chown/chgrp by uid $U"
	echo more >> r                          # root keeps them
	cold
	eq "$(stat -c %a w)" 777 "mode after a write by uid $U"
	eq "$(stat -c %a t)" 777 "mode after a truncation by uid $U"
	eq "$(stat -c %a lock)" 2767 "sgid without g+x after a write"
	eq "$(stat -c %a own)" 775 "mode after chgrp by its non-root owner"
	eq "$(stat -c %a r)" 6777 "mode after a write by root"
	eq "$(stat -c %u:%g:%a rootfile)" 0:0:4755 "root file after uid $U's chown"
	eq "$(cat w)" "x
more" "content of w"
}
t_noexec_dir() {
	# A directory readable but not searchable: names only (READDIRPLUS
	# gives no handles), every lookup refused.
	cd $D; mkdir nx; chmod 0744 nx
	echo private > nx/f
	cold
	asuser "
	cd $C
	t() { if sh -c \"\$2\" >/dev/null 2>&1; then r=0; else r=1; fi
	      [ \$r = \$1 ] && echo \"good: \$3\" || echo \"BAD: \$3\"; }
	t 0 '[ \"\$(ls nx)\" = f ]' 'ls lists the name'
	t 1 'cat nx/f' 'cannot read the file'
	t 1 'stat nx/f' 'cannot stat it'
	t 1 'ls -l nx' 'ls -l cannot stat it either'
	t 1 'cd nx' 'cannot enter'
	" > /tmp/asuser.out 2>&1 || true
	grep -v '^good' /tmp/asuser.out || true
	eq "$(grep -c '^good' /tmp/asuser.out)" 5 "steps as uid $U that behaved"
}
t_export_confine() {
	# A client stays inside its export: an operator moves a tenant's
	# directory out (through the / mount), then re-points the export
	# (same fsid=) to another directory; the tenant's mount gets ESTALE
	# for what is no longer inside it.
	if [ -z "${KTEST_HOST:-}" ]; then
		echo "note: no host helper (KTEST_HOST): skipped"
		return 0
	fi
	S=${NFS_SRC%%:*}
	mkdir -p $M/kt-tenant/proj/sub $M/kt-archive $M/kt-other
	echo doc > $M/kt-tenant/proj/sub/doc
	echo other > $M/kt-other/secret
	host_ask exports confine1 "/ 127.0.0.1(rw,insecure,no_root_squash)
/kt-tenant 127.0.0.1(rw,insecure,no_root_squash,fsid=4242)"
	mkdir -p /mnt/tenant /mnt/t2
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$S:/kt-tenant" /mnt/tenant
	cd /mnt/tenant/proj/sub                 # the tenant holds its handles
	eq "$(cat doc)" doc "doc through the tenant's mount"
	mv $M/kt-tenant/proj $M/kt-archive/proj # the operator archives proj
	cold
	fails cat doc                           # ESTALE, not the archive's
	fails cat /mnt/tenant/proj/sub/doc      # ENOENT: no longer inside
	cd /
	mv $M/kt-archive/proj $M/kt-tenant/proj
	cold
	eq "$(cat /mnt/tenant/proj/sub/doc)" doc "moved back"
	host_ask exports confine2 "/ 127.0.0.1(rw,insecure,no_root_squash)
/kt-other 127.0.0.1(rw,insecure,no_root_squash,fsid=4242)"
	cold
	fails cat /mnt/tenant/proj/sub/doc      # re-pointed: ESTALE
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$S:/kt-other" /mnt/t2
	eq "$(cat /mnt/t2/secret)" other "the re-pointed export's directory"
	umount /mnt/t2
	umount -l /mnt/tenant
	host_ask exports confine3 "/ 127.0.0.1(rw,insecure,no_root_squash)"
	rm -rf $M/kt-tenant $M/kt-archive $M/kt-other $M/ktest-*
}
t_quota() {
	# A tenant's export with a quota of 1 MiB: df shows the limit, and
	# dd past it fails with "Disk quota exceeded" (NFS3ERR_DQUOT).
	if [ -z "${KTEST_HOST:-}" ]; then
		echo "note: no host helper (KTEST_HOST): skipped"
		return 0
	fi
	S=${NFS_SRC%%:*}
	mkdir -p $M/kt-quota
	host_ask exports quota1 "/ 127.0.0.1(rw,insecure,no_root_squash)
/kt-quota 127.0.0.1(rw,insecure,no_root_squash,fsid=4343)"
	host_ask quota q1 "/kt-quota 1048576 100"
	mkdir -p /mnt/quota
	mount -t nfs -o "$NFS_MNT_OPTS,nosharecache" "$S:/kt-quota" /mnt/quota
	df -k /mnt/quota
	eq "$(df -k /mnt/quota | awk 'NR == 2 { print $2 }')" 1024 \
		"df's size of the quota'd export (KiB)"
	eq "$(df -i /mnt/quota | awk 'NR == 2 { print $2 }')" 100 \
		"df -i's inodes of the quota'd export"
	dd if=/dev/zero of=/mnt/quota/small bs=64k count=8 conv=fsync
	if dd if=/dev/zero of=/mnt/quota/big bs=64k count=32 conv=fsync \
		2> /tmp/dd.err; then
		echo "dd of 2 MiB past a 1 MiB quota succeeded"
		return 1
	fi
	cat /tmp/dd.err
	grep -q "Disk quota exceeded" /tmp/dd.err
	used=$(du -sk /mnt/quota | cut -f1)
	[ "$used" -le 1024 ] || { echo "$used KiB stored past 1 MiB"; return 1; }
	rm /mnt/quota/big
	dd if=/dev/zero of=/mnt/quota/again bs=64k count=4 conv=fsync
	umount /mnt/quota || umount -l /mnt/quota
	host_ask exports quota2 "/ 127.0.0.1(rw,insecure,no_root_squash)"
	rm -rf $M/kt-quota $M/ktest-*      # the quota goes with kt-quota
}
t_trash() {
	# The trash (trash_days 1 for this check only): rm as root moves the
	# file into /.trash/HOUR/DIR-INO-NAME, which root lists and reads
	# through the mount; uid 1000 sees no .trash in the root's listing;
	# `tessera trash restore` on the host puts it back, data intact.
	if [ -z "${KTEST_HOST:-}" ]; then
		echo "note: no host helper (KTEST_HOST): skipped"
		return 0
	fi
	host_tessera trash1 "config --trash-days 1 META"
	echo "kept by the trash" > $D/trashme
	ino=$(stat -c %i $D/trashme)
	rm $D/trashme
	cold
	ls -a $M | grep -qx .trash
	f=$(ls -d $M/.trash/*/*-$ino-trashme)
	eq "$(cat "$f")" "kept by the trash" "the removed file, in the trash"
	fails rm -f "$f"                        # the trash is read-only
	cold                                    # the user's own READDIR
	asuser "ls -a /tmp/nfs" > /tmp/user-ls.out
	grep -qx ktest /tmp/user-ls.out         # the user does list the root
	fails grep -qx .trash /tmp/user-ls.out
	host_tessera trash2 "trash restore META ${f#$M}"
	cold
	eq "$(cat $D/trashme)" "kept by the trash" "restored by tessera trash restore"
	eq "$(stat -c %i $D/trashme)" "$ino" "the same inode"
	host_tessera trash3 "config --trash-days 0 META"
	rm $D/trashme $M/ktest-*
}
t_truncate() {
	cd $D; mkdir tr; cd tr
	printf '0123456789abcdefghij' > f
	truncate -s 10 f
	cold
	eq "$(stat -c %s f)" 10 "size after shrink"
	eq "$(cat f)" 0123456789 "content after shrink"
	truncate -s 100000 f
	cold
	eq "$(stat -c %s f)" 100000 "size after extend"
	eq "$(head -c 10 f)" 0123456789 "head after extend"
	eq "$(tail -c +11 f | zeros)" 0 "non-zero bytes in the extension"
	# Shrink then extend must not resurrect the old bytes.
	truncate -s 5 f; truncate -s 20 f
	cold
	eq "$(tail -c +6 f | zeros)" 0 "stale bytes after shrink+extend"
	: > f
	eq "$(stat -c %s f)" 0 "O_TRUNC"
}
t_special_files() {
	cd $D; mkdir sp; cd sp
	mkfifo p
	mknod cdev c 1 3
	mknod bdev b 7 0
	cold
	[ -p p ] && [ -c cdev ] && [ -b bdev ]
	eq "$(stat -c '%t %T' cdev)" "1 3" "char device numbers"
	eq "$(stat -c '%t %T' bdev)" "7 0" "block device numbers"
	(echo through > p &)
	eq "$(cat p)" through "data through the fifo"
	echo discarded > cdev                 # it is /dev/null
	eq "$(wc -c < cdev | tr -d ' ')" 0 "read from the null device"
	rm p cdev bdev
}
t_sparse() {
	cd $D; mkdir sa; cd sa
	printf X | dd of=s bs=1 seek=10485760 conv=notrunc 2>/dev/null
	cold
	eq "$(stat -c %s s)" 10485761 "size"
	eq "$(head -c 10485760 s | zeros)" 0 "non-zero bytes in the hole"
	eq "$(tail -c 1 s)" X "last byte"
}
t_sparse_du() {
	# st_blocks (NFS "used") should count written data, not the hole.
	cd $D/sa
	used=$(du -k s | cut -f1)
	echo "note: du -k: $used"
	[ "$used" -lt 5120 ] || { echo "hole is allocated: du $used KiB"; false; }
}
t_bigdir() {
	cd $D; mkdir bd; cd bd
	# Shell redirections: one open(O_CREAT) each, no exec and none of
	# touch's utimes() first (fewer round trips under a slow TCG guest).
	i=1
	while [ $i -le 10000 ]; do
		: > entry-with-a-longish-name-$i
		i=$((i + 1))
	done 2>/dev/null
	echo "note: created at $(up)s"
	cold
	eq "$(ls -l | grep -c '^-')" 10000 "ls -l files"
	echo "note: listed at $(up)s"
	eq "$(ls | wc -l)" 10000 "ls names"
	eq "$(ls | sort -u | wc -l)" 10000 "distinct names"
	eq "$(ls -a | grep -c '^\.\.\?$')" 2 ". and .."
	# Not removed: 10,000 more round trips; the server's tree is thrown
	# away. t_rmdir_many covers removal while reading a directory.
}
t_rmdir_many() {
	# rm -r reads the directory while removing from it: READDIR cookies
	# must stay valid, across several READDIR replies.
	cd $D; mkdir rm; cd rm
	seq 1 1500 | sed 's/^/some-file-with-a-long-name-/' | xargs touch
	cold
	cd ..
	rm -r rm
	[ ! -e rm ]
}
t_append_two_writers() {
	cd $D; mkdir ap; cd ap
	: > log; chmod 0666 log
	for round in 1 2 3; do
		for i in 1 2 3 4 5; do echo "root $round $i" >> log; done
		asuser "for i in 1 2 3 4 5; do echo \"user $round \$i\" >> $C/ap/log; done"
	done
	cold
	eq "$(wc -l < log | tr -d ' ')" 30 "lines"
	eq "$(sed -n '6p;11p;30p' log | tr '\n' '|')" \
	   "user 1 1|root 2 1|user 3 5|" "order of appends"
}
t_large_sparse() {
	cd $D; mkdir lg; cd lg
	printf abc | dd of=huge bs=1 seek=5368709120 conv=notrunc 2>/dev/null
	# Two bytes across the 4 GiB boundary catch 32-bit offsets.
	printf XY | dd of=huge bs=1 seek=4294967295 conv=notrunc 2>/dev/null
	cold
	eq "$(stat -c %s huge)" 5368709123 "size"
	eq "$(dd if=huge bs=1 skip=5368709120 count=3 2>/dev/null)" abc \
		"bytes at 5 GiB"
	eq "$(dd if=huge bs=1 skip=4294967295 count=2 2>/dev/null)" XY \
		"bytes across 4 GiB"
	eq "$(dd if=huge bs=1 skip=4294967294 count=1 2>/dev/null | zeros)" 0 \
		"hole before 4 GiB"
	eq "$(head -c 65536 huge | zeros)" 0 "hole at the start"
	rm huge
}

# The watchdog: when the time budget (from run.sh: the VM's timeout less a
# margin) runs out, say which check was running and end the VM as failed,
# rather than let the host kill it and lose the verdict. A hung NFS call
# in a hard mount would otherwise leave the log silent.
watchdog() {
	sleep "$1"
	echo "not ok $(cat /tmp/current) # timed out"
	echo "Bail out! time budget of ${KTEST_BUDGET}s exhausted"
	dmesg | tail -n 10 | sed 's/^/# dmesg: /'
	printf '\001' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
}
if [ -n "${KTEST_BUDGET:-}" ]; then
	left=$(awk -v b="$KTEST_BUDGET" '{printf "%d", b - $1}' /proc/uptime)
	echo "# time budget: ${left}s left"
	echo "0 - setup" > /tmp/current
	watchdog "$left" &
	wd=$!
fi

test_tree $D

check "metadata: mkdir -p, touch, mv, find, rm -r" t_metadata
check "data: 64 MiB md5 across umount and drop_caches" t_md5_64m
if chroot_up && chroot /host /usr/bin/fio --version >/dev/null; then
	check "fio randwrite 4k O_DIRECT verify=crc32c over 32m" t_fio_randwrite
	check "fio sequential write, remount, verify_only md5" t_fio_seqwrite
else
	echo "Bail out! cannot chroot into the host root for fio"
	exit 1
fi
check "rename a file over an existing file" t_rename_file_over
check "rename a dir over an empty dir (non-empty refused)" t_rename_dir_over
check "hard links: nlink and shared content" t_hardlinks
check "symlinks: readlink, dangling, traversal" t_symlinks
check "chmod, chown as root, mtime" t_chmod_chown
check "another user: 0600, 0777 dir, sticky dir" t_other_user
check "set-id bits: cleared by a user's write, truncate, chgrp" t_setid
check "a 0744 directory: names listed, nothing reachable" t_noexec_dir
check "export confinement: moved out, re-pointed fsid: ESTALE" t_export_confine
check "quota'd export: df shows the limit, dd past it: EDQUOT" t_quota
check "trash: rm as root, read in /.trash, restore; hidden from a user" t_trash
check "truncate: shrink, extend reads zeros" t_truncate
check "mkfifo and mknod" t_special_files
check "sparse file: size, reads zeros" t_sparse
check "sparse file: du counts only written data" t_sparse_du
check "append from two writers in turn" t_append_two_writers
check "sparse file beyond 4 GiB" t_large_sparse
check "rm -r of a 1,500-entry directory" t_rmdir_many
t_cleanup() { cd /; rm -rf $D/*; eq "$(ls -A $D)" "" "left in $D"; }
check "rm -rf of everything so far" t_cleanup
# Last: the slowest (some 30,000 RPCs), so a timeout loses the fewest results.
check "ls -l of a 10,000-entry directory" t_bigdir


[ -n "${wd:-}" ] && kill "$wd" 2>/dev/null
tap_end
