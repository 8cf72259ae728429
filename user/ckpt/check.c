// SPDX-License-Identifier: MIT
#define LOG_PREFIX "check: "
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "aio_inflight.h"
#include "ckpt.h"
#include "kerndat.h"
#include "log.h"

/* Measurements worth seeing next to a feature that works. */
static void check_detail(const struct kerndat *kd, enum kerndat_feature f, char *buf, size_t len)
{
	buf[0] = '\0';
	switch (f) {
	case KD_PTRACE_XSTATE:
		snprintf(buf, len, " (%u bytes, XCR0 0x%" PRIx64 ")", kd->xsave_size, kd->xcr0);
		break;
	case KD_VDSO:
		snprintf(buf, len, " ([vvar] %" PRIu64 ", [vvar_vclock] %" PRIu64 ", [vdso] %" PRIu64
			 " bytes)", kd->vvar_size, kd->vvar_vclock_size, kd->vdso_size);
		break;
	case KD_UFFD_WP_ASYNC:
		snprintf(buf, len, " (features 0x%" PRIx64 ")", kd->uffd_features);
		break;
	default:
		break;
	}
}

static void check_usage(FILE *f)
{
	fprintf(f, "usage: ckpt check [-v[N]] [-o LOG]\n"
		   "  probe the kernel features ckpt needs; exit 1 if a required one is missing\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct kerndat kd;
	int opt, ret, missing = 0;
	char detail[128];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "v::o:h", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			check_usage(stdout);
			return 0;
		}
		ret = opts_common(opt, optarg);
		if (ret == 1)
			continue;
		if (ret == 0)
			check_usage(stderr);
		return 2;
	}
	if (optind != argc) {
		check_usage(stderr);
		return 2;
	}

	ret = kerndat_probe(&kd);
	if (ret) {
		pr_errno(ret, "cannot probe the kernel");
		return 1;
	}
	for (int f = 0; f < KD_NR_FEATURES; f++) {
		bool req = kerndat_required(f);

		if (kd.has[f]) {
			check_detail(&kd, f, detail, sizeof(detail));
			printf("ok      %s%s\n", kerndat_name(f), detail);
			continue;
		}
		printf("%s %s (%sneeds %s): %s\n", req ? "MISSING" : "missing", kerndat_name(f),
		       req ? "" : "optional, ", kerndat_needs(f), kd.why[f]);
		if (req)
			missing++;
	}
	/* The dump's AIO in-flight count needs its BPF iterator to load here. */
	ret = aio_inflight_open();
	if (!ret)
		printf("ok      AIO requests in flight countable (BPF task iterator over kioctx)\n");
	else
		printf("missing AIO requests in flight countable (optional, needs BPF task iterators "
		       "and BTF; without, the dump waits for a quiet ring): %s\n", strerror(-ret));
	aio_inflight_close();
	if (missing)
		printf("%d required feature%s missing\n", missing, missing == 1 ? "" : "s");
	if (fflush(stdout)) {
		pr_perror("cannot write the output");
		return 1;
	}
	return missing ? 1 : 0;
}
