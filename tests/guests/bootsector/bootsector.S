/* A boot sector for the firmware tests: printed through the BIOS (INT 10h
 * teletype), reads two sectors back through INT 13h extended reads, then
 * reports its verdict on the debug-exit port.
 *
 * The image is a whole 1 MiB raw disk: sector 1 and the last sector carry
 * markers, so a firmware that reads the wrong sector, or a disk that reports
 * the wrong capacity, is caught. */

#include "../boot16.h"
#include "../uart_wait.h"

#define DEBUG_EXIT_PORT 0xf4
#define EXIT_PASS 0x21
#define EXIT_FAIL 0x22
#define LAST_LBA  2047          /* 1 MiB / 512 - 1; keep in step with bootsector.ld */
#define BUF       0x8000        /* sector buffer, above the stack and below 64 KiB */

    boot16_start
    sti
    movb    %dl, boot_drive     /* the BIOS passes the boot drive in DL */

    movw    $msg_hello, %si
    call    puts

    movl    $1, %eax
    movw    $marker_lba1, %di
    call    check_sector
    jc      fail
    movl    $LAST_LBA, %eax
    movw    $marker_last, %di
    call    check_sector
    jc      fail

    movw    $msg_disk_ok, %si
    call    puts
    movb    $EXIT_PASS, %al
    jmp     done
fail:
    movw    $msg_disk_fail, %si
    call    puts
    movb    $EXIT_FAIL, %al
done:
    /* Wait until the last line has left: SeaBIOS's serial console sends
     * its last character from the timer tick, then the UART drains. */
    movb    %al, %bl
    bios_wait_tick
    uart_wait_temt
    movb    %bl, %al
    outb    %al, $DEBUG_EXIT_PORT
    cli                         /* no debug-exit device: stop here */
2:  hlt
    jmp     2b

/* Prints the NUL-terminated string at DS:SI with INT 10h AH=0Eh. */
puts:
    lodsb
    testb   %al, %al
    jz      1f
    movb    $0x0e, %ah
    movw    $0x0007, %bx        /* page 0, light grey */
    int     $0x10
    jmp     puts
1:  ret

/* Reads LBA EAX into BUF (INT 13h AH=42h) and compares its first 16 bytes
 * with the marker at DS:DI.  CF set on a read error or a mismatch. */
check_sector:
    movl    %eax, dap_lba
    movw    $dap, %si
    movb    $0x42, %ah
    movb    boot_drive, %dl
    int     $0x13
    jc      1f
    movw    $BUF, %si
    movw    $16, %cx
    repe cmpsb
    je      1f                  /* ZF set: equal, and CF is clear */
    stc
1:  ret

boot_drive: .byte 0x80

    .balign 4
dap:                            /* disk address packet */
    .byte   0x10, 0             /* size, reserved */
    .word   1                   /* sectors */
    .word   BUF, 0              /* offset, segment */
dap_lba:
    .quad   0

msg_hello:     .asciz "Burrow boot sector: hello from the guest\r\n"
msg_disk_ok:   .asciz "Burrow boot sector: disk read ok (LBA 1 and 2047)\r\n"
msg_disk_fail: .asciz "Burrow boot sector: disk read FAIL\r\n"
marker_lba1:   .ascii "BURROW-DISK-LBA1"
marker_last:   .ascii "BURROW-DISK-LAST"

    /* The markers as they sit on the disk. */
    .section .lba1, "a"
    .ascii "BURROW-DISK-LBA1"
    .section .lbalast, "a"
    .ascii "BURROW-DISK-LAST"

    .section .note.GNU-stack, "", @progbits
