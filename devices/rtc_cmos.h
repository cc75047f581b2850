/* MC146818A real-time clock with 128 bytes of CMOS RAM at ports 0x70
 * (index; bit 7 disables NMI) and 0x71 (data).  The clock follows the
 * host's UTC clock plus an offset that the guest's writes adjust.
 * Interrupts (periodic, alarm, update-ended) go to GSI 8. */
#ifndef BURROW_RTC_CMOS_H
#define BURROW_RTC_CMOS_H

#include <stdint.h>
#include <stdbool.h>

#include "devices/platform.h"

#define RTC_PORT_INDEX   0x70
#define RTC_PORT_DATA    0x71
#define RTC_IRQ_GSI      8

/* Clock registers */
#define RTC_SECONDS       0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES       0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS         0x04
#define RTC_HOURS_ALARM   0x05
#define RTC_DAY_OF_WEEK   0x06   /* 1 = Sunday */
#define RTC_DAY_OF_MONTH  0x07
#define RTC_MONTH         0x08
#define RTC_YEAR          0x09
#define RTC_REG_A         0x0a
#define  RTC_A_UIP          0x80
#define  RTC_A_DV_MASK      0x70
#define  RTC_A_RS_MASK      0x0f
#define RTC_REG_B         0x0b
#define  RTC_B_SET          0x80
#define  RTC_B_PIE          0x40
#define  RTC_B_AIE          0x20
#define  RTC_B_UIE          0x10
#define  RTC_B_SQWE         0x08
#define  RTC_B_DM_BINARY    0x04
#define  RTC_B_24H          0x02
#define  RTC_B_DSE          0x01
#define RTC_REG_C         0x0c
#define  RTC_C_IRQF         0x80
#define  RTC_C_PF           0x40
#define  RTC_C_AF           0x20
#define  RTC_C_UF           0x10
#define RTC_REG_D         0x0d
#define  RTC_D_VRT          0x80
#define RTC_CENTURY       0x32   /* IBM PC convention; the FADT points here */

/* CMOS RAM fields the firmware reads (PC/AT and SeaBIOS conventions) */
#define CMOS_BASE_MEM_LO      0x15   /* KiB below 1 MiB */
#define CMOS_BASE_MEM_HI      0x16
#define CMOS_EXT_MEM_LO       0x17   /* KiB above 1 MiB, capped */
#define CMOS_EXT_MEM_HI       0x18
#define CMOS_EXT_MEM2_LO      0x30
#define CMOS_EXT_MEM2_HI      0x31
#define CMOS_MEM_ABOVE_16M_LO 0x34   /* 64 KiB units above 16 MiB */
#define CMOS_MEM_ABOVE_16M_HI 0x35
#define CMOS_MEM_ABOVE_4G_LO  0x5b   /* 64 KiB units above 4 GiB, 3 bytes */
#define CMOS_MEM_ABOVE_4G_MID 0x5c
#define CMOS_MEM_ABOVE_4G_HI  0x5d
#define CMOS_CPU_COUNT        0x5f   /* CPUs minus one */

struct rtc_cmos;

/* Registers ports 0x70-0x71 on p->pio; NULL on failure. */
struct rtc_cmos *rtc_cmos_create(struct platform *p);
void rtc_cmos_destroy(struct rtc_cmos *rtc);
/* RESET pin: clears PIE, AIE, UIE, SQWE and the flags; time and RAM stay. */
void rtc_cmos_reset(struct rtc_cmos *rtc);

/* Raw CMOS RAM bytes (index 0-127), for the machine to fill in fields. */
void rtc_cmos_set(struct rtc_cmos *rtc, uint8_t index, uint8_t val);
uint8_t rtc_cmos_get(const struct rtc_cmos *rtc, uint8_t index);
/* Memory-size and CPU-count fields: lowmem is RAM below 4 GiB (from 0),
 * highmem the RAM from 4 GiB up. */
void rtc_cmos_set_memory(struct rtc_cmos *rtc, uint64_t lowmem, uint64_t highmem, unsigned ncpus);
/* Seconds added to host UTC (e.g. a local-time offset); guest writes of
 * the clock change it too. */
void rtc_cmos_set_offset(struct rtc_cmos *rtc, int64_t seconds);
int64_t rtc_cmos_get_offset(const struct rtc_cmos *rtc);
/* Bit 7 of the last index write: the guest masked NMIs. */
bool rtc_cmos_nmi_disabled(const struct rtc_cmos *rtc);

#endif
