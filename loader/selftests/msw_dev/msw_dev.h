/* SPDX-License-Identifier: GPL-2.0 */
/* The functions msw_dev exports to its users (msw_user). */
#ifndef MSW_DEV_H
#define MSW_DEV_H

#include <linux/types.h>
#include <linux/static_call_types.h>

/* The version of msw_dev that runs: 1, 2 or 3. */
int msw_dev_version(void);
/* Counts one more access, like a read() of the device, and returns it. */
u64 msw_dev_next(void);
/*
 * A static call to msw_dev_version(), exported: defining it registers
 * nothing for msw_dev, but a user that calls it has entries in its own
 * .static_call_sites that name msw_dev's key.
 */
DECLARE_STATIC_CALL(msw_dev_call, msw_dev_version);

#endif
