#!/bin/busybox sh
# /init of the initramfs that boots the urunc-rs test guest from a root disk:
# loads the virtio modules (Debian's kernel has them as modules), waits for
# the `root=` device, mounts it and hands over to `init=` on it, with the
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
for argument in $(cat /proc/cmdline); do
    case "$argument" in
        root=*) root="${argument#root=}" ;;
        init=*) init="${argument#init=}" ;;
    esac
done
waited=0
while [ ! -b "$root" ] && [ "$waited" -lt 100 ]; do
    sleep 0.1
    waited=$((waited + 1))
done
mkdir -p /newroot
mount -t ext4 "$root" /newroot || echo "URUNC-BLOCK-ERROR mount $root"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot "$init" "$@"
