/* A boot sector for the display tests: sets VGA mode 13h through the VGA
 * BIOS (INT 10h AX=0013h), programs DAC entries 10h-17h with known colours,
 * draws eight horizontal bands of 25 lines each in those colours, reports
 * "bands drawn" on COM1 (directly, polling the line status register, so the
 * screen keeps only the bands) and halts with the picture on screen. */
#define COM1      0x3f8
#define COM1_LSR  (COM1 + 5)
#define LSR_THRE  0x20
#define DAC_WRITE 0x3c8
#define DAC_DATA  0x3c9
#define FIRST     0x10          /* palette index of band 0 */

#include "boot16.h"
    boot16_start
    sti

    movw $0x0013, %ax           /* set mode 13h: 320x200, 256 colours */
    int $0x10

    /* DAC entries FIRST.. from the table: 6-bit R, G, B */
    movw $DAC_WRITE, %dx
    movb $FIRST, %al
    outb %al, %dx
    movw $DAC_DATA, %dx
    movw $colours, %si
    movw $8 * 3, %cx
1:  lodsb
    outb %al, %dx
    loop 1b

    /* eight bands of 25 lines x 320 pixels at A000:0000 */
    movw $0xa000, %ax
    movw %ax, %es
    xorw %di, %di
    movl $FIRST * 0x01010101, %eax
2:  movw $320 * 25 / 4, %cx
    rep stosl
    addl $0x01010101, %eax
    cmpb $FIRST + 8, %al
    jne 2b

    movw $msg, %si
3:  lodsb
    testb %al, %al
    jz 5f
    movb %al, %bl
    movw $COM1_LSR, %dx
4:  inb %dx, %al
    testb $LSR_THRE, %al
    jz 4b
    movb %bl, %al
    movw $COM1, %dx
    outb %al, %dx
    jmp 3b
5:  hlt
    jmp 5b

colours:
    .byte 63, 0, 0              /* red */
    .byte 0, 63, 0              /* green */
    .byte 0, 0, 63              /* blue */
    .byte 63, 63, 0             /* yellow */
    .byte 0, 63, 63             /* cyan */
    .byte 63, 0, 63             /* magenta */
    .byte 63, 63, 63            /* white */
    .byte 32, 32, 32            /* grey */
msg:
    .asciz "bands drawn\r\n"
