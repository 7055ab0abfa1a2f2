// SPDX-License-Identifier: GPL-2.0
/*
 * msw_block: a plain (not hotswappable) helper for the msw_cb selftests.
 * msw_block_queue() queues a work item whose function, in this module,
 * sleeps until msw_block_release(). On an ordered workqueue it holds the
 * only worker, so the work items queued behind it stay pending: that is
 * how the selftests keep msw_cb's own work queued, not running, while
 * msw_cb is swapped.
 *
 * Writing N to the "deep" parameter makes the writer sleep 3 s, N calls
 * deep in this module: a task with a deep stack, outside the module being
 * swapped, that the loader must walk to its end.
 *
 * msw_block_key is a static key of this module that msw_dev's v2_key
 * build tests: the jump label entries of a module on another module's
 * key, flipped through the "key" parameter.
 */
#include <linux/module.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/moduleparam.h>
#include <linux/delay.h>
#include <linux/jump_label.h>

static DECLARE_COMPLETION(msw_block_done);

static void msw_block_fn(struct work_struct *work)
{
	wait_for_completion(&msw_block_done);
}

static DECLARE_WORK(msw_block_work, msw_block_fn);

void msw_block_queue(struct workqueue_struct *wq)
{
	reinit_completion(&msw_block_done);
	queue_work(wq, &msw_block_work);
}
EXPORT_SYMBOL_GPL(msw_block_queue);

void msw_block_release(void)
{
	complete_all(&msw_block_done);
}
EXPORT_SYMBOL_GPL(msw_block_release);

static noinline int msw_block_dive(unsigned int depth)
{
	int ret;

	if (!depth) {
		msleep(3000);
		return 0;
	}
	ret = msw_block_dive(depth - 1);
	/* Not a tail call: each level keeps its frame. */
	barrier();
	return ret;
}

static int msw_block_deep(const char *val, const struct kernel_param *kp)
{
	unsigned int depth;
	int ret = kstrtouint(val, 0, &depth);

	return ret ?: msw_block_dive(min(depth, 200U));
}

static const struct kernel_param_ops msw_block_deep_ops = {
	.set = msw_block_deep,
};
module_param_cb(deep, &msw_block_deep_ops, NULL, 0200);

DEFINE_STATIC_KEY_FALSE(msw_block_key);
EXPORT_SYMBOL_GPL(msw_block_key);

static int msw_block_set_key(const char *val, const struct kernel_param *kp)
{
	bool on;
	int ret = kstrtobool(val, &on);

	if (ret)
		return ret;
	if (on)
		static_branch_enable(&msw_block_key);
	else
		static_branch_disable(&msw_block_key);
	return 0;
}

static const struct kernel_param_ops msw_block_key_ops = {
	.set = msw_block_set_key,
};
module_param_cb(key, &msw_block_key_ops, NULL, 0200);

static void __exit msw_block_exit(void)
{
	complete_all(&msw_block_done);
	flush_work(&msw_block_work);
}

module_exit(msw_block_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: a work item that blocks a worker");
