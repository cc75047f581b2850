/* The demo VM's boot sector: greets, echoes what is typed (through the BIOS
 * keyboard and video services, which SeaBIOS puts on the serial console when
 * there is no display), and powers the machine off through ACPI on 'q' or
 * when the ACPI power button is pressed (so `burrow stop` works as with an
 * OS).  Interrupts stay on, so SeaBIOS's keyboard handler sees
 * Ctrl+Alt+Del and reboots. */
#include "boot16.h"
#include "uart_wait.h"

/* ACPI PM1a status and control blocks, the power button's status bit and
 * the S5 sleep type (devices/acpi_pm.h). */
#define PM1A_STS   0x600
#define PM1A_CNT   0x604
#define PWRBTN_STS 0x0100
#define S5_SLP_TYP 5

    boot16_start
    sti
    movw $banner, %si
    call puts
1:  movb $1, %ah             /* INT 16h AH=1: is a key waiting? */
    int $0x16
    jnz 5f
    movw $PM1A_STS, %dx      /* the power button, polled as no SCI is wanted */
    inw %dx, %ax
    testw $PWRBTN_STS, %ax
    jnz 6f
    hlt                      /* until the next interrupt: the timer's at least */
    jmp 1b
6:  movw $PWRBTN_STS, %ax    /* write-one-to-clear */
    outw %ax, %dx
    jmp poweroff
5:  xorb %ah, %ah            /* INT 16h AH=0: take the key */
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
