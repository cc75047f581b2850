#include "vmm/kvm.h"

#include <asm/kvm_para.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/util.h"
#include "vmm/kvmdev.h"

/* Placed just below the 256 KiB BIOS at the top of 4 GiB (Intel VMX needs
 * them for real mode; harmless elsewhere). */
#define KVM_TSS_ADDR          0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* KVM's PV MSRs that make KVM write into guest memory or change how it
 * treats the vCPU: a reset puts back their power-on values, so that the
 * next boot does not find kvm-clock, steal time or async page faults still
 * writing where the last one asked.  (Not the wall-clock MSRs: writing one
 * makes KVM write the time there.) */
static const uint32_t pv_msrs[] = {
    MSR_KVM_SYSTEM_TIME, MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT,
    MSR_KVM_STEAL_TIME, MSR_KVM_PV_EOI_EN, MSR_KVM_POLL_CONTROL,
};
#define PV_MSRS_MAX (sizeof(pv_msrs) / sizeof(pv_msrs[0]))

struct kvm_vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
    struct kvm_lapic_state lapic;
    struct kvm_mp_state mp;
    struct {                       /* struct kvm_msrs with room for its entries */
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[PV_MSRS_MAX];
    } msrs;
};

/* What is wrong with KVM and what to do, as one line. */
static int kvm_unusable(const struct kvmdev_probe *probe, char *err, size_t errlen)
{
    char what[384], todo[512];
    kvmdev_explain(probe, NULL, what, sizeof(what), todo, sizeof(todo));
    snprintf(err, errlen, "%s: %s", what, todo);
    return -1;
}

int vm_create(struct vm *vm, char *err, size_t errlen)
{
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = -1;
    pthread_mutex_init(&vm->route_lock, NULL);
    for (int i = 0; i < KVM_MAX_MSI_ROUTES; i++)
        vm->msi[i].irqfd = -1;
    struct kvmdev_probe probe;
    kvmdev_probe_init(&probe);
    vm->kvm_fd = kvmdev_open(&probe);
    if (vm->kvm_fd < 0)
        return kvm_unusable(&probe, err, errlen);
    static const struct { int cap; const char *name; } needed[] = {
        { KVM_CAP_IRQCHIP, "in-kernel irqchip" },
        { KVM_CAP_PIT2, "in-kernel PIT" },
        { KVM_CAP_USER_MEMORY, "user memory" },
        { KVM_CAP_IRQ_ROUTING, "GSI routing" },
        { KVM_CAP_IRQFD, "irqfd" },
        { KVM_CAP_IOEVENTFD, "ioeventfd" },
        { KVM_CAP_EXT_CPUID, "CPUID" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
            snprintf(err, errlen, "KVM lacks %s support, which Burrow needs: run a recent Linux kernel",
                     needed[i].name);
            return -1;
        }
    }
    vm->has_readonly_mem = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->run_size <= 0) {
        snprintf(err, errlen, "KVM does not say how large a vCPU's shared page is: %s", strerror(errno));
        return -1;
    }
    vm->vm_fd = kvmdev_create_vm(vm->kvm_fd, &probe);
    if (vm->vm_fd < 0)
        return kvm_unusable(&probe, err, errlen);
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
        snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -1;
    }
    uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);   /* optional */
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
        snprintf(err, errlen, "cannot create the in-kernel irqchip: %s", strerror(errno));
        return -1;
    }
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
        snprintf(err, errlen, "cannot create the in-kernel PIT: %s", strerror(errno));
        return -1;
    }
    for (int c = 0; c < 3; c++) {
        vm->chips[c].chip_id = (unsigned)c;
        ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &vm->chips[c]);
    }
    ioctl(vm->vm_fd, KVM_GET_PIT2, &vm->pit);
    return 0;
}

int vm_add_memslot(struct vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly)
{
    struct kvm_userspace_memory_region r = {
        .slot = vm->nslots,
        .flags = readonly && vm->has_readonly_mem ? KVM_MEM_READONLY : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)hva,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return -1;
    vm->nslots++;
    return 0;
}

int vm_set_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *hva, bool log_dirty)
{
    /* KVM cannot move a slot in place: delete, then add at the new place. */
    struct kvm_userspace_memory_region r = { .slot = slot };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 && errno != EINVAL)
        return -1;
    if (!size)
        return 0;
    r = (struct kvm_userspace_memory_region){
        .slot = slot,
        .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)hva,
    };
    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int vm_dirty_log(struct vm *vm, unsigned slot, uint64_t *bitmap)
{
    struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };
    return ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log);
}

/* --- CPUID ------------------------------------------------------------ */

#define CPUID_1_ECX_TSC_DEADLINE  (1u << 24)
#define CPUID_1_ECX_HYPERVISOR    (1u << 31)
#define CPUID_80000007_EDX_INVTSC (1u << 8)
/* The hypervisor timing leaf (VMware's, which other hypervisors offer too):
 * EAX the TSC's and EBX the local APIC timer's frequency, in kHz. */
#define CPUID_HV_TIMING           0x40000010
/* KVM's local APIC timer counts one bus cycle a nanosecond. */
#define KVM_APIC_BUS_KHZ          1000000u
/* The PV features KVM implements on its own.  Left out: extended MSI
 * destination ids (for more than 255 APIC ids), and the GPA-range and
 * migration hypercalls of encrypted guests, which need the VMM's help. */
#define KVM_PV_FEATURES ((1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_NOP_IO_DELAY) |     \
                         (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_ASYNC_PF) |         \
                         (1u << KVM_FEATURE_STEAL_TIME) | (1u << KVM_FEATURE_PV_EOI) |             \
                         (1u << KVM_FEATURE_PV_UNHALT) | (1u << KVM_FEATURE_PV_TLB_FLUSH) |        \
                         (1u << KVM_FEATURE_ASYNC_PF_VMEXIT) | (1u << KVM_FEATURE_PV_SEND_IPI) |   \
                         (1u << KVM_FEATURE_POLL_CONTROL) | (1u << KVM_FEATURE_PV_SCHED_YIELD) |   \
                         (1u << KVM_FEATURE_ASYNC_PF_INT) | (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT))
/* Room after KVM's leaves for the ones added here. */
#define CPUID_SPARE 2

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
    for (int n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (n + CPUID_SPARE) * sizeof(c->entries[0]));
        if (!c)
            return NULL;
        c->nent = (uint32_t)n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

static struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t function)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == function && c->entries[i].index == 0)
            return &c->entries[i];
    return NULL;
}

/* What every vCPU sees beyond KVM's list: that it runs on a hypervisor,
 * KVM's PV leaves (kvm-clock among them), the TSC deadline timer when KVM
 * emulates it, and the TSC's frequency (tsc_khz; 0: unknown).  c needs
 * CPUID_SPARE free entries. */
static void cpuid_for_guest(struct kvm_cpuid2 *c, bool tsc_deadline, int tsc_khz)
{
    struct kvm_cpuid_entry2 *e = cpuid_entry(c, 1);
    if (e)
        e->ecx |= CPUID_1_ECX_HYPERVISOR | (tsc_deadline ? CPUID_1_ECX_TSC_DEADLINE : 0);
    /* No invariant TSC: with it Linux prefers the bare TSC to kvm-clock,
     * whose pvclock pages also tell the guest when a pause stopped it and
     * stay right on a host whose TSC runs at another rate. */
    e = cpuid_entry(c, 0x80000007);
    if (e)
        e->edx &= ~CPUID_80000007_EDX_INVTSC;
    struct kvm_cpuid_entry2 *sig = cpuid_entry(c, KVM_CPUID_SIGNATURE);
    e = cpuid_entry(c, KVM_CPUID_FEATURES);
    if (!sig || !e)
        return;
    e->eax &= KVM_PV_FEATURES;
    if (tsc_khz <= 0)
        return;
    e = cpuid_entry(c, CPUID_HV_TIMING);
    if (!e)
        e = &c->entries[c->nent++];
    *e = (struct kvm_cpuid_entry2){ .function = CPUID_HV_TIMING, .eax = (uint32_t)tsc_khz,
                                    .ebx = KVM_APIC_BUS_KHZ };
    if (sig->eax < CPUID_HV_TIMING)
        sig->eax = CPUID_HV_TIMING;
}

static unsigned bits_for(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

/* Per-vCPU view: APIC ids and a topology of ncpus single-thread cores. */
static void cpuid_for_vcpu(struct kvm_cpuid2 *c, int index, int ncpus)
{
    unsigned core_bits = bits_for((unsigned)ncpus);
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x0000ffff) | ((uint32_t)index << 24) |
                     ((uint32_t)(ncpus > 1 ? (1u << core_bits) : 1) << 16);
            if (ncpus > 1)
                e->edx |= 1u << 28;       /* HTT: the logical count is valid */
            break;
        case 4:
            e->eax = (e->eax & 0x3ff) | ((uint32_t)((1u << core_bits) - 1) << 26);
            break;
        case 0xb:
        case 0x1f:
            if (e->index == 0) {
                e->eax = 0;
                e->ebx = 1;
                e->ecx = 0x100;              /* level 0: SMT */
            } else if (e->index == 1) {
                e->eax = core_bits;
                e->ebx = (uint32_t)ncpus;
                e->ecx = 0x200 | 1;          /* level 1: core */
            } else {
                e->eax = e->ebx = 0;
                e->ecx = e->index;
            }
            e->edx = (uint32_t)index;
            break;
        }
    }
}

/* Saves the power-on values of the PV MSRs this KVM has (one at a time:
 * KVM_GET_MSRS stops at the first it does not know). */
static int save_pv_msrs(int fd, struct kvm_vcpu_state *s)
{
    s->msrs.hdr.nmsrs = 0;
    for (size_t i = 0; i < PV_MSRS_MAX; i++) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e;
        } one = { .hdr.nmsrs = 1, .e.index = pv_msrs[i] };
        int n = ioctl(fd, KVM_GET_MSRS, &one);
        if (n < 0)
            return -1;
        if (n == 1)
            s->msrs.e[s->msrs.hdr.nmsrs++] = one.e;
    }
    return 0;
}

int vm_create_vcpus(struct vm *vm, int ncpus, char *err, size_t errlen)
{
    int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max > 0 && ncpus > max) {
        snprintf(err, errlen, "--cpus %d is more than KVM supports here (%d)", ncpus, max);
        return -1;
    }
    vm->cpuid = supported_cpuid(vm->kvm_fd);
    if (!vm->cpuid) {
        snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(errno));
        return -1;
    }
    vm->vcpus = calloc((size_t)ncpus, sizeof(*vm->vcpus));
    if (!vm->vcpus) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    vm->ncpus = ncpus;
    for (int i = 0; i < ncpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        v->vm = vm;
        v->index = i;
        v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
        if (v->fd < 0) {
            snprintf(err, errlen, "cannot create vCPU %d: %s", i, strerror(errno));
            return -1;
        }
        v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        if (v->run == MAP_FAILED) {
            v->run = NULL;
            snprintf(err, errlen, "cannot map vCPU %d: %s", i, strerror(errno));
            return -1;
        }
    }
    /* Every vCPU's TSC runs at the rate KVM gave the VM. */
    bool tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    int tsc_khz = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0
                      ? ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : 0;
    cpuid_for_guest(vm->cpuid, tsc_deadline, tsc_khz);
    size_t cpuid_size = sizeof(*vm->cpuid) + vm->cpuid->nent * sizeof(vm->cpuid->entries[0]);
    struct kvm_cpuid2 *mine = malloc(cpuid_size);
    if (!mine) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < ncpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        memcpy(mine, vm->cpuid, cpuid_size);
        cpuid_for_vcpu(mine, i, ncpus);
        if (ioctl(v->fd, KVM_SET_CPUID2, mine) < 0) {
            snprintf(err, errlen, "KVM_SET_CPUID2 on vCPU %d: %s", i, strerror(errno));
            free(mine);
            return -1;
        }
        v->initial = calloc(1, sizeof(*v->initial));
        struct kvm_vcpu_state *s = v->initial;
        if (!s || ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
            ioctl(v->fd, KVM_GET_FPU, &s->fpu) < 0 || ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
            ioctl(v->fd, KVM_GET_MP_STATE, &s->mp) < 0 || save_pv_msrs(v->fd, s) < 0) {
            snprintf(err, errlen, "cannot read the state of vCPU %d: %s", i, strerror(errno));
            free(mine);
            return -1;
        }
    }
    free(mine);
    /* The MADT gives the IOAPIC the first id after the CPUs'; make the
     * in-kernel IOAPIC agree, also after a reset. */
    vm->chips[KVM_IRQCHIP_IOAPIC].chip.ioapic.id = (uint32_t)ncpus;
    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &vm->chips[KVM_IRQCHIP_IOAPIC]);
    return 0;
}

int vm_reset_cpus(struct vm *vm)
{
    int rc = 0;
    for (int c = 0; c < 3; c++)
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &vm->chips[c]) < 0)
            rc = -1;
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->pit) < 0)
        rc = -1;
    for (int i = 0; i < vm->ncpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        struct kvm_vcpu_state *s = v->initial;
        if (ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0 ||
            ioctl(v->fd, KVM_SET_FPU, &s->fpu) < 0 || ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) < 0 ||
            ioctl(v->fd, KVM_SET_MP_STATE, &s->mp) < 0 ||
            ioctl(v->fd, KVM_SET_MSRS, &s->msrs) != (int)s->msrs.hdr.nmsrs)
            rc = -1;
    }
    return rc;
}

/* --- kvm-clock ---------------------------------------------------------- */

void vm_clock_pause(struct vm *vm)
{
    struct kvm_clock_data d = { 0 };
    vm->clock_held = ioctl(vm->vm_fd, KVM_GET_CLOCK, &d) == 0;
    vm->clock_ns = d.clock;
}

void vm_clock_resume(struct vm *vm)
{
    if (vm->clock_held) {
        struct kvm_clock_data d = { .clock = vm->clock_ns };
        if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &d) < 0)
            log_error("KVM_SET_CLOCK: %s", strerror(errno));
        vm->clock_held = false;
    }
    /* Fails with EINVAL on a vCPU whose guest has not enabled kvm-clock. */
    for (int i = 0; i < vm->ncpus; i++)
        ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
}

/* --- interrupts ------------------------------------------------------- */

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
    struct kvm_irq_level l = { .irq = gsi, .level = level ? 1 : 0 };
    return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}

/* Rebuilds the whole routing table: KVM replaces it on every update.
 * Legacy GSI 0 (the PIT) reaches IOAPIC pin 2, as the MADT's interrupt
 * source override says; GSI 2 is the PIC cascade. */
static int push_routes(struct vm *vm)
{
    size_t max = 2 * 16 + KVM_IRQCHIP_GSIS + KVM_MAX_MSI_ROUTES;
    struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
    if (!r)
        return -1;
    unsigned n = 0;
    for (unsigned gsi = 0; gsi < KVM_IRQCHIP_GSIS; gsi++) {
        if (gsi < 16 && gsi != 2) {
            r->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
                               .pin = gsi % 8 } };
        }
        if (gsi != 2) {
            r->entries[n++] = (struct kvm_irq_routing_entry){
                .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
                .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi == 0 ? 2 : gsi } };
        }
    }
    for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
        if (!vm->msi[i].used)
            continue;
        r->entries[n++] = (struct kvm_irq_routing_entry){
            .gsi = KVM_IRQCHIP_GSIS + i, .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = { .address_lo = (uint32_t)vm->msi[i].addr,
                       .address_hi = (uint32_t)(vm->msi[i].addr >> 32),
                       .data = vm->msi[i].data } };
    }
    r->nr = n;
    int rc = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r);
    if (rc < 0)
        log_error("KVM_SET_GSI_ROUTING: %s", strerror(errno));
    free(r);
    return rc;
}

int vm_msi_alloc(struct vm *vm)
{
    pthread_mutex_lock(&vm->route_lock);
    int route = -1;
    for (int i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
        if (vm->msi[i].used)
            continue;
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0)
            break;
        vm->msi[i].used = true;
        vm->msi[i].addr = 0xfee00000;     /* harmless until programmed */
        vm->msi[i].data = 0;
        vm->msi[i].irqfd = fd;
        if (push_routes(vm) < 0) {
            vm->msi[i].used = false;
            close(fd);
            vm->msi[i].irqfd = -1;
            break;
        }
        struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = KVM_IRQCHIP_GSIS + (uint32_t)i };
        if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
            log_error("KVM_IRQFD: %s", strerror(errno));
            vm->msi[i].used = false;
            close(fd);
            vm->msi[i].irqfd = -1;
            push_routes(vm);
            break;
        }
        route = i;
        break;
    }
    pthread_mutex_unlock(&vm->route_lock);
    return route;
}

void vm_msi_free(struct vm *vm, int route)
{
    if (route < 0 || route >= KVM_MAX_MSI_ROUTES)
        return;
    pthread_mutex_lock(&vm->route_lock);
    if (vm->msi[route].used) {
        struct kvm_irqfd irqfd = { .fd = (uint32_t)vm->msi[route].irqfd,
                                   .gsi = KVM_IRQCHIP_GSIS + (uint32_t)route,
                                   .flags = KVM_IRQFD_FLAG_DEASSIGN };
        ioctl(vm->vm_fd, KVM_IRQFD, &irqfd);
        close(vm->msi[route].irqfd);
        vm->msi[route].irqfd = -1;
        vm->msi[route].used = false;
        push_routes(vm);
    }
    pthread_mutex_unlock(&vm->route_lock);
}

int vm_msi_set(struct vm *vm, int route, uint64_t addr, uint32_t data)
{
    if (route < 0 || route >= KVM_MAX_MSI_ROUTES)
        return -1;
    pthread_mutex_lock(&vm->route_lock);
    int rc = -1;
    if (vm->msi[route].used) {
        vm->msi[route].addr = addr;
        vm->msi[route].data = data;
        rc = push_routes(vm);
    }
    pthread_mutex_unlock(&vm->route_lock);
    return rc;
}

void vm_msi_fire(struct vm *vm, int route)
{
    if (route < 0 || route >= KVM_MAX_MSI_ROUTES)
        return;
    int fd = vm->msi[route].irqfd;
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("irqfd write: %s", strerror(errno));
}

int vm_ioeventfd(struct vm *vm, bool pio, uint64_t addr, unsigned len, int fd, bool assign)
{
    struct kvm_ioeventfd e = {
        .addr = addr,
        .len = len,
        .fd = fd,
        .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &e);
}

void vm_destroy(struct vm *vm)
{
    for (int i = 0; i < KVM_MAX_MSI_ROUTES; i++)
        if (vm->msi[i].irqfd >= 0)
            close(vm->msi[i].irqfd);
    if (vm->vcpus) {
        for (int i = 0; i < vm->ncpus; i++) {
            if (vm->vcpus[i].run)
                munmap(vm->vcpus[i].run, (size_t)vm->run_size);
            if (vm->vcpus[i].fd > 0)
                close(vm->vcpus[i].fd);
            free(vm->vcpus[i].initial);
        }
        free(vm->vcpus);
    }
    free(vm->cpuid);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    pthread_mutex_destroy(&vm->route_lock);
    memset(vm, 0, sizeof(*vm));
    vm->vm_fd = vm->kvm_fd = -1;
}
