/*
 * workloads.c - the table of workloads. Adding one: a new file in this
 * folder implementing workload.h, and one line here.
 */
#include "workload.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define OPT_WORKLOAD 2000 /* getopt value of a workload option: + workload * 100 + option */

extern const struct ivb_workload ivb_wl_latency;
extern const struct ivb_workload ivb_wl_frames;
extern const struct ivb_workload ivb_wl_stream;
extern const struct ivb_workload ivb_wl_sizelat;
extern const struct ivb_workload ivb_wl_rate;
extern const struct ivb_workload ivb_wl_limits;
extern const struct ivb_workload ivb_wl_chain;

const struct ivb_workload *const ivb_workloads[] = {
	&ivb_wl_latency,
	&ivb_wl_frames,
	&ivb_wl_stream,
	&ivb_wl_sizelat,
	&ivb_wl_rate,
	&ivb_wl_limits,
	&ivb_wl_chain,
	NULL,
};

int ivb_workloads_count(void)
{
	int n = 0;

	while (ivb_workloads[n])
		n++;
	return n;
}

void ivb_workloads_usage(FILE *out)
{
	int i;

	for (i = 0; ivb_workloads[i]; i++) {
		const struct ivb_workload *wl = ivb_workloads[i];
		const struct ivb_wl_option *o;

		fprintf(out, "\nWorkload %s%s%s%s: %s\n", wl->name, wl->alias ? " (or " : "",
			wl->alias ? wl->alias : "", wl->alias ? ")" : "", wl->summary);
		for (o = wl->opts; o->name; o++) {
			char left[64];

			if (o->short_name)
				snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
					 o->arg ? " " : "", o->arg ? o->arg : "");
			else
				snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
					 o->arg ? o->arg : "");
			fprintf(out, "  %-26s", left);
			if (o->help) /* its "%s" is the default */
				fprintf(out, o->help, o->dflt ? o->dflt : "");
			fputc('\n', out);
		}
	}
}

void ivb_workloads_schema(FILE *out)
{
	int i;

	for (i = 0; ivb_workloads[i]; i++) {
		const struct ivb_workload *wl = ivb_workloads[i];

		fprintf(out, "%s %s %s\n", wl->name, wl->csv->file, wl->csv->columns);
		if (wl->csv2)
			fprintf(out, "%s %s %s\n", wl->name, wl->csv2->file, wl->csv2->columns);
	}
}

void ivb_workloads_select(const char *list, int *selected)
{
	char buf[256], *tok, *save;
	int i;

	if (strlen(list) >= sizeof(buf))
		ivb_die_usage("--test: list too long");
	snprintf(buf, sizeof(buf), "%s", list);
	for (i = 0; ivb_workloads[i]; i++)
		selected[i] = 0;
	if (!strcmp(list, "default")) {
		for (i = 0; ivb_workloads[i]; i++)
			selected[i] = ivb_workloads[i]->by_default;
		return;
	}
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int found = 0;

		for (i = 0; ivb_workloads[i]; i++) {
			const struct ivb_workload *wl = ivb_workloads[i];

			if (!strcmp(tok, "all") || !strcmp(tok, wl->name) ||
			    (wl->alias && !strcmp(tok, wl->alias)))
				selected[i] = found = 1;
		}
		if (!found)
			ivb_die_usage("--test: '%s' is not a workload (see --help), default or all", tok);
	}
}

void ivb_workloads_options(struct option *opts, size_t *n, size_t max, char *shorts,
			   size_t shorts_len)
{
	int i;

	for (i = 0; ivb_workloads[i]; i++) {
		const struct ivb_wl_option *o;

		for (o = ivb_workloads[i]->opts; o->name; o++) {
			size_t len = strlen(shorts);

			if (*n + 1 >= max)
				ivb_die("too many options");
			opts[(*n)++] = (struct option){ o->name, o->arg ? required_argument : no_argument,
							NULL, OPT_WORKLOAD + i * 100 +
							(int)(o - ivb_workloads[i]->opts) };
			if (o->short_name)
				snprintf(shorts + len, shorts_len - len, "%c%s", o->short_name,
					 o->arg ? ":" : "");
		}
	}
	opts[*n] = (struct option){ 0 };
}

int ivb_workloads_option(int c, const char *arg, void *const *state)
{
	int i, k;

	for (i = 0; ivb_workloads[i]; i++) {
		const struct ivb_wl_option *o = ivb_workloads[i]->opts;

		for (k = 0; o[k].name; k++)
			if (c == OPT_WORKLOAD + i * 100 + k || (o[k].short_name && c == o[k].short_name)) {
				o[k].set(state[i], arg);
				return 1;
			}
	}
	return 0;
}

void ivb_workloads_init(void **state, int *selected)
{
	int i;

	for (i = 0; ivb_workloads[i]; i++) {
		selected[i] = ivb_workloads[i]->by_default;
		state[i] = calloc(1, ivb_workloads[i]->state_size);
		if (!state[i])
			ivb_die("out of memory");
		ivb_workloads[i]->defaults(state[i]);
	}
}

int ivb_workloads_run(void *const *state, const int *selected, struct ivb_wl_ctx *ctx,
		      int (*phase_end)(void *), void *arg)
{
	int i, outcome = IVB_WL_COMPLETE;

	for (i = 0; ivb_workloads[i] && outcome != IVB_WL_STOPPED; i++) {
		char before[1024];
		enum ivb_wl_outcome o;

		if (!selected[i])
			continue;
		if (!ctx->quiet)
			printf("%s: %s\n", ivb_workloads[i]->name, ivb_workloads[i]->summary);
		/* The first failure is the one the run reports. */
		snprintf(before, sizeof(before), "%s", ctx->status);
		o = ivb_workloads[i]->run(state[i], ctx);
		if (before[0])
			snprintf(ctx->status, ctx->status_len, "%s", before);
		if (o == IVB_WL_STOPPED || (o == IVB_WL_ERRORS && outcome == IVB_WL_COMPLETE))
			outcome = o;
		if (phase_end(arg))
			outcome = IVB_WL_STOPPED;
	}
	return outcome;
}
