// SPDX-License-Identifier: GPL-2.0
/*
 * msw_user v1: uses msw_dev's exported functions, for the loader's
 * dependent re-linking selftests. Each parameter file calls into msw_dev
 * when read: dev_version directly (a call relocation in the text),
 * via_pointer through a function pointer initialized at build time (a data
 * relocation), next through msw_dev_next(). After msw_dev is hotswapped,
 * all three must reach the new version. Built with MSW_USER_HOTSWAP it is
 * hotswappable itself; with MSW_USER_STATIC_CALL it also calls msw_dev
 * through a static call, and a swap of msw_dev must then be refused.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>
#include <linux/modswap.h>
#include <linux/static_call.h>
#include "msw_dev.h"

#define MSW_USER_VERSION 1

static int (*msw_user_fn)(void) = msw_dev_version;

static int get_dev_version(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", msw_dev_version());
}

static int get_via_pointer(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", msw_user_fn());
}

static int get_next(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%llu\n", msw_dev_next());
}

static int get_user_version(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", MSW_USER_VERSION);
}

static const struct kernel_param_ops dev_version_ops = {
	.get = get_dev_version,
};

static const struct kernel_param_ops via_pointer_ops = {
	.get = get_via_pointer,
};

static const struct kernel_param_ops next_ops = {
	.get = get_next,
};

static const struct kernel_param_ops user_version_ops = {
	.get = get_user_version,
};

module_param_cb(dev_version, &dev_version_ops, NULL, 0444);
module_param_cb(via_pointer, &via_pointer_ops, NULL, 0444);
module_param_cb(next, &next_ops, NULL, 0444);
module_param_cb(user_version, &user_version_ops, NULL, 0444);

#ifdef MSW_USER_STATIC_CALL
/* A call site the kernel registers, and sorts, at this module's load. */
static int get_via_static_call(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", static_call(msw_dev_call)());
}

static const struct kernel_param_ops via_static_call_ops = {
	.get = get_via_static_call,
};

module_param_cb(via_static_call, &via_static_call_ops, NULL, 0444);
#endif

#ifdef MSW_USER_HOTSWAP
MODSWAP_HOTSWAPPABLE();
#endif

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: a user of msw_dev, v1");
