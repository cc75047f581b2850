/* linuxtest, real-mode part: the boot sector stub, the setup header of the
 * Linux x86 boot protocol (Documentation/arch/x86/boot.rst), and a small
 * real-mode entry for loaders that start a bzImage in real mode (the 16-bit
 * boot protocol).  That entry builds boot_params the way a kernel's own
 * setup code does (header copy, E820 from INT 15h), switches to 32-bit
 * protected mode and enters at code32_start with the 32-bit protocol's
 * register state.  Loaders using the 64-bit protocol never run this code. */

#define BP            0x1000    /* boot_params, offset in the setup segment */
#define BP_E820_COUNT 0x1e8
#define BP_E820_TABLE 0x2d0
#define E820_MAX      128
#define SMAP          0x534d4150

    .code16
    .section .setup.bootsect, "ax"
    .globl _setup_start
_setup_start:
    /* Reached only if someone boots the image as a disk. */
    cli
1:  hlt
    jmp     1b

    .section .setup.header, "ax"
    .globl hdr
hdr:                                    /* offset 0x1f1 */
setup_sects:        .byte   _setup_sects
root_flags:         .word   0
syssize:            .long   _syssize
ram_size:           .word   0
vid_mode:           .word   0xffff      /* NORMAL_VGA */
root_dev:           .word   0
boot_flag:          .word   0xaa55
                                        /* offset 0x200 */
jump:               .byte   0xeb, start_of_setup - header
header:             .ascii  "HdrS"
version:            .word   0x020f
realmode_swtch:     .long   0
start_sys_seg:      .word   0x1000
kernel_version:     .word   kernel_version_str - 0x200
type_of_loader:     .byte   0
loadflags:          .byte   0x01        /* LOADED_HIGH */
setup_move_size:    .word   0x8000
code32_start:       .long   0x100000
ramdisk_image:      .long   0
ramdisk_size:       .long   0
bootsect_kludge:    .long   0
heap_end_ptr:       .word   0
ext_loader_ver:     .byte   0
ext_loader_type:    .byte   0
cmd_line_ptr:       .long   0
initrd_addr_max:    .long   0x7fffffff
kernel_alignment:   .long   0x200000
relocatable_kernel: .byte   0
min_alignment:      .byte   0
xloadflags:         .word   0x0001      /* XLF_KERNEL_64 */
cmdline_size:       .long   2047
hardware_subarch:   .long   0
hardware_subarch_data: .quad 0
payload_offset:     .long   0
payload_length:     .long   0
setup_data:         .quad   0
pref_address:       .quad   0x100000
init_size:          .long   _init_size
handover_offset:    .long   0
kernel_info_offset: .long   0
    .globl hdr_end
hdr_end:                                /* 0x202 + byte at 0x201 */

start_of_setup:
    /* The protocol enters at CS = DS + 0x20, IP 0, with DS = ES = SS =
     * the setup segment and a usable stack. */
    cli
    cld
    movw    %ds, %ax
    movw    %ax, %es

    /* boot_params: zeroed, then the setup header as the loader left it. */
    movw    $BP, %di
    xorw    %ax, %ax
    movw    $2048, %cx
    rep stosw
    movw    $0x1f1, %si
    movw    $BP + 0x1f1, %di
    movzbw  0x201, %cx
    addw    $0x202 - 0x1f1, %cx
    rep movsb

    /* The memory map, from INT 15h AX=E820h. */
    xorl    %ebx, %ebx
    movw    $BP + BP_E820_TABLE, %di
    xorw    %bp, %bp
1:  movl    $0xe820, %eax
    movl    $20, %ecx
    movl    $SMAP, %edx
    int     $0x15
    jc      2f
    cmpl    $SMAP, %eax
    jne     2f
    addw    $20, %di
    incw    %bp
    cmpw    $E820_MAX, %bp
    jae     2f
    testl   %ebx, %ebx
    jnz     1b
2:  movw    %bp, %ax
    movb    %al, BP + BP_E820_COUNT

    /* A20 on (fast A20 gate), or everything above 1 MiB aliases. */
    inb     $0x92, %al
    orb     $0x02, %al
    andb    $0xfe, %al
    outb    %al, $0x92

    /* Linear addresses of what the switch needs, from our segment base. */
    xorl    %eax, %eax
    movw    %ds, %ax
    shll    $4, %eax
    leal    gdt(%eax), %edx
    movl    %edx, gdt_desc + 2
    leal    pm32(%eax), %edx
    movl    %edx, pm32_ptr
    leal    BP(%eax), %esi

    lgdtl   gdt_desc
    movl    %cr0, %eax
    orl     $1, %eax                    /* PE */
    movl    %eax, %cr0
    ljmpl   *pm32_ptr

    .code32
pm32:
    /* The 32-bit protocol's state: flat CS 0x10, DS = ES = SS 0x18,
     * ESI = boot_params, EBP = EDI = EBX = 0. */
    movl    $0x18, %eax
    movl    %eax, %ds
    movl    %eax, %es
    movl    %eax, %ss
    movl    %eax, %fs
    movl    %eax, %gs
    xorl    %ebp, %ebp
    xorl    %edi, %edi
    xorl    %ebx, %ebx
    jmp     *0x214(%esi)                /* code32_start */

    /* No alignment directive here: it would raise the alignment of the
     * whole section and move the header off 0x1f1. */
gdt:
    .quad   0
    .quad   0
    .quad   0x00cf9b000000ffff          /* 0x10: flat 32-bit code */
    .quad   0x00cf93000000ffff          /* 0x18: flat data */
gdt_end:
gdt_desc:
    .word   gdt_end - gdt - 1
    .long   0                           /* filled in: linear address */
pm32_ptr:
    .long   0                           /* filled in: linear address of pm32 */
    .word   0x10

kernel_version_str:
    .asciz  "linuxtest (Burrow boot protocol test kernel)"

    .section .note.GNU-stack, "", @progbits
