#!/bin/busybox sh
# /sbin/init on the guest's root (a disk or a shared filesystem): proves the
# guest runs from it by printing a file only the image has and the device (or
# mount tag) and filesystem type mounted on /.
export PATH=/bin
/bin/busybox mount -t proc proc /proc
root=$(/bin/busybox awk '$2 == "/" { device = $1 } END { print device }' /proc/mounts)
fstype=$(/bin/busybox awk '$2 == "/" { type = $3 } END { print type }' /proc/mounts)
echo "@MARKER@ $(/bin/busybox cat @IMAGE_FILE@) root=$root type=$fstype"
if [ "$1" = poweroff ]; then
    /bin/busybox poweroff -f
fi
while true; do
    /bin/busybox sleep 3600
done
