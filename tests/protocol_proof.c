/*
 * protocol_proof - a responder that answers PROCESSED without reading the
 * payload (it copies the check the initiator published) is caught: every
 * such frame is reported as bad_proof, never as verified, and host_writer
 * exits 1. The responder is the project's own (session.c) with a forging
 * serve function in place of the frames workload's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "check.h"
#include "session.h"

#define SHM_SIZE (4u << 20)

static enum ivb_error forge(struct ivb_responder *r, const struct ivb_message *m,
			    struct ivb_reply *reply)
{
	(void)r;
	memcpy(reply->digest, m->check, IVB_CHECK_LEN); /* all a forger can know */
	reply->has_digest = 1;
	return IVB_OK;
}

static int count_lines(const char *path, const char *needle)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

int main(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char shm[] = "/dev/shm/ivb-test-proof-XXXXXX", out[] = "/tmp/ivb-proof-XXXXXX";
	char writer[512], csv[600], err[1200];
	struct ivb_attach_opts o = { 0 };
	struct ivb_endpoint ep;
	struct ivb_responder r;
	pid_t pid;
	int fd, status;
	uint64_t s;

	fd = mkstemp(shm);
	if (fd < 0 || ftruncate(fd, SHM_SIZE) < 0 || !mkdtemp(out))
		return perror("setup"), 1;
	close(fd);
	o.shm_path = shm;
	if (ivb_attach(&o, IVB_PAYLOAD_OFFSET, &ep, err, sizeof(err)))
		return printf("%s\n", err), 1;
	ivb_responder_init(&r, ep.map.base, ep.map.size, &ep.waiter);
	r.silence_ns = 20000000000ull;
	r.accepts[IVB_CMD_PING] = 1; /* no work: serve[] stays NULL */
	r.accepts[IVB_CMD_FRAME] = 1;
	r.serve[IVB_CMD_FRAME] = forge;
	snprintf(writer, sizeof(writer), "%s/host_writer", build);
	pid = fork();
	if (pid == 0) {
		execl(writer, writer, "--shm", shm, "-o", out, "-t", "bandwidth", "-f", "64x64", "-b",
		      "3", "--timeout", "20s", "--cpu", "none", "-q", (char *)NULL);
		perror(writer);
		_exit(127);
	}
	s = ivb_responder_wait_session(&r, 20000000000ull);
	CHECK(s != 0);
	if (s)
		ivb_responder_serve(&r, s);
	waitpid(pid, &status, 0);
	CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 1, "host_writer exits 1 (status %d)",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	snprintf(csv, sizeof(csv), "%s/bandwidth_results.csv", out);
	CHECKF(count_lines(csv, ",0,102,bad_proof,") == 3, "3 frames reported as bad_proof");
	CHECKF(count_lines(csv, ",1,0,ok,") == 0, "no frame reported as verified");
	ivb_detach(&ep);
	unlink(shm);
	snprintf(err, sizeof(err), "rm -rf '%s'", out);
	if (system(err)) {
		/* best effort */
	}
	return check_done("protocol_proof");
}
