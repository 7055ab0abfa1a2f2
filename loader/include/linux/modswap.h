/* SPDX-License-Identifier: GPL-2.0 */
/*
 * modswap: markers for hotswappable kernel modules.
 *
 * This header is the one definition of the names shared by the two halves
 * of modswap: the build-time toolkit, which emits the markers into module
 * sources, and the module loader, which reads the sections they create.
 * The loader patch series installs this file unchanged as <linux/modswap.h>,
 * and the toolkit reads the MODSWAP_* names from it at build time; a test
 * fails if the copies drift apart.
 *
 * A module becomes hotswappable by registering its replace handler:
 *
 *	static int replace_module(void) { ... }
 *	MODSWAP_REPLACE(replace_module);
 *
 * Globals whose address escapes to the kernel live in static address
 * sections, one section per object, named by a key that is stable across
 * versions (the variable name, "function.variable" for a function-scope
 * static):
 *
 *	static struct file_system_type vfat_fs_type __static_old(vfat_fs_type) = { ... };
 *	static const struct inode_operations vfat_dir_iops __static_new(vfat_dir_iops) = { ... };
 *
 * __static_old: the address is fixed and the old version's content is kept.
 * __static_new: the address is fixed and the new version's content replaces
 *		 the old one (relocated against the new code).
 *
 * A const and a writable object never share a section, so const objects
 * keep compiling (no "section type conflict").
 */
#ifndef _LINUX_MODSWAP_H
#define _LINUX_MODSWAP_H

/* Version of the contract between the toolkit and the loader. */
#define MODSWAP_ABI_VERSION	1

/* Section name prefixes; the object's key follows the prefix. */
#define MODSWAP_SECTION_OLD	".static_old."
#define MODSWAP_SECTION_NEW	".static_new."
/* Section holding struct modswap_info: marks an image as hotswappable. */
#define MODSWAP_SECTION_INFO	".modswap.info"
/* Prefix of undefined symbols that resolve to the old version's definition. */
#define MODSWAP_OLD_PREFIX	"_old_"

#define __static_old(key)	__section(MODSWAP_SECTION_OLD #key)
#define __static_new(key)	__section(MODSWAP_SECTION_NEW #key)

/*
 * Declares an old version's symbol in the new version: extern <type>
 * _old_<name> __modswap_old;. Weak, so that modpost accepts the reference
 * and a fresh (non-swap) load of the module still links; the loader binds
 * it to the old version's definition before the replace handler runs, and
 * refuses a hotswap when it cannot.
 */
#define __modswap_old		__weak

struct modswap_info {
	unsigned int abi;		/* MODSWAP_ABI_VERSION */
	unsigned int flags;		/* reserved, 0 */
	/*
	 * Runs instead of the module's init function when this image
	 * replaces a loaded version, on one CPU inside stop_machine() with
	 * interrupts off and every other CPU spinning: it must not sleep
	 * (GFP_ATOMIC only, no mutexes). The old version's code and data
	 * are still in place (reach them through _old_ symbols); the new
	 * version's .static_new content is already installed. Returns 0 or
	 * a negative errno; an error aborts the swap, the static sections
	 * are restored and the old version stays in place.
	 */
	int (*replace)(void);
	/*
	 * Optional, may be NULL. Runs before the machine is stopped, in
	 * process context (may sleep, e.g. to allocate what replace()
	 * needs), while the old version keeps running. An error aborts the
	 * swap.
	 */
	int (*prepare)(void);
	/*
	 * Optional, may be NULL. Runs in process context when the swap
	 * fails after prepare() succeeded, to undo it.
	 */
	void (*cancel)(void);
};

#define MODSWAP_REPLACE_PREPARED(prep, fn, canc)			\
	static const struct modswap_info __modswap_info		\
	__used __section(MODSWAP_SECTION_INFO) = {			\
		.abi = MODSWAP_ABI_VERSION,				\
		.flags = 0,						\
		.replace = (fn),					\
		.prepare = (prep),					\
		.cancel = (canc),					\
	}

#define MODSWAP_REPLACE(fn)	MODSWAP_REPLACE_PREPARED(NULL, fn, NULL)

/* A hotswappable module without state to hand over. */
#define MODSWAP_HOTSWAPPABLE()	MODSWAP_REPLACE(NULL)

#endif /* _LINUX_MODSWAP_H */
