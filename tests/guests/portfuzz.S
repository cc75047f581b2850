/* A boot sector that writes pseudo-random bytes, words and dwords to every
 * I/O port, reading each back too, as a misbehaving guest might.  Ports
 * whose documented effect ends or restarts the machine are left out (the
 * keyboard controller's reset, port 0x92, the reset control register
 * 0xcf9, the ACPI PM block, the debug-exit port).  The VM must live
 * through it: at the end the guest says so on COM1 and exits through 0xf4. */
#include "boot16.h"
#include "uart_wait.h"

#define DEBUG_EXIT  0xf4
#define ROUNDS      2

    boot16_start
    movl $0x1badb002, %ebx        /* LFSR state */
    movw $ROUNDS, %bp
round:
    xorw %dx, %dx                 /* port */
next_port:
    call skip_port
    jc 2f
    call rand
    outb %al, %dx
    inb %dx, %al
    call rand
    outw %ax, %dx
    inw %dx, %ax
    call rand
    outl %eax, %dx
    inl %dx, %eax
2:  incw %dx
    jnz next_port
    decw %bp
    jnz round

    /* COM1 may have been reprogrammed: 8N1 without DLAB, no loopback;
     * then the verdict, each byte when THR is empty, and the last one
     * off the wire before the VM ends. */
    movw $COM1 + 3, %dx
    movb $0x03, %al
    outb %al, %dx
    movw $COM1 + 4, %dx          /* MCR: DTR, RTS */
    outb %al, %dx
    movw $msg, %si
3:  lodsb
    testb %al, %al
    jz 4f
    movb %al, %ah
    movw $COM1_LSR, %dx
6:  inb %dx, %al
    testb $LSR_THRE, %al
    jz 6b
    movb %ah, %al
    movw $COM1, %dx
    outb %al, %dx
    jmp 3b
4:  uart_wait_temt
    movw $DEBUG_EXIT, %dx
    movb $0x21, %al
    outb %al, %dx
5:  hlt
    jmp 5b

/* Carry set for ports that must not be touched. */
skip_port:
    cmpw $0x60, %dx
    jb 1f
    cmpw $0x64, %dx
    jbe 9f
1:  cmpw $0x92, %dx
    je 9f
    cmpw $DEBUG_EXIT, %dx
    je 9f
    cmpw $0xcf9, %dx
    je 9f
    cmpw $0x600, %dx
    jb 8f
    cmpw $0x62f, %dx
    jbe 9f
8:  clc
    ret
9:  stc
    ret

/* 32-bit Galois LFSR in EBX; returns it in EAX. */
rand:
    shrl $1, %ebx
    jnc 1f
    xorl $0x80200003, %ebx
1:  movl %ebx, %eax
    ret

msg:
    .asciz "portfuzz: survived\r\n"
