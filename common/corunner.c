/*
 * corunner.c - stress-ng co-runners that never outlive the run (see
 * corunner.h for every way they are stopped).
 */
#include "corunner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define CORUNNER_MAX 16             /* co-runners alive at once */
#define CORUNNER_POLL_NS 1000000ull /* how often start() looks for the worker */
#define CORUNNER_MAX_ARGS 16

/* Every co-runner running, for the atexit() handler. */
static pid_t live[CORUNNER_MAX];
static int atexit_set;

static const char *const names[IVB_CORUNNER__COUNT] = { "cpu", "membw", "cache" };

const char *ivb_corunner_name(enum ivb_corunner_kind k)
{
	return (unsigned)k < IVB_CORUNNER__COUNT ? names[k] : "invalid";
}

int ivb_corunner_parse(const char *name)
{
	int k;

	for (k = 0; k < IVB_CORUNNER__COUNT; k++)
		if (!strcmp(name, names[k]))
			return k;
	return -1;
}

int ivb_corunner_find(char *buf, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096], *dir, *save;

	if (!path || strlen(path) >= sizeof(dirs))
		return -1;
	snprintf(dirs, sizeof(dirs), "%s", path);
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		struct stat st;

		snprintf(buf, len, "%s/%s", *dir ? dir : ".", IVB_CORUNNER_PROGRAM);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return 0;
	}
	buf[0] = 0;
	return -1;
}

/* stress-ng's arguments for kind k (argv[0] excluded), into args; returns their number. */
static int arguments(enum ivb_corunner_kind k, int cpu, unsigned max_s, char cpu_s[16],
		     char timeout_s[24], const char *args[CORUNNER_MAX_ARGS])
{
	int n = 0;

	snprintf(cpu_s, 16, "%d", cpu);
	snprintf(timeout_s, 24, "%us", max_s);
	switch (k) {
	case IVB_CORUNNER_CPU: args[n++] = "--cpu"; args[n++] = "1"; break;
	case IVB_CORUNNER_MEMBW: args[n++] = "--stream"; args[n++] = "1"; break;
	case IVB_CORUNNER_CACHE:
		/* The cache stressor moves itself between CPUs unless told not to. */
		args[n++] = "--cache"; args[n++] = "1"; args[n++] = "--cache-no-affinity";
		break;
	default: break;
	}
	args[n++] = "--taskset";
	args[n++] = cpu_s;
	args[n++] = "--timeout";
	args[n++] = timeout_s;
	args[n++] = "--quiet";
	args[n] = NULL;
	return n;
}

void ivb_corunner_command(enum ivb_corunner_kind k, int cpu, unsigned max_s, char *buf,
			  size_t len)
{
	const char *args[CORUNNER_MAX_ARGS];
	char cpu_s[16], timeout_s[24];
	size_t used;
	int i, n = arguments(k, cpu, max_s, cpu_s, timeout_s, args);

	snprintf(buf, len, "%s", IVB_CORUNNER_PROGRAM);
	for (i = 0; i < n; i++) {
		used = strlen(buf);
		snprintf(buf + used, len - used, " %s", args[i]);
	}
}

static void forget(pid_t pid)
{
	int i;

	for (i = 0; i < CORUNNER_MAX; i++)
		if (live[i] == pid)
			live[i] = 0;
}

/* Kill pid's process group (and pid itself, should it have left it) and reap it. */
static void kill_and_reap(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	forget(pid);
}

static void stop_all(void)
{
	int i;

	for (i = 0; i < CORUNNER_MAX; i++)
		if (live[i] > 0)
			kill_and_reap(live[i]);
}

/* The first child of pid, from /proc (the kernel's children list, else a scan); 0 if none. */
static pid_t first_child(pid_t pid)
{
	char path[300], line[4096];
	long child = 0;
	FILE *f;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "r"))) {
		if (!fgets(line, sizeof(line), f) || sscanf(line, "%ld", &child) != 1)
			child = 0;
		fclose(f);
		return (pid_t)child;
	}
	if (!(d = opendir("/proc")))
		return 0;
	while (!child && (e = readdir(d))) {
		long ppid = 0;
		const char *p;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		/* pid (comm) state ppid: comm may hold spaces and parentheses. */
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')) &&
		    sscanf(p + 1, " %*c %ld", &ppid) == 1 && ppid == pid)
			child = strtol(e->d_name, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return (pid_t)child;
}

/* The child: its own group, killed with us, on one CPU, quiet; then stress-ng. */
static void child(const char *path, const char *const *argv, int cpu, pid_t parent)
{
	cpu_set_t set;
	sigset_t none;
	int fd;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the parent died before prctl() */
		_exit(127);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	/* Nothing else of ours: the server's socket and the eventfds must close when we do. */
	close_range(3, ~0u, 0);
	execv(path, (char *const *)argv);
	_exit(127);
}

int ivb_corunner_start(struct ivb_corunner *c, enum ivb_corunner_kind k, int cpu, unsigned max_s,
		       uint64_t deadline_ns, char *err, size_t len)
{
	const char *argv[CORUNNER_MAX_ARGS + 1];
	char path[4096], cpu_s[16], timeout_s[24];
	pid_t me = getpid(), pid;
	int slot, status;

	memset(c, 0, sizeof(*c));
	c->kind = k;
	c->cpu = cpu;
	ivb_corunner_command(k, cpu, max_s, c->command, sizeof(c->command));
	if (ivb_corunner_find(path, sizeof(path))) {
		snprintf(err, len, "%s is not installed (Debian package %s)", IVB_CORUNNER_PROGRAM,
			 IVB_CORUNNER_PACKAGE);
		return -1;
	}
	for (slot = 0; slot < CORUNNER_MAX && live[slot]; slot++)
		;
	if (slot == CORUNNER_MAX) {
		snprintf(err, len, "more than %d co-runners at once", CORUNNER_MAX);
		return -1;
	}
	if (!atexit_set)
		atexit_set = !atexit(stop_all);
	argv[0] = IVB_CORUNNER_PROGRAM;
	arguments(k, cpu, max_s, cpu_s, timeout_s, argv + 1);
	fflush(NULL); /* nothing buffered is written twice */
	pid = fork();
	if (pid < 0) {
		snprintf(err, len, "cannot start %s: %s", IVB_CORUNNER_PROGRAM, strerror(errno));
		return -1;
	}
	if (pid == 0)
		child(path, argv, cpu, me);
	setpgid(pid, pid); /* also here: kill(-pid) must work whichever runs first */
	live[slot] = pid;
	c->pid = pid;
	/* Ready when stress-ng has forked its worker. No event says so: look
	 * every millisecond, until the deadline. */
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			forget(pid);
			kill(-pid, SIGKILL);
			c->pid = 0;
			snprintf(err, len, "%s (%s) exited at once with %s %d", IVB_CORUNNER_PROGRAM,
				 c->command, WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			return -1;
		}
		if ((c->worker = first_child(pid)) > 0)
			return 0;
		if (ivb_now_ns() > deadline_ns) {
			ivb_corunner_stop(c);
			snprintf(err, len, "%s (%s) started no worker within the deadline",
				 IVB_CORUNNER_PROGRAM, c->command);
			return -1;
		}
		ivb_sleep_ns(CORUNNER_POLL_NS);
	}
}

void ivb_corunner_stop(struct ivb_corunner *c)
{
	if (c->pid <= 0)
		return;
	kill_and_reap(c->pid);
	c->pid = 0;
}

int ivb_corunner_running(const struct ivb_corunner *c)
{
	char path[64], line[512];
	const char *p;
	char state = 0;
	FILE *f;

	if (c->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')))
		sscanf(p + 1, " %c", &state);
	fclose(f);
	return state && state != 'Z' && state != 'X';
}
