// SPDX-License-Identifier: GPL-2.0
/*
 * counterdev v2: a misc character device that adds up numbers.
 *
 * Writing a decimal number to /dev/counterdev adds it to the total, and
 * writing "reset" sets the total back to 0; reading returns the counters.
 * v2 replaces v1 in place: see counterdev_modswap.c.
 */
#include <linux/fs.h>
#include <linux/kstrtox.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/modswap.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "counterdev.h"

struct counterdev_state counterdev_state;
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
	char text[192];
	int len;

	spin_lock(&counterdev_lock);
	counterdev_state.reads++;
	s = counterdev_state;
	spin_unlock(&counterdev_lock);

	len = scnprintf(text, sizeof(text),
			"version 2\nopens %llu\nreads %llu\nwrites %llu\n"
			"resets %llu\ntotal %lld\nlast %lld\n",
			s.opens, s.reads, s.writes, s.resets, s.total, s.last);
	return simple_read_from_buffer(buf, count, ppos, text, len);
}

static bool counterdev_is_reset(const char __user *buf, size_t count)
{
	char word[8] = {};

	if (count >= sizeof(word) || copy_from_user(word, buf, count))
		return false;
	return sysfs_streq(word, "reset");
}

static ssize_t counterdev_write(struct file *file, const char __user *buf,
				size_t count, loff_t *ppos)
{
	s64 value;
	int err;

	if (counterdev_is_reset(buf, count)) {
		spin_lock(&counterdev_lock);
		counterdev_state.writes++;
		counterdev_state.resets++;
		counterdev_state.total = 0;
		spin_unlock(&counterdev_lock);
		return count;
	}

	err = kstrtos64_from_user(buf, count, 0, &value);
	if (err)
		return err;

	spin_lock(&counterdev_lock);
	counterdev_state.writes++;
	counterdev_state.total += value;
	counterdev_state.last = value;
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
struct miscdevice counterdev_misc __static_old(counterdev_misc) = {
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
MODULE_DESCRIPTION("modswap example: a misc device that adds up numbers (v2)");
