/* virtio entropy device driven by the spec-written test driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/virtio_rng.h"
#include "support/harness_platform.h"
#include "support/virtio_driver.h"

#define RAM_SIZE     (8u << 20)
#define MMIO_BASE    0xe0000000ULL
#define MSI_ADDR     0xfee00000ULL
#define MSI_DATA_CFG 0x4050
#define MSI_DATA_Q0  0x4051
#define F_VERSION_1  (1ULL << 32)
#define F_INDIRECT   (1ULL << 28)

struct fx {
    struct harness *h;
    struct pci_bus bus;
    struct virtio_rng *rng;
    struct vdrv d;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->h = harness_new(RAM_SIZE);
    assert_non_null(f->h);
    harness_pci_bus_init(&f->bus, f->h);
    char err[256] = "";
    f->rng = virtio_rng_create(&f->h->plat, &f->bus, err, sizeof(err));
    if (!f->rng)
        fail_msg("virtio_rng_create: %s", err);
    int devfn = harness_pci_find(&f->bus, 0x1af4, 0x1044);
    assert_true(devfn >= 0);
    assert_int_equal(vdrv_probe(&f->d, f->h, &f->bus, (uint8_t)devfn, MMIO_BASE), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    virtio_rng_destroy(f->rng);
    harness_free(f->h);
    free(f);
    return 0;
}

static void bring_up(struct fx *f, uint64_t features, bool msix)
{
    struct vdrv *d = &f->d;
    assert_true(vdrv_reset(d));
    assert_true(vdrv_negotiate(d, features | F_VERSION_1));
    vdrv_msix_vector(d, 0, MSI_ADDR, MSI_DATA_CFG, false);
    vdrv_msix_vector(d, 1, MSI_ADDR, MSI_DATA_Q0, false);
    vdrv_msix_enable(d, msix);
    vdrv_common_write(d, VDRV_CC_MSIX, 2, msix ? 0 : VDRV_NO_VECTOR);
    assert_int_equal(vdrv_setup_queue(d, 0, 16, msix ? 1 : VDRV_NO_VECTOR), 0);
    vdrv_driver_ok(d);
    assert_false(vdrv_status(d) & VDRV_S_NEEDS_RESET);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_identity(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    assert_int_equal(pci_config_read(&f->bus, d->devfn, 0x02, 2), 0x1044);
    assert_true(pci_config_read(&f->bus, d->devfn, 0x08, 1) >= 1);
    assert_true(pci_config_read(&f->bus, d->devfn, 0x2e, 2) >= 0x40);
    assert_int_equal(vdrv_common_read(d, VDRV_CC_NUMQ, 2), 1);
    assert_true(vdrv_device_features(d) & F_VERSION_1);
}

static void test_fills_buffers(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, F_INDIRECT, true);
    uint64_t a = vdrv_alloc(d, 64, 1), b = vdrv_alloc(d, 1, 1), c = vdrv_alloc(d, 200, 1);
    struct vdrv_buf bufs[3] = { { a, 64, true }, { b, 1, true }, { c, 200, true } };
    uint16_t head = vdrv_post(d, 0, bufs, 3);
    vdrv_notify(d, 0);
    uint32_t id, len;
    assert_true(vdrv_wait_used(d, 0, &id, &len, 2000));
    assert_int_equal(id, head);
    assert_int_equal(len, 265);
    assert_false(all_zero(f->h->ram + a, 64));
    assert_false(all_zero(f->h->ram + c, 200));
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_Q0), 1);

    /* A second request gets different bytes; through an indirect table. */
    uint64_t e = vdrv_alloc(d, 64, 1);
    struct vdrv_buf one = { e, 64, true };
    head = vdrv_post_indirect(d, 0, &one, 1);
    vdrv_notify(d, 0);
    assert_true(vdrv_wait_used(d, 0, &id, &len, 2000));
    assert_int_equal(id, head);
    assert_int_equal(len, 64);
    assert_memory_not_equal(f->h->ram + a, f->h->ram + e, 64);

    /* A huge request may be served in part, never beyond the buffer. */
    uint64_t big = vdrv_alloc(d, 1u << 20, 1);
    struct vdrv_buf huge = { big, 1u << 20, true };
    vdrv_post(d, 0, &huge, 1);
    vdrv_notify(d, 0);
    assert_true(vdrv_wait_used(d, 0, &id, &len, 2000));
    assert_true(len > 0 && len <= (1u << 20));
    assert_false(all_zero(f->h->ram + big, len));
}

static void test_intx(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, 0, false);
    uint64_t a = vdrv_alloc(d, 32, 1);
    struct vdrv_buf buf = { a, 32, true };
    vdrv_post(d, 0, &buf, 1);
    vdrv_notify(d, 0);
    assert_true(vdrv_wait_used(d, 0, NULL, NULL, 2000));
    unsigned gsi = vdrv_intx_gsi(d);
    assert_true(f->h->irq_level[gsi]);
    assert_int_equal(vdrv_isr(d), 1);
    assert_false(f->h->irq_level[gsi]);
    assert_int_equal(f->h->msi_total, 0);
}

static void test_readable_buffer_breaks_device(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    bring_up(f, 0, true);
    uint64_t a = vdrv_alloc(d, 32, 1), b = vdrv_alloc(d, 32, 1);
    struct vdrv_buf bufs[2] = { { a, 32, false }, { b, 32, true } };
    vdrv_post(d, 0, bufs, 2);
    vdrv_notify(d, 0);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    assert_int_equal(vdrv_msi_count(d, MSI_DATA_CFG), 1);
    assert_int_equal(vdrv_used_idx(d, 0), 0);
    /* Reset recovers it. */
    bring_up(f, 0, true);
    struct vdrv_buf ok = { b, 32, true };
    vdrv_post(d, 0, &ok, 1);
    vdrv_notify(d, 0);
    assert_true(vdrv_wait_used(d, 0, NULL, NULL, 2000));
}

static void test_bad_rings(void **state)
{
    struct fx *f = *state;
    struct vdrv *d = &f->d;
    /* avail idx far ahead */
    bring_up(f, 0, true);
    vdrv_set_avail_idx(d, 0, 1000);
    vdrv_notify(d, 0);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    /* descriptor outside RAM */
    bring_up(f, 0, true);
    vdrv_write_desc(d, 0, 0, RAM_SIZE, 16, VDRV_DESC_WRITE, 0);
    vdrv_publish(d, 0, 0);
    vdrv_notify(d, 0);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    /* a loop */
    bring_up(f, 0, true);
    uint64_t a = vdrv_alloc(d, 16, 1);
    vdrv_write_desc(d, 0, 0, a, 16, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 1);
    vdrv_write_desc(d, 0, 1, a, 16, VDRV_DESC_WRITE | VDRV_DESC_NEXT, 0);
    vdrv_publish(d, 0, 0);
    vdrv_notify(d, 0);
    assert_true(vdrv_status(d) & VDRV_S_NEEDS_RESET);
    assert_int_equal(vdrv_used_idx(d, 0), 0);
    /* and the device still comes back */
    bring_up(f, 0, true);
    struct vdrv_buf ok = { a, 16, true };
    vdrv_post(d, 0, &ok, 1);
    vdrv_notify(d, 0);
    assert_true(vdrv_wait_used(d, 0, NULL, NULL, 2000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fills_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readable_buffer_breaks_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rings, setup, teardown),
    };
    return cmocka_run_group_tests_name("virtio-rng", tests, NULL, NULL);
}
