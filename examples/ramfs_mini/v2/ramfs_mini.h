/* SPDX-License-Identifier: GPL-2.0 */
#ifndef RAMFS_MINI_H
#define RAMFS_MINI_H

#include <linux/types.h>

#define RAMFS_MINI_NAME "ramfs_mini"
#define RAMFS_MINI_MAGIC 0x6d737770 /* "mswp" */

/*
 * The filesystem's state, shared by all mounts. v2 counts writes, in a
 * member added at the front (so every v1 member moves), and holds a longer
 * note.
 */
struct ramfs_mini_state {
	unsigned long writes;
	unsigned long mounts;
	unsigned long reads;
	size_t note_len;
	char note[512];
};

#endif
