/* For the 16-bit guests that print and then end the VM: what they must wait
 * for so that nothing they printed is lost, on real hardware as under any
 * VMM.  Assumes DS = 0.
 *
 * - A 16550 sends from its transmit FIFO after the write to THR has
 *   returned; the last bytes are on the wire only once LSR.TEMT is set.
 * - SeaBIOS's serial console (INT 10h with no display) holds back the last
 *   character and the cursor moves after it, and sends them from its timer
 *   interrupt (IRQ 0, 18.2 Hz), which also counts the BIOS tick at
 *   0040:006Ch. */
#ifndef GUEST_UART_WAIT_H
#define GUEST_UART_WAIT_H

#define COM1            0x3f8
#define COM1_LSR        (COM1 + 5)
#define LSR_THRE        0x20
#define LSR_TEMT        0x40
#define BDA_TIMER_TICKS 0x46c

/* Waits until COM1's transmitter is empty.  A port with no UART reads 0xff
 * (TEMT set); the count only bounds a UART that never finishes.
 * Clobbers AL, ECX, DX. */
.macro uart_wait_temt
    movw    $COM1_LSR, %dx
    movl    $0x1000000, %ecx
.Ltemt\@:
    inb     %dx, %al
    testb   $LSR_TEMT, %al
    jnz     .Ltemt_done\@
    decl    %ecx
    jnz     .Ltemt\@
.Ltemt_done\@:
.endm

/* Waits for the next BIOS timer tick: when the count has moved, the tick's
 * handler (and SeaBIOS's console flush in it) has run to the end.  Enables
 * interrupts.  Clobbers EAX. */
.macro bios_wait_tick
    movl    BDA_TIMER_TICKS, %eax
.Ltick\@:
    sti
    hlt
    cmpl    BDA_TIMER_TICKS, %eax
    je      .Ltick\@
.endm

/* Emits uart_puts: writes the NUL-terminated string at DS:SI straight to
 * COM1 (not through the BIOS, whose serial console may hold output back),
 * polling THRE before each byte.  Clobbers AX, DX, SI. */
.macro uart_puts_routine
uart_puts:
    lodsb
    testb   %al, %al
    jz      .Lputs_done\@
    movw    $COM1_LSR, %dx
    movb    %al, %ah
.Lputs_thre\@:
    inb     %dx, %al
    testb   $LSR_THRE, %al
    jz      .Lputs_thre\@
    movb    %ah, %al
    movw    $COM1, %dx
    outb    %al, %dx
    jmp     uart_puts
.Lputs_done\@:
    ret
.endm

#endif
