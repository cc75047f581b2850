/* vCPU threads: KVM_RUN, exit dispatch to the device buses, parking for
 * pause/reset/stop, and a clear report when KVM cannot run guest code. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "devices/util.h"
#include "vmm/machine.h"

#define SIG_KICK SIGUSR1

static void kick_handler(int sig) { (void)sig; }

static void wake_io_thread(struct machine *m)
{
    uint64_t one = 1;
    if (write(m->request_fd, &one, sizeof(one)) < 0) {
        /* counter saturated: the I/O thread is already being woken */
    }
}

static void handle_io(struct machine *m, struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            io_bus_write(&m->pio, run->io.port, size, ld_le(data, size));
        } else {
            uint64_t v;
            io_bus_read(&m->pio, run->io.port, size, &v);
            st_le(data, size, v);
        }
    }
    pthread_mutex_unlock(&m->lock);
}

static void handle_mmio(struct machine *m, struct kvm_run *run)
{
    unsigned len = run->mmio.len;
    if (len == 0 || len > 8)
        return;
    pthread_mutex_lock(&m->lock);
    if (run->mmio.is_write) {
        io_bus_write(&m->mmio, run->mmio.phys_addr, len, ld_le(run->mmio.data, len));
    } else {
        uint64_t v;
        io_bus_read(&m->mmio, run->mmio.phys_addr, len, &v);
        st_le(run->mmio.data, len, v);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Linear address of the instruction pointer, translated to guest physical. */
static void report_instruction(struct machine *m, struct vcpu *v)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return;
    const char *mode = !(sregs.cr0 & 1) ? "real" : (sregs.efer & 0x400) ? "long" : "protected";
    log_error("vCPU %d: %s mode, CS=%04x base=%#llx RIP=%#llx RSP=%#llx RFLAGS=%#llx CR0=%#llx CR3=%#llx CR4=%#llx",
              v->index, mode, sregs.cs.selector, (unsigned long long)sregs.cs.base,
              (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
              (unsigned long long)regs.rflags, (unsigned long long)sregs.cr0,
              (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4);
    log_error("vCPU %d: RAX=%#llx RBX=%#llx RCX=%#llx RDX=%#llx RSI=%#llx RDI=%#llx", v->index,
              (unsigned long long)regs.rax, (unsigned long long)regs.rbx,
              (unsigned long long)regs.rcx, (unsigned long long)regs.rdx,
              (unsigned long long)regs.rsi, (unsigned long long)regs.rdi);
    uint64_t linear = sregs.cs.base + regs.rip;
    struct kvm_translation tr = { .linear_address = linear };
    uint64_t gpa = linear;
    if ((sregs.cr0 & 0x80000000u) && ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid)
        gpa = tr.physical_address;
    uint8_t bytes[16];
    if (guest_mem_read(&m->mem, gpa, bytes, sizeof(bytes)) == 0) {
        char hex[16 * 3 + 1];
        for (int i = 0; i < 16; i++)
            snprintf(hex + 3 * i, 4, "%02x ", bytes[i]);
        log_error("vCPU %d: code at %#llx: %s", v->index, (unsigned long long)gpa, hex);
    }
}

static void guest_error(struct machine *m, struct vcpu *v, const char *what)
{
    log_error("vCPU %d stopped: %s", v->index, what);
    report_instruction(m, v);
    atomic_store(&m->pending_error, 1);
    wake_io_thread(m);
}

/* A device asked for a reset or power-off (the reset control register, the
 * keyboard controller's reset line, ACPI S5): like a real CPU, the vCPU runs
 * no further instruction.  Guest code after such a write is often padding
 * or a debug trap, never meant to run. */
static bool machine_ending(struct machine *m)
{
    return atomic_load(&m->pending_reset) || atomic_load(&m->pending_poweroff);
}

/* Returns false when the vCPU must stop running guest code until reset. */
static bool handle_exit(struct machine *m, struct vcpu *v)
{
    struct kvm_run *run = v->run;
    char what[160];
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        handle_io(m, run);
        return !machine_ending(m);
    case KVM_EXIT_MMIO:
        handle_mmio(m, run);
        return !machine_ending(m);
    case KVM_EXIT_HLT:
        return true;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* Triple fault: a PC resets. */
        log_info("vCPU %d: triple fault, resetting", v->index);
        atomic_store(&m->pending_reset, 1);
        wake_io_thread(m);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            atomic_store(&m->pending_reset, 1);
        else
            atomic_store(&m->pending_poweroff, 1);
        wake_io_thread(m);
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
            snprintf(what, sizeof(what), "KVM cannot emulate an instruction (internal error, emulation failure)");
        else
            snprintf(what, sizeof(what), "KVM internal error, suberror %u", run->internal.suberror);
        guest_error(m, v, what);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        snprintf(what, sizeof(what), "VM entry failed, hardware reason %#llx",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        guest_error(m, v, what);
        return false;
    default:
        snprintf(what, sizeof(what), "unexpected KVM exit reason %u", run->exit_reason);
        guest_error(m, v, what);
        return false;
    }
}

/* Parks while a pause/reset/stop is requested; returns false to exit. */
static bool park_if_requested(struct machine *m, struct vcpu *v, bool halted)
{
    if (!atomic_load(&m->park_request) && !halted)
        return true;
    pthread_mutex_lock(&m->lock);
    while ((atomic_load(&m->park_request) || halted) && !m->stopping) {
        m->parked++;
        pthread_cond_broadcast(&m->parked_cond);
        pthread_cond_wait(&m->park_cond, &m->lock);
        m->parked--;
        /* A reset clears the halt of a vCPU stopped on an error. */
        halted = halted && m->state == STATE_GUEST_ERROR;
    }
    bool go = !m->stopping;
    v->run->immediate_exit = 0;
    pthread_mutex_unlock(&m->lock);
    return go;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct machine *m = (struct machine *)((char *)v->vm - offsetof(struct machine, vm));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    bool halted = false;
    for (;;) {
        if (!park_if_requested(m, v, halted))
            break;
        halted = false;
        if (ioctl(v->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                v->run->immediate_exit = 0;
                continue;
            }
            char what[96];
            snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
            guest_error(m, v, what);
            halted = true;
            continue;
        }
        if (!handle_exit(m, v))
            halted = true;
    }
    return NULL;
}

static void kick_all(struct machine *m)
{
    for (int i = 0; i < m->vm.ncpus; i++) {
        struct vcpu *v = &m->vm.vcpus[i];
        v->run->immediate_exit = 1;
        if (v->thread)
            pthread_kill(v->thread, SIG_KICK);
    }
}

void vcpus_park(struct machine *m)
{
    atomic_store(&m->park_request, true);
    kick_all(m);
    while (m->parked < m->vm.ncpus)
        pthread_cond_wait(&m->parked_cond, &m->lock);
}

void vcpus_unpark(struct machine *m)
{
    atomic_store(&m->park_request, false);
    pthread_cond_broadcast(&m->park_cond);
}

int vcpus_start(struct machine *m)
{
    struct sigaction sa = { .sa_handler = kick_handler };
    sigemptyset(&sa.sa_mask);
    sigaction(SIG_KICK, &sa, NULL);
    /* vCPU threads inherit a mask without SIG_KICK and unblock it themselves,
     * so the kick never lands on the I/O thread. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < m->vm.ncpus; i++) {
        if (pthread_create(&m->vm.vcpus[i].thread, NULL, vcpu_thread, &m->vm.vcpus[i]) != 0) {
            log_error("cannot start vCPU thread %d", i);
            return -1;
        }
        char name[16];
        snprintf(name, sizeof(name), "vcpu%d", i);
        pthread_setname_np(m->vm.vcpus[i].thread, name);
    }
    return 0;
}

void vcpus_stop(struct machine *m)
{
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    atomic_store(&m->park_request, true);
    pthread_cond_broadcast(&m->park_cond);
    pthread_mutex_unlock(&m->lock);
    kick_all(m);
    for (int i = 0; i < m->vm.ncpus; i++) {
        if (m->vm.vcpus[i].thread) {
            /* Keep kicking: a vCPU may enter KVM_RUN after the first kick. */
            while (pthread_tryjoin_np(m->vm.vcpus[i].thread, NULL) == EBUSY) {
                m->vm.vcpus[i].run->immediate_exit = 1;
                pthread_kill(m->vm.vcpus[i].thread, SIG_KICK);
                usleep(1000);
            }
            m->vm.vcpus[i].thread = 0;
        }
    }
}
