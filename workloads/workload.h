/*
 * workload.h - what a workload is: one file holding both halves of one
 * test, behind this small interface, and one line in workloads.c's table.
 *
 *   initiator half   run(): post messages through the session (session.h),
 *                    wait for their acks, time them, write rows to its CSV
 *                    file as it goes (results.h).
 *   responder half   serve(): answer one message of the workload's command,
 *                    from a copy of the message; the payload in shared memory
 *                    is untrusted and may change under it.
 *
 * Neither half knows which side of the VM boundary it runs on, nor how it
 * waits: it gets a mapped region and a waiter through the session. Options
 * are declared by the workload (opts[]) and parsed by the program's main;
 * settings live in the workload's own state (state_size bytes, set up by
 * defaults()).
 */
#ifndef IVB_WORKLOAD_H
#define IVB_WORKLOAD_H

#include <stdint.h>
#include <stdio.h>

#include "results.h"
#include "session.h"

/* One command-line option of a workload (initiator side). */
struct ivb_wl_option {
	const char *name;  /* long name, without "--" */
	int short_name;    /* one letter, or 0 */
	const char *arg;   /* its argument in --help ("N"), NULL for a flag */
	const char *help;  /* one line for --help; "%s" there is replaced by the default */
	const char *dflt;  /* the default as text, for --help, or NULL */
	/* Parse arg (NULL for a flag) into the state; exit 2 through ivb_die_usage() if bad. */
	void (*set)(void *state, const char *arg);
};

/* What the initiator half gets. */
struct ivb_wl_ctx {
	struct ivb_initiator *ini;  /* session: shared memory, post, wait */
	struct ivb_results *res;    /* results directory */
	int quiet;                  /* no progress output */
	uint64_t responder_spin_ns; /* the wait policy a responder should use (waiter.h spin_ns) */
	const char *wait_name;      /* that policy's name: "spin", "sleep", "hybrid:50us" */
	int watch_tid;              /* the responder's vCPU thread on this host, 0 if unknown */
	char *status;               /* set when the run fails or finds errors */
	size_t status_len;
};

/* What run() reports. */
enum ivb_wl_outcome {
	IVB_WL_COMPLETE = 0, /* everything measured and verified */
	IVB_WL_ERRORS = 1,   /* ran to the end, but some items failed (status says) */
	IVB_WL_STOPPED = -1, /* stopped: timeout, signal, write error (status says) */
};

struct ivb_workload {
	const char *name;      /* "latency"; --test takes it */
	const char *alias;     /* another name --test accepts, or NULL */
	const char *summary;   /* one line for --help */
	int by_default;        /* run when --test does not name workloads */
	uint32_t command;      /* the enum ivb_command its messages carry */
	const struct ivb_csv_schema *csv; /* the results file it writes */
	const struct ivb_csv_schema *csv2; /* a second one, or NULL */
	const struct ivb_wl_option *opts; /* its options, ending with { 0 } */
	size_t state_size;     /* bytes of its settings and results */
	void (*defaults)(void *state);
	/* Check the settings against the payload capacity; exits 2 if they cannot fit. */
	void (*check)(const void *state, uint64_t capacity, const char *shm_name);
	enum ivb_wl_outcome (*run)(void *state, struct ivb_wl_ctx *ctx);
	ivb_serve_fn serve;    /* the responder's work; NULL: the acknowledgements are all */
	/* Its members of run.json: settings always, results once measured. */
	void (*json)(const void *state, struct ivb_json *j, int ran);
	/* The names of those members, NULL-ended (struct ivb_json: writing
	 * another stops the program; --meta may not take them). */
	const char *const *json_keys;
	/* Its part of the printed summary, after run(). */
	void (*print)(const void *state, const char *results_dir);
};

/* The table (workloads.c), NULL-ended. */
extern const struct ivb_workload *const ivb_workloads[];

/* ---- what a program's main does with the table (workloads.c) ---- */
struct option;
int ivb_workloads_count(void);
/* Each workload's options, for --help. */
void ivb_workloads_usage(FILE *out);
/* Each workload's results file and columns, one line each. */
void ivb_workloads_schema(FILE *out);
/* --test LIST: set selected[i] for the workloads named (or all); exit 2 on an unknown name. */
void ivb_workloads_select(const char *list, int *selected);
/* Append every workload option to a getopt_long table (and its short letters). */
void ivb_workloads_options(struct option *opts, size_t *n, size_t max, char *shorts,
			   size_t shorts_len);
/* Allocate each workload's state with its defaults; select the default ones. */
void ivb_workloads_init(void **state, int *selected);
/*
 * Run the selected workloads in table order until one stops the run,
 * calling phase_end(arg) after each (it writes run.json; non-zero stops).
 * Returns the worst enum ivb_wl_outcome; ctx->status keeps the first failure.
 */
int ivb_workloads_run(void *const *state, const int *selected, struct ivb_wl_ctx *ctx,
		      int (*phase_end)(void *), void *arg);
/* Apply option c to the workload that declared it; 0 when none did. */
int ivb_workloads_option(int c, const char *arg, void *const *state);

#endif
