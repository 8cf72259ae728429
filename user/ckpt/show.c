// SPDX-License-Identifier: MIT
/*
 * ckpt show: decode image files and trackd's changelog. Messages are walked
 * through their protobuf-c descriptors, so a new field shows up here without
 * code changes; every entry comes from img_read() or cl_next() and has passed
 * the codec's field checks.
 */
#define LOG_PREFIX "show: "
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>

#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#include "changelog.h"
#include "ckpt.h"
#include "crc32c.h"
#include "image.h"
#include "log.h"
#include "pagechain.h"

#define SHOW_PAGE_SIZE		4096
#define SHOW_TEXT_BYTES		32	/* bytes fields longer than this are cut in text */

struct show {
	FILE *out;
	bool json;
	bool line;		/* text on one line, " name value" per field: changelog records */
	uint64_t since;		/* changelog records with a greater seq only */
	int nr_images;		/* images (--pages: lines) printed so far, for JSON commas */
};

static void show_indent(struct show *s, int depth)
{
	fprintf(s->out, "%*s", 2 * depth, "");
}

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when the
 * bytes there are not one: no overlong forms, no surrogates, nothing past
 * U+10FFFF.
 */
static size_t show_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* A JSON string. Bytes that are not UTF-8 are shown as U+0080..U+00FF. */
static void show_json_str(struct show *s, const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', s->out);
	while (n) {
		size_t len = show_utf8_len(p, n);

		if (len > 1) {
			fwrite(p, 1, len, s->out);
		} else if (len == 0 || *p < 0x20) {
			fprintf(s->out, "\\u%04x", *p);
			len = 1;
		} else if (*p == '"' || *p == '\\') {
			fprintf(s->out, "\\%c", *p);
		} else {
			fputc(*p, s->out);
		}
		p += len;
		n -= len;
	}
	fputc('"', s->out);
}

/* A quoted string for the text dump: printable and UTF-8 as is, others \xNN. */
static void show_text_str(struct show *s, const char *str)
{
	const unsigned char *p = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('\'', s->out);
	while (n) {
		size_t len = show_utf8_len(p, n);

		if (len > 1) {
			fwrite(p, 1, len, s->out);
		} else if (len == 0 || *p < 0x20 || *p == 0x7f) {
			fprintf(s->out, "\\x%02x", *p);
			len = 1;
		} else if (*p == '\'' || *p == '\\') {
			fprintf(s->out, "\\%c", *p);
		} else {
			fputc(*p, s->out);
		}
		p += len;
		n -= len;
	}
	fputc('\'', s->out);
}

static void show_bytes(struct show *s, const ProtobufCBinaryData *b)
{
	size_t n = b->len;

	if (!s->json && n > SHOW_TEXT_BYTES)
		n = SHOW_TEXT_BYTES;
	if (s->json)
		fputc('"', s->out);
	for (size_t i = 0; i < n; i++)
		fprintf(s->out, "%02x", b->data[i]);
	if (s->json)
		fputc('"', s->out);
	else if (n < b->len)
		fprintf(s->out, "... (%zu bytes)", b->len);
	else if (!b->len)
		fprintf(s->out, "(empty)");
}

static bool show_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), m = strlen(suffix);

	return n >= m && !strcmp(name + n - m, suffix);
}

/* Fields that hold addresses, masks or flags read better in hex. */
static bool show_field_is_hex(const char *name)
{
	static const char *const exact[] = {
		"start", "end", "vaddr", "ip", "sp", "handler", "restorer", "brk", "pgoff",
		"blocked", "mask", "flags", "madv", "xfeatures", "clear_tid", "robust_list", "ptr",
		"zombie_status",
	};
	static const char *const suffix[] = { "_base", "_code", "_data", "_stack", "_brk" };

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(name, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++)
		if (show_has_suffix(name, suffix[i]))
			return true;
	return !strncmp(name, "arg_", 4) || !strncmp(name, "env_", 4) || !strncmp(name, "cap_", 4);
}

/*
 * ChangelogEntry: the other address-space fields, in hex like start;
 * DeltaEntry: its [start, end) address pairs and clone flags.
 */
static bool show_cl_field_is_hex(const ProtobufCMessageDescriptor *d, const char *name)
{
	if (!strcmp(d->name, "DeltaEntry"))
		return !strcmp(name, "added") || !strcmp(name, "removed") ||
		       !strcmp(name, "changed") || !strcmp(name, "touched") ||
		       !strcmp(name, "clone_flags");
	return !strcmp(d->name, "ChangelogEntry") &&
	       (!strcmp(name, "len") || !strcmp(name, "old_start") || !strcmp(name, "old_len"));
}

static void show_prot(struct show *s, uint64_t v)
{
	fprintf(s->out, "%c%c%c", v & 1 ? 'r' : '-', v & 2 ? 'w' : '-', v & 4 ? 'x' : '-');
}

/* VmaEntry.kind is a plain number in the schema; name it for people. */
static const char *show_vma_kind(uint32_t kind)
{
	static const char *const names[] = {
		[VMA_KIND_ANON] = "anon", [VMA_KIND_FILE_PRIVATE] = "file-private",
		[VMA_KIND_FILE_SHARED] = "file-shared", [VMA_KIND_SHARED_ANON] = "shared-anon",
		[VMA_KIND_VDSO] = "vdso", [VMA_KIND_VVAR] = "vvar",
	};

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : NULL;
}

/* DeltaEntry.state likewise. */
static const char *show_delta_state(uint32_t state)
{
	static const char *const names[] = {
		[DELTA_SAME] = "same", [DELTA_NEW] = "new", [DELTA_EXITED] = "exited",
		[DELTA_EXECED] = "execed",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : NULL;
}

static void show_message(struct show *s, const ProtobufCMessage *m, int depth);

/*
 * One value of a non-message field; p points at its storage in a message
 * of type d. JSON gets plain numbers; text dresses some of them up.
 */
static void show_value(struct show *s, const ProtobufCMessageDescriptor *d,
		       const ProtobufCFieldDescriptor *f, const void *p)
{
	bool hex = !s->json && (show_field_is_hex(f->name) || show_cl_field_is_hex(d, f->name));
	FILE *out = s->out;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		uint32_t v = *(const uint32_t *)p;

		const char *kind = NULL;

		if (!s->json && !strcmp(d->name, "VmaEntry") && !strcmp(f->name, "kind"))
			kind = show_vma_kind(v);
		if (!s->json && !strcmp(d->name, "DeltaEntry") && !strcmp(f->name, "state"))
			kind = show_delta_state(v);
		if (s->json)
			fprintf(out, "%" PRIu32, v);
		else if (!strcmp(f->name, "prot") && v <= 7)
			show_prot(s, v);
		else if (kind)
			fprintf(out, "%s (%" PRIu32 ")", kind, v);
		else if (!strcmp(f->name, "mode") || !strcmp(f->name, "umask"))
			fprintf(out, "0%" PRIo32, v);
		else
			fprintf(out, hex ? "0x%" PRIx32 : "%" PRIu32, v);
		break;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v = *(const uint64_t *)p;

		/* -1 and friends (RLIM_INFINITY, orig_ax) read better in hex too. */
		if (!s->json && v >> 63)
			hex = true;
		if (!s->json && !strcmp(f->name, "prot") && v <= 7)
			show_prot(s, v);
		else
			fprintf(out, hex ? "0x%" PRIx64 : "%" PRIu64, v);
		break;
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double v = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;

		if (s->json && !isfinite(v))
			fprintf(out, "null");
		else
			fprintf(out, "%.17g", v);
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		fprintf(out, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);

		if (!ev)
			fprintf(out, "%d", v);
		else if (s->json)
			show_json_str(s, ev->name);
		else
			fprintf(out, "%s", ev->name);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *str = *(char *const *)p;

		if (!str)
			fprintf(out, s->json ? "null" : "(none)");
		else if (s->json)
			show_json_str(s, str);
		else
			show_text_str(s, str);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		show_bytes(s, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		/* Nested messages are walked by show_field(). */
		break;
	}
}

static size_t show_elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static bool show_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;
	const void *p = base + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return true;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_NONE)
		return true;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
		const void *ptr = *(void *const *)p;
		return ptr && ptr != f->default_value;
	}
	return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

static void show_field(struct show *s, const ProtobufCMessage *m,
		       const ProtobufCFieldDescriptor *f, int depth)
{
	const char *base = (const char *)m;
	bool msg = f->type == PROTOBUF_C_TYPE_MESSAGE;

	if (s->json) {
		show_json_str(s, f->name);
		fprintf(s->out, ": ");
	} else if (s->line) {
		fprintf(s->out, " %s ", f->name);
	} else {
		show_indent(s, depth);
	}

	if (f->label != PROTOBUF_C_LABEL_REPEATED) {
		if (msg) {
			if (!s->json && !s->line)
				fprintf(s->out, "%s:\n", f->name);
			show_message(s, *(ProtobufCMessage *const *)(base + f->offset), depth + 1);
			return;
		}
		if (!s->json && !s->line)
			fprintf(s->out, "%s: ", f->name);
		show_value(s, m->descriptor, f, base + f->offset);
		if (!s->json && !s->line)
			fputc('\n', s->out);
		return;
	}

	size_t n = *(const size_t *)(base + f->quantifier_offset);
	const char *arr = *(const char *const *)(base + f->offset);
	size_t sz = show_elem_size(f->type);

	if (s->json || s->line) {
		fputc('[', s->out);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fprintf(s->out, ", ");
			if (msg)
				show_message(s, *(ProtobufCMessage *const *)(arr + i * sz), depth + 1);
			else
				show_value(s, m->descriptor, f, arr + i * sz);
		}
		fputc(']', s->out);
		return;
	}
	if (!msg || !n) {
		fprintf(s->out, "%s: [", f->name);
		for (size_t i = 0; i < n; i++) {
			if (i)
				fprintf(s->out, ", ");
			show_value(s, m->descriptor, f, arr + i * sz);
		}
		fprintf(s->out, "]\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i)
			show_indent(s, depth);
		fprintf(s->out, "%s[%zu]:\n", f->name, i);
		show_message(s, *(ProtobufCMessage *const *)(arr + i * sz), depth + 1);
	}
}

/* Text: one line per field at depth, or braces on the line; JSON: one object. */
static void show_message(struct show *s, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	bool first = true;

	if (s->json || s->line)
		fputc('{', s->out);
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (!show_field_present(m, f))
			continue;
		if (s->json && !first)
			fprintf(s->out, ", ");
		first = false;
		show_field(s, m, f, depth);
	}
	if (s->json) {
		fputc('}', s->out);
	} else if (s->line) {
		fprintf(s->out, " }");
	} else if (m->n_unknown_fields) {
		show_indent(s, depth);
		fprintf(s->out, "(%u unknown fields)\n", m->n_unknown_fields);
	}
}

/* Opens the image record in JSON or prints the header line in text. */
static void show_image_begin(struct show *s, const char *name, const char *kind, int pid)
{
	if (s->json) {
		fprintf(s->out, "%s\n {\"file\": ", s->nr_images ? "," : "");
		show_json_str(s, name);
		fprintf(s->out, ", \"kind\": ");
		show_json_str(s, kind);
	} else {
		fprintf(s->out, "%s%s: %s", s->nr_images ? "\n" : "", name, kind);
		if (pid)
			fprintf(s->out, ", pid %d", pid);
		fputc('\n', s->out);
	}
	s->nr_images++;
}

/* Raw page contents have no header; show their size only. */
static int show_pages(struct show *s, int dirfd, const char *name, int pid)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		pr_perror("cannot stat '%s'", name);
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("pages file '%s' is not a regular file", name);
		return -EINVAL;
	}
	if (st.st_size % SHOW_PAGE_SIZE) {
		pr_err("pages file '%s': size %lld is not a whole number of pages", name,
		       (long long)st.st_size);
		return -EINVAL;
	}
	show_image_begin(s, name, img_kind_name(IMG_PAGES), pid);
	if (s->json)
		fprintf(s->out, ", \"size\": %lld, \"pages\": %lld}", (long long)st.st_size,
			(long long)st.st_size / SHOW_PAGE_SIZE);
	else
		fprintf(s->out, "  %lld bytes, %lld pages\n", (long long)st.st_size,
			(long long)st.st_size / SHOW_PAGE_SIZE);
	return 0;
}

static void show_skipped(struct show *s, const char *name, const char *why)
{
	pr_warn("skipping '%s': %s, ignoring", name, why);
	if (s->json) {
		fprintf(s->out, "%s\n {\"file\": ", s->nr_images ? "," : "");
		show_json_str(s, name);
		fprintf(s->out, ", \"skipped\": ");
		show_json_str(s, why);
		fputc('}', s->out);
	} else {
		fprintf(s->out, "%s%s: skipped (%s)\n", s->nr_images ? "\n" : "", name, why);
	}
	s->nr_images++;
}

/* ARMED ranges as [start-end, ...], in hex. */
static void show_cl_ranges(struct show *s, const ChangelogEntry *e)
{
	fprintf(s->out, " ranges [");
	for (size_t i = 0; i + 1 < e->n_ranges; i += 2)
		fprintf(s->out, "%s0x%" PRIx64 "-0x%" PRIx64, i ? ", " : "", e->ranges[i],
			e->ranges[i + 1]);
	fputc(']', s->out);
}

/*
 * A changelog record on one line: seq, seconds since the last START or GAP
 * (t0_ns), kind, then each field present as show_field() prints it.
 */
static void show_cl_line(struct show *s, const ChangelogEntry *e, uint64_t t0_ns)
{
	const ProtobufCMessageDescriptor *d = e->base.descriptor;
	uint64_t dt = e->ts_ns >= t0_ns ? e->ts_ns - t0_ns : t0_ns - e->ts_ns;

	fprintf(s->out, "%" PRIu64 " %c%" PRIu64 ".%06" PRIu64 " %s", e->seq,
		e->ts_ns >= t0_ns ? '+' : '-', dt / 1000000000, dt % 1000000000 / 1000,
		cl_kind_name(e->kind));
	s->line = true;
	for (unsigned int i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		/* Shown above. */
		if (!strcmp(f->name, "seq") || !strcmp(f->name, "ts_ns") ||
		    !strcmp(f->name, "kind"))
			continue;
		if (!show_field_present(&e->base, f))
			continue;
		if (!strcmp(f->name, "ranges")) {
			show_cl_ranges(s, e);
			continue;
		}
		show_field(s, &e->base, f, 0);
		if (e->kind == CL_FORK && !strcmp(f->name, "flags"))
			fprintf(s->out, " thread %s", e->flags & CLONE_THREAD ? "yes" : "no");
	}
	s->line = false;
	/* No tgids on a LOST: every tracked task may have lost records. */
	if (e->kind == CL_LOST && !e->n_tgids)
		fprintf(s->out, " tgids all");
	fputc('\n', s->out);
}

/*
 * The trackd changelog in dirfd: the records with a seq above s->since, one
 * line or JSON object each. Alone (--log) it is the whole output, a JSON
 * array; embedded it is one image of `ckpt show DIR`. A torn tail is only a
 * warning. 0, or -errno after logging why.
 */
static int show_log(struct show *s, int dirfd, bool embedded)
{
	const char *sep = embedded ? "\n  " : "\n ";
	struct cl_reader *r;
	ChangelogEntry *e;
	uint64_t t0_ns = 0, nr = 0;	/* records read, shown or not */
	int ret, n = 0;

	if (embedded)
		show_image_begin(s, CHANGELOG_FILE, "changelog", 0);
	r = cl_reader_open(dirfd);
	if (!r) {
		ret = -errno;
		if (embedded && s->json) {
			fprintf(s->out, ", \"error\": ");
			show_json_str(s, strerror(-ret));
			fputc('}', s->out);
		} else if (embedded) {
			fprintf(s->out, "  cannot be read: %s\n", strerror(-ret));
		}
		return ret;
	}
	if (s->json)
		fprintf(s->out, embedded ? ", \"entries\": [" : "[");
	while ((ret = cl_next(r, &e)) > 0) {
		nr++;
		if (e->kind == CL_START || e->kind == CL_GAP)
			t0_ns = e->ts_ns;
		if (e->seq > s->since) {
			if (s->json) {
				fprintf(s->out, "%s%s", n ? "," : "", sep);
				show_message(s, &e->base, 0);
			} else {
				fprintf(s->out, "%s", embedded ? "  " : "");
				show_cl_line(s, e, t0_ns);
			}
			n++;
		}
		cl_entry_free(e);
	}
	if (s->json) {
		fprintf(s->out, "%s]", !n ? "" : embedded ? "\n " : "\n");
		if (embedded && ret < 0)
			fprintf(s->out, ", \"error\": \"record %" PRIu64 " is corrupt\"", nr + 1);
		fprintf(s->out, embedded ? "}" : "\n");
	} else if (embedded && ret < 0) {
		fprintf(s->out, "  corrupt record, see the error above\n");
	} else if (embedded && !n) {
		fprintf(s->out, "  (no records)\n");
	}
	cl_reader_close(r);
	return ret < 0 ? ret : 0;
}

/* Decode one file; 0, or -errno after logging why. */
static int show_image(struct show *s, int dirfd, const char *name)
{
	enum img_kind kind;
	struct img *img;
	void *msg;
	int pid, ret, n = 0;

	if (!strcmp(name, CHANGELOG_FILE))
		return show_log(s, dirfd, true);
	kind = img_kind_of_name(name, &pid);
	if (kind == IMG_PAGES)
		return show_pages(s, dirfd, name, pid);
	if (kind >= IMG_NR_KINDS) {
		pr_err("'%s' is not an image file name", name);
		return -EINVAL;
	}
	show_image_begin(s, name, img_kind_name(kind), pid);
	img = img_open(dirfd, kind, pid, O_RDONLY);
	if (!img) {
		ret = -errno;
		if (ret == -ENOENT)
			pr_err("image '%s' does not exist", name);
		if (s->json) {
			fprintf(s->out, ", \"error\": ");
			show_json_str(s, strerror(-ret));
			fputc('}', s->out);
		} else {
			fprintf(s->out, "  cannot be read: %s\n", strerror(-ret));
		}
		return ret;
	}
	if (s->json)
		fprintf(s->out, ", \"entries\": [");
	while ((ret = img_read(img, &msg)) > 0) {
		if (s->json) {
			fprintf(s->out, "%s\n  ", n ? "," : "");
			show_message(s, msg, 0);
		} else {
			fprintf(s->out, "  [%d] %s\n", n, ((ProtobufCMessage *)msg)->descriptor->name);
			show_message(s, msg, 2);
		}
		img_free(img, msg);
		n++;
	}
	if (s->json) {
		fprintf(s->out, "%s]", n ? "\n " : "");
		if (ret < 0)
			fprintf(s->out, ", \"error\": \"entry %d is corrupt\"", n);
		fputc('}', s->out);
	} else if (ret < 0) {
		fprintf(s->out, "  [%d] corrupt, see the error above\n", n);
	} else if (!n) {
		fprintf(s->out, "  (no entries)\n");
	}
	img_close(img);
	return ret < 0 ? ret : 0;
}

/* inventory.img, then pstree.img, then the rest by name. */
static int show_rank(const char *name)
{
	if (!strcmp(name, "inventory.img"))
		return 0;
	if (!strcmp(name, "pstree.img"))
		return 1;
	return 2;
}

static int show_cmp(const struct dirent **a, const struct dirent **b)
{
	int ra = show_rank((*a)->d_name), rb = show_rank((*b)->d_name);

	if (ra != rb)
		return ra - rb;
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int show_filter(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

/* Every file of the directory; returns the number of bad images or -errno. */
static int show_dir(struct show *s, int dirfd)
{
	struct dirent **names;
	int n, bad = 0;

	n = scandirat(dirfd, ".", &names, show_filter, show_cmp);
	if (n < 0) {
		int err = -errno;
		pr_perror("cannot list the image directory");
		return err;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		struct stat st;
		int pid;

		if (img_kind_of_name(name, &pid) > IMG_PAGES && strcmp(name, CHANGELOG_FILE)) {
			if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
				show_skipped(s, name, "a directory");
			else
				show_skipped(s, name, "not an image file");
		} else if (show_image(s, dirfd, name)) {
			bad++;
		}
		free(names[i]);
	}
	free(names);
	return bad;
}

/*
 * ckpt show DIR --pages: every page the dump saved, per process in pstree
 * order, so that two dumps can be compared page by page. A PagemapEntry
 * with PE_PARENT holds no data: the page is the parent's at the same
 * address, so its sum is the one the parent's listing has there ("-" when
 * the parent has none, or is not an earlier process of the dump). An
 * incremental dump's PE_PREV runs are resolved through its parent images
 * (chain_resolve), so that it lists as a full dump of the same memory
 * would, plus where the data is: "level N", N directories down (nothing
 * for this directory).
 */
#define SHOW_PAGES_BATCH	16	/* pages read with one pread */

struct show_proc {
	uint32_t pid;
	int parent;			/* index of the parent listed before, or -1 */
	struct page_src *src;		/* resolved runs: PE_PRESENT at some level, or PE_PARENT */
	size_t nr_src;
	uint64_t *first;		/* per run: index of its first page in sums (--sums) */
	uint32_t *sums;			/* per data page, in run order (--sums) */
	int *fds;			/* per chain level: its pages file, -1 until read (--sums) */
};

/*
 * Resolve one process's pages through the chain, which checks each
 * pagemap used and the pages files against them. 0, or -errno after
 * logging why.
 */
static int show_proc_load(struct chain *c, struct show_proc *p, bool sums)
{
	char name[32];
	uint64_t pages = 0;
	int err;

	/* chain_resolve takes a missing level-0 pagemap as no pages; a dump always has one. */
	img_name(IMG_PAGEMAP, p->pid, name, sizeof(name));
	if (faccessat(c->dirfds[0], name, F_OK, 0) < 0) {
		err = -errno;
		if (err == -ENOENT)
			pr_err("image %s is missing", name);
		else
			pr_perror("cannot access '%s'", name);
		return err;
	}
	err = chain_resolve(c, p->pid, &p->src, &p->nr_src);
	if (err || !sums)
		return err;
	p->first = calloc(p->nr_src ? p->nr_src : 1, sizeof(*p->first));
	p->fds = malloc(c->n * sizeof(*p->fds));
	if (!p->first || !p->fds) {
		pr_err("out of memory");
		return -ENOMEM;
	}
	for (size_t l = 0; l < c->n; l++)
		p->fds[l] = -1;
	for (size_t i = 0; i < p->nr_src; i++) {
		p->first[i] = pages;
		if (p->src[i].flags == PE_PRESENT)
			pages += p->src[i].len / IMG_PAGE_SIZE;
	}
	if (pages) {
		p->sums = malloc(pages * sizeof(*p->sums));
		if (!p->sums) {
			pr_err("out of memory for the sums of %u", p->pid);
			return -ENOMEM;
		}
	}
	return 0;
}

static void show_proc_free(struct show_proc *p, size_t nr_levels)
{
	free(p->src);
	free(p->first);
	free(p->sums);
	for (size_t l = 0; p->fds && l < nr_levels; l++)
		if (p->fds[l] >= 0)
			close(p->fds[l]);
	free(p->fds);
}

/* The run of p holding addr, or -1. */
static ssize_t show_proc_find(const struct show_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->nr_src;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct page_src *e = &p->src[mid];

		if (addr < e->vaddr)
			hi = mid;
		else if (addr >= e->vaddr + e->len)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * The sum of the page at addr that process i inherits from its parent,
 * following PE_PARENT runs up the tree; false when no ancestor listed
 * before has the page.
 */
static bool show_parent_sum(const struct show_proc *procs, int i, uint64_t addr,
			    uint32_t *ret_sum)
{
	/* Each step goes to an earlier process: this ends. */
	for (i = procs[i].parent; i >= 0; i = procs[i].parent) {
		const struct show_proc *p = &procs[i];
		ssize_t k = show_proc_find(p, addr);

		if (k < 0)
			return false;
		if (p->src[k].flags == PE_PRESENT) {
			*ret_sum = p->sums[p->first[k] + (addr - p->src[k].vaddr) / IMG_PAGE_SIZE];
			return true;
		}
	}
	return false;
}

/*
 * One page (--sums): `PID ADDR data|parent SUM`, or its JSON object. Where
 * the data lies in a chain is left out: a delta's listing is then the same
 * as that of a full dump of the same memory (--pages without --sums says).
 */
static void show_page_line(struct show *s, uint32_t pid, uint64_t addr, bool parent, bool known,
			   uint32_t sum)
{
	const char *flags = parent ? "parent" : "data";

	if (!s->json) {
		if (known)
			fprintf(s->out, "%" PRIu32 " 0x%" PRIx64 " %s %08" PRIx32, pid, addr,
				flags, sum);
		else
			fprintf(s->out, "%" PRIu32 " 0x%" PRIx64 " %s -", pid, addr, flags);
		fputc('\n', s->out);
		return;
	}
	fprintf(s->out, "%s\n {\"pid\": %" PRIu32 ", \"addr\": %" PRIu64 ", \"flags\": \"%s\", "
		"\"crc32c\": ", s->nr_images ? "," : "", pid, addr, flags);
	if (known)
		fprintf(s->out, "%" PRIu32, sum);
	else
		fprintf(s->out, "null");
	fputc('}', s->out);
	s->nr_images++;
}

/* A run of pages (no --sums): `PID START-END N pages data|parent [level N]`, END exclusive. */
static void show_run_line(struct show *s, uint32_t pid, uint64_t start, uint64_t end, bool parent,
			  uint32_t level)
{
	const char *flags = parent ? "parent" : "data";
	uint64_t n = (end - start) / IMG_PAGE_SIZE;

	if (!s->json) {
		fprintf(s->out, "%" PRIu32 " 0x%" PRIx64 "-0x%" PRIx64 " %" PRIu64 " pages %s",
			pid, start, end, n, flags);
		if (level)
			fprintf(s->out, " level %" PRIu32, level);
		fputc('\n', s->out);
		return;
	}
	fprintf(s->out, "%s\n {\"pid\": %" PRIu32 ", \"start\": %" PRIu64 ", \"end\": %" PRIu64
		", \"pages\": %" PRIu64 ", \"flags\": \"%s\"", s->nr_images ? "," : "", pid, start,
		end, n, flags);
	if (level)
		fprintf(s->out, ", \"level\": %" PRIu32, level);
	fputc('}', s->out);
	s->nr_images++;
}

/* Adjacent runs of one kind and level as one line. */
static void show_proc_runs(struct show *s, const struct show_proc *p)
{
	uint64_t start = 0, end = 0;
	uint32_t flags = 0, level = 0;

	for (size_t i = 0; i < p->nr_src; i++) {
		const struct page_src *e = &p->src[i];

		if (end && (e->vaddr != end || e->flags != flags || e->level != level)) {
			show_run_line(s, p->pid, start, end, flags == PE_PARENT, level);
			end = 0;
		}
		if (!end) {
			start = e->vaddr;
			flags = e->flags;
			level = e->level;
		}
		end = e->vaddr + e->len;
	}
	if (end)
		show_run_line(s, p->pid, start, end, flags == PE_PARENT, level);
}

/*
 * Read n pages at off of the pages file of p at level into buf. 0, or
 * -errno after logging why.
 */
static int show_pages_read(struct chain *c, struct show_proc *p, uint32_t level, uint64_t off,
			   void *buf, size_t n)
{
	size_t len = n * IMG_PAGE_SIZE, done = 0;
	char name[64];

	if (p->fds[level] < 0) {
		p->fds[level] = chain_pages_fd(c, level, p->pid);
		if (p->fds[level] < 0)
			return p->fds[level];
	}
	img_name(IMG_PAGES, p->pid, name, sizeof(name));
	while (done < len) {
		ssize_t r = pread(p->fds[level], (char *)buf + done, len - done, off + done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;
			pr_perror("cannot read '%s' of '%s' at offset %llu", name, c->paths[level],
				  (unsigned long long)(off + done));
			return err;
		}
		if (r == 0) {
			pr_err("image %s of '%s': ends at offset %llu, before its pagemap's pages",
			       name, c->paths[level], (unsigned long long)(off + done));
			return -EINVAL;
		}
		done += r;
	}
	return 0;
}

/* Every page of process i with its sum (--sums). 0, or -errno after logging why. */
static int show_proc_sums(struct show *s, struct chain *c, struct show_proc *procs, int i,
			  uint8_t *buf)
{
	struct show_proc *p = &procs[i];

	for (size_t k = 0; k < p->nr_src; k++) {
		const struct page_src *e = &p->src[k];
		uint64_t nr = e->len / IMG_PAGE_SIZE;

		if (e->flags == PE_PARENT) {
			for (uint64_t j = 0; j < nr; j++) {
				uint64_t addr = e->vaddr + j * IMG_PAGE_SIZE;
				uint32_t sum = 0;
				bool known = show_parent_sum(procs, i, addr, &sum);

				show_page_line(s, p->pid, addr, true, known, sum);
			}
			continue;
		}
		for (uint64_t j = 0; j < nr; j += SHOW_PAGES_BATCH) {
			uint64_t n = nr - j < SHOW_PAGES_BATCH ? nr - j : SHOW_PAGES_BATCH;
			int err = show_pages_read(c, p, e->level, e->off + j * IMG_PAGE_SIZE, buf, n);

			if (err)
				return err;
			for (uint64_t m = 0; m < n; m++) {
				uint32_t sum = crc32c(0, buf + m * IMG_PAGE_SIZE, IMG_PAGE_SIZE);

				p->sums[p->first[k] + j + m] = sum;
				show_page_line(s, p->pid, e->vaddr + (j + m) * IMG_PAGE_SIZE, false,
					       true, sum);
			}
		}
	}
	return 0;
}

struct show_pid {
	uint32_t pid;
	uint32_t idx;		/* in pstree order */
};

static int show_pid_cmp(const void *a, const void *b)
{
	const struct show_pid *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Link each process to its parent when the parent comes earlier in
 * pstree.img (the first process with that PID); by[] is sorted by PID,
 * then position.
 */
static void show_link_parents(struct show_proc *procs, const PstreeEntry *const *tree,
			      struct show_pid *by, size_t n)
{
	for (size_t i = 0; i < n; i++)
		by[i] = (struct show_pid){ tree[i]->pid, i };
	qsort(by, n, sizeof(*by), show_pid_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t lo = 0, hi = n;

		procs[i].parent = -1;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (by[mid].pid < tree[i]->ppid)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && by[lo].pid == tree[i]->ppid && by[lo].idx < i)
			procs[i].parent = by[lo].idx;
	}
}

/*
 * ckpt show DIR --pages [--sums]: every pagemap is checked against its
 * pages file before anything is printed. The exit code.
 */
static int show_page_list(struct show *s, int dirfd, const char *dir, bool sums)
{
	struct show_proc *procs = NULL;
	struct show_pid *by = NULL;
	struct chain c;
	PstreeEntry **tree;
	uint8_t *buf = NULL;
	size_t n;
	int err, ret = 1;

	/*
	 * The chain (checked whole) when there is an inventory to name a
	 * parent; else just this directory, whose pagemaps then cannot hold
	 * PE_PREV runs (chain_resolve rejects them).
	 */
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		pr_perror("cannot duplicate the fd of '%s'", dir);
		return 1;
	}
	if (faccessat(dirfd, "inventory.img", F_OK, 0) == 0)
		err = chain_open(fd, dir, &c);
	else
		err = chain_open_one(fd, dir, &c);
	if (err)
		return 1;
	err = img_load_all(dirfd, IMG_PSTREE, 0, true, (void ***)&tree, &n);
	if (err) {
		chain_close(&c);
		return 1;
	}
	procs = calloc(n ? n : 1, sizeof(*procs));
	by = calloc(n ? n : 1, sizeof(*by));
	buf = malloc(SHOW_PAGES_BATCH * IMG_PAGE_SIZE);
	if (!procs || !by || !buf) {
		pr_err("out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		procs[i].pid = tree[i]->pid;
	show_link_parents(procs, (const PstreeEntry *const *)tree, by, n);
	for (size_t i = 0; i < n; i++) {
		/* A zombie has no other image. */
		if (!tree[i]->has_zombie_status && show_proc_load(&c, &procs[i], sums))
			goto out;
	}

	if (s->json)
		fputc('[', s->out);
	err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		if (sums)
			err = show_proc_sums(s, &c, procs, i, buf);
		else
			show_proc_runs(s, &procs[i]);
	}
	if (s->json)
		fprintf(s->out, "%s]\n", s->nr_images ? "\n" : "");
	ret = err ? 1 : 0;
out:
	for (size_t i = 0; procs && i < n; i++)
		show_proc_free(&procs[i], c.n);
	free(procs);
	free(by);
	free(buf);
	img_free_all(IMG_PSTREE, (void **)tree, n);
	chain_close(&c);
	return ret;
}

static void show_usage(FILE *f)
{
	fprintf(f, "usage: ckpt show DIR|FILE [--since SEQ] [--json] [-v[N]] [-o LOG]\n"
		   "       ckpt show DIR --pages [--sums] [--json] [-v[N]] [-o LOG]\n"
		   "       ckpt show --log LOGDIR [--since SEQ] [--json] [-v[N]] [-o LOG]\n"
		   "  decode every image in DIR (inventory and pstree first), or one FILE\n"
		   "  --pages       list the pages DIR saved, per process in pstree order:\n"
		   "                'PID START-END N pages data|parent' (END exclusive, adjacent\n"
		   "                runs merged); 'parent' pages are the parent's, inherited;\n"
		   "                an incremental dump's unchanged pages are listed from its\n"
		   "                parent images, with 'level N' (JSON \"level\") when the data\n"
		   "                is N directories down the chain\n"
		   "  --sums        with --pages, one page a line: 'PID ADDR data|parent CRC32C'\n"
		   "                (a parent page has its parent's sum there, or '-')\n"
		   "  --log LOGDIR  print trackd's changelog in LOGDIR, one record a line\n"
		   "  --since SEQ   changelog records after SEQ only (a seq from 'trackd mark')\n"
		   "  --json        print JSON instead of text (--log, --pages: an array)\n");
}

/* A decimal seq; false when str is not one. */
static bool show_parse_seq(const char *str, uint64_t *ret_seq)
{
	unsigned long long v;
	char *end;

	if (*str < '0' || *str > '9')
		return false;
	errno = 0;
	v = strtoull(str, &end, 10);
	if (errno || *end)
		return false;
	*ret_seq = v;
	return true;
}

/* ckpt show --log LOGDIR: the exit code. */
static int show_logdir(struct show *s, const char *logdir)
{
	int dirfd, ret;

	dirfd = open(logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open log directory '%s'", logdir);
		return 1;
	}
	ret = show_log(s, dirfd, false) ? 1 : 0;
	close(dirfd);
	if (fflush(s->out) || ferror(s->out)) {
		pr_perror("cannot write the output");
		ret = 1;
	}
	return ret;
}

int cmd_show(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "log", required_argument, NULL, 'L' },
		{ "since", required_argument, NULL, 'S' },
		{ "pages", no_argument, NULL, 'P' },
		{ "sums", no_argument, NULL, 'C' },
		{ "verbosity", optional_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct show s = { .out = stdout };
	char *path, *copy1 = NULL, *copy2 = NULL;
	const char *dir, *file = NULL, *logdir = NULL;
	struct stat st;
	bool pages = false, sums = false, since = false;
	int opt, dirfd, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "v::o:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			s.json = true;
			break;
		case 'L':
			logdir = optarg;
			break;
		case 'S':
			if (!show_parse_seq(optarg, &s.since)) {
				pr_err("--since: '%s' is not a sequence number", optarg);
				show_usage(stderr);
				return 2;
			}
			since = true;
			break;
		case 'P':
			pages = true;
			break;
		case 'C':
			sums = true;
			break;
		case 'h':
			show_usage(stdout);
			return 0;
		default:
			ret = opts_common(opt, optarg);
			if (ret == 1)
				break;
			if (ret == 0)
				show_usage(stderr);
			return 2;
		}
	}
	if (sums && !pages) {
		pr_err("--sums goes with --pages");
		show_usage(stderr);
		return 2;
	}
	if (pages && (logdir || since)) {
		pr_err("--pages lists a dump's pages: no --log or --since with it");
		show_usage(stderr);
		return 2;
	}
	if (logdir) {
		if (optind != argc) {
			show_usage(stderr);
			return 2;
		}
		return show_logdir(&s, logdir);
	}
	if (optind != argc - 1) {
		show_usage(stderr);
		return 2;
	}
	path = argv[optind];

	if (stat(path, &st) < 0) {
		pr_perror("cannot stat '%s'", path);
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		dir = path;
	} else if (pages) {
		pr_err("--pages needs an image directory, '%s' is not one", path);
		show_usage(stderr);
		return 2;
	} else {
		copy1 = strdup(path);
		copy2 = strdup(path);
		if (!copy1 || !copy2) {
			pr_err("out of memory");
			ret = 1;
			goto out;
		}
		dir = dirname(copy1);
		file = basename(copy2);
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open directory '%s'", dir);
		ret = 1;
		goto out;
	}

	if (pages) {
		ret = show_page_list(&s, dirfd, dir, sums);
		close(dirfd);
		goto flush;
	}
	if (s.json) {
		fprintf(s.out, "{\"dir\": ");
		show_json_str(&s, dir);
		fprintf(s.out, ", \"images\": [");
	}
	if (file)
		ret = show_image(&s, dirfd, file) ? 1 : 0;
	else
		ret = show_dir(&s, dirfd) ? 1 : 0;
	if (s.json)
		fprintf(s.out, "%s]}\n", s.nr_images ? "\n" : "");
	close(dirfd);
flush:
	if (fflush(s.out) || ferror(s.out)) {
		pr_perror("cannot write the output");
		ret = 1;
	}
out:
	free(copy1);
	free(copy2);
	return ret;
}
