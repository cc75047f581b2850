/* A PXE network boot program (NBP): the PXE firmware (iPXE) fetches it by
 * TFTP as the DHCP boot file, loads it at 0000:7C00 and jumps to it in real
 * mode.  It says hello on COM1 and ends the test through the debug-exit
 * port (0xf4) with pass byte 0x21. */
#include "../boot16.h"
#include "../uart_wait.h"

#define DEBUG_EXIT 0xf4

    boot16_start
    /* The PXE API entry (!PXE at ES:BX on entry) is not needed: the
     * program only proves it was fetched and run. */
    movw $hello, %si
    call puts
    uart_wait_temt              /* the line leaves before the VM ends */
    movb $0x21, %al
    outb %al, $DEBUG_EXIT
1:  hlt
    jmp 1b

/* Straight to the UART, polling LSR.THRE. */
puts:
    lodsb
    testb %al, %al
    jz 3f
    movb %al, %ah
    movw $COM1_LSR, %dx
2:  inb %dx, %al
    testb $LSR_THRE, %al
    jz 2b
    movw $COM1, %dx
    movb %ah, %al
    outb %al, %dx
    jmp puts
3:  ret

    .section .rodata
hello:
    .asciz "Burrow PXE boot program: hello from the network\r\n"
