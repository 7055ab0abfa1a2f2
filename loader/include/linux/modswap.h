/* SPDX-License-Identifier: GPL-2.0 */
/*
 * modswap: markers for hotswappable kernel modules.
 *
 * This header is the one definition of the names shared by the two halves
 * of modswap: the build-time toolkit, which emits the markers into module
 * sources, and the module loader, which reads the sections they create.
 * The loader patch series installs this file unchanged as
 * include/linux/modswap.h, and the toolkit reads the MODSWAP_* names from
 * it at build time; a test fails if the copies drift apart.
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

#define __static_old(key) \
	__attribute__((__section__(MODSWAP_SECTION_OLD #key)))
#define __static_new(key) \
	__attribute__((__section__(MODSWAP_SECTION_NEW #key)))

/*
 * Declares an old version's symbol in the new version: extern <type>
 * _old_<name> __modswap_old;. Weak, so that modpost accepts the reference
 * and a fresh (non-swap) load of the module still links; the loader binds
 * it to the old version's definition before the replace handler runs, and
 * refuses a hotswap when it cannot.
 */
#define __modswap_old		__attribute__((__weak__))

struct modswap_info {
	unsigned int abi;		/* MODSWAP_ABI_VERSION */
	unsigned int flags;		/* reserved, 0 */
	/*
	 * Runs instead of the module's init function when this image
	 * replaces a loaded version. See loader/README.md for the context it
	 * runs in. Returns 0 or a negative errno; an error aborts the swap
	 * and leaves the old version in place.
	 */
	int (*replace)(void);
};

#define MODSWAP_REPLACE(fn)						\
	static const struct modswap_info __modswap_info		\
	__attribute__((__used__, __section__(MODSWAP_SECTION_INFO))) = {	\
		.abi = MODSWAP_ABI_VERSION,				\
		.flags = 0,						\
		.replace = (fn),					\
	}

/* A hotswappable module without state to hand over. */
#define MODSWAP_HOTSWAPPABLE()	MODSWAP_REPLACE(NULL)

#endif /* _LINUX_MODSWAP_H */
