#!/bin/busybox sh
# /init of the urunc-rs test Linux guest (a busybox initramfs).
# The kernel has no IP autoconfiguration (CONFIG_IP_PNP is off in Debian's
# cloud kernel) and its virtio drivers are modules, so this script loads them
# and applies the kernel command line's ip= itself:
#   ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>
# urunc.poweroff=1 (on the command line or as an argument of init) makes it
# power off right after the ready marker; urunc.httpport=<port> moves its
# HTTP server off its default port.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for module in /modules/*.ko; do
    insmod "$module" || echo "URUNC-LINUX-ERROR insmod $module"
done

ipspec=""
poweroff=0
httpport=@HTTP_PORT@
for argument in $(cat /proc/cmdline) "$@"; do
    case "$argument" in
        ip=*) ipspec="${argument#ip=}" ;;
        urunc.poweroff=1) poweroff=1 ;;
        urunc.httpport=*) httpport="${argument#urunc.httpport=}" ;;
    esac
done

address="none"
if [ -n "$ipspec" ]; then
    IFS=: read -r address server gateway netmask name device autoconf <<SPEC
$ipspec
SPEC
    device="${device:-eth0}"
    waited=0
    while [ ! -e "/sys/class/net/$device" ] && [ "$waited" -lt 100 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    [ -n "$name" ] && hostname "$name"
    ifconfig lo 127.0.0.1 up
    if [ -n "$netmask" ]; then
        ifconfig "$device" "$address" netmask "$netmask" up || echo "URUNC-LINUX-ERROR ifconfig $device"
    else
        ifconfig "$device" "$address" up || echo "URUNC-LINUX-ERROR ifconfig $device"
    fi
    [ -n "$gateway" ] && { route add default gw "$gateway" || echo "URUNC-LINUX-ERROR route $gateway"; }
fi

# The ACPI power button (QMP system_powerdown) arrives as KEY_POWER (116) on
# an evdev device: power off cleanly when it is pressed. An input_event is
# 24 bytes on x86_64; type and code are the 16-bit words at offset 16.
# An event that comes before the device is open is lost: the device is opened
# first, and the ready marker waits until every watcher holds its device (a
# slow TCG guest could otherwise miss a SIGTERM sent right after it).
mkdir -p /tmp
power_button_device() {
    for device in /dev/input/event*; do
        [ -e "$device" ] || continue
        grep -qs 'Power Button' "/sys/class/input/$(basename "$device")/device/name" && echo "$device"
    done
}
waited=0
while [ -z "$(power_button_device)" ] && [ "$waited" -lt 50 ]; do
    sleep 0.1
    waited=$((waited + 1))
done
watchers=0
for device in $(power_button_device); do
    watchers=$((watchers + 1))
    (
        exec 3<"$device"
        : > "/tmp/power-watch-$watchers"
        while true; do
            set -- $(dd bs=24 count=1 <&3 2>/dev/null | od -An -tu2 -j16 -N4)
            if [ "$1" = 1 ] && [ "$2" = 116 ]; then
                echo "@POWER_BUTTON_MARKER@"
                poweroff -f
            fi
        done
    ) &
done
waited=0
while [ "$(ls /tmp/power-watch-* 2>/dev/null | wc -l)" -lt "$watchers" ] && [ "$waited" -lt 100 ]; do
    sleep 0.1
    waited=$((waited + 1))
done

mkdir -p /www
echo "@HTTP_ANSWER@" > /www/index.html
httpd -p "$httpport" -h /www || echo "URUNC-LINUX-ERROR httpd"

echo "@READY_MARKER@ $address"
if [ "$poweroff" = 1 ]; then
    poweroff -f
fi
while true; do
    sleep 3600
done
