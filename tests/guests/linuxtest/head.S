/* linuxtest, protected-mode part: entry points at the offsets the boot
 * protocol fixes, relative to the load address 0x100000:
 *   +0x000  startup_32: 32-bit protocol (flat segments, paging off)
 *   +0x200  startup_64: 64-bit protocol (long mode, identity paging)
 * Both end in linuxtest_main(boot_params) on the kernel's own stack. */

#define MSR_EFER  0xc0000080
#define EFER_LME  0x100
#define CR0_PE    0x1
#define CR0_PG    0x80000000
#define CR4_PAE   0x20
#define PTE_P_W   0x03
#define PDE_2M    0x83          /* present, writable, 2 MiB page */

    .section .head32, "ax"
    .code32
    .globl startup_32
startup_32:
    cli
    cld
    movl    $1, linuxtest_entry_32

    /* Identity-map the first 4 GiB with 2 MiB pages: one PML4 entry, four
     * PDPT entries, 2048 PD entries. */
    movl    $pml4, %edi
    xorl    %eax, %eax
    movl    $(2 * 1024), %ecx           /* PML4 and PDPT, as dwords */
    rep stosl
    movl    $(pdpt + PTE_P_W), pml4
    movl    $(pd + 0x0000 + PTE_P_W), pdpt + 0
    movl    $(pd + 0x1000 + PTE_P_W), pdpt + 8
    movl    $(pd + 0x2000 + PTE_P_W), pdpt + 16
    movl    $(pd + 0x3000 + PTE_P_W), pdpt + 24
    movl    $pd, %edi
    movl    $PDE_2M, %eax
    movl    $2048, %ecx
1:  movl    %eax, (%edi)
    movl    $0, 4(%edi)
    addl    $0x200000, %eax
    addl    $8, %edi
    loop    1b

    movl    %cr4, %eax
    orl     $CR4_PAE, %eax
    movl    %eax, %cr4
    movl    $pml4, %eax
    movl    %eax, %cr3
    movl    $MSR_EFER, %ecx
    rdmsr
    orl     $EFER_LME, %eax
    wrmsr
    lgdt    gdt64_desc
    movl    %cr0, %eax
    orl     $(CR0_PE | CR0_PG), %eax
    movl    %eax, %cr0
    ljmp    $0x10, $from_32

    .code64
from_32:
    movl    %esi, %esi                  /* upper halves are undefined after the switch */
    jmp     startup_64

    .section .head64, "ax"
    .code64
    .globl startup_64
startup_64:
    cli
    cld
    /* Our own GDT (the loader's may be anywhere); same selectors, so CS
     * stays valid without a reload. */
    lgdt    gdt64_desc(%rip)
    movl    $0x18, %eax
    movl    %eax, %ds
    movl    %eax, %es
    movl    %eax, %ss
    movl    %eax, %fs
    movl    %eax, %gs
    leaq    stack_top(%rip), %rsp
    movq    %rsi, %rdi
    call    linuxtest_main
2:  cli
    hlt
    jmp     2b

    .section .rodata
    .balign 8
gdt64:
    .quad   0
    .quad   0
    .quad   0x00af9b000000ffff          /* 0x10: 64-bit code */
    .quad   0x00cf93000000ffff          /* 0x18: flat data */
gdt64_end:
    .balign 8
gdt64_desc:                             /* read as 6 bytes in 32-bit mode, 10 in 64-bit */
    .word   gdt64_end - gdt64 - 1
    .quad   gdt64

    .section .data
    .balign 4
    .globl linuxtest_entry_32
linuxtest_entry_32:                     /* 1 when entered through startup_32 */
    .long   0

    .section .bss
    .balign 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4 * 4096
stack:  .skip 16384
stack_top:

    .section .note.GNU-stack, "", @progbits
