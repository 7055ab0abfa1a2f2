// SPDX-License-Identifier: GPL-2.0
/*
 * ramfs_mini's replace handler: runs instead of ramfs_mini_init() when v2
 * replaces a loaded v1 in place. Hand-written for now; `modswap handler`
 * will generate it.
 */
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/modswap.h>
#include <linux/string.h>

#include "ramfs_mini.h"

/* v1's layout of the state (the paper's Fig. 2). */
struct ramfs_mini_state_v1 {
	unsigned long mounts;
	unsigned long reads;
	size_t note_len;
	char note[256];
};

/* v1's ramfs_mini_state (a static there), bound by the loader. */
extern struct ramfs_mini_state_v1 _old_ramfs_mini_state __modswap_old;

static int replace_module(void)
{
	size_t len = min(_old_ramfs_mini_state.note_len,
			 sizeof(_old_ramfs_mini_state.note));

	ramfs_mini_state.writes = 0;
	ramfs_mini_state.mounts = _old_ramfs_mini_state.mounts;
	ramfs_mini_state.reads = _old_ramfs_mini_state.reads;
	memcpy(ramfs_mini_state.note, _old_ramfs_mini_state.note, len);
	ramfs_mini_state.note_len = len;

	/*
	 * ramfs_mini_fs_type is __static_old: the kernel's list links and
	 * superblock list survive, but its pointers still lead into v1's code
	 * and read-only data, which go away (the paper's Fig. 6).
	 */
	ramfs_mini_fs_type.name = RAMFS_MINI_NAME;
	ramfs_mini_fs_type.init_fs_context = ramfs_mini_init_fs_context;
	ramfs_mini_fs_type.kill_sb = kill_litter_super;
	return 0;
}

MODSWAP_REPLACE(replace_module);
