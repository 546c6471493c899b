/*
 * The virtio-mmio transport through the real MMIO dispatch, with a dummy
 * one-queue device and a recording stand-in for the interrupt line: the
 * driver's init sequence as Linux performs it, feature negotiation,
 * queue setup, notifications both ways, reset and config space widths.
 */
#include <string.h>

#include <glib.h>

#include "hw/virtio/virtio-mmio.h"
#include "system/accel.h"
#include "system/ioport.h"
#include "system/memory.h"
#include "system/ramblock.h"

#define RAM_GPA     0x100000ULL
#define RAM_SIZE    0x100000ULL
#define BASE        VIRTIO_MMIO_BASE

static int irq_levels[32];
static int irq_changes;

/* Stand-in for the accelerator: the line level per GSI. */
void accel_set_irq(int irq, int level)
{
    g_assert(irq >= 0 && irq < 32);
    irq_levels[irq] = level;
    irq_changes++;
}

typedef struct TestDevice {
    VirtioDevice vdev;
    int notifies[VIRTIO_MAX_QUEUES];
    int resets;
} TestDevice;

static void test_device_notify(VirtioDevice *vdev, unsigned index)
{
    ((TestDevice *)vdev)->notifies[index]++;
}

static void test_device_reset(VirtioDevice *vdev)
{
    ((TestDevice *)vdev)->resets++;
}

static const VirtioDeviceOps test_device_ops = {
    .name = "test-device",
    .queue_notify = test_device_notify,
    .reset = test_device_reset,
};

static TestDevice dev;

static uint32_t rd(uint64_t off)
{
    return (uint32_t)io_dispatch_read(IO_SPACE_MMIO, BASE + off, 4);
}

static void wr(uint64_t off, uint32_t val)
{
    io_dispatch_write(IO_SPACE_MMIO, BASE + off, val, 4);
}

static void driver_negotiate(uint64_t features)
{
    wr(VIRTIO_MMIO_STATUS, 0);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                           VIRTIO_STATUS_FEATURES_OK);
}

static void driver_setup_queue(unsigned q, uint32_t num, uint64_t desc, uint64_t avail,
                               uint64_t used)
{
    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_READY), ==, 0);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), ==, VIRTQUEUE_MAX_SIZE);
    wr(VIRTIO_MMIO_QUEUE_NUM, num);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    wr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

static const uint64_t good_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(3);

static void test_ids(void)
{
    g_assert_cmphex(rd(VIRTIO_MMIO_MAGIC_VALUE), ==, 0x74726976);
    g_assert_cmpuint(rd(VIRTIO_MMIO_VERSION_REG), ==, 2);
    g_assert_cmpuint(rd(VIRTIO_MMIO_DEVICE_ID), ==, 42);
    g_assert_cmphex(rd(VIRTIO_MMIO_VENDOR_ID_REG), ==, VIRTIO_MMIO_VENDOR_ID);
    /* Registers only answer aligned 32-bit accesses. */
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, BASE, 2), ==, 0);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, BASE + 1, 4), ==, 0);
    /* The next slot is empty: all ones, as on a bus. */
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, BASE + VIRTIO_MMIO_SIZE, 4), ==, 0xffffffff);
    g_assert_cmphex(rd(VIRTIO_MMIO_SHM_LEN_LOW), ==, 0xffffffff);

    g_autoptr(GString) s = g_string_new(NULL);
    virtio_mmio_cmdline(&dev.vdev, s);
    g_assert_cmpstr(s->str, ==, "virtio_mmio.device=4K@0xd0000000:5");
    virtio_mmio_cmdline(&dev.vdev, s);
    g_assert_cmpstr(s->str, ==,
                    "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0000000:5");
}

static void test_features(void)
{
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t lo = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    g_assert_cmpuint(rd(VIRTIO_MMIO_DEVICE_FEATURES), ==, 0);
    uint64_t f = lo | hi << 32;
    g_assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
    g_assert_true(f & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
    g_assert_true(f & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    g_assert_true(f & VIRTIO_BIT(3));

    /* A legacy driver (no VERSION_1) is refused. */
    driver_negotiate(VIRTIO_BIT(3));
    g_assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    /* So is a feature we did not offer. */
    driver_negotiate(good_features | VIRTIO_BIT(7));
    g_assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);

    driver_negotiate(good_features | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    g_assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    g_assert_cmphex(dev.vdev.guest_features, ==, good_features | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
    g_assert_true(dev.vdev.vq[0].event_idx);
    g_assert_false(dev.vdev.vq[0].indirect);
    /* Features are frozen once accepted. */
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 0);
    g_assert_cmphex(dev.vdev.guest_features, ==, good_features | VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
}

static void test_queue_and_interrupts(void)
{
    int resets = dev.resets;

    driver_negotiate(good_features);
    g_assert_cmpint(dev.resets, ==, resets + 1);
    /* Queue 1 does not exist. */
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), ==, 0);

    driver_setup_queue(0, 16, RAM_GPA, RAM_GPA + 0x1000, RAM_GPA + 0x2000);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_READY), ==, 1);
    g_assert_cmpuint(dev.vdev.vq[0].num, ==, 16);
    /* Layout registers are frozen while the queue is live. */
    wr(VIRTIO_MMIO_QUEUE_NUM, 32);
    g_assert_cmpuint(dev.vdev.vq[0].num, ==, 16);

    /* No buffers are used before DRIVER_OK. */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_cmpint(dev.notifies[0], ==, 0);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    g_assert_cmpint(dev.notifies[0], ==, 1);   /* picks up what was queued before */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_cmpint(dev.notifies[0], ==, 2);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);            /* no such queue */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0x10000);
    g_assert_cmpint(dev.notifies[0], ==, 2);

    /* Used buffer interrupt: level until acknowledged. */
    g_assert_cmpint(irq_levels[5], ==, 0);
    virtio_mmio_notify_queue(&dev.vdev, 0);
    g_assert_cmpuint(rd(VIRTIO_MMIO_INTERRUPT_STATUS), ==, VIRTIO_ISR_QUEUE);
    g_assert_cmpint(irq_levels[5], ==, 1);
    int changes = irq_changes;
    virtio_mmio_notify_queue(&dev.vdev, 0);
    g_assert_cmpint(irq_changes, ==, changes);  /* already raised */
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_QUEUE);
    g_assert_cmpuint(rd(VIRTIO_MMIO_INTERRUPT_STATUS), ==, 0);
    g_assert_cmpint(irq_levels[5], ==, 0);

    /* The driver asks for no interrupts. */
    uint16_t flags = GUINT16_TO_LE(VIRTQ_AVAIL_F_NO_INTERRUPT);
    guest_phys_write(RAM_GPA + 0x1000, &flags, 2);
    virtio_mmio_notify_queue(&dev.vdev, 0);
    g_assert_cmpint(irq_levels[5], ==, 0);

    /* Reset: everything back, line low. */
    virtio_mmio_notify_queue(&dev.vdev, 0);
    dev.vdev.isr = VIRTIO_ISR_CONFIG;
    virtio_mmio_update_irq(&dev.vdev);
    g_assert_cmpint(irq_levels[5], ==, 1);
    wr(VIRTIO_MMIO_STATUS, 0);
    g_assert_cmpint(irq_levels[5], ==, 0);
    g_assert_cmpuint(rd(VIRTIO_MMIO_STATUS), ==, 0);
    g_assert_cmpuint(rd(VIRTIO_MMIO_INTERRUPT_STATUS), ==, 0);
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_READY), ==, 0);
    g_assert_cmpuint(dev.vdev.vq[0].num, ==, 0);
    g_assert_cmphex(dev.vdev.guest_features, ==, 0);
    g_assert_cmpint(dev.resets, ==, resets + 2);
}

static void test_bad_queue(void)
{
    driver_negotiate(good_features);
    /* Rings outside RAM: the queue stays off and the device wants a reset. */
    driver_setup_queue(0, 16, 0x10000, RAM_GPA + 0x1000, RAM_GPA + 0x2000);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_READY), ==, 0);
    g_assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    g_assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    g_assert_false(virtio_mmio_queue_usable(&dev.vdev, 0));
    wr(VIRTIO_MMIO_STATUS, 0);
    g_assert_false(dev.vdev.broken);

    /* Not a power of two. */
    driver_negotiate(good_features);
    driver_setup_queue(0, 12, RAM_GPA, RAM_GPA + 0x1000, RAM_GPA + 0x2000);
    g_assert_cmpuint(rd(VIRTIO_MMIO_QUEUE_READY), ==, 0);
    g_assert_true(dev.vdev.broken);

    /* Broken after DRIVER_OK: a configuration interrupt tells the driver. */
    driver_negotiate(good_features);
    driver_setup_queue(0, 16, RAM_GPA, RAM_GPA + 0x1000, RAM_GPA + 0x2000);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    virtio_mmio_set_broken(&dev.vdev, "test");
    g_assert_cmpuint(rd(VIRTIO_MMIO_INTERRUPT_STATUS), ==, VIRTIO_ISR_CONFIG);
    g_assert_cmpint(irq_levels[5], ==, 1);
    wr(VIRTIO_MMIO_STATUS, 0);

    /* A new reason while the line is up pulses it again (a fresh edge). */
    driver_negotiate(good_features);
    driver_setup_queue(0, 16, RAM_GPA, RAM_GPA + 0x1000, RAM_GPA + 0x2000);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    uint16_t flags = 0;
    guest_phys_write(RAM_GPA + 0x1000, &flags, 2);
    virtio_mmio_notify_queue(&dev.vdev, 0);
    g_assert_cmpint(irq_levels[5], ==, 1);
    int changes = irq_changes;
    virtio_mmio_set_broken(&dev.vdev, "test");
    g_assert_cmpint(irq_changes, ==, changes + 2);
    g_assert_cmpint(irq_levels[5], ==, 1);
    g_assert_cmpuint(rd(VIRTIO_MMIO_INTERRUPT_STATUS), ==, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_QUEUE);
    g_assert_cmpint(irq_levels[5], ==, 1);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_ISR_CONFIG);
    g_assert_cmpint(irq_levels[5], ==, 0);
    wr(VIRTIO_MMIO_STATUS, 0);
    g_assert_cmpint(irq_levels[5], ==, 0);
}

static void test_config(void)
{
    const uint64_t cfg = BASE + VIRTIO_MMIO_CONFIG;

    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg, 1), ==, 0x11);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg + 1, 2), ==, 0x3322);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg + 4, 4), ==, 0x88776655);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg, 8), ==, 0x8877665544332211ULL);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg + 6, 4), ==, 0);   /* past the end */
    /* Not writable. */
    io_dispatch_write(IO_SPACE_MMIO, cfg, 0xff, 1);
    g_assert_cmphex(io_dispatch_read(IO_SPACE_MMIO, cfg, 1), ==, 0x11);
    g_assert_cmpuint(rd(VIRTIO_MMIO_CONFIG_GENERATION), ==, 0);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    RAMBlockOptions opts = { .id = "test.ram", .size = RAM_SIZE, .kind = RAM_BACKING_ANON };

    g_test_init(&argc, &argv, NULL);
    RAMBlock *block = ramblock_new(&opts, &err);
    g_assert_no_error(err);
    guest_ram_map(RAM_GPA, RAM_SIZE, block, 0);

    dev.vdev.ops = &test_device_ops;
    dev.vdev.device_id = 42;
    dev.vdev.num_queues = 1;
    dev.vdev.host_features = VIRTIO_BIT(3);
    dev.vdev.config_len = 8;
    for (unsigned i = 0; i < 8; i++) {
        dev.vdev.config[i] = (uint8_t)(0x11 * (i + 1));
    }
    virtio_mmio_init(&dev.vdev, 0);

    g_test_add_func("/virtio-mmio/ids", test_ids);
    g_test_add_func("/virtio-mmio/features", test_features);
    g_test_add_func("/virtio-mmio/queue-and-interrupts", test_queue_and_interrupts);
    g_test_add_func("/virtio-mmio/bad-queue", test_bad_queue);
    g_test_add_func("/virtio-mmio/config", test_config);
    return g_test_run();
}
