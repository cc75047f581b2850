/* A boot sector that waits for the ACPI power button and then powers the
 * machine off through S5, as an ACPI-aware OS would: it enables PWRBTN_EN,
 * polls PM1_STS, acknowledges PWRBTN_STS and writes SLP_TYP|SLP_EN.
 * The PM block is where the FADT puts it (devices/acpi_pm.h). */
#define PM1_STS     0x600
#define PM1_EN      0x602
#define PM1_CNT     0x604
#define PWRBTN      0x0100
#define S5_SLP_TYP  5
#define SLP_EN      0x2000
#include "boot16.h"
#include "uart_wait.h"

    boot16_start
    movw $PM1_EN, %dx
    movw $PWRBTN, %ax
    outw %ax, %dx
    movw $waiting, %si
    call uart_puts
1:  movw $PM1_STS, %dx
    inw %dx, %ax
    testw $PWRBTN, %ax
    jz 1b
    movw $PWRBTN, %ax        /* write-one-to-clear */
    outw %ax, %dx
    movw $pressed, %si
    call uart_puts
    uart_wait_temt           /* the line leaves before the power goes */
    movw $PM1_CNT, %dx
    movw $(S5_SLP_TYP << 10) | SLP_EN, %ax
    outw %ax, %dx
2:  hlt
    jmp 2b

    uart_puts_routine

waiting:
    .asciz "powerbtn: waiting for the power button\r\n"
pressed:
    .asciz "powerbtn: pressed, entering S5\r\n"
