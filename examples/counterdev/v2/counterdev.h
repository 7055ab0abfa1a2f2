/* SPDX-License-Identifier: GPL-2.0 */
#ifndef COUNTERDEV_H
#define COUNTERDEV_H

#include <linux/types.h>

#define COUNTERDEV_NAME "counterdev"

/*
 * The module's runtime state. v2 counts resets, in a member added at the
 * front (so every v1 member moves), and remembers the last value written.
 */
struct counterdev_state {
	u64 resets;
	u64 opens;
	u64 reads;
	u64 writes;
	s64 total;
	s64 last;
};

#endif
