/*
 * results.h - the results directory: CSV files written as a run goes, and
 * run.json, the run's description and summary, rewritten whole (through a
 * temporary file and a rename, so a reader never sees half of it).
 *
 * A run never leaves an older run's files looking like its own: opening the
 * directory removes the files the caller names (every results file any
 * workload writes), and run.json carries a random run_id and, under
 * "files", each CSV this run wrote with the rows known to be on disk.
 *
 * Rows reach the disk in batches (every IVB_CSV_FLUSH_ROWS rows and at
 * every ivb_csv_flush()), and only whole: rows are buffered in memory and
 * written at those points; when a write fails (a full disk), the file is cut
 * back to the last whole batch and the error is kept, so no half row is
 * ever left looking like data. Every write error turns into a sentence in
 * ivb_results_error() and a -1 the caller must turn into exit status 1.
 */
#ifndef IVB_RESULTS_H
#define IVB_RESULTS_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "stats.h"

#define IVB_CSV_FLUSH_ROWS 256
#define IVB_RESULTS_MAX_CSV 8

/* A results file's name and its header line: the one place a schema is spelled. */
struct ivb_csv_schema {
	const char *file;    /* "latency_results.csv" */
	const char *columns; /* "iteration,latency_ns,..." */
};

struct ivb_csv {
	const struct ivb_csv_schema *schema;
	int fd;             /* -1 once closed */
	char *buf;          /* rows not written yet */
	size_t len;         /* bytes of them */
	size_t cap;         /* bytes allocated */
	long rows;          /* rows handed to ivb_csv_row() */
	long rows_on_disk;  /* rows known to be written whole */
	off_t good_end;     /* file size after the last whole batch */
	int failed;         /* a write failed: nothing more is written */
	struct ivb_results *res;
};

struct ivb_results {
	char dir[4096];        /* the results directory */
	char run_id[33];       /* 128 random bits, hex */
	char error[600];       /* first write error, "" if none */
	struct ivb_csv csv[IVB_RESULTS_MAX_CSV];
	int ncsv;
	/* run.json's declared top-level members (struct ivb_json), or NULL: unchecked. */
	const char *const *const *json_keys;
	/* Called when a CSV file is created, so the caller can list it in run.json at once. */
	void (*on_new_file)(void *arg);
	void *on_new_file_arg;
};

/* A JSON object being written (run.json), with keys in the order given. */
struct ivb_json {
	FILE *f;
	int depth;          /* nesting of objects */
	int first[8];       /* no member written yet at this depth */
	/* The top-level members the program declares (ivb_results.json_keys):
	 * writing another is a programming error, stopped on the spot, so the
	 * list --meta is checked against cannot drift from what is written. */
	const char *const *const *declared;
	int meta;           /* writing a --meta member: the user's key, checked at parse time */
};

/* Top-level members of run.json written here: by ivb_results_write_json
 * itself and by ivb_json_provenance. */
extern const char *const ivb_json_own_keys[];
extern const char *const ivb_json_provenance_keys[];

/* Is the key of n bytes in one of the NULL-ended lists of the NULL-ended lists? */
int ivb_json_keys_have(const char *const *const *lists, const char *key, size_t n);

/* A --meta member, KEY=VALUE, at the top level. */
void ivb_json_meta(struct ivb_json *j, const char *key_value);

/*
 * Create dir (0755) if needed, remove the files in stale[] (NULL-ended) and
 * run.json's temporary file from it, and draw a run id. Returns 0, or -1
 * with ivb_results_error() set.
 */
int ivb_results_open(struct ivb_results *res, const char *dir, const char *const *stale);

/* Create a CSV file of this run and write its header. NULL on error. */
struct ivb_csv *ivb_csv_open(struct ivb_results *res, const struct ivb_csv_schema *schema);

/* Append one row (printf format, no newline). Returns 0, or -1 after a write error. */
__attribute__((format(printf, 2, 3))) int ivb_csv_row(struct ivb_csv *c, const char *fmt, ...);

/* Write every buffered row (a phase ends). Returns 0 or -1. */
int ivb_csv_flush(struct ivb_csv *c);

/* Flush and close. Returns 0 or -1. */
int ivb_csv_close(struct ivb_csv *c);

/* The first write error, or "" when there was none. */
const char *ivb_results_error(const struct ivb_results *res);

/*
 * Write DIR/run.json: body() writes the members (the object's braces,
 * run_id and files are written here). Returns 0, or -1 with the error set
 * and no temporary file left behind.
 */
int ivb_results_write_json(struct ivb_results *res, void (*body)(struct ivb_json *, void *),
			   void *arg);

/* ---- JSON members (inside body) ---- */
void ivb_json_str(struct ivb_json *j, const char *key, const char *value);
void ivb_json_int(struct ivb_json *j, const char *key, long long value);
void ivb_json_uint(struct ivb_json *j, const char *key, unsigned long long value);
/* A finite number with the given decimals; null when not finite. */
void ivb_json_num(struct ivb_json *j, const char *key, double value, int decimals);
void ivb_json_begin(struct ivb_json *j, const char *key); /* a nested object */
void ivb_json_end(struct ivb_json *j);
/* An array of whole numbers. */
void ivb_json_ints(struct ivb_json *j, const char *key, const long long *v, int n);
/* An array of strings. */
void ivb_json_strs(struct ivb_json *j, const char *key, const char *const *v, int n);
/* {"count", "min_ns", "mean_ns", "stddev_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"} */
void ivb_json_summary(struct ivb_json *j, const char *key, const struct ivb_summary *s);
/* tool, version, host CPU and kernel, clock source and the clock's cost. */
void ivb_json_provenance(struct ivb_json *j);
/* Now, as ISO 8601 UTC, into buf (at least 21 bytes). */
void ivb_utc_now(char *buf, size_t len);

#endif
