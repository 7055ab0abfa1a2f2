// SPDX-License-Identifier: GPL-2.0
/*
 * msw: the guest-side helper of the loader selftests and benchmark. Built
 * statically and put into the test initramfs next to busybox.
 *
 *   msw load FILE [PARAMS]       finit_module(); prints "ok" or "error <errno>";
 *                                 FILE.xz gets MODULE_INIT_COMPRESSED_FILE
 *   msw swap FILE [PARAMS]       the same with MODULE_INIT_HOTSWAP (replace
 *                                 the loaded version)
 *   msw swap-as UID FILE          a swap as user UID, without capabilities
 *   msw swap-badargs FILE N       N swaps whose parameter string is at an
 *                                 invalid address (each must fail, EFAULT);
 *                                 prints "ok" or the first other result
 *   msw unload NAME               delete_module()
 *   msw read DEV                  prints one line read from DEV
 *   msw sleep DEV                 blocks in read() until "wake" is written
 *   msw wake DEV                  writes "wake"
 *   msw hammer DEV N STOPFILE     N processes read DEV until STOPFILE exists;
 *                                 fails on any error or non-increasing count
 *   msw bench-load FILE NAME N    N load/unload cycles: median and min load ns
 *   msw bench-swap A B N          N swaps alternating A and B: median, min ns
 *   msw bench-read DEV N          ns per read() over N reads
 *   msw btf-hold NAME             opens the BTF of module NAME by its ID,
 *                                 prints "ok ID" and holds the descriptor
 *                                 until killed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* finit_module() flag of the hotswap kernel: replace the loaded version. */
#define MODULE_INIT_HOTSWAP 8
/* finit_module() flag: the file is compressed (<linux/module.h>). */
#define MODULE_INIT_COMPRESSED_FILE 4

static int do_load(const char *path, const char *params, int flags,
		   long long *ns)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long long t;
	int ret;

	if (fd < 0) {
		fprintf(stderr, "msw: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	/* As kmod loads a compressed module: the kernel decompresses it. */
	if (strlen(path) > 3 && !strcmp(path + strlen(path) - 3, ".xz"))
		flags |= MODULE_INIT_COMPRESSED_FILE;
	t = now_ns();
	ret = syscall(SYS_finit_module, fd, params, flags);
	if (ns)
		*ns = now_ns() - t;
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

static int do_unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static int report(int ret)
{
	if (ret)
		printf("error %d %s\n", -ret, strerror(-ret));
	else
		printf("ok\n");
	return ret ? 1 : 0;
}

static int read_line(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int cmd_read(const char *dev, int sleep)
{
	char line[256];
	int fd = open(dev, O_RDWR);
	int ret;

	if (fd < 0) {
		perror(dev);
		return 1;
	}
	if (sleep && write(fd, "sleep", 5) != 5) {
		perror("write sleep");
		return 1;
	}
	ret = read_line(fd, line, sizeof(line));
	if (ret) {
		printf("error %d %s\n", -ret, strerror(-ret));
		return 1;
	}
	fputs(line, stdout);
	return 0;
}

static int cmd_wake(const char *dev)
{
	int fd = open(dev, O_RDWR);

	if (fd < 0 || write(fd, "wake", 4) != 4) {
		perror(dev);
		return 1;
	}
	return 0;
}

/* One hammering process: returns 0 if every read succeeded and counted up. */
static int hammer_one(const char *dev, const char *stop, int id)
{
	unsigned long long last = 0, count, reads = 0, versions[8] = { 0 };
	char line[256];
	int fd = open(dev, O_RDONLY);
	int v;

	if (fd < 0) {
		perror(dev);
		return 1;
	}
	for (;;) {
		int ret = read_line(fd, line, sizeof(line));

		if (ret) {
			printf("hammer %d: read failed after %llu reads: %s\n",
			       id, reads, strerror(-ret));
			return 1;
		}
		if (sscanf(line, "v%d count=%llu", &v, &count) != 2 ||
		    v < 0 || v >= 8) {
			printf("hammer %d: bad line '%s'\n", id, line);
			return 1;
		}
		if (count <= last) {
			printf("hammer %d: count went from %llu to %llu\n", id,
			       last, count);
			return 1;
		}
		last = count;
		versions[v]++;
		if (++reads % 64 == 0 && access(stop, F_OK) == 0)
			break;
	}
	printf("hammer %d: %llu reads, last count %llu, v1 %llu v2 %llu v3 %llu\n",
	       id, reads, last, versions[1], versions[2], versions[3]);
	return 0;
}

static int cmd_hammer(const char *dev, int n, const char *stop)
{
	int i, status, failed = 0;

	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			exit(hammer_one(dev, stop, i));
		if (pid < 0) {
			perror("fork");
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			failed++;
	}
	printf("hammer: %d of %d processes failed\n", failed, n);
	return failed ? 1 : 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long median(long long *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_ll);
	return v[n / 2];
}

static long long minimum(long long *v, int n)
{
	long long m = v[0];
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

static int cmd_bench_load(const char *path, const char *name, int n)
{
	long long *t = calloc(n, sizeof(*t));
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = do_load(path, "", 0, &t[i]);
		if (ret || (ret = do_unload(name)))
			return report(ret);
	}
	printf("load_ns %lld min_ns %lld\n", median(t, n), minimum(t, n));
	return 0;
}

static int cmd_bench_swap(const char *a, const char *b, int n)
{
	long long *t = calloc(n, sizeof(*t));
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = do_load(i % 2 ? a : b, "", MODULE_INIT_HOTSWAP, &t[i]);
		if (ret)
			return report(ret);
	}
	printf("swap_ns %lld min_ns %lld\n", median(t, n), minimum(t, n));
	return 0;
}

static int cmd_bench_read(const char *dev, int n)
{
	char line[256];
	int fd = open(dev, O_RDONLY);
	long long t;
	int i;

	if (fd < 0) {
		perror(dev);
		return 1;
	}
	t = now_ns();
	for (i = 0; i < n; i++) {
		if (read_line(fd, line, sizeof(line))) {
			perror("read");
			return 1;
		}
	}
	printf("read_ns %lld\n", (now_ns() - t) / n);
	return 0;
}

static int bpf_sys(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* Holds a file descriptor of the BTF named @name (a module's). */
static int cmd_btf_hold(const char *name)
{
	union bpf_attr a;
	__u32 id = 0;

	for (;;) {
		struct bpf_btf_info info;
		char n[64] = "";
		int fd;

		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (bpf_sys(BPF_BTF_GET_NEXT_ID, &a)) {
			printf("error %d no BTF named %s\n", errno, name);
			return 1;
		}
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.btf_id = id;
		fd = bpf_sys(BPF_BTF_GET_FD_BY_ID, &a);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		info.name = (__u64)(unsigned long)n;
		info.name_len = sizeof(n);
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = fd;
		a.info.info_len = sizeof(info);
		a.info.info = (__u64)(unsigned long)&info;
		if (!bpf_sys(BPF_OBJ_GET_INFO_BY_FD, &a) && !strcmp(n, name)) {
			printf("ok %u\n", id);
			fflush(stdout);
			for (;;)
				pause();
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	long long ns;
	int ret;

	if ((!strcmp(cmd, "load") || !strcmp(cmd, "swap")) && argc >= 3) {
		ret = do_load(argv[2], argc > 3 ? argv[3] : "",
			      strcmp(cmd, "swap") ? 0 : MODULE_INIT_HOTSWAP, &ns);
		return report(ret);
	}
	if (!strcmp(cmd, "swap-badargs") && argc == 4) {
		for (int i = 0; i < atoi(argv[3]); i++) {
			ret = do_load(argv[2], (const char *)1,
				      MODULE_INIT_HOTSWAP, &ns);
			if (ret != -EFAULT)
				return report(ret ? ret : -EINVAL);
		}
		return report(0);
	}
	if (!strcmp(cmd, "swap-as") && argc == 4) {
		if (setgid(atoi(argv[2])) || setuid(atoi(argv[2]))) {
			perror("setuid");
			return 2;
		}
		return report(do_load(argv[3], "", MODULE_INIT_HOTSWAP, &ns));
	}
	if (!strcmp(cmd, "unload") && argc == 3)
		return report(do_unload(argv[2]));
	if (!strcmp(cmd, "read") && argc == 3)
		return cmd_read(argv[2], 0);
	if (!strcmp(cmd, "sleep") && argc == 3)
		return cmd_read(argv[2], 1);
	if (!strcmp(cmd, "wake") && argc == 3)
		return cmd_wake(argv[2]);
	if (!strcmp(cmd, "hammer") && argc == 5)
		return cmd_hammer(argv[2], atoi(argv[3]), argv[4]);
	if (!strcmp(cmd, "bench-load") && argc == 5)
		return cmd_bench_load(argv[2], argv[3], atoi(argv[4]));
	if (!strcmp(cmd, "bench-swap") && argc == 5)
		return cmd_bench_swap(argv[2], argv[3], atoi(argv[4]));
	if (!strcmp(cmd, "btf-hold") && argc == 3)
		return cmd_btf_hold(argv[2]);
	if (!strcmp(cmd, "bench-read") && argc == 4)
		return cmd_bench_read(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: see the comment at the top of msw.c\n");
	return 2;
}
