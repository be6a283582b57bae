#!/bin/bash
# Boot the kernel-client test VM against an NFSv3 server listening on the
# host's 127.0.0.1 and run a test script inside it.
#
# Usage: run.sh [NFS_PORT [MNT_PORT [EXPORT]]]   (or the same names in env)
# Env:   TEST_SCRIPT  host path of the guest script (default guest-tests.sh
#                     here); the guest reaches it through the 9p host root
#        KERNEL_WORK  cache dir made by setup.sh (default t/kernel/work)
#        ACCEL        kvm|tcg (default tcg unless KVM can run a stock kernel)
#        TIMEOUT      seconds for the whole VM run (default 540)
#        LOG          console log (default $KERNEL_WORK/console.log)
#        NFS_OPTS     extra mount options; GUEST_ENV more KEY=VALUE words
#        NETDEV       QEMU -netdev of the guest's NIC (default user,id=n0:
#                     slirp, the host's 127.0.0.1 at 10.0.2.2); with another
#                     one, NFS_SERVER the server's address as the guest
#                     reaches it and GUEST_ADDR the guest's (ADDR/PREFIX)
# Exit: 0 the guest script passed, 1 it failed, 2 the VM did not finish.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NFS_PORT=${1:-${NFS_PORT:-2049}}
MNT_PORT=${2:-${MNT_PORT:-$NFS_PORT}}
EXPORT=${3:-${EXPORT:-/}}
W=${KERNEL_WORK:-$HERE/work}
TEST_SCRIPT=${TEST_SCRIPT:-$HERE/guest-tests.sh}
TIMEOUT=${TIMEOUT:-540}
LOG=${LOG:-$W/console.log}

for f in "$W/vmlinux" "$W/initrd.cpio.gz"; do
	[ -s "$f" ] || { echo "run.sh: $f missing: run setup.sh" >&2; exit 2; }
done
TEST_SCRIPT=$(readlink -f "$TEST_SCRIPT")
[ -r "$TEST_SCRIPT" ] || { echo "run.sh: no $TEST_SCRIPT" >&2; exit 2; }
case "$TEST_SCRIPT$EXPORT${NFS_OPTS:-}" in
*[[:space:]]*) echo "run.sh: no spaces on the kernel command line" >&2
	exit 2 ;;
esac

# A /dev/kvm without vmx/svm (e.g. a PVM host) hangs a stock kernel.
if [ -z "${ACCEL:-}" ]; then
	ACCEL=tcg
	if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
		ACCEL=kvm
	fi
fi
if [ "$ACCEL" = kvm ]; then
	ACC=(-accel kvm -cpu host)
else
	ACC=(-accel tcg,thread=multi -cpu max)
fi

NETDEV=${NETDEV:-user,id=n0}
APPEND="console=ttyS0 loglevel=4 panic=-1 NFS_SERVER=${NFS_SERVER:-10.0.2.2}"
APPEND+=" GUEST_ADDR=${GUEST_ADDR:-10.0.2.15/24}"
APPEND+=" NFS_PORT=$NFS_PORT MNT_PORT=$MNT_PORT NFS_EXPORT=$EXPORT"
APPEND+=" TEST_SCRIPT=$TEST_SCRIPT ${NFS_OPTS:+NFS_OPTS=$NFS_OPTS}"
# The guest stops itself a little before the host would kill it.
APPEND+=" KTEST_BUDGET=$((TIMEOUT > 60 ? TIMEOUT - 20 : TIMEOUT)) ${GUEST_ENV:-}"

echo "[host] booting (accel=$ACCEL, nfs port $NFS_PORT, mount port" \
	"$MNT_PORT, export $EXPORT, timeout ${TIMEOUT}s, log $LOG)"
start=$SECONDS
# slirp maps the guest's 10.0.2.2 to the host's 127.0.0.1. The host's / is
# shared read-only so the guest can chroot into it to run Debian's tools.
timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 "${ACC[@]}" \
	-m 1024 -smp 2 -nodefaults -no-user-config -display none \
	-no-reboot -serial stdio -monitor none \
	-kernel "$W/vmlinux" -initrd "$W/initrd.cpio.gz" -append "$APPEND" \
	-netdev "$NETDEV" -device virtio-net-pci,netdev=n0 \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
	-fsdev local,id=hr,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hr,mount_tag=hostroot \
	-bios /usr/share/qemu/qboot.rom < /dev/null > "$LOG" 2>&1
qrc=$?
echo "[host] qemu exit=$qrc after $((SECONDS - start))s"

# Lines of interest: our own, the TAP lines, and kernel complaints.
grep -aE '^(\[guest|ok |not ok |#|KTEST_RESULT|1\.\.|Bail out)|nfs|NFS|Oops|BUG|Call Trace|panic' \
	"$LOG" | tr -d '\r' | cut -c1-200

# isa-debug-exit: qemu exits with (byte << 1) | 1; the guest sends 0 for
# pass. 124/137 = timeout killed it; anything else = crash or poweroff.
case $qrc in
1)	grep -aq '^KTEST_RESULT=PASS' "$LOG" && exit 0; exit 1 ;;
3)	exit 1 ;;
124|137) echo "[host] VM timed out after ${TIMEOUT}s"; exit 2 ;;
*)	echo "[host] VM ended without a verdict"; exit 2 ;;
esac
