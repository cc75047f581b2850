/* The demo VM's boot sector: greets, echoes what is typed (through the BIOS
 * keyboard and video services, which SeaBIOS puts on the serial console when
 * there is no display), and powers the machine off through ACPI on 'q'. */
#include "uart_wait.h"

/* ACPI PM1a control block and the S5 sleep type (devices/acpi_pm.h). */
#define PM1A_CNT   0x604
#define S5_SLP_TYP 5

    .code16
    .section .text, "ax"
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    sti
    cld
    movw $banner, %si
    call puts
1:  xorb %ah, %ah            /* INT 16h AH=0: wait for a key */
    int $0x16
    cmpb $'q', %al
    je poweroff
    cmpb $'\r', %al
    jne 2f
    movb $'\r', %al
    call putc
    movb $'\n', %al
2:  call putc
    jmp 1b

poweroff:
    movw $bye, %si
    call puts
    /* The last line must leave before the power goes: SeaBIOS's serial
     * console sends it from its timer tick, then the UART drains. */
    bios_wait_tick
    uart_wait_temt
    /* PM1a_CNT (0x604): SLP_TYP for S5 with SLP_EN. */
    movw $PM1A_CNT, %dx
    movw $(S5_SLP_TYP << 10) | (1 << 13), %ax
    outw %ax, %dx
3:  hlt
    jmp 3b

puts:
    lodsb
    testb %al, %al
    jz 4f
    call putc
    jmp puts
4:  ret

putc:                       /* INT 10h AH=0Eh: teletype output */
    pushw %si
    movb $0x0e, %ah
    movw $0x0007, %bx
    int $0x10
    popw %si
    ret

banner:
    .ascii "\r\nBurrow demo VM: this text comes from a boot sector on a virtio disk,\r\n"
    .ascii "loaded by SeaBIOS.  Type and the guest echoes; 'q' powers it off;\r\n"
    .asciz "Ctrl-A x quits burrow-vm.\r\n> "
bye:
    .asciz "\r\nPowering off through ACPI.\r\n"
