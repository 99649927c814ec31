/*
 * corunner.h - interference: co-runners from Debian's stress-ng, started
 * just before a measurement and stopped just after it, that never outlive
 * the program that started them.
 *
 *   cpu     a CPU hog (stress-ng --cpu 1) on the responder's CPU, so the
 *           responder shares its core
 *   membw   a memory-bandwidth hog (stress-ng --stream 1) on another CPU
 *   cache   a cache thrasher (stress-ng --cache 1 --cache-no-affinity) on
 *           another CPU
 *
 * Each runs as the leader of a process group of its own, confined to one
 * CPU (sched_setaffinity before exec, and stress-ng's --taskset for its
 * workers). It is stopped with SIGKILL to the whole group, on every way out
 * of the program: ivb_corunner_stop() when the measurement ends (or fails,
 * or is interrupted), an atexit() handler for exit() from anywhere,
 * PR_SET_PDEATHSIG in the child so that even SIGKILL of the program takes
 * stress-ng down (its own workers die with it: stress-ng sets the same
 * for them), and stress-ng's --timeout as the last resort.
 */
#ifndef IVB_CORUNNER_H
#define IVB_CORUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IVB_CORUNNER_PROGRAM "stress-ng"
#define IVB_CORUNNER_PACKAGE "stress-ng" /* the Debian package that has it */

enum ivb_corunner_kind {
	IVB_CORUNNER_CPU = 0,
	IVB_CORUNNER_MEMBW = 1,
	IVB_CORUNNER_CACHE = 2,
	IVB_CORUNNER__COUNT
};

struct ivb_corunner {
	enum ivb_corunner_kind kind;
	int cpu;             /* the CPU it is confined to */
	pid_t pid;           /* stress-ng, the leader of its process group; 0 when not running */
	pid_t worker;        /* its first worker (a child of stress-ng), 0 if unknown */
	char command[256];   /* its command line, for run.json */
};

/* "cpu", "membw", "cache". */
const char *ivb_corunner_name(enum ivb_corunner_kind k);
/* The kind named, or -1. */
int ivb_corunner_parse(const char *name);

/* Find stress-ng in PATH: its path into buf and 0, or -1 when it is not installed. */
int ivb_corunner_find(char *buf, size_t len);

/* The command line kind runs on cpu, stopping itself after max_s seconds at most. */
void ivb_corunner_command(enum ivb_corunner_kind k, int cpu, unsigned max_s, char *buf,
			  size_t len);

/*
 * Start kind k on cpu, with stress-ng's own --timeout at max_s seconds.
 * Returns 0 once its worker runs (a child of stress-ng exists); -1 with
 * err set when stress-ng cannot be started, exits, or has no worker by
 * deadline_ns (ivb_now_ns() time): then nothing of it is left running.
 */
int ivb_corunner_start(struct ivb_corunner *c, enum ivb_corunner_kind k, int cpu, unsigned max_s,
		       uint64_t deadline_ns, char *err, size_t len);

/* Stop it: SIGKILL to its process group, and reap stress-ng. Does nothing when stopped. */
void ivb_corunner_stop(struct ivb_corunner *c);

/* 1 while stress-ng runs (not exited, not a zombie). */
int ivb_corunner_running(const struct ivb_corunner *c);

#endif
