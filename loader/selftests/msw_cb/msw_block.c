// SPDX-License-Identifier: GPL-2.0
/*
 * msw_block: a plain (not hotswappable) helper for the msw_cb selftests.
 * msw_block_queue() queues a work item whose function, in this module,
 * sleeps until msw_block_release(). On an ordered workqueue it holds the
 * only worker, so the work items queued behind it stay pending: that is
 * how the selftests keep msw_cb's own work queued, not running, while
 * msw_cb is swapped.
 */
#include <linux/module.h>
#include <linux/workqueue.h>
#include <linux/completion.h>

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

static void __exit msw_block_exit(void)
{
	complete_all(&msw_block_done);
	flush_work(&msw_block_work);
}

module_exit(msw_block_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: a work item that blocks a worker");
