// SPDX-License-Identifier: MIT
/*
 * apps_test: real programs, driven as a user would, survive a dump and restore while in use.
 *
 *  - redis: `redis-server` (Debian package, installed by scripts/install-deps.sh; a missing
 *    one is a failure) holds 500 keys and a connected client (the runner, outside the dump).
 *    A request sent on that connection while the server is gone (between dump and restore)
 *    is answered after the restore; every key is there through the same connection, which
 *    goes on working, and a new connection works too.
 *  - http_server: `python3 -m http.server` serves a file while a client (a process outside
 *    the dump) keeps fetching it, one connection per request, before, during and after the
 *    dump and restore: no response is wrong or cut short, and fetching goes on after the
 *    restore. New connections made while the server is frozen are held off (their SYN is
 *    dropped) and go through when the client sends it again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"

CR_FIXTURE(apps);

#define IO_MS		15000
#define NR_KEYS		500

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* A free TCP port on 127.0.0.1 (free now; the server binds it right after). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (s >= 0 && !bind(s, (void *)&a, sizeof(a)) && !getsockname(s, (void *)&a, &len))
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static int connect_port(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	if (connect(s, (void *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Reads until buf holds `want` (a complete reply), EOF, or the deadline. */
static ssize_t read_until(int s, char *buf, size_t size, const char *want, long deadline)
{
	size_t got = 0;

	buf[0] = 0;
	while (got + 1 < size && !strstr(buf, want)) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		long left = deadline - now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return -1;
		ssize_t n = read(s, buf + got, size - 1 - got);
		if (n <= 0)
			break;
		got += n;
		buf[got] = 0;
	}
	return got;
}

/* One redis command in RESP; the reply must contain want. */
static int redis_cmd(struct cr_run *r, int s, const char *want, int argc, const char *const *argv)
{
	char req[512], rep[512];
	int n = snprintf(req, sizeof(req), "*%d\r\n", argc);

	for (int i = 0; i < argc; i++)
		n += snprintf(req + n, sizeof(req) - n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	if (write(s, req, n) != n)
		return cr_fail(r, "redis: write: %s", strerror(errno));
	if (read_until(s, rep, sizeof(rep), want, now_ms() + IO_MS) < 0 || !strstr(rep, want))
		return cr_fail(r, "redis: %s %s: reply '%.60s', expected '%s'", argv[0],
			       argc > 1 ? argv[1] : "", rep, want);
	return 0;
}

/* The victim: nothing but the program, exec'ed once the runner knows its PID. */
struct prog {
	const char *const *argv;
	const char *what;
};

static int victim_exec(void *arg)
{
	const struct prog *p = arg;

	cr_victim_ready();
	execvp(p->argv[0], (char *const *)p->argv);
	dprintf(2, "victim: cannot run %s: %s (scripts/install-deps.sh installs it)\n", p->what,
		strerror(errno));
	_exit(2);
}

/* Waits (bounded) until something accepts connections on port. */
static int wait_listening(struct cr_run *r, int port, const char *what)
{
	for (long deadline = now_ms() + IO_MS; now_ms() < deadline;) {
		int s = connect_port(port);
		if (s >= 0) {
			close(s);
			return 0;
		}
		struct timespec ms = { 0, 10 * 1000 * 1000 };
		nanosleep(&ms, NULL);
	}
	return cr_fail(r, "%s does not listen on port %d (see victim.out)", what, port);
}

static int dump_restore(struct cr_run *r, pid_t victim)
{
	int status;

	if (cr_dump(r, "dump", victim, false, NULL, &status) || cr_expect_ok(r, "dump", status) ||
	    cr_reap_dumped(r, victim))
		return -1;
	return 0;
}

static int finish_restore(struct cr_run *r, pid_t victim)
{
	pid_t restored;
	int status;

	if (cr_restore(r, "restore", &status, &restored) || cr_expect_ok(r, "restore", status))
		return -1;
	if (restored != victim)
		return cr_fail(r, "restored as %d, dumped as %d", restored, victim);
	return 0;
}

/* ---- redis ---- */

static int flow_redis(struct cr_run *r)
{
	char port_s[16], key[32], val[64], want[80], logf[PATH_MAX], dir[PATH_MAX];
	const char *argv[] = { "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save", "",
			       "--appendonly", "no", "--daemonize", "no", "--dir", dir,
			       "--logfile", logf, NULL };
	struct prog p = { argv, "redis-server" };
	int port = free_port(), s, s2;
	pid_t victim;

	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(dir, sizeof(dir), "%s", r->env->dir);
	snprintf(logf, sizeof(logf), "%s/redis.log", r->env->dir);
	if (port < 0 || cr_victim_spawn(r, victim_exec, &p, false, &victim) ||
	    wait_listening(r, port, "redis-server"))
		return -1;
	s = connect_port(port);
	if (s < 0)
		return cr_fail(r, "connect to redis: %s", strerror(errno));
	for (int i = 0; i < NR_KEYS; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "value-%d-%x", i, i * 2654435761u);
		if (redis_cmd(r, s, "+OK", 3, (const char *const[]){ "SET", key, val }))
			return -1;
	}
	if (dump_restore(r, victim))
		return -1;
	/* The server is gone: this request waits in our socket until it is back. */
	char req[64];
	int n = snprintf(req, sizeof(req), "*2\r\n$3\r\nGET\r\n$5\r\nkey:0\r\n");
	if (write(s, req, n) != n)
		return cr_fail(r, "write during the downtime: %s", strerror(errno));
	if (finish_restore(r, victim))
		return -1;
	snprintf(want, sizeof(want), "value-0-%x", 0u);
	char rep[128];
	if (read_until(s, rep, sizeof(rep), want, now_ms() + IO_MS) < 0 || !strstr(rep, want))
		return cr_fail(r, "the request sent while the server was gone got '%.60s'", rep);
	for (int i = 0; i < NR_KEYS; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(want, sizeof(want), "value-%d-%x", i, i * 2654435761u);
		if (redis_cmd(r, s, want, 2, (const char *const[]){ "GET", key }))
			return -1;
	}
	if (redis_cmd(r, s, "+OK", 3, (const char *const[]){ "SET", "after", "restore" }))
		return -1;
	s2 = connect_port(port);
	if (s2 < 0)
		return cr_fail(r, "new connection to the restored redis: %s", strerror(errno));
	if (redis_cmd(r, s2, "restore", 2, (const char *const[]){ "GET", "after" }))
		return -1;
	close(s2);
	close(s);
	cr_note(r, "redis: %d keys back through the same connection", NR_KEYS);
	kill(victim, SIGTERM);
	return 0;
}

TEST_F(apps, redis)
{
	static const struct cr_case c = { .flow = flow_redis };

	cr_run_case(_metadata, &self->env, &c);
}

/* ---- python3 -m http.server ---- */

#define BODY_LEN 3000

static unsigned char body_at(size_t i)
{
	return 'a' + (i * 7) % 26;
}

/* The client: fetches in a loop until told to stop; reports ok/bad/refused on fd out. */
static void __attribute__((noreturn)) http_client(int port, int stop_fd, int out)
{
	long counts[4] = { 0 };	/* ok, bad, refused, ok after the stop request was armed */
	static char buf[BODY_LEN + 4096];

	alarm(120);
	for (;;) {
		struct pollfd p = { .fd = stop_fd, .events = POLLIN };
		if (poll(&p, 1, 0) == 1)
			break;
		int s = connect_port(port);
		if (s < 0) {
			counts[2]++;
			struct timespec ms = { 0, 20 * 1000 * 1000 };
			nanosleep(&ms, NULL);
			continue;
		}
		const char *req = "GET /body.txt HTTP/1.0\r\n\r\n";
		ssize_t n = write(s, req, strlen(req)) == (ssize_t)strlen(req) ?
			    read_until(s, buf, sizeof(buf), "\xff", now_ms() + IO_MS) : -1;
		char *b = n > 0 ? strstr(buf, "\r\n\r\n") : NULL;
		bool ok = b && n - (b + 4 - buf) == BODY_LEN;
		for (size_t i = 0; ok && i < BODY_LEN; i++)
			ok = (unsigned char)b[4 + i] == body_at(i);
		counts[ok ? 0 : 1]++;
		close(s);
	}
	(void)!write(out, counts, sizeof(counts));
	_exit(0);
}

static int flow_http(struct cr_run *r)
{
	char port_s[16], path[PATH_MAX + 16], dir[PATH_MAX];
	const char *argv[] = { "python3", "-m", "http.server", port_s, "--bind", "127.0.0.1",
			       "--directory", dir, NULL };
	struct prog p = { argv, "python3" };
	long after[4];
	int port = free_port(), stop[2], res[2], fd;
	pid_t victim, client;

	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(dir, sizeof(dir), "%s/www", r->env->dir);
	snprintf(path, sizeof(path), "%s/body.txt", dir);
	if (mkdir(dir, 0755) < 0)
		return cr_fail(r, "mkdir: %s", strerror(errno));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (size_t i = 0; fd >= 0 && i < BODY_LEN; i++) {
		unsigned char c = body_at(i);
		if (write(fd, &c, 1) != 1)
			return cr_fail(r, "write body: %s", strerror(errno));
	}
	if (fd < 0)
		return cr_fail(r, "create %s: %s", path, strerror(errno));
	close(fd);
	if (port < 0 || cr_victim_spawn(r, victim_exec, &p, false, &victim) ||
	    wait_listening(r, port, "python3 -m http.server"))
		return -1;
	if (pipe2(stop, O_CLOEXEC) || pipe2(res, O_CLOEXEC))
		return cr_fail(r, "pipe: %s", strerror(errno));
	/* Outside the dumped tree: a child of the runner, started before the dump. */
	client = fork();
	if (client == 0)
		http_client(port, stop[0], res[1]);
	close(stop[0]);
	close(res[1]);
	/* Let it fetch a while before the dump (bounded by the server answering). */
	struct timespec warm = { 0, 300 * 1000 * 1000 };
	nanosleep(&warm, NULL);
	if (dump_restore(r, victim) || finish_restore(r, victim))
		return -1;
	nanosleep(&warm, NULL);
	(void)!write(stop[1], "x", 1);
	struct pollfd pf = { .fd = res[0], .events = POLLIN };
	if (poll(&pf, 1, IO_MS) != 1 || read(res[0], after, sizeof(after)) != sizeof(after))
		return cr_fail(r, "the client did not report");
	waitpid(client, NULL, 0);
	cr_note(r, "http client: %ld ok, %ld wrong or cut, %ld refused", after[0], after[1],
		after[2]);
	if (after[1])
		return cr_fail(r, "%ld of %ld responses were wrong or cut short", after[1],
			       after[0] + after[1]);
	/* A request made after the restore must work too. */
	int s = connect_port(port);
	char buf[BODY_LEN + 4096];
	const char *req = "GET /body.txt HTTP/1.0\r\n\r\n";
	if (s < 0 || write(s, req, strlen(req)) != (ssize_t)strlen(req) ||
	    read_until(s, buf, sizeof(buf), "\xff", now_ms() + IO_MS) <= 0 || !strstr(buf, "200"))
		return cr_fail(r, "a request to the restored server failed");
	close(s);
	kill(victim, SIGTERM);
	return 0;
}

TEST_F(apps, http_server)
{
	static const struct cr_case c = { .flow = flow_http };

	cr_run_case(_metadata, &self->env, &c);
}

TEST_HARNESS_MAIN
