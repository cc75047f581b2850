/* fbpattern: a boot sector that fills a 1024x768, 8-bit VBE screen (Bochs
 * DISPI, banked through the 0xa0000 window) with a pattern in which every
 * pixel differs from its neighbours: pixel (x, y) has colour index
 * (x + 4y) mod 256, and the palette gives each index its own colour
 * (R = i mod 64, G = i / 4 on the 6-bit DAC).  A viewer that shows the
 * screen scaled or blurred by one pixel shows other colours.  Then it
 * reports "pattern drawn" on COM1 and halts with the picture on screen.
 *
 * Built with FB_ANIMATE (fbanim.img, tests/guests/fbanim.S) it then turns
 * the palette forever, one step at a time: every pixel of the screen
 * changes at each step while the guest itself does little (the DAC's port
 * writes), and writes a '.' to the debug console port (0x402, burrow-vm's
 * --firmware-log) after each step, so that the steps a second can be set
 * beside a viewer's frame rate. */
#define COM1        0x3f8
#define COM1_LSR    (COM1 + 5)
#define LSR_THRE    0x20
#define DISPI_INDEX 0x1ce
#define DISPI_DATA  0x1cf
#define DEBUGCON    0x402
#define DAC_WRITE   0x3c8
#define DAC_DATA    0x3c9
#define WIDTH       1024
#define HEIGHT      768
#define BANKS       (WIDTH * HEIGHT / 0x10000)

#include "boot16.h"

.macro dispi index, value
    movw $\index, %ax
    movw $DISPI_INDEX, %dx
    outw %ax, %dx
    movw \value, %ax
    movw $DISPI_DATA, %dx
    outw %ax, %dx
.endm

    boot16_start
    sti
    /* Mode 13h first, through the VGA BIOS: the 0xa0000 window and the
     * attribute controller's palette on, as a VBE BIOS leaves them. */
    movw $0x0013, %ax
    int $0x10
    dispi 4, $0                 /* ENABLE: off while the mode changes */
    dispi 1, $WIDTH             /* XRES */
    dispi 2, $HEIGHT            /* YRES */
    dispi 3, $8                 /* BPP */
    dispi 4, $1                 /* ENABLE, banked (no LFB) */

    xorb %bl, %bl
    call set_palette

    /* 64 rows of 1024 pixels per 64 KiB bank; four pixels a store. */
    movw $0xa000, %ax
    movw %ax, %es
    xorw %bp, %bp               /* bank */
    xorw %si, %si               /* y */
1:  dispi 5, %bp                /* BANK */
    xorw %di, %di
    movw $WIDTH * HEIGHT / BANKS / WIDTH, %bx
2:  movw %si, %ax
    shlw $2, %ax
    movb %al, %dl               /* index of the row's first pixel: 4y */
    movw $WIDTH / 4, %cx
3:  movzbl %dl, %eax
    imull $0x01010101, %eax, %eax
    addl $0x03020100, %eax      /* four indices: 4k .. 4k+3, no carry */
    stosl
    addb $4, %dl
    loop 3b
    incw %si
    decw %bx
    jnz 2b
    incw %bp
    cmpw $BANKS, %bp
    jne 1b

    movw $msg, %si
4:  lodsb
    testb %al, %al
    jz 6f
    movb %al, %bl
    movw $COM1_LSR, %dx
5:  inb %dx, %al
    testb $LSR_THRE, %al
    jz 5b
    movb %bl, %al
    movw $COM1, %dx
    outb %al, %dx
    jmp 4b
6:
#ifdef FB_ANIMATE
    xorb %bl, %bl
7:  incb %bl
    call set_palette
    movw $DEBUGCON, %dx         /* one '.' a step: the guest's own pace */
    movb $'.', %al
    outb %al, %dx
    jmp 7b
#else
7:  hlt
    jmp 7b
#endif

/* DAC entries 0-255: entry i gets the colour of index i + BL, so each
 * step moves every pixel to the next colour. */
set_palette:
    movw $DAC_WRITE, %dx
    xorb %al, %al
    outb %al, %dx
    incw %dx
    xorw %cx, %cx
8:  movb %cl, %al
    addb %bl, %al
    movb %al, %ah
    andb $63, %al
    outb %al, %dx               /* R: i mod 64 */
    movb %ah, %al
    shrb $2, %al
    outb %al, %dx               /* G: i / 4 */
    movb %ah, %al
    notb %al
    andb $63, %al
    outb %al, %dx               /* B */
    incw %cx
    cmpw $256, %cx
    jne 8b
    ret

msg:
    .asciz "pattern drawn\r\n"
