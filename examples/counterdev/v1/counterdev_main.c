// SPDX-License-Identifier: GPL-2.0
/*
 * counterdev v1: a misc character device that adds up numbers.
 *
 * Writing a decimal number to /dev/counterdev adds it to the total;
 * reading returns the counters. The state lives in counterdev_state; the
 * objects whose addresses the kernel keeps (the miscdevice and its
 * file_operations) live in static address sections, so a newer version
 * can replace this one while the device is open.
 */
#include <linux/fs.h>
#include <linux/kstrtox.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/modswap.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "counterdev.h"

static struct counterdev_state counterdev_state;
static DEFINE_SPINLOCK(counterdev_lock);

static int counterdev_open(struct inode *inode, struct file *file)
{
	spin_lock(&counterdev_lock);
	counterdev_state.opens++;
	spin_unlock(&counterdev_lock);
	return 0;
}

static ssize_t counterdev_read(struct file *file, char __user *buf,
			       size_t count, loff_t *ppos)
{
	struct counterdev_state s;
	char text[128];
	int len;

	spin_lock(&counterdev_lock);
	counterdev_state.reads++;
	s = counterdev_state;
	spin_unlock(&counterdev_lock);

	len = scnprintf(text, sizeof(text),
			"opens %llu\nreads %llu\nwrites %llu\ntotal %lld\n",
			s.opens, s.reads, s.writes, s.total);
	return simple_read_from_buffer(buf, count, ppos, text, len);
}

static ssize_t counterdev_write(struct file *file, const char __user *buf,
				size_t count, loff_t *ppos)
{
	s64 value;
	int err;

	err = kstrtos64_from_user(buf, count, 0, &value);
	if (err)
		return err;

	spin_lock(&counterdev_lock);
	counterdev_state.writes++;
	counterdev_state.total += value;
	spin_unlock(&counterdev_lock);
	return count;
}

/* Open files point at it: its address must not change. */
static const struct file_operations counterdev_fops __static_new(counterdev_fops) = {
	.owner = THIS_MODULE,
	.open = counterdev_open,
	.read = counterdev_read,
	.write = counterdev_write,
	.llseek = default_llseek,
};

/* The misc core keeps it on its list: address and content must survive. */
static struct miscdevice counterdev_misc __static_old(counterdev_misc) = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = COUNTERDEV_NAME,
	.fops = &counterdev_fops,
	.mode = 0666,
};

static int __init counterdev_init(void)
{
	return misc_register(&counterdev_misc);
}

static void __exit counterdev_exit(void)
{
	misc_deregister(&counterdev_misc);
}

module_init(counterdev_init);
module_exit(counterdev_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap example: a misc device that adds up numbers (v1)");
