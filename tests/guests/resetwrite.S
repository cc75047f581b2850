/* A boot sector that resets the machine through the reset control register
 * (0xcf9, as SeaBIOS and Linux do) and checks that no instruction after the
 * write ran: on its first boot it marks CMOS (which a reset keeps), writes
 * the register, and prints "!..." if it is still running; on the second
 * boot it prints "rebooted", clears the mark and powers off through S5. */
#include "boot16.h"
#include "uart_wait.h"

#define CMOS_INDEX  0x70
#define CMOS_DATA   0x71
#define MARK_REG    0x7e            /* NVRAM that the firmware leaves alone */
#define MARK        0xa5
#define RST_CNT     0xcf9
#define PM1_CNT     0x604
#define S5_SLP_TYP  5
#define SLP_EN      0x2000

    boot16_start
    movb $MARK_REG, %al
    outb %al, $CMOS_INDEX
    inb $CMOS_DATA, %al
    cmpb $MARK, %al
    je second

    movb $MARK_REG, %al
    outb %al, $CMOS_INDEX
    movb $MARK, %al
    outb %al, $CMOS_DATA
    movw $writing, %si
    call uart_puts
    uart_wait_temt
    movw $RST_CNT, %dx
    movb $0x06, %al             /* full reset, system reset */
    outb %al, %dx
    movw $ranon, %si            /* a CPU that resets never gets here */
    call uart_puts
1:  hlt
    jmp 1b

second:
    movb $MARK_REG, %al
    outb %al, $CMOS_INDEX
    xorb %al, %al
    outb %al, $CMOS_DATA
    movw $rebooted, %si
    call uart_puts
    uart_wait_temt
    movw $PM1_CNT, %dx
    movw $(S5_SLP_TYP << 10) | SLP_EN, %ax
    outw %ax, %dx
2:  hlt
    jmp 2b

    uart_puts_routine

writing:
    .asciz "resetwrite: writing the reset register\r\n"
ranon:
    .asciz "!resetwrite: ran on after the reset write\r\n"
rebooted:
    .asciz "resetwrite: rebooted\r\n"
