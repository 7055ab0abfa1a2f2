// SPDX-License-Identifier: GPL-2.0
/*
 * msw_dev v2: the second version of the selftests' hotswappable device.
 * It counts writes too and reports them. Built with one of the MSW_FAIL_*
 * macros it becomes a broken new version that the loader must refuse,
 * leaving the loaded version untouched:
 *   MSW_FAIL_LAYOUT	the .static_old state grew (layout mismatch)
 *   MSW_FAIL_OLD	an _old_ symbol the loaded version does not have
 *   MSW_FAIL_RELOC	a relocation that overflows (relocation error)
 *   MSW_FAIL_REPLACE	the replace handler scribbles, then fails
 *   MSW_FAIL_DANGLING	the replace handler forgets to re-point the
 *			banner at this version's string
 *   MSW_NO_HOTSWAP	no .modswap.info: an ordinary duplicate (-EEXIST)
 *   MSW_FAIL_ABI	a .modswap.info of an unknown ABI version
 *   MSW_KEY		a static key of its own and one of msw_block's,
 *			read through the "keys" parameter, its own set
 *			through "own_key": their jump label entries move
 *			with the swap
 *   MSW_STATIC_CALL	defines a static call and reports its version
 *			through it: its own call site and key move
 *			with the swap
 *   MSW_FAIL_CTOR	the constructor of the loaded version's slab cache
 *			has no function of its name here
 *   MSW_FAIL_POSITIVE	the replace handler returns a positive value
 *   MSW_FAIL_PERCPU	per-CPU data, which the loader cannot move
 *   MSW_EXPORT_NS	msw_dev_version() moves to the namespace MSW_NS,
 *			which msw_user does not import
 *   MSW_DROP_EXPORT	msw_dev_next(), which msw_user calls, is no longer
 *			exported
 *   MSW_FAIL_CLASH	exports msw_block_release(), which msw_block
 *			exports too
 *
 * Every read() returns one line "v2 count=<n> sleepers=<s> opens=<o>
 * banner=<b>" where <n> counts the reads served by any version (monotonic
 * across swaps: it lives in a .static_old section). Writing "sleep" to a
 * file makes the next read() on it block inside the module until someone
 * writes "wake". The file_operations table lives in a .static_new section:
 * the char device registered with the kernel keeps pointing at it, and
 * each swap installs the new version's function pointers there.
 */
#include <linux/module.h>
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/static_call.h>
#include <linux/modswap.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include "msw_dev.h"

#define MSW_VERSION 2

struct msw_state {
	spinlock_t lock;
	u64 count;		/* reads served, by every version */
	unsigned int swaps;	/* replace handlers run */
	unsigned int sleepers;	/* tasks blocked in read() */
	bool wake;
	int major;
	const char *banner;	/* must be re-pointed by each version */
	struct kmem_cache *objs;	/* its constructor is in the module */
	wait_queue_head_t wq;
#ifdef MSW_FAIL_LAYOUT
	u64 grown;
#endif
};

static struct msw_state msw_state __static_old(msw_state) = {
	.lock = __SPIN_LOCK_UNLOCKED(msw_state.lock),
	.wq = __WAIT_QUEUE_HEAD_INITIALIZER(msw_state.wq),
};

/* Per-version state, handed over by the replace handler. */
static unsigned long msw_opens;
static unsigned long msw_writes;
extern unsigned long _old_msw_opens __modswap_old;
#ifdef MSW_FAIL_OLD
extern unsigned long _old_msw_missing __modswap_old;
#endif

static const char msw_banner[] = "hello-from-v2";

#ifdef MSW_FAIL_PERCPU
static DEFINE_PER_CPU(unsigned long, msw_reads);
#define MSW_COUNT_READ()	this_cpu_inc(msw_reads)
#else
#define MSW_COUNT_READ()	do { } while (0)
#endif

#ifdef MSW_KEY
#include <linux/jump_label.h>

static DEFINE_STATIC_KEY_FALSE(msw_own_key);
extern struct static_key_false msw_block_key;

static int msw_get_keys(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "own=%d block=%d\n",
			  static_branch_unlikely(&msw_own_key) ? 1 : 0,
			  static_branch_unlikely(&msw_block_key) ? 1 : 0);
}

static const struct kernel_param_ops msw_keys_ops = {
	.get = msw_get_keys,
};
module_param_cb(keys, &msw_keys_ops, NULL, 0444);

static int msw_set_own_key(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = kstrtobool(val, &on);

	if (ret)
		return ret;
	if (on)
		static_branch_enable(&msw_own_key);
	else
		static_branch_disable(&msw_own_key);
	return 0;
}

static const struct kernel_param_ops msw_own_key_ops = {
	.set = msw_set_own_key,
};
module_param_cb(own_key, &msw_own_key_ops, NULL, 0200);
#endif

#ifdef MSW_STATIC_CALL
DEFINE_STATIC_CALL(msw_version_call, msw_dev_version);
#define MSW_REPORTED_VERSION	static_call(msw_version_call)()
#else
#define MSW_REPORTED_VERSION	MSW_VERSION
#endif

#ifdef MSW_FAIL_RELOC
/* A 32-bit absolute reference to a module address cannot be linked. */
asm(".pushsection .data.msw_reloc,\"aw\"\n\t.long msw_fops\n\t.popsection");
#endif

/*
 * A slab cache with a constructor in the module: the loader re-points the
 * constructor to each new version. ctor_version (a read-only parameter)
 * is the version whose constructor built a fresh object.
 */
#ifdef MSW_FAIL_CTOR
/* The new version has no function of the constructor's name. */
#define msw_obj_ctor msw_obj_ctor_renamed
#endif
static void msw_obj_ctor(void *obj)
{
	*(int *)obj = MSW_VERSION;
}

static int msw_get_ctor(char *buf, const struct kernel_param *kp)
{
	int *obj, v;

	/* Empty slabs are freed, so the object comes from a new slab. */
	kmem_cache_shrink(msw_state.objs);
	obj = kmem_cache_alloc(msw_state.objs, GFP_KERNEL);
	if (!obj)
		return -ENOMEM;
	v = *obj;
	kmem_cache_free(msw_state.objs, obj);
	return sysfs_emit(buf, "%d\n", v);
}

static const struct kernel_param_ops msw_ctor_ops = {
	.get = msw_get_ctor,
};
module_param_cb(ctor_version, &msw_ctor_ops, NULL, 0444);

static u64 msw_next(void)
{
	u64 n;

	spin_lock(&msw_state.lock);
	n = ++msw_state.count;
	spin_unlock(&msw_state.lock);
	return n;
}

int msw_dev_version(void)
{
	return MSW_VERSION;
}
#ifdef MSW_EXPORT_NS
EXPORT_SYMBOL_NS_GPL(msw_dev_version, MSW_NS);
#else
EXPORT_SYMBOL_GPL(msw_dev_version);
#endif

DEFINE_STATIC_CALL(msw_dev_call, msw_dev_version);
EXPORT_STATIC_CALL_GPL(msw_dev_call);

u64 msw_dev_next(void)
{
	static unsigned long calls __static_old(msw_dev_next.calls);

	calls++;
	return msw_next();
}
#ifndef MSW_DROP_EXPORT
EXPORT_SYMBOL_GPL(msw_dev_next);
#endif

#ifdef MSW_FAIL_CLASH
void msw_block_release(void);
void msw_block_release(void)
{
}
EXPORT_SYMBOL_GPL(msw_block_release);
#endif

static int msw_open(struct inode *inode, struct file *file)
{
	file->private_data = NULL;
	spin_lock(&msw_state.lock);
	msw_opens++;
	spin_unlock(&msw_state.lock);
	return 0;
}

static ssize_t msw_read(struct file *file, char __user *buf, size_t len,
			loff_t *ppos)
{
	char line[128];
	int n;

	/* A dynamic debug site, the same in every version. */
	pr_debug("msw_dev: read %zu bytes\n", len);

	if (file->private_data) {
		file->private_data = NULL;
		spin_lock(&msw_state.lock);
		msw_state.sleepers++;
		spin_unlock(&msw_state.lock);
		n = wait_event_interruptible(msw_state.wq, msw_state.wake);
		spin_lock(&msw_state.lock);
		msw_state.sleepers--;
		spin_unlock(&msw_state.lock);
		if (n)
			return n;
	}
	MSW_COUNT_READ();
	n = scnprintf(line, sizeof(line),
		      "v%d count=%llu sleepers=%u opens=%lu banner=%s writes=%lu\n",
		      MSW_REPORTED_VERSION, msw_next(), msw_state.sleepers, msw_opens,
		      msw_state.banner, msw_writes);
	if (len < n)
		return -EINVAL;
	if (copy_to_user(buf, line, n))
		return -EFAULT;
	return n;
}

static ssize_t msw_write(struct file *file, const char __user *buf,
			 size_t len, loff_t *ppos)
{
	char cmd[8] = "";

	if (copy_from_user(cmd, buf, min(len, sizeof(cmd) - 1)))
		return -EFAULT;
	msw_writes++;
	if (!strncmp(cmd, "sleep", 5)) {
		msw_state.wake = false;
		file->private_data = file;
	} else if (!strncmp(cmd, "wake", 4)) {
		msw_state.wake = true;
		wake_up_all(&msw_state.wq);
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations msw_fops __static_new(msw_fops) = {
	.owner = THIS_MODULE,
	.open = msw_open,
	.read = msw_read,
	.write = msw_write,
	.llseek = noop_llseek,
};

static int __maybe_unused msw_replace(void)
{
	msw_opens = _old_msw_opens;
#ifdef MSW_FAIL_OLD
	msw_opens += _old_msw_missing;
#endif
#ifdef MSW_FAIL_REPLACE
	msw_state.count = 0;
	msw_state.banner = msw_banner;
	return -EINVAL;
#endif
#ifdef MSW_FAIL_POSITIVE
	return 1;
#endif
#ifndef MSW_FAIL_DANGLING
	msw_state.banner = msw_banner;
#endif
	msw_state.swaps++;
	return 0;
}
#if defined(MSW_FAIL_ABI)
static const struct modswap_info msw_bad_info
	__used __section(MODSWAP_SECTION_INFO) = {
	.abi = 99,
	.replace = msw_replace,
};
#elif !defined(MSW_NO_HOTSWAP)
MODSWAP_REPLACE(msw_replace);
#endif

static int __init msw_init(void)
{
	int major;

	msw_state.objs = kmem_cache_create("msw_objs", sizeof(int), 0, 0,
					   msw_obj_ctor);
	if (!msw_state.objs)
		return -ENOMEM;
	major = register_chrdev(0, "msw_dev", &msw_fops);
	if (major < 0) {
		kmem_cache_destroy(msw_state.objs);
		return major;
	}
	msw_state.major = major;
	msw_state.banner = msw_banner;
	return 0;
}

static void __exit msw_exit(void)
{
	unregister_chrdev(msw_state.major, "msw_dev");
	kmem_cache_destroy(msw_state.objs);
}

module_init(msw_init);
module_exit(msw_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: hotswappable char device, v2");
