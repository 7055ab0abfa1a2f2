/* SPDX-License-Identifier: GPL-2.0 */
/* The functions msw_dev exports to its users (msw_user). */
#ifndef MSW_DEV_H
#define MSW_DEV_H

#include <linux/types.h>

/* The version of msw_dev that runs: 1, 2 or 3. */
int msw_dev_version(void);
/* Counts one more access, like a read() of the device, and returns it. */
u64 msw_dev_next(void);

#endif
