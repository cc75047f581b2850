/* The KVM virtual machine: memory slots, in-kernel irqchip and PIT, vCPUs,
 * GSI routing with irqfd-backed MSI routes, ioeventfds. */
#ifndef BURROW_KVM_H
#define BURROW_KVM_H

#include <stdint.h>
#include <stdbool.h>
#include <pthread.h>
#include <linux/kvm.h>

#define KVM_MAX_MSI_ROUTES 256
#define KVM_IRQCHIP_GSIS   24

struct kvm_vcpu_state;   /* saved power-on state, for reset */

struct vcpu {
    struct vm *vm;
    int index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    struct kvm_vcpu_state *initial;
};

struct vm {
    int kvm_fd;
    int vm_fd;
    int run_size;
    bool has_readonly_mem;
    unsigned nslots;
    struct vcpu *vcpus;
    int ncpus;
    struct kvm_cpuid2 *cpuid;
    /* kvm-clock's value while the VM is paused. */
    bool clock_held;
    uint64_t clock_ns;

    /* GSI routing: the irqchip pins, then MSI routes at GSI 24 + i. */
    pthread_mutex_t route_lock;
    struct {
        bool used;
        uint64_t addr;
        uint32_t data;
        int irqfd;
    } msi[KVM_MAX_MSI_ROUTES];

    /* Power-on state of the irqchips and PIT, for reset. */
    struct kvm_irqchip chips[3];
    struct kvm_pit_state2 pit;
};

/* Opens /dev/kvm and creates the VM with irqchip and PIT; err gets a clear
 * message (e.g. about permissions) on failure. */
int vm_create(struct vm *vm, char *err, size_t errlen);
void vm_destroy(struct vm *vm);
/* Adds a memory slot; readonly slots turn writes into MMIO exits. */
int vm_add_memslot(struct vm *vm, uint64_t gpa, uint64_t size, void *hva, bool readonly);
/* A memory slot at a fixed slot number (>= KVM_FIXED_SLOTS_BASE) that can
 * move or go away (size 0), with optional dirty-page logging. */
#define KVM_FIXED_SLOTS_BASE 16
int vm_set_slot(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *hva, bool log_dirty);
/* Fetches and clears the slot's dirty bitmap (one bit per 4 KiB page). */
int vm_dirty_log(struct vm *vm, unsigned slot, uint64_t *bitmap);
/* Creates ncpus vCPUs with CPUID and saves their power-on state. */
int vm_create_vcpus(struct vm *vm, int ncpus, char *err, size_t errlen);
/* Restores the power-on state of every vCPU, the irqchips and the PIT. */
int vm_reset_cpus(struct vm *vm);
/* A paused VM's kvm-clock stands still: vm_clock_pause (vCPUs parked)
 * keeps its value and vm_clock_resume gives it back, so the guest sees no
 * jump in time, and tells each vCPU's guest it was stopped, for its
 * lockup and stall watchdogs. */
void vm_clock_pause(struct vm *vm);
void vm_clock_resume(struct vm *vm);

int vm_set_irq(struct vm *vm, unsigned gsi, bool level);
int vm_msi_alloc(struct vm *vm);
void vm_msi_free(struct vm *vm, int route);
int vm_msi_set(struct vm *vm, int route, uint64_t addr, uint32_t data);
void vm_msi_fire(struct vm *vm, int route);
int vm_ioeventfd(struct vm *vm, bool pio, uint64_t addr, unsigned len, int fd, bool assign);

#endif
