/* A boot sector that floods COM1 and ends the VM at once, for the test that
 * nothing a guest wrote to the UART is lost when the VM ends
 * (tests/kvm/test_serial_flush.sh).
 *
 * With interrupts off (so the firmware's own console output cannot land in
 * the middle), it writes "serialburst: begin\r\n", then BURST_BYTES of a
 * pattern (with rep outsb), then "serialburst: end\r\n", straight to THR
 * without ever reading LSR, and at once writes 0x21 to the debug-exit port;
 * with no debug-exit device there it powers off through ACPI S5.  On a real
 * 16550 most of the burst would be lost to the full FIFO: this is a test of
 * the VMM, whose transmitter takes every byte when it is written.
 *
 * Byte j of the pattern is '\n' when j % 64 == 63, else
 * 'A' + ((j / 64 + j % 64) % 32): lines of 63 characters, each shifted by
 * one from the last, so a lost or repeated stretch shows.
 *
 * Built with SERIAL_STREAM (serialstream.img), it writes the pattern
 * forever instead, for a 'quit' on the control socket while it writes. */
#include "boot16.h"
#include "uart_wait.h"

#define DEBUG_EXIT  0xf4
#define PM1_CNT     0x604       /* ACPI PM1a control block (devices/acpi_pm.h) */
#define S5_SLP_TYP  5
#define SLP_EN      0x2000
#define BURST_BYTES (16 * 1024) /* more than a one-page pipe holds, less than
                                 * that and burrow-vm's output buffer (64 KiB) */
#define PERIOD      (64 * 32)   /* the pattern repeats after 32 lines */
#define PERIOD_BUF  0x1000

    boot16_start
    movw    $COM1, %dx
    movw    $msg_begin, %si
    call    puts

    /* One period of the pattern at PERIOD_BUF, then written out with
     * string I/O (one exit for many bytes, each going to THR in turn). */
    movw    $PERIOD_BUF, %di
    xorw    %cx, %cx            /* j */
1:  movw    %cx, %ax
    andw    $63, %ax
    cmpb    $63, %al
    je      2f
    movw    %cx, %bx
    shrw    $6, %bx
    addw    %bx, %ax
    andb    $31, %al
    addb    $'A', %al
    jmp     3f
2:  movb    $'\n', %al
3:  movb    %al, (%di)
    incw    %di
    incw    %cx
    cmpw    $PERIOD, %cx
    jne     1b

    movw    $BURST_BYTES / PERIOD, %bp
burst:
    movw    $PERIOD_BUF, %si
    movw    $PERIOD, %cx
    rep outsb
#ifdef SERIAL_STREAM
    jmp     burst
#else
    decw    %bp
    jnz     burst

    movw    $msg_end, %si
    call    puts
    movb    $0x21, %al
    outb    %al, $DEBUG_EXIT
    movw    $PM1_CNT, %dx
    movw    $(S5_SLP_TYP << 10) | SLP_EN, %ax
    outw    %ax, %dx
#endif
4:  hlt
    jmp     4b

/* Writes the NUL-terminated string at DS:SI to the port in DX. */
puts:
    lodsb
    testb   %al, %al
    jz      5f
    outb    %al, %dx
    jmp     puts
5:  ret

msg_begin:  .asciz "serialburst: begin\r\n"
msg_end:    .asciz "serialburst: end\r\n"

    .section .note.GNU-stack, "", @progbits
