# The Linux kernel NFSv3 client in a QEMU VM against tesserad. Slow (minutes
# under TCG) and it installs packages, so it is not in TESTS: the top-level
# test runner calls t/kernel/kernel-test.sh explicitly. setup.sh caches the
# kernel and initramfs in t/kernel/work/ (gitignored).
# kernel-raft-test.sh: the client through HAProxy in front of three raft://
# gateways, its gateway killed while it writes (guest-raft.sh).
# kernel-lock-test.sh: mounted without nolock, fcntl and flock locks
# through NLM (guest-locks.sh, locker.pl), in namespaces of its own.
# kernel-lock-raft-test.sh: a lock held through HAProxy in front of three
# raft:// gateways, its gateway killed, reclaimed through another
# (guest-lock-raft.sh).
# common.sh and guest-common.sh hold what the host scripts and the guest
# scripts share; t/gateways.sh (shared with bench/raft.sh) the raft group.
dist_check_SCRIPTS += t/kernel/kernel-test.sh t/kernel/kernel-s3-test.sh \
	t/kernel/kernel-raft-test.sh t/kernel/kernel-lock-test.sh \
	t/kernel/kernel-lock-raft-test.sh
EXTRA_DIST += t/kernel/setup.sh t/kernel/run.sh t/kernel/guest-tests.sh \
	t/kernel/init t/kernel/guest-raft.sh t/kernel/guest-locks.sh \
	t/kernel/locker.pl t/kernel/guest-lock-raft.sh t/kernel/common.sh \
	t/kernel/guest-common.sh t/gateways.sh
