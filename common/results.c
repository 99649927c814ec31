/*
 * results.c - CSV files and run.json (see results.h).
 */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"
#include "digest.h"
#include "timing.h"
#include "version.h"

#define CSV_BATCH_BYTES (1u << 20) /* first allocation of a CSV's row buffer */

__attribute__((format(printf, 2, 3))) static void set_error(struct ivb_results *res,
							     const char *fmt, ...)
{
	va_list ap;

	if (res->error[0])
		return; /* the first error is the one that explains the rest */
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

const char *ivb_results_error(const struct ivb_results *res)
{
	return res->error;
}

int ivb_results_open(struct ivb_results *res, const char *dir, const char *const *stale)
{
	char path[4200];
	uint8_t id[16];

	memset(res, 0, sizeof(*res));
	snprintf(res->dir, sizeof(res->dir), "%s", dir);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		set_error(res, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (; stale && *stale; stale++) {
		if (!**stale)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, *stale);
		if (unlink(path) && errno != ENOENT) {
			set_error(res, "cannot remove the previous run's %s: %s", path, strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof(path), "%s/run.json.tmp", dir);
	unlink(path);
	if (ivb_random(id, sizeof(id))) {
		set_error(res, "OpenSSL RAND_bytes failed");
		return -1;
	}
	ivb_hex(id, sizeof(id), res->run_id);
	return 0;
}

/* Create path for writing: never through a symlink, never over a file. */
static int create_new(const char *path)
{
	unlink(path);
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
}

/* Write all of buf to fd; -1 with errno on failure. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

struct ivb_csv *ivb_csv_open(struct ivb_results *res, const struct ivb_csv_schema *schema)
{
	struct ivb_csv *c;
	char path[4200];

	if (res->ncsv == IVB_RESULTS_MAX_CSV) {
		set_error(res, "%s: too many results files", schema->file);
		return NULL;
	}
	c = &res->csv[res->ncsv];
	*c = (struct ivb_csv){ .schema = schema, .res = res, .fd = -1 };
	snprintf(path, sizeof(path), "%s/%s", res->dir, schema->file);
	c->fd = create_new(path);
	c->cap = CSV_BATCH_BYTES;
	c->buf = malloc(c->cap);
	if (c->fd < 0 || !c->buf) {
		set_error(res, "%s: %s", path, c->buf ? strerror(errno) : "out of memory");
		if (c->fd >= 0)
			close(c->fd);
		free(c->buf);
		return NULL;
	}
	res->ncsv++;
	if (write_all(c->fd, schema->columns, strlen(schema->columns)) ||
	    write_all(c->fd, "\n", 1)) {
		set_error(res, "%s: %s", path, strerror(errno));
		c->failed = 1;
		return c;
	}
	c->good_end = (off_t)strlen(schema->columns) + 1;
	if (res->on_new_file)
		res->on_new_file(res->on_new_file_arg);
	return c;
}

int ivb_csv_flush(struct ivb_csv *c)
{
	if (c->failed)
		return -1;
	if (!c->len)
		return 0;
	if (write_all(c->fd, c->buf, c->len)) {
		int e = errno;

		/* Cut the file back to its last whole batch: no half row stays. */
		if (ftruncate(c->fd, c->good_end) == 0)
			lseek(c->fd, c->good_end, SEEK_SET);
		set_error(c->res, "%s/%s: %s (rows up to %ld are on disk)", c->res->dir,
			  c->schema->file, strerror(e), c->rows_on_disk);
		c->failed = 1;
		return -1;
	}
	c->good_end += (off_t)c->len;
	c->len = 0;
	c->rows_on_disk = c->rows;
	return 0;
}

int ivb_csv_row(struct ivb_csv *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return -1;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(c->buf + c->len, c->cap - c->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n + 1 < c->cap - c->len)
			break;
		if (n < 0 || ivb_csv_flush(c))
			return -1;
		if ((size_t)n + 2 > c->cap) {
			char *nb = realloc(c->buf, (size_t)n + 2);

			if (!nb)
				return -1;
			c->buf = nb;
			c->cap = (size_t)n + 2;
		}
	}
	c->len += (size_t)n;
	c->buf[c->len++] = '\n';
	c->rows++;
	if (c->rows - c->rows_on_disk >= IVB_CSV_FLUSH_ROWS)
		return ivb_csv_flush(c);
	return 0;
}

int ivb_csv_close(struct ivb_csv *c)
{
	int rc;

	if (c->fd < 0)
		return c->failed ? -1 : 0;
	rc = ivb_csv_flush(c);

	if (c->fd >= 0 && close(c->fd) && !rc) {
		set_error(c->res, "%s/%s: %s", c->res->dir, c->schema->file, strerror(errno));
		rc = -1;
	}
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	return rc;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && s[0] == 0xed && s[1] >= 0xa0)
		return 0; /* a surrogate */
	return n;
}

/* s as a JSON string: escapes, and U+FFFD for bytes that are not UTF-8. */
static void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);

		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
		} else if (!n) {
			fputs("\\ufffd", f);
			n = 1;
		} else {
			fwrite(p, 1, n, f);
		}
		p += n ? n : 1;
	}
	fputc('"', f);
}

const char *const ivb_json_own_keys[] = { "run_id", "files", NULL };
const char *const ivb_json_provenance_keys[] = {
	"tool", "version", "host_cpu", "host_kernel", "clocksource", "clock_read_ns",
	"clock_resolution_ns", NULL,
};

int ivb_json_keys_have(const char *const *const *lists, const char *key, size_t n)
{
	const char *const *k;

	for (; lists && *lists; lists++)
		for (k = *lists; *k; k++)
			if (strlen(*k) == n && !strncmp(*k, key, n))
				return 1;
	return 0;
}

static void json_key(struct ivb_json *j, const char *key)
{
	if (j->depth == 1 && j->declared && !j->meta &&
	    !ivb_json_keys_have(j->declared, key, strlen(key))) {
		fprintf(stderr, "run.json: the member '%s' is written but not declared "
				"(a json_keys list): a bug\n", key);
		abort();
	}
	fputs(j->first[j->depth] ? "\n" : ",\n", j->f);
	j->first[j->depth] = 0;
	fprintf(j->f, "%*s", 2 * j->depth, "");
	json_string(j->f, key);
	fputs(": ", j->f);
}

void ivb_json_str(struct ivb_json *j, const char *key, const char *value)
{
	json_key(j, key);
	json_string(j->f, value);
}

void ivb_json_meta(struct ivb_json *j, const char *key_value)
{
	const char *eq = strchr(key_value, '=');
	char key[128];

	snprintf(key, sizeof(key), "%.*s", (int)(eq - key_value), key_value);
	j->meta = 1;
	ivb_json_str(j, key, eq + 1);
	j->meta = 0;
}

void ivb_json_int(struct ivb_json *j, const char *key, long long value)
{
	json_key(j, key);
	fprintf(j->f, "%lld", value);
}

void ivb_json_uint(struct ivb_json *j, const char *key, unsigned long long value)
{
	json_key(j, key);
	fprintf(j->f, "%llu", value);
}

void ivb_json_num(struct ivb_json *j, const char *key, double value, int decimals)
{
	json_key(j, key);
	if (isfinite(value))
		fprintf(j->f, "%.*f", decimals, value);
	else
		fputs("null", j->f);
}

void ivb_json_begin(struct ivb_json *j, const char *key)
{
	json_key(j, key);
	fputc('{', j->f);
	if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = 1;
}

void ivb_json_end(struct ivb_json *j)
{
	int empty = j->first[j->depth];

	if (j->depth > 1)
		j->depth--;
	if (!empty)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	fputc('}', j->f);
}

void ivb_json_ints(struct ivb_json *j, const char *key, const long long *v, int n)
{
	int i;

	json_key(j, key);
	fputc('[', j->f);
	for (i = 0; i < n; i++)
		fprintf(j->f, "%s%lld", i ? ", " : "", v[i]);
	fputc(']', j->f);
}

void ivb_json_strs(struct ivb_json *j, const char *key, const char *const *v, int n)
{
	int i;

	json_key(j, key);
	fputc('[', j->f);
	for (i = 0; i < n; i++) {
		if (i)
			fputs(", ", j->f);
		json_string(j->f, v[i]);
	}
	fputc(']', j->f);
}

void ivb_json_summary(struct ivb_json *j, const char *key, const struct ivb_summary *s)
{
	ivb_json_begin(j, key);
	ivb_json_uint(j, "count", s->count);
	ivb_json_num(j, "min_ns", s->min, 0);
	ivb_json_num(j, "mean_ns", s->mean, 1);
	ivb_json_num(j, "stddev_ns", s->stddev, 1);
	ivb_json_num(j, "p50_ns", s->p50, 1);
	ivb_json_num(j, "p90_ns", s->p90, 1);
	ivb_json_num(j, "p99_ns", s->p99, 1);
	ivb_json_num(j, "p999_ns", s->p999, 1);
	ivb_json_num(j, "max_ns", s->max, 0);
	ivb_json_end(j);
}

void ivb_utc_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

void ivb_json_provenance(struct ivb_json *j)
{
	char cpu[256], clk[64];
	uint64_t clock_read, clock_res;
	struct utsname un;

	ivb_cpu_model(cpu, sizeof(cpu));
	ivb_clocksource(clk, sizeof(clk));
	ivb_clock_cost(&clock_read, &clock_res);
	if (uname(&un))
		snprintf(un.release, sizeof(un.release), "unknown");
	ivb_json_str(j, "tool", "ivshmem-bench");
	ivb_json_str(j, "version", IVB_VERSION);
	ivb_json_str(j, "host_cpu", cpu);
	ivb_json_str(j, "host_kernel", un.release);
	ivb_json_str(j, "clocksource", clk);
	ivb_json_uint(j, "clock_read_ns", clock_read);
	ivb_json_uint(j, "clock_resolution_ns", clock_res);
}

int ivb_results_write_json(struct ivb_results *res, void (*body)(struct ivb_json *, void *),
			   void *arg)
{
	char path[4200], tmp[4300];
	struct ivb_json j = { .depth = 1, .first = { 1, 1 }, /* inside the outer object */
			      .declared = res->json_keys };
	int fd, i, failed;

	snprintf(path, sizeof(path), "%s/run.json", res->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = create_new(tmp);
	j.f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!j.f) {
		set_error(res, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	fputc('{', j.f);
	ivb_json_str(&j, "run_id", res->run_id);
	body(&j, arg);
	ivb_json_begin(&j, "files");
	for (i = 0; i < res->ncsv; i++)
		ivb_json_int(&j, res->csv[i].schema->file, res->csv[i].rows_on_disk);
	ivb_json_end(&j);
	fputs("\n}\n", j.f);
	failed = fflush(j.f) || ferror(j.f) || fsync(fileno(j.f));
	if (fclose(j.f) || failed) {
		set_error(res, "%s: %s", path, strerror(errno ? errno : EIO));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path)) {
		set_error(res, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
