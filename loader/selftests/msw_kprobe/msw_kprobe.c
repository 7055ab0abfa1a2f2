// SPDX-License-Identifier: GPL-2.0
/*
 * msw_kprobe: registers one kprobe, for the loader selftests.
 *
 *   target=SYMBOL		on the first instruction of SYMBOL
 *   target=SYMBOL call=1	on the first call instruction in SYMBOL
 *				(within its first 64 bytes) that calls
 *				msw_dev_version(): a call site that a swap
 *				of msw_dev re-links
 *
 * The read-only parameter "hits" counts the probe's hits.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/kprobes.h>
#include <linux/kallsyms.h>

static char *target;
module_param(target, charp, 0444);
static bool call;
module_param(call, bool, 0444);
static unsigned long hits;
module_param(hits, ulong, 0444);

static int msw_kprobe_pre(struct kprobe *p, struct pt_regs *regs)
{
	hits++;
	return 0;
}

static struct kprobe msw_kp = {
	.pre_handler = msw_kprobe_pre,
};

/* The address of the first call to msw_dev_version() in @fn, or NULL. */
static u8 *msw_find_call(u8 *fn)
{
	char name[KSYM_SYMBOL_LEN];
	unsigned int off;

	for (off = 0; off + 5 <= 64; off++) {
		unsigned long dst;

		if (fn[off] != 0xe8)
			continue;
		dst = (unsigned long)fn + off + 5 + *(s32 *)(fn + off + 1);
		sprint_symbol(name, dst);
		if (strstarts(name, "msw_dev_version+0x0/"))
			return fn + off;
	}
	return NULL;
}

static int __init msw_kprobe_init(void)
{
	u8 *site;
	int ret;

	if (!target)
		return -EINVAL;
	msw_kp.symbol_name = target;
	ret = register_kprobe(&msw_kp);
	if (ret || !call)
		return ret;
	/* Registered on the entry only to find the function; move it. */
	site = msw_find_call((u8 *)msw_kp.addr);
	unregister_kprobe(&msw_kp);
	if (!site)
		return -ENOENT;
	memset(&msw_kp, 0, sizeof(msw_kp));
	msw_kp.pre_handler = msw_kprobe_pre;
	msw_kp.addr = (kprobe_opcode_t *)site;
	return register_kprobe(&msw_kp);
}

static void __exit msw_kprobe_exit(void)
{
	unregister_kprobe(&msw_kp);
}

module_init(msw_kprobe_init);
module_exit(msw_kprobe_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap loader selftest: a kprobe on a module's code");
