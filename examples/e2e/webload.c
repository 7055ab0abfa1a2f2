// SPDX-License-Identifier: GPL-2.0
/*
 * webload: the guest side of the modswap experiment (cargo xtask demo):
 * a WebBench-like load on busybox httpd, writers, module loads and probes.
 * Built statically and put into the initramfs next to busybox.
 *
 *   webload mkset DIR
 *	writes the file set under DIR: FILES files in four directories with a
 *	WebBench-like mix of sizes; the content of each file is a function of
 *	its number, so clients check what they fetch without a manifest
 *   webload serve PORT DIR
 *	serves DIR on 127.0.0.1:PORT with busybox httpd in inetd mode
 *   webload web PORT SECONDS CLIENTS
 *	CLIENTS processes fetch files of the set from 127.0.0.1:PORT (HTTP/1.0)
 *	for SECONDS (or until /tmp/e2e.stop exists) and check status, length and checksum of every answer;
 *	prints one "E2E-RPS <second> <ok> <failed>" line per second of the
 *	run (CLOCK_MONOTONIC seconds, as "webload now" prints) and
 *	"E2E-WEB requests=N failed=N mismatches=N"; exit 1 on any failure
 *   webload write DIR SECONDS WRITERS STYLE
 *	WRITERS processes create, append to, rename, read back and delete
 *	files under DIR for SECONDS (or until /tmp/e2e.stop exists); STYLE names the files for the filesystem
 *	(long: vfat, dos: 8.3 names for msdos, bfs: at most 14 characters);
 *	prints "E2E-WRITE DIR ops=N errors=N"; exit 1 on any error
 *   webload load FILE
 *	finit_module(); prints "ok <us>" or "error <errno> <name> <us>"
 *   webload swap FILE
 *	the same with MODULE_INIT_HOTSWAP: replaces the loaded version
 *   webload unload NAME
 *   webload namelen PATH	prints statfs()'s f_namelen
 *   webload create PATH	open(O_CREAT); prints "ok" (and unlinks) or
 *				the errno name
 *   webload mkdir PATH	mkdir(); prints "ok" (and rmdir) or the errno name
 *   webload now		prints CLOCK_MONOTONIC in seconds (3 decimals)
 *   webload bench-load FILE NAME N
 *	N load/unload cycles: prints "min_us=M median_us=D"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILES		200
#define MAX_SECONDS	4096
#define MAX_BODY	(600 * 1024)
/* The load stops early when this file exists. */
#define STOP_FILE	"/tmp/e2e.stop"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: the content generator and the clients' choices. */
static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/*
 * The file set, after WebBench's static mix: many small files, which take
 * most requests, and a few large ones.
 */
struct class {
	int first, count;	/* file numbers */
	int min, max;		/* size range in bytes */
	int weight;		/* share of requests in percent */
};

static const struct class classes[] = {
	{ 0, 70, 512, 1024, 35 },
	{ 70, 80, 1024, 10 * 1024, 50 },
	{ 150, 40, 10 * 1024, 100 * 1024, 14 },
	{ 190, 10, 100 * 1024, 500 * 1024, 1 },
};

static int file_size(int i)
{
	const struct class *c = classes;
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(i + 1);

	while (i >= c->first + c->count)
		c++;
	return c->min + next(&s) % (uint64_t)(c->max - c->min + 1);
}

static void file_path(int i, char *buf, size_t len)
{
	snprintf(buf, len, "d%d/f%03d.html", i % 4, i);
}

static void fill(uint64_t seed, unsigned char *buf, size_t len)
{
	uint64_t s = seed * 0x100000001b3ULL + 1;
	size_t j;

	for (j = 0; j < len; j++) {
		if (j % 8 == 0)
			next(&s);
		buf[j] = (unsigned char)(s >> (8 * (j % 8)));
	}
}

/* FNV-1a, 64 bits. */
static uint64_t fnv(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int mkset(const char *dir)
{
	static unsigned char buf[MAX_BODY];
	char path[512], rel[64];
	int i, fd;

	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/d%d", dir, i);
		if (mkdir(path, 0755) && errno != EEXIST) {
			perror(path);
			return 1;
		}
	}
	for (i = 0; i < FILES; i++) {
		int size = file_size(i);

		file_path(i, rel, sizeof(rel));
		snprintf(path, sizeof(path), "%s/%s", dir, rel);
		fill(i, buf, size);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write_all(fd, buf, size) || close(fd)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

/* Per-second counters shared by the clients. */
struct web_stats {
	long requests, failed, mismatches;
	long ok_at[MAX_SECONDS], failed_at[MAX_SECONDS];
	long printed;	/* failures reported so far */
};

static struct web_stats *stats;
static long base_second;

static void count(int ok, int mismatch, const char *what, int file)
{
	long sec = (long)now_s() - base_second;

	__atomic_add_fetch(&stats->requests, 1, __ATOMIC_RELAXED);
	if (sec >= 0 && sec < MAX_SECONDS)
		__atomic_add_fetch(ok ? &stats->ok_at[sec] :
				   &stats->failed_at[sec], 1, __ATOMIC_RELAXED);
	if (ok)
		return;
	__atomic_add_fetch(&stats->failed, 1, __ATOMIC_RELAXED);
	if (mismatch)
		__atomic_add_fetch(&stats->mismatches, 1, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&stats->printed, 1, __ATOMIC_RELAXED) <= 20)
		printf("E2E-FAIL web file %d at %.3f: %s (errno %d)\n", file,
		       now_s(), what, errno);
}

/* One GET; 0 when the answer is complete and its checksum right. */
static void fetch(int port, int file, const uint64_t *sums, char *buf)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 10 };
	char req[128], rel[64], *body;
	size_t got = 0;
	long want = file_size(file);
	int fd;

	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	file_path(file, rel, sizeof(rel));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		count(0, 0, "socket", file);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		count(0, 0, "connect", file);
		goto out;
	}
	snprintf(req, sizeof(req), "GET /%s HTTP/1.0\r\nHost: e2e\r\n\r\n",
		 rel);
	if (write_all(fd, req, strlen(req))) {
		count(0, 0, "send", file);
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (got == MAX_BODY + 4096) {
			count(0, 0, "answer too long", file);
			goto out;
		}
		n = read(fd, buf + got, MAX_BODY + 4096 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			count(0, 0, "receive (timeout?)", file);
			goto out;
		}
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 200", 4)) {
		count(0, 0, "status not 200", file);
		goto out;
	}
	body = memmem(buf, got, "\r\n\r\n", 4);
	if (!body) {
		count(0, 0, "no end of headers", file);
		goto out;
	}
	body += 4;
	if (buf + got - body != want) {
		errno = 0;
		count(0, 1, "wrong length", file);
		goto out;
	}
	if (fnv((unsigned char *)body, want) != sums[file]) {
		errno = 0;
		count(0, 1, "checksum mismatch", file);
		goto out;
	}
	count(1, 0, NULL, file);
out:
	close(fd);
}

/*
 * An inetd for busybox httpd: accepts on 127.0.0.1:PORT with a deep
 * backlog and runs "httpd -i" per connection. (httpd's own listener has a
 * backlog of 9: with 50 clients under TCG, SYNs get dropped until some
 * connect() takes longer than the clients' 10 s.)
 */
static int serve(int port, const char *home)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(fd, 1024)) {
		perror("serve");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pid_t pid;

		if (c < 0)
			continue;
		pid = fork();
		if (pid == 0) {
			dup2(c, 0);
			dup2(c, 1);
			close(c);
			close(fd);
			execl("/bin/busybox", "httpd", "-i", "-h", home,
			      (char *)NULL);
			_exit(127);
		}
		close(c);
	}
}

static int pick(uint64_t *s)
{
	int w = next(s) % 100, k = 0;

	while (w >= classes[k].weight) {
		w -= classes[k].weight;
		k++;
	}
	return classes[k].first + next(s) % classes[k].count;
}

static int web(int port, int seconds, int clients)
{
	static unsigned char content[MAX_BODY];
	uint64_t sums[FILES];
	double end;
	long last, sec;
	int i, status, bad = 0;

	for (i = 0; i < FILES; i++) {
		fill(i, content, file_size(i));
		sums[i] = fnv(content, file_size(i));
	}
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	base_second = (long)now_s();
	end = now_s() + seconds;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("E2E-WEB start %.3f clients=%d\n", now_s(), clients);
	for (i = 0; i < clients; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			uint64_t s = 0x51ed2701ULL + i * 7919ULL;
			char *buf = malloc(MAX_BODY + 4096 + 1);

			if (!buf)
				_exit(2);
			while (now_s() < end && access(STOP_FILE, F_OK))
				fetch(port, pick(&s), sums, buf);
			_exit(0);
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	last = (long)now_s() - base_second;
	for (sec = 0; sec <= last && sec < MAX_SECONDS; sec++)
		printf("E2E-RPS %ld %ld %ld\n", base_second + sec,
		       stats->ok_at[sec], stats->failed_at[sec]);
	printf("E2E-WEB requests=%ld failed=%ld mismatches=%ld clients_lost=%d\n",
	       stats->requests, stats->failed, stats->mismatches, bad);
	return stats->failed || bad || !stats->requests;
}

static void name_of(const char *style, int w, const char *kind, int n,
		    char *buf, size_t len)
{
	if (!strcmp(style, "dos"))
		snprintf(buf, len, "W%d%s%02d.DAT", w, kind, n % 100);
	else if (!strcmp(style, "bfs"))
		snprintf(buf, len, "w%d%s%02d", w, kind, n % 100);
	else
		snprintf(buf, len, "writer %d %s file %d.data", w, kind, n);
}

static int writer(const char *dir, int w, double end, const char *style,
		  long *ops)
{
	static unsigned char buf[64 * 1024], back[64 * 1024];
	char tmp[256], final[256], rel[64];
	uint64_t s = 0xabcdef12345ULL + w;
	int n, fd, errors = 0;
	int small = !strcmp(style, "bfs");

	for (n = 0; now_s() < end && access(STOP_FILE, F_OK); n++) {
		size_t a = 1 + next(&s) % (small ? 2048 : 16384);
		size_t b = 1 + next(&s) % (small ? 2048 : 16384);
		ssize_t got;

		name_of(style, w, "T", 0, rel, sizeof(rel));
		snprintf(tmp, sizeof(tmp), "%s/%s", dir, rel);
		name_of(style, w, "F", n % 6, rel, sizeof(rel));
		snprintf(final, sizeof(final), "%s/%s", dir, rel);
		fill(n * 31 + w, buf, a + b);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write_all(fd, buf, a) || close(fd))
			goto fail;
		fd = open(tmp, O_WRONLY | O_APPEND);
		if (fd < 0 || write_all(fd, buf + a, b))
			goto fail;
		/* BFS has no fsync (EINVAL). */
		if (!small && n % 8 == 0 && fsync(fd))
			goto fail;
		if (close(fd))
			goto fail;
		/*
		 * BFS (6.12) renaming over an existing file leaves the target's
		 * entry pointing at the replaced inode: remove it first.
		 */
		if (small && unlink(final) && errno != ENOENT)
			goto fail;
		if (rename(tmp, final))
			goto fail;
		fd = open(final, O_RDONLY);
		if (fd < 0)
			goto fail;
		got = read(fd, back, sizeof(back));
		close(fd);
		if (got != (ssize_t)(a + b) || memcmp(buf, back, a + b)) {
			printf("E2E-FAIL write %s: read back %zd bytes, wrote %zu%s\n",
			       final, got, a + b,
			       got == (ssize_t)(a + b) ? ", content differs" : "");
			errors++;
			continue;
		}
		if (n % 5 == 4 && unlink(final))
			goto fail;
		*ops += 1;
		/*
		 * BFS never reuses the space of a deleted file that is not the
		 * last one on the disk: pace its writer (at most 100 operations
		 * a second) so that the image lasts the whole run.
		 */
		if (small)
			usleep(10000);
		continue;
fail:
		printf("E2E-FAIL write %s step %d (%s): %s\n", dir, n, final,
		       strerror(errno));
		if (fd >= 0)
			close(fd);
		errors++;
		if (errors > 20)
			break;
	}
	return errors;
}

static int write_cmd(const char *dir, int seconds, int writers,
		     const char *style)
{
	long *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double end = now_s() + seconds;
	int i, status, errors = 0;
	long ops = 0;

	if (shared == MAP_FAILED)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < writers; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			long mine = 0;
			int e = writer(dir, i, end, style, &mine);

			__atomic_add_fetch(&shared[0], mine, __ATOMIC_RELAXED);
			_exit(e ? 1 : 0);
		}
		if (pid < 0)
			return 1;
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			errors++;
	ops = shared[0];
	printf("E2E-WRITE %s ops=%ld errors=%d\n", dir, ops, errors);
	return errors || !ops;
}

/* finit_module() flag of the hotswap kernel: replace the loaded version. */
#define MODULE_INIT_HOTSWAP 8

static int load(const char *path, int flags, long long *us)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	double t;
	int ret;

	if (fd < 0)
		return -errno;
	t = now_s();
	ret = syscall(SYS_finit_module, fd, "", flags) ? -errno : 0;
	*us = (long long)((now_s() - t) * 1e6);
	close(fd);
	return ret;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static int bench_load(const char *path, const char *name, int n)
{
	long long *t = calloc(n, sizeof(*t));
	int i, ret;

	if (!t)
		return 1;
	for (i = 0; i < n; i++) {
		ret = load(path, 0, &t[i]);
		if (ret) {
			printf("error %d %s\n", -ret, strerrorname_np(-ret));
			return 1;
		}
		if (syscall(SYS_delete_module, name, O_NONBLOCK)) {
			printf("error unload %s: %s\n", name, strerror(errno));
			return 1;
		}
	}
	qsort(t, n, sizeof(*t), cmp_ll);
	printf("min_us=%lld median_us=%lld\n", t[0], t[n / 2]);
	return 0;
}

static int errno_result(int ret)
{
	printf("%s\n", ret ? strerrorname_np(ret) : "ok");
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	long long us;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	/*
	 * The load runs at a lower priority than the guest's shell, which
	 * swaps the modules: on 2 emulated CPUs shared with 50 clients the
	 * swapping would otherwise mostly wait for a CPU.
	 */
	if ((!strcmp(cmd, "web") || !strcmp(cmd, "write") ||
	     !strcmp(cmd, "serve")) && nice(10) == -1)
		perror("nice");
	if (!strcmp(cmd, "mkset") && argc == 3)
		return mkset(argv[2]);
	if (!strcmp(cmd, "serve") && argc == 4)
		return serve(atoi(argv[2]), argv[3]);
	if (!strcmp(cmd, "web") && argc == 5)
		return web(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	if (!strcmp(cmd, "write") && argc == 6)
		return write_cmd(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5]);
	if ((!strcmp(cmd, "load") || !strcmp(cmd, "swap")) && argc == 3) {
		ret = load(argv[2], strcmp(cmd, "swap") ? 0 : MODULE_INIT_HOTSWAP,
			   &us);
		if (ret)
			printf("error %d %s %lld\n", -ret, strerrorname_np(-ret), us);
		else
			printf("ok %lld\n", us);
		return ret ? 1 : 0;
	}
	if (!strcmp(cmd, "unload") && argc == 3) {
		if (syscall(SYS_delete_module, argv[2], O_NONBLOCK)) {
			printf("error %s\n", strerrorname_np(errno));
			return 1;
		}
		printf("ok\n");
		return 0;
	}
	if (!strcmp(cmd, "namelen") && argc == 3) {
		struct statfs st;

		if (statfs(argv[2], &st)) {
			perror(argv[2]);
			return 1;
		}
		printf("%ld\n", (long)st.f_namelen);
		return 0;
	}
	if (!strcmp(cmd, "create") && argc == 3) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0644);

		if (fd >= 0) {
			close(fd);
			unlink(argv[2]);
		}
		return errno_result(fd < 0 ? errno : 0);
	}
	if (!strcmp(cmd, "mkdir") && argc == 3) {
		ret = mkdir(argv[2], 0755);
		if (!ret)
			rmdir(argv[2]);
		return errno_result(ret ? errno : 0);
	}
	if (!strcmp(cmd, "now") && argc == 2) {
		printf("%.3f\n", now_s());
		return 0;
	}
	if (!strcmp(cmd, "bench-load") && argc == 5)
		return bench_load(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of webload.c\n");
	return 2;
}
