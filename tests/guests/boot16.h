/* The start every 16-bit boot-sector guest shares: loaded at 0000:7C00
 * (some BIOSes enter at 07C0:0000, hence the far jump), interrupts off
 * until it has a stack, DS = ES = SS = 0, the stack below the sector,
 * string operations upwards.  A guest that takes interrupts enables them
 * itself. */
#ifndef GUEST_BOOT16_H
#define GUEST_BOOT16_H

.macro boot16_start
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
    ljmp $0, $.Lboot16_cs\@
.Lboot16_cs\@:
    cld
.endm

#endif
