/* SPDX-License-Identifier: GPL-2.0 */
#ifndef COUNTERDEV_H
#define COUNTERDEV_H

#include <linux/types.h>

#define COUNTERDEV_NAME "counterdev"

/* The module's runtime state (v1 layout). */
struct counterdev_state {
	u64 opens;
	u64 reads;
	u64 writes;
	s64 total;
};

#endif
