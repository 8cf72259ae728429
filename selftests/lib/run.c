// SPDX-License-Identifier: MIT
/*
 * run.c: running ckpt and a small JSON syntax check, for tests that call the ckpt binary
 * (see run.h).
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"

/* ---------------------------------------------------------------- running ckpt */

bool run_find_ckpt(char *buf, size_t size)
{
	const char *env = getenv("CKPT");
	char exe[PATH_MAX], cand[PATH_MAX + 16];
	ssize_t n;

	if (env && *env) {
		snprintf(cand, sizeof(cand), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return false;
		exe[n] = 0;
		snprintf(cand, sizeof(cand), "%s/../../ckpt", dirname(exe));
	}
	return size >= PATH_MAX && realpath(cand, buf) && !access(buf, X_OK);
}

/* The first RUN_OUT_MAX bytes of the memfd fd, which is closed. */
static char *run_slurp(int fd)
{
	char *buf = calloc(1, RUN_OUT_MAX + 1);
	ssize_t n;

	if (buf) {
		n = pread(fd, buf, RUN_OUT_MAX, 0);
		buf[n > 0 ? n : 0] = 0;
	}
	close(fd);
	return buf;
}

void run_ckpt(struct run_result *r, const char *ckpt, const char *const *args)
{
	const char *argv[RUN_MAX_ARGS + 2] = { ckpt };
	int out = memfd_create("out", 0), err = memfd_create("err", 0), status;
	pid_t pid;

	for (int i = 0; args[i] && i < RUN_MAX_ARGS; i++)
		argv[i + 1] = args[i];
	r->status = -1;
	r->out = r->err = NULL;
	if (out < 0 || err < 0)
		return;
	pid = fork();
	if (pid == 0) {
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		execv(ckpt, (char *const *)argv);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r->status = WEXITSTATUS(status);
	r->out = run_slurp(out);
	r->err = run_slurp(err);
}

void run_result_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
}

/* ---------------------------------------------------------------- JSON syntax */

static const char *run_json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *run_json_value(const char *p, int depth);

static const char *run_json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i]))
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return *p == '"' ? p + 1 : NULL;
}

static const char *run_json_number(const char *p)
{
	const char *start;

	if (*p == '-')
		p++;
	start = p;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == start || (*start == '0' && p - start > 1))
		return NULL;
	return p;
}

static const char *run_json_value(const char *p, int depth)
{
	char close;

	p = run_json_ws(p);
	if (depth > 32)
		return NULL;
	if (*p == '"')
		return run_json_string(p);
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p != '{' && *p != '[')
		return run_json_number(p);
	close = *p == '{' ? '}' : ']';
	p = run_json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			p = run_json_string(run_json_ws(p));
			if (!p)
				return NULL;
			p = run_json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = run_json_value(p, depth + 1);
		if (!p)
			return NULL;
		p = run_json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

bool run_json_valid(const char *text)
{
	const char *p = run_json_value(text, 0);

	return p && !*run_json_ws(p);
}
