/*
 * Ferry test kernel: a polled virtio-mmio driver, ring 0, for two serial
 * commands. Each finds its device among the virtio-mmio slots (0xd0000000
 * + n * 0x1000, n < 11), resets it, sets it up without interrupts, does
 * its check, prints one result line and resets the device again.
 *
 * virtio_test_disk(): the first virtio-blk device. Prints
 *     DISK sector0 <first 16 bytes of sector 0, 32 hex digits>
 * then writes sector 1, reads it back and prints "DISK OK" or
 * "DISK FAIL <why>". Sector 1 holds 32 chunks of 16 bytes; chunk k of
 * run r (1 for the first command since boot) is the text
 * "FERRY-DISK-RRKK " with RR and KK as two lowercase hex digits each.
 *
 * virtio_test_net(): the first virtio-net device. Sends an ARP request
 * for 10.0.2.2 from 10.0.2.15 (slirp's gateway and guest addresses),
 * waits up to a second for the reply and prints
 * "NET OK gw-mac=xx:xx:xx:xx:xx:xx" or "NET FAIL <why>".
 *
 * Both use buffers inside the kernel image (below 16 MiB), never the
 * workload area.
 */
#ifndef FERRY_TESTKERNEL_VIRTIO_TEST_H
#define FERRY_TESTKERNEL_VIRTIO_TEST_H

void virtio_test_disk(void);
void virtio_test_net(void);

#endif
