// SPDX-License-Identifier: GPL-2.0
/*
 * counterdev's replace handler: runs instead of counterdev_init() when v2
 * replaces a loaded v1 in place. Hand-written for now; `modswap handler`
 * will generate it.
 */
#include <linux/miscdevice.h>
#include <linux/modswap.h>
#include <linux/types.h>

#include "counterdev.h"

/* v1's layout of the state (the paper's Fig. 2). */
struct counterdev_state_v1 {
	u64 opens;
	u64 reads;
	u64 writes;
	s64 total;
};

/* v1's counterdev_state (a static there), bound by the loader. */
extern struct counterdev_state_v1 _old_counterdev_state __modswap_old;

static int replace_module(void)
{
	counterdev_state.resets = 0;
	counterdev_state.opens = _old_counterdev_state.opens;
	counterdev_state.reads = _old_counterdev_state.reads;
	counterdev_state.writes = _old_counterdev_state.writes;
	counterdev_state.total = _old_counterdev_state.total;
	counterdev_state.last = 0;

	/*
	 * counterdev_misc is __static_old: the misc core's links survive, but
	 * its name still points into v1's read-only data, which goes away.
	 * fops points at counterdev_fops, a __static_new object: same address,
	 * v2's content.
	 */
	counterdev_misc.name = COUNTERDEV_NAME;
	return 0;
}

MODSWAP_REPLACE(replace_module);
