#!/bin/sh
# /etc/ferry-test.sh of Ferry's Linux test guest: the tests that need
# busybox. /init (init.c) has already mounted /proc, /sys and /dev and
# printed "LINUX-INIT up"; it runs this as
#
#   sh /etc/ferry-test.sh TEST EXIT
#
# TEST:  disk   write a 4 KiB record to /dev/vda at 1 MiB with O_DIRECT, read
#               it back; "DISK before: ...", then "DISK OK ..." or "DISK FAIL ..."
#        net    eth0 up, DHCP (static 10.0.2.15/24 if no lease), ping 10.0.2.2;
#               "NET OK ..." or "NET FAIL ..."
#        devices  disk, then net
#        shell  "LINUX-SHELL", then a shell on the console
# EXIT:  reboot (default) | poweroff | halt | shell: what to do afterwards;
#        return: just exit (init goes on with the workload).
#
# Every command that is not a shell builtin forks and execs, which is slow
# on kvm_pvm (the guest kernel is emulated): keep this short.
export PATH=/bin

# udhcpc runs this script as /bin/ferry-dhcp EVENT, the lease in its
# environment.
case $0 in
*ferry-dhcp)
    case $1 in
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
        echo "NET lease $ip router ${router:-none}" > /dev/console
        ;;
    esac
    exit 0
    ;;
esac

test=${1:-shell}
exit_how=${2:-reboot}

# End the VM. Without ACPI tables Linux cannot power off (poweroff only
# halts the CPUs), so the default is a reset: under -no-reboot, Ferry and
# QEMU both end the VM then.
finish() {
    sync
    case $exit_how in
    poweroff) poweroff -f ;;
    halt) halt -f ;;
    shell) exec setsid cttyhack sh ;;
    return) exit 0 ;;
    *) reboot -f ;;
    esac
    while :; do sleep 3600; done
}

test_disk() {
    dev=/dev/vda
    if [ ! -b $dev ]; then
        echo "DISK FAIL no $dev"
        return
    fi
    read -r sectors < /sys/block/vda/size
    # Show what the disk held at 1 MiB (at 0 on a disk under 2 MiB) before
    # this boot wrote there, so a test can check that data survived; then
    # write a fresh record with O_DIRECT and read it back past the cache.
    block=256
    [ "$sectors" -ge 4096 ] || block=0
    before=$(dd if=$dev bs=4096 skip=$block count=1 iflag=direct 2>/dev/null | head -c 64 | tr -c 'A-Za-z0-9=. -' '.')
    echo "DISK before: $before"
    rec="FERRY-DISK boot=$(head -c 8 /dev/urandom | hexdump -e '8/1 "%02x"')"
    printf '%-4095s\n' "$rec" > /tmp/disk.w
    if ! dd if=/tmp/disk.w of=$dev bs=4096 seek=$block count=1 oflag=direct conv=notrunc,fsync 2>/dev/null; then
        echo "DISK FAIL write"
        return
    fi
    dd if=$dev of=/tmp/disk.r bs=4096 skip=$block count=1 iflag=direct 2>/dev/null
    if cmp -s /tmp/disk.w /tmp/disk.r; then
        echo "DISK OK sectors=$sectors $rec"
    else
        echo "DISK FAIL readback differs"
    fi
}

test_net() {
    if [ ! -e /sys/class/net/eth0 ]; then
        echo "NET FAIL no eth0"
        return
    fi
    ip link set lo up
    ip link set eth0 up
    if ! udhcpc -i eth0 -f -q -n -t 5 -T 3 -s /bin/ferry-dhcp >/dev/null 2>&1; then
        echo "NET no DHCP lease; using 10.0.2.15/24"
        ip addr add 10.0.2.15/24 dev eth0
        ip route add default via 10.0.2.2 dev eth0
    fi
    if ping -c 2 -W 5 10.0.2.2 >/dev/null 2>&1; then
        echo "NET OK ping 10.0.2.2"
    else
        echo "NET FAIL ping 10.0.2.2"
    fi
}

case $test in
disk)
    test_disk
    ;;
net)
    test_net
    ;;
devices)
    test_disk
    test_net
    ;;
shell)
    echo "LINUX-SHELL"
    setsid cttyhack sh
    ;;
*)
    echo "LINUX-INIT unknown ferry.test=$test"
    ;;
esac
finish
