#!/bin/busybox sh
# /sbin/init on the guest's root disk: proves the guest runs from that disk by
# printing a file only the image has and the device mounted on /.
export PATH=/bin
/bin/busybox mount -t proc proc /proc
root=$(/bin/busybox awk '$2 == "/" { device = $1 } END { print device }' /proc/mounts)
echo "@MARKER@ $(/bin/busybox cat @IMAGE_FILE@) root=$root"
if [ "$1" = poweroff ]; then
    /bin/busybox poweroff -f
fi
while true; do
    /bin/busybox sleep 3600
done
