#!/bin/bash
# Prepare the Linux-kernel-client test VM: install QEMU and the guest tools
# from Debian, fetch Debian's kernel package (downloaded, never installed:
# installing it would pull systemd and initramfs hooks onto the host), cut
# an uncompressed vmlinux out of it (QEMU boots an ELF vmlinux through PVH,
# which skips the xz decompression that is slow under TCG) and build a
# small initramfs: static busybox, the NFS/virtio/9p modules and our /init.
#
# Env: KERNEL_WORK  cache dir (default: t/kernel/work next to this script);
#                   reused when already complete.
# Exit: 0 ready, 77 the tools cannot be installed (caller skips), 1 error.
# Prints the cache dir on the last line of stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")
W=${KERNEL_WORK:-$HERE/work}
PKGS="qemu-system-x86 busybox-static kmod cpio xz-utils fio"
MODS="virtio_pci virtio_net nfsv3 9p 9pnet_virtio"

log() { echo "[setup] $*" >&2; }

have_tools() {
	command -v qemu-system-x86_64 >/dev/null &&
	[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 &&
	command -v modprobe >/dev/null && command -v depmod >/dev/null &&
	command -v cpio >/dev/null && command -v xz >/dev/null &&
	command -v fio >/dev/null &&
	[ -f /usr/share/qemu/qboot.rom ]
}

install_tools() {
	have_tools && return 0
	export DEBIAN_FRONTEND=noninteractive
	log "apt-get install $PKGS"
	# Try without refreshing the lists first: the update is the slow part.
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $PKGS >&2 ||
		{ apt-get update -qq >&2 &&
		  apt-get install -y -qq --no-install-recommends $PKGS >&2; } ||
		true
	have_tools
}

if ! install_tools; then
	log "cannot install $PKGS: skipping"
	exit 77
fi

mkdir -p "$W"
cd "$W"

# The kernel: whatever linux-image-amd64 currently points at.
KPKG=$(cat kpkg 2>/dev/null || true)
if [ -z "$KPKG" ] || [ ! -f "kroot/boot/vmlinuz-${KPKG#linux-image-}" ]; then
	KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-/{print $2; exit}')
	if [ -z "$KPKG" ]; then
		apt-get update -qq >&2 || true
		KPKG=$(apt-cache depends linux-image-amd64 |
			awk '/Depends: linux-image-/{print $2; exit}')
	fi
	[ -n "$KPKG" ] || { log "no linux-image-amd64 in apt"; exit 1; }
	KVER=${KPKG#linux-image-}
	log "downloading $KPKG"
	rm -rf kroot vmlinux initrd.cpio.gz ./*.deb
	apt-get download -qq -o APT::Sandbox::User=root "$KPKG" >&2
	dpkg-deb -x "${KPKG}"_*.deb kroot
	depmod -b kroot "$KVER"
	rm -f "${KPKG}"_*.deb
	echo "$KPKG" > kpkg
fi
KVER=${KPKG#linux-image-}

if [ ! -s vmlinux ]; then
	# The bzImage holds an xz stream; find its magic and decompress from
	# there (xz complains about the trailing bytes, hence the || true).
	vmz=kroot/boot/vmlinuz-$KVER
	off=$(grep -abo $'\xfd7zXZ\x00' "$vmz" | head -1 | cut -d: -f1 || true)
	if [ -n "$off" ]; then
		tail -c +$((off + 1)) "$vmz" | xz -dc > vmlinux.tmp 2>/dev/null ||
			true
	fi
	if [ -s vmlinux.tmp ] && head -c 4 vmlinux.tmp | grep -q ELF; then
		mv vmlinux.tmp vmlinux
	else
		log "no ELF vmlinux in $vmz; booting the bzImage"
		rm -f vmlinux.tmp
		cp "$vmz" vmlinux
	fi
fi

# The initramfs depends on /init and this script: rebuild when they change.
sum=$(cat "$HERE/init" "$SELF" /bin/busybox | md5sum | cut -d' ' -f1)
if [ ! -s initrd.cpio.gz ] || [ "$(cat initrd.sum 2>/dev/null)" != "$sum" ]
then
	log "building initramfs for $KVER"
	ROOT=$(mktemp -d "$W/rootfs.XXXXXX")
	trap 'rm -rf "$ROOT"' EXIT
	mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,mnt/nfs,host,etc,lib/modules}
	cp /bin/busybox "$ROOT/bin/busybox"
	for a in $("$ROOT/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"
	done
	# Modules in dependency order, as modprobe would load them.
	: > "$ROOT/etc/modules.order"
	for m in $MODS; do
		modprobe -d "$W/kroot" -S "$KVER" --show-depends "$m" |
			awk '$1 == "insmod" {print $2}'
	done | awk '!seen[$0]++' | while read -r ko; do
		cp "$ko" "$ROOT/lib/modules/"
		basename "$ko" >> "$ROOT/etc/modules.order"
	done
	[ -s "$ROOT/etc/modules.order" ] || { log "no modules found"; exit 1; }
	cp "$HERE/init" "$ROOT/init"
	chmod +x "$ROOT/init"
	(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) \
		> initrd.cpio.gz.tmp
	mv initrd.cpio.gz.tmp initrd.cpio.gz
	echo "$sum" > initrd.sum
fi
log "ready: kernel $KVER in $W"
echo "$W"
