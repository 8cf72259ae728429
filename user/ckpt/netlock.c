// SPDX-License-Identifier: MIT
/*
 * Network lock: between the dump that kills a tree and the restore that
 * brings it back, its TCP connections do not exist. A segment a peer sends
 * meanwhile would be answered with a reset, and a SYN to a listener with a
 * refusal. An nftables table drops incoming packets to the dumped TCP
 * sockets instead, so the peers retransmit until the restored sockets take
 * them. The table is made by `nft` (nftables) just before the kill, named
 * in inventory.img, and deleted by the restore once every task is back and
 * before the connections leave repair mode.
 */
#define LOG_PREFIX "netlock: "
#include <arpa/inet.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.pb-c.h"

#include "log.h"
#include "netlock.h"

static const char *const nft_paths[] = { "nft", "/usr/sbin/nft", "/sbin/nft" };

/* Run `nft -f -` with script on its stdin. 0, -ENOENT without nft, -EIO if it failed. */
static int nft(const char *script)
{
	int in[2], status;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(log_get_fd() >= 0 ? log_get_fd() : 2, 1);
		for (size_t i = 0; i < sizeof(nft_paths) / sizeof(nft_paths[0]); i++)
			execvp(nft_paths[i], (char *const[]){ (char *)nft_paths[i], "-f", "-", NULL });
		_exit(127);
	}
	close(in[0]);
	size_t len = strlen(script);
	bool written = write(in[1], script, len) == (ssize_t)len;
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return written && WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* "ip daddr 127.0.0.1 tcp dport 80 " for a sockaddr; no address match for a wildcard. */
static int match(char *buf, size_t len, const ProtobufCBinaryData *a, bool dst)
{
	char addr[INET6_ADDRSTRLEN] = "";
	const char *dir = dst ? "d" : "s", *fam = "ip";
	unsigned port;

	if (a->len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const void *)a->data;
		if (s->sin_addr.s_addr != htonl(INADDR_ANY))
			inet_ntop(AF_INET, &s->sin_addr, addr, sizeof(addr));
		port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)a->data;
		if (!IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr))
			inet_ntop(AF_INET6, &s->sin6_addr, addr, sizeof(addr));
		port = ntohs(s->sin6_port);
		fam = "ip6";
	}
	if (addr[0])
		return snprintf(buf, len, "%s %saddr %s tcp %sport %u ", fam, dir, addr, dir, port);
	return snprintf(buf, len, "tcp %sport %u ", dir, port);
}

int netlock_lock(FileEntry **files, size_t nr, const char *name)
{
	size_t cap = 4096 + nr * 256, n = 0, rules = 0;
	char *s = malloc(cap);
	int err;

	if (!s)
		return -ENOMEM;
	n += snprintf(s + n, cap - n,
		      "table inet %s {\n chain input {\n  type filter hook input priority -200; policy accept;\n",
		      name);
	for (size_t i = 0; i < nr; i++) {
		const InetSkEntry *e = files[i]->inet_sk;
		if (files[i]->kind != FILE_KIND__FILE_INET || e->type != SOCK_STREAM || !e->has_local)
			continue;
		if (e->state != TCP_LISTEN && e->state != TCP_ESTABLISHED)
			continue;
		n += snprintf(s + n, cap - n, "  ");
		n += match(s + n, cap - n, &e->local, true);
		if (e->state == TCP_ESTABLISHED && e->has_peer)
			n += match(s + n, cap - n, &e->peer, false);
		n += snprintf(s + n, cap - n, "drop\n");
		rules++;
	}
	n += snprintf(s + n, cap - n, " }\n}\n");
	if (!rules) {
		free(s);
		return 1;
	}
	err = nft(s);
	if (err == -ENOENT)
		pr_warn("nft (nftables) is not installed: peers that send while the tree is down will see their connections reset");
	else if (err)
		pr_err("cannot lock the network of the dumped connections (nft failed; its message is above)");
	else
		pr_info("network locked: %zu rule(s) in table inet %s", rules, name);
	free(s);
	return err;
}

int netlock_unlock(const char *name)
{
	char script[128];
	int err;

	snprintf(script, sizeof(script), "delete table inet %s\n", name);
	err = nft(script);
	if (err)
		pr_warn("cannot unlock the network: deleting nftables table inet %s failed", name);
	else
		pr_info("network unlocked (table inet %s)", name);
	return err;
}

bool netlock_exists(const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		for (size_t i = 0; i < sizeof(nft_paths) / sizeof(nft_paths[0]); i++)
			execvp(nft_paths[i], (char *const[]){ (char *)nft_paths[i], "list", "table",
							      "inet", (char *)name, NULL });
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
