#!/bin/busybox sh
# /init of the initramfs that boots the urunc-rs test guest from its root: a
# disk or a shared filesystem (9p, virtiofs). Loads the modules (Debian's
# kernels have them as modules), waits for a `root=` device, mounts `root=`
# as `rootfstype=` with `rootflags=` and hands over to `init=` on it, with the
# arguments the kernel gave /init (those after `--`).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in /modules/*.ko; do
    insmod "$module" || echo "URUNC-BLOCK-ERROR insmod $module"
done
root=""
init=/sbin/init
fstype=ext4
flags=""
for argument in $(cat /proc/cmdline); do
    case "$argument" in
        root=*) root="${argument#root=}" ;;
        init=*) init="${argument#init=}" ;;
        rootfstype=*) fstype="${argument#rootfstype=}" ;;
        rootflags=*) flags="${argument#rootflags=}" ;;
    esac
done
waited=0
while [ "${root#/dev/}" != "$root" ] && [ ! -b "$root" ] && [ "$waited" -lt 100 ]; do
    sleep 0.1
    waited=$((waited + 1))
done
mkdir -p /newroot
mount -t "$fstype" ${flags:+-o "$flags"} "$root" /newroot || echo "URUNC-BLOCK-ERROR mount $root"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot "$init" "$@"
