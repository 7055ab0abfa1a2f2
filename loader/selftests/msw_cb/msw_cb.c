// SPDX-License-Identifier: GPL-2.0
/*
 * msw_cb: a hotswappable module that hands its own functions to the kernel
 * at run time, where no relocation records them: a timer, a delayed work
 * item, a work item queued behind a blocked worker, an hrtimer, and a
 * function pointer in an object it allocated. The loader must never free
 * the old code while one of them still points there: it refuses the swap,
 * naming the callback, unless the replace handler re-pointed them.
 *
 * The timers and work items live in an object the module allocates, as a
 * driver's would, not in its static state: the loader's check of static
 * memory does not see them there.
 *
 * Built with MSW_CB_VERSION 1 or 2. With MSW_CB_REPOINT the replace
 * handler re-points the callbacks of the old version to this version's
 * functions of the same names, recognising the old values by their _old_
 * symbols: the timers and work items (MSW_CB_REPOINT=1), and also the
 * function pointer of the "heap" object (MSW_CB_REPOINT=2).
 *
 * Writing to the "arm" parameter: "timer MS", "dwork MS", "hrtimer MS",
 * "queued" (queue the work behind msw_block's blocked worker), "release"
 * (let msw_block's worker go), "heap" (allocate the object), "call" (call
 * through the object's pointer), "cancel" (cancel and free everything).
 * The read-only parameters timer_ran, dwork_ran, queued_ran, hrtimer_ran
 * and heap_ran hold the version whose function ran last (0: none yet).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/timer.h>
#include <linux/hrtimer.h>
#include <linux/workqueue.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/modswap.h>

#ifndef MSW_CB_VERSION
#error "build with -DMSW_CB_VERSION=1 or 2"
#endif

void msw_block_queue(struct workqueue_struct *wq);
void msw_block_release(void);

struct msw_cb_obj {
	unsigned long cookie;
	void (*fn)(struct msw_cb_obj *obj);
};

struct msw_cb_live {
	struct timer_list timer;
	struct delayed_work dwork;
	struct work_struct queued;
	struct hrtimer hrtimer;
};

struct msw_cb_state {
	struct msw_cb_live *live;
	struct workqueue_struct *wq;
	struct msw_cb_obj *obj;
	int timer_ran, dwork_ran, queued_ran, hrtimer_ran, heap_ran;
};

static struct msw_cb_state msw_cb __static_old(msw_cb);

module_param_named(timer_ran, msw_cb.timer_ran, int, 0444);
module_param_named(dwork_ran, msw_cb.dwork_ran, int, 0444);
module_param_named(queued_ran, msw_cb.queued_ran, int, 0444);
module_param_named(hrtimer_ran, msw_cb.hrtimer_ran, int, 0444);
module_param_named(heap_ran, msw_cb.heap_ran, int, 0444);

static int msw_cb_version = MSW_CB_VERSION;
module_param_named(version, msw_cb_version, int, 0444);

static void msw_cb_timer_fn(struct timer_list *t)
{
	WRITE_ONCE(msw_cb.timer_ran, MSW_CB_VERSION);
}

static void msw_cb_dwork_fn(struct work_struct *work)
{
	WRITE_ONCE(msw_cb.dwork_ran, MSW_CB_VERSION);
}

static void msw_cb_queued_fn(struct work_struct *work)
{
	WRITE_ONCE(msw_cb.queued_ran, MSW_CB_VERSION);
}

static enum hrtimer_restart msw_cb_hrtimer_fn(struct hrtimer *t)
{
	WRITE_ONCE(msw_cb.hrtimer_ran, MSW_CB_VERSION);
	return HRTIMER_NORESTART;
}

static void msw_cb_heap_fn(struct msw_cb_obj *obj)
{
	WRITE_ONCE(msw_cb.heap_ran, MSW_CB_VERSION);
}

static void msw_cb_cancel(void)
{
	struct msw_cb_live *l = msw_cb.live;

	del_timer_sync(&l->timer);
	cancel_delayed_work_sync(&l->dwork);
	hrtimer_cancel(&l->hrtimer);
	kfree(msw_cb.obj);
	msw_cb.obj = NULL;
}

static int msw_cb_arm(const char *val, const struct kernel_param *kp)
{
	struct msw_cb_live *l = msw_cb.live;
	char cmd[16];
	unsigned int ms = 0;

	if (sscanf(val, "%15s %u", cmd, &ms) < 1)
		return -EINVAL;
	if (!strcmp(cmd, "timer")) {
		mod_timer(&l->timer, jiffies + msecs_to_jiffies(ms));
	} else if (!strcmp(cmd, "dwork")) {
		mod_delayed_work(system_wq, &l->dwork, msecs_to_jiffies(ms));
	} else if (!strcmp(cmd, "hrtimer")) {
		hrtimer_start(&l->hrtimer, ms_to_ktime(ms), HRTIMER_MODE_REL);
	} else if (!strcmp(cmd, "queued")) {
		msw_block_queue(msw_cb.wq);
		queue_work(msw_cb.wq, &l->queued);
	} else if (!strcmp(cmd, "release")) {
		msw_block_release();
		flush_workqueue(msw_cb.wq);
	} else if (!strcmp(cmd, "heap")) {
		if (!msw_cb.obj)
			msw_cb.obj = kzalloc(sizeof(*msw_cb.obj), GFP_KERNEL);
		if (!msw_cb.obj)
			return -ENOMEM;
		msw_cb.obj->fn = msw_cb_heap_fn;
	} else if (!strcmp(cmd, "call")) {
		if (!msw_cb.obj)
			return -ENOENT;
		msw_cb.obj->fn(msw_cb.obj);
	} else if (!strcmp(cmd, "cancel")) {
		msw_cb_cancel();
	} else {
		return -EINVAL;
	}
	return 0;
}

static const struct kernel_param_ops msw_cb_arm_ops = {
	.set = msw_cb_arm,
};
module_param_cb(arm, &msw_cb_arm_ops, NULL, 0200);

#ifdef MSW_CB_REPOINT
extern void _old_msw_cb_timer_fn(struct timer_list *t) __modswap_old;
extern void _old_msw_cb_dwork_fn(struct work_struct *work) __modswap_old;
extern void _old_msw_cb_queued_fn(struct work_struct *work) __modswap_old;
extern enum hrtimer_restart _old_msw_cb_hrtimer_fn(struct hrtimer *t) __modswap_old;
extern void _old_msw_cb_heap_fn(struct msw_cb_obj *obj) __modswap_old;

/* The pointers the kernel keeps into the old code, re-pointed. */
static int msw_cb_replace(void)
{
	struct msw_cb_live *l = msw_cb.live;

	if (l->timer.function == _old_msw_cb_timer_fn)
		l->timer.function = msw_cb_timer_fn;
	if (l->dwork.work.func == _old_msw_cb_dwork_fn)
		l->dwork.work.func = msw_cb_dwork_fn;
	if (l->queued.func == _old_msw_cb_queued_fn)
		l->queued.func = msw_cb_queued_fn;
	if (l->hrtimer.function == _old_msw_cb_hrtimer_fn)
		l->hrtimer.function = msw_cb_hrtimer_fn;
#if MSW_CB_REPOINT >= 2
	if (msw_cb.obj && msw_cb.obj->fn == _old_msw_cb_heap_fn)
		msw_cb.obj->fn = msw_cb_heap_fn;
#endif
	return 0;
}
#else
/* Forgets them all: the loader must refuse while one is live. */
static int msw_cb_replace(void)
{
	return 0;
}
#endif
MODSWAP_REPLACE(msw_cb_replace);

static int __init msw_cb_init(void)
{
	struct msw_cb_live *l = kzalloc(sizeof(*l), GFP_KERNEL);

	if (!l)
		return -ENOMEM;
	msw_cb.wq = alloc_ordered_workqueue("msw_cb", 0);
	if (!msw_cb.wq) {
		kfree(l);
		return -ENOMEM;
	}
	timer_setup(&l->timer, msw_cb_timer_fn, 0);
	INIT_DELAYED_WORK(&l->dwork, msw_cb_dwork_fn);
	INIT_WORK(&l->queued, msw_cb_queued_fn);
	hrtimer_init(&l->hrtimer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	l->hrtimer.function = msw_cb_hrtimer_fn;
	msw_cb.live = l;
	return 0;
}

static void __exit msw_cb_exit(void)
{
	msw_cb_cancel();
	msw_block_release();
	destroy_workqueue(msw_cb.wq);
	kfree(msw_cb.live);
}

module_init(msw_cb_init);
module_exit(msw_cb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: callbacks the kernel keeps");
