// SPDX-License-Identifier: GPL-2.0
/*
 * ramfs_mini v1: a tiny in-memory filesystem.
 *
 * "mount -t ramfs_mini none DIR" shows two files:
 *   stats  how often the filesystem was mounted and read (read-only);
 *   note   a short text kept in memory, shared by every mount.
 *
 * The kernel keeps the addresses of the file_system_type (on its list of
 * filesystems, in every superblock) and of the operation tables (in every
 * inode and open file), so those live in static address sections and a
 * newer version can replace this one while it is mounted.
 */
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/module.h>
#include <linux/modswap.h>
#include <linux/mutex.h>

#include "ramfs_mini.h"

static struct ramfs_mini_state ramfs_mini_state;
static DEFINE_MUTEX(ramfs_mini_lock);

static ssize_t ramfs_mini_stats_read(struct file *file, char __user *buf,
				     size_t count, loff_t *ppos)
{
	char text[96];
	int len;

	mutex_lock(&ramfs_mini_lock);
	ramfs_mini_state.reads++;
	len = scnprintf(text, sizeof(text), "mounts %lu\nreads %lu\n",
			ramfs_mini_state.mounts, ramfs_mini_state.reads);
	mutex_unlock(&ramfs_mini_lock);
	return simple_read_from_buffer(buf, count, ppos, text, len);
}

static int ramfs_mini_note_open(struct inode *inode, struct file *file)
{
	if (file->f_flags & O_TRUNC) {
		mutex_lock(&ramfs_mini_lock);
		ramfs_mini_state.note_len = 0;
		mutex_unlock(&ramfs_mini_lock);
	}
	return 0;
}

static ssize_t ramfs_mini_note_read(struct file *file, char __user *buf,
				    size_t count, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&ramfs_mini_lock);
	ramfs_mini_state.reads++;
	ret = simple_read_from_buffer(buf, count, ppos, ramfs_mini_state.note,
				      ramfs_mini_state.note_len);
	mutex_unlock(&ramfs_mini_lock);
	return ret;
}

static ssize_t ramfs_mini_note_write(struct file *file, const char __user *buf,
				     size_t count, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&ramfs_mini_lock);
	ret = simple_write_to_buffer(ramfs_mini_state.note,
				     sizeof(ramfs_mini_state.note), ppos, buf,
				     count);
	if (ret > 0 && *ppos > ramfs_mini_state.note_len)
		ramfs_mini_state.note_len = *ppos;
	mutex_unlock(&ramfs_mini_lock);
	return ret;
}

static const struct file_operations ramfs_mini_stats_fops
	__static_new(ramfs_mini_stats_fops) = {
	.owner = THIS_MODULE,
	.read = ramfs_mini_stats_read,
	.llseek = default_llseek,
};

static const struct file_operations ramfs_mini_note_fops
	__static_new(ramfs_mini_note_fops) = {
	.owner = THIS_MODULE,
	.open = ramfs_mini_note_open,
	.read = ramfs_mini_note_read,
	.write = ramfs_mini_note_write,
	.llseek = default_llseek,
};

/* Indexed by inode number; simple_fill_super() skips 0 and 1. */
static const struct tree_descr ramfs_mini_files[] = {
	[2] = { "stats", &ramfs_mini_stats_fops, 0444 },
	[3] = { "note", &ramfs_mini_note_fops, 0644 },
	{ "" },
};

static int ramfs_mini_fill_super(struct super_block *sb, struct fs_context *fc)
{
	int err = simple_fill_super(sb, RAMFS_MINI_MAGIC, ramfs_mini_files);

	if (err)
		return err;
	mutex_lock(&ramfs_mini_lock);
	ramfs_mini_state.mounts++;
	mutex_unlock(&ramfs_mini_lock);
	return 0;
}

static int ramfs_mini_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, ramfs_mini_fill_super);
}

static const struct fs_context_operations ramfs_mini_context_ops
	__static_new(ramfs_mini_context_ops) = {
	.get_tree = ramfs_mini_get_tree,
};

static int ramfs_mini_init_fs_context(struct fs_context *fc)
{
	fc->ops = &ramfs_mini_context_ops;
	return 0;
}

/* On the kernel's list of filesystems and in every superblock. */
static struct file_system_type ramfs_mini_fs_type
	__static_old(ramfs_mini_fs_type) = {
	.owner = THIS_MODULE,
	.name = RAMFS_MINI_NAME,
	.init_fs_context = ramfs_mini_init_fs_context,
	.kill_sb = kill_litter_super,
};

static int __init ramfs_mini_init(void)
{
	return register_filesystem(&ramfs_mini_fs_type);
}

static void __exit ramfs_mini_exit(void)
{
	unregister_filesystem(&ramfs_mini_fs_type);
}

module_init(ramfs_mini_init);
module_exit(ramfs_mini_exit);
MODULE_ALIAS_FS(RAMFS_MINI_NAME);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("modswap example: a tiny in-memory filesystem (v1)");
