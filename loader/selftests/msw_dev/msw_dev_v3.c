// SPDX-License-Identifier: GPL-2.0
/*
 * msw_dev v3: the third version of the selftests' hotswappable device. It
 * builds its banner at run time and uses the sleepable prepare() step to
 * allocate what the atomic replace handler needs; cancel() frees it when
 * the swap fails. Built with MSW_FAIL_CANCEL, the replace handler fails
 * after prepare() succeeded; with MSW_FAIL_PREPARE, prepare() fails.
 *
 * Every read() returns one line "v3 count=<n> sleepers=<s> opens=<o>
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
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/modswap.h>
#include <linux/slab.h>
#include <linux/static_call.h>
#include "msw_dev.h"

#define MSW_VERSION 3

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
};

static struct msw_state msw_state __static_old(msw_state) = {
	.lock = __SPIN_LOCK_UNLOCKED(msw_state.lock),
	.wq = __WAIT_QUEUE_HEAD_INITIALIZER(msw_state.wq),
};

/* Per-version state, handed over by the replace handler. */
static unsigned long msw_opens;
extern unsigned long _old_msw_opens __modswap_old;

static char msw_banner[32];
static char *msw_scratch;

/*
 * A slab cache with a constructor in the module: the loader re-points the
 * constructor to each new version. ctor_version (a read-only parameter)
 * is the version whose constructor built a fresh object.
 */
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
EXPORT_SYMBOL_GPL(msw_dev_version);

DEFINE_STATIC_CALL(msw_dev_call, msw_dev_version);
EXPORT_STATIC_CALL_GPL(msw_dev_call);

u64 msw_dev_next(void)
{
	static unsigned long calls __static_old(msw_dev_next.calls);
	u64 n = msw_next();

	calls++;
	return n;
}
EXPORT_SYMBOL_GPL(msw_dev_next);

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
	n = scnprintf(line, sizeof(line),
		      "v%d count=%llu sleepers=%u opens=%lu banner=%s\n",
		      MSW_VERSION, msw_next(), msw_state.sleepers, msw_opens,
		      msw_state.banner);
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

static int msw_prepare(void)
{
#ifdef MSW_FAIL_PREPARE
	return -ENODEV;
#endif
	msw_scratch = kstrdup("hello-from-v3", GFP_KERNEL);
	return msw_scratch ? 0 : -ENOMEM;
}

static int msw_replace(void)
{
#ifdef MSW_FAIL_CANCEL
	return -EAGAIN;
#endif
	strscpy(msw_banner, msw_scratch, sizeof(msw_banner));
	kfree(msw_scratch);
	msw_scratch = NULL;
	msw_opens = _old_msw_opens;
	msw_state.banner = msw_banner;
	msw_state.swaps++;
	return 0;
}

static void msw_cancel(void)
{
	kfree(msw_scratch);
	msw_scratch = NULL;
	pr_info("msw_dev: v3 swap cancelled\n");
}
MODSWAP_REPLACE_PREPARED(msw_prepare, msw_replace, msw_cancel);

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
	strscpy(msw_banner, "hello-from-v3", sizeof(msw_banner));
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
MODULE_DESCRIPTION("modswap loader selftest: hotswappable char device, v3");
