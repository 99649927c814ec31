/*
 * transport_bench - the size-latency ping-pong and the stream over the
 * channels other than ivshmem: a pipe, a UNIX stream socket and TCP
 * loopback on the host, and a virtio-serial port, TCP over virtio-net and
 * AF_VSOCK between the host and a guest. Every message goes through one
 * framing and verification layer (common/xport.h), so the rows differ only
 * in the channel; the ivshmem rows of the comparison come from host_writer's
 * size_latency_results.csv and stream_results.csv of the same run.
 *
 * Initiator (the host):
 *   transport_bench -o DIR -T pipe,unix,tcp,serial:SOCK,tcp:127.0.0.1:PORT,vsock:CID:PORT
 * writes DIR/transport_results.csv (one row per transport, test and size,
 * or one row saying why a transport is not available) and DIR/run.json.
 * "pipe", "unix" and "tcp" fork their own responder on the host, pinned to
 * --peer-cpu; the others connect to a responder that serves already.
 *
 * Responder (the guest, or a host test):
 *   transport_bench --serve tcp:PORT | unix:PATH | serial:/dev/vportNpM | vsock:PORT
 * answers SETUP, echoes or counts DATA frames, answers SYNC and END, until
 * a stop signal or --idle-exit; a connection that closes or sends garbage
 * is dropped and the next one served.
 *
 * Round trips are timed from before the send to after the echo has been read
 * and checked (its sequence number, its check, and its bytes against what
 * was sent); the stream's rate is the responder-confirmed messages sent
 * between a SYNC (everything of the warm-up read) and the RESULT that
 * answers END (everything read and checked). Every wait has a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "cli.h"
#include "cpu.h"
#include "digest.h"
#include "results.h"
#include "sizes.h"
#include "stats.h"
#include "timing.h"
#include "version.h"
#include "xport.h"

#define PROG "transport_bench"

#define DEFAULT_RESULTS "results/transports"
#define DEFAULT_TRANSPORTS "pipe,unix,tcp"
#define DEFAULT_LAT_SIZES "8,64,512,4k,32k,256k,1M"
#define DEFAULT_SIZES "64,4k,64k,1M"
#define DEFAULT_ITERATIONS "1000"
#define DEFAULT_DURATION "200ms"
#define DEFAULT_TIMEOUT "10s"
#define DEFAULT_IDLE "0"
#define MAX_TRANSPORTS 12
#define MAX_META 16
#define LARGE_MESSAGE (64u << 10)
#define CLOCK_EVERY 64 /* stream messages between clock reads */

static const struct ivb_csv_schema transport_csv = {
	"transport_results.csv",
	"transport,test,message_bytes,verify,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,"
	"messages,seconds,msgs_per_s,gbps,errors,host_cpu_us_per_msg,peer_cpu_us_per_msg,available,reason",
};

struct config {
	const char *serve;          /* responder: what to serve */
	const char *results_dir;
	char *transports[MAX_TRANSPORTS];
	int ntransports;
	const char *unavailable[MAX_TRANSPORTS]; /* NAME=REASON rows to write as they are */
	int nunavailable;
	struct ivb_sizes lat_sizes, sizes;
	long iterations;
	uint64_t duration_ns, timeout_ns, idle_ns;
	enum ivb_verify verify;
	int cpu, peer_cpu;
	int once;
	const char *meta[MAX_META];
	int nmeta;
	int quiet;
	const char *netns;          /* --netns: the harness's network namespace we run in, or NULL */
};

/* One transport's channel, as the initiator holds it. */
struct chan {
	const char *name;   /* the row's transport column */
	int rfd, wfd;       /* read and write ends (the same socket but for a pipe) */
	pid_t child;        /* the forked responder, 0 none */
	int sndbuf, rcvbuf; /* socket buffer sizes, -1 not a socket */
	int nodelay;        /* TCP_NODELAY set */
	int opened;         /* the channel was set up (reason: why it was lost later) */
	char reason[256];   /* why it is not available */
};

static struct config cfg;
static struct ivb_results res;
static char status[600] = "running", start_time[32], end_time[32];
static struct chan done[MAX_TRANSPORTS];
static int ndone;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]              the initiator: every transport, one results directory\n"
		"       " PROG " --serve SPEC [options] the responder\n\n"
		"  -T, --transport LIST      pipe, unix, tcp (host-only, a forked responder), serial:SOCKET\n"
		"                            (a virtserialport's host chardev), tcp:127.x.x.x:PORT, unix:PATH,\n"
		"                            vsock:CID:PORT, each as NAME=SPEC to name its rows (default %s)\n"
		"      --unavailable NAME=WHY  write a row saying NAME is not available, and why\n"
		"  -o, --output DIR          results directory (default %s)\n"
		"      --lat-sizes LIST      round-trip message sizes, or ladder (default %s)\n"
		"      --lat-iterations N    round trips per size, a tenth above 64 KiB (default %s)\n"
		"      --sizes LIST          stream message sizes, or ladder (default %s)\n"
		"      --duration DUR        measured time per stream point, after a fifth of warm-up (default %s)\n"
		"      --verify KIND         check of each message: xxh3, sha256, none (default xxh3)\n"
		"  -t, --timeout DUR         deadline of every wait (default %s)\n"
		"  -c, --cpu N|none          pin the initiator (default none)\n"
		"      --peer-cpu N|none     pin the forked host responders (default none)\n"
		"  -m, --meta KEY=VALUE      add to run.json (repeatable)\n"
		"  -q, --quiet               no progress output\n"
		"  -s, --serve SPEC          serve tcp:PORT, unix:PATH, serial:DEVICE or vsock:PORT\n"
		"      --once                serve one connection, then exit\n"
		"      --netns NAME          run in the harness's network namespace NAME (ip netns exec):\n"
		"                            tcp:ADDR:PORT may then name an address in it\n"
		"  -i, --idle-exit DUR       responder: exit with status 3 when nothing comes this long (0: never)\n"
		"  -h, --help                this text\n"
		"  -V, --version             print the version\n\n"
		"Exit status: 0 every transport measured clean (unavailable ones are rows, not failures),\n"
		"1 bad messages, a timeout or unwritable results, 2 bad options, 128+N stopped by signal N.\n",
		DEFAULT_TRANSPORTS, DEFAULT_RESULTS, DEFAULT_LAT_SIZES, DEFAULT_ITERATIONS, DEFAULT_SIZES,
		DEFAULT_DURATION, DEFAULT_TIMEOUT);
}

static int known_transport(const char *t)
{
	static const char *const bare[] = { "pipe", "unix", "tcp", NULL };
	static const char *const prefixed[] = { "serial:", "tcp:", "unix:", "vsock:", NULL };
	int i;

	for (i = 0; bare[i]; i++)
		if (!strcmp(t, bare[i]))
			return 1;
	for (i = 0; prefixed[i]; i++)
		if (!strncmp(t, prefixed[i], strlen(prefixed[i])) && t[strlen(prefixed[i])])
			return 1;
	return 0;
}

/* A transport's spec, after its row name: "NAME=SPEC" names the rows NAME. */
static const char *spec_of(const char *t)
{
	const char *eq = strchr(t, '='), *colon = strchr(t, ':');

	return eq && (!colon || eq < colon) ? eq + 1 : t;
}

static void parse_transports(const char *list)
{
	char *copy = strdup(list), *tok, *save;

	if (!copy)
		ivb_die("out of memory");
	cfg.ntransports = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const char *name = tok;

		tok = (char *)spec_of(tok);
		if (tok != name && (tok - name < 2 || tok - name > 40 ||
				    strcspn(name, ",\"\n") < (size_t)(tok - name - 1)))
			ivb_die_usage("--transport: '%.*s' is not a row name", (int)(tok - name - 1), name);
		if (!known_transport(tok))
			ivb_die_usage("--transport: '%s' is not pipe, unix, tcp, serial:SOCKET, "
				      "tcp:ADDR:PORT, unix:PATH or vsock:CID:PORT", tok);
		if (!strncmp(tok, "tcp:", 4)) {
			/* The address is checked once every option is known (tcp_allowed). */
			struct in_addr a;
			char host[64];
			const char *colon = strrchr(tok + 4, ':');

			if (!colon || colon - (tok + 4) >= (int)sizeof(host))
				ivb_die_usage("--transport: '%s' is not tcp:ADDR:PORT", tok);
			snprintf(host, sizeof(host), "%.*s", (int)(colon - (tok + 4)), tok + 4);
			if (inet_pton(AF_INET, host, &a) != 1)
				ivb_die_usage("--transport: %s is not an IPv4 address", host);
			ivb_opt_count("--transport tcp:ADDR:PORT", colon + 1, 1, 65535);
		}
		if (cfg.ntransports == MAX_TRANSPORTS)
			ivb_die_usage("--transport: at most %d", MAX_TRANSPORTS);
		cfg.transports[cfg.ntransports++] = (char *)name;
	}
	if (!cfg.ntransports)
		ivb_die_usage("--transport: empty list");
}

/* Is this process in network namespace NAME (/run/netns/NAME, made by
 * ip netns add)? The same namespace is the same inode. */
static int in_netns(const char *name)
{
	char path[300];
	struct stat ns, self;

	if (!*name || strchr(name, '/') || snprintf(path, sizeof(path), "/run/netns/%s", name) >= (int)sizeof(path))
		return 0;
	return !stat(path, &ns) && !stat("/proc/self/ns/net", &self) && ns.st_dev == self.st_dev &&
	       ns.st_ino == self.st_ino;
}

/* Only loopback, or inside the harness's own network namespace: a guest's
 * port reaches the host through a 127.0.0.1 forward, or through a tap in a
 * namespace that holds nothing else (--netns, checked in parse_args), so
 * nothing here talks to a network. */
static int tcp_allowed(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 24) == 127 || cfg.netns;
}

/* run.json's top-level members written in run_json(). */
static const char *const bench_json_keys[] = {
	"program", "start_time", "end_time", "status", "verify", "lat_iterations", "duration_ns",
	"timeout_ns", "cpu", "peer_cpu", "transports", NULL,
};

/* Every member run.json has of its own: it is checked against them as it is
 * written (struct ivb_json), and --meta may not take one. */
static const char *const *const json_keys[] = {
	ivb_json_own_keys, ivb_json_provenance_keys, bench_json_keys, NULL,
};

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport", required_argument, NULL, 'T' },
		{ "unavailable", required_argument, NULL, 'U' },
		{ "output", required_argument, NULL, 'o' },
		{ "lat-sizes", required_argument, NULL, 'L' },
		{ "lat-iterations", required_argument, NULL, 'N' },
		{ "sizes", required_argument, NULL, 'S' },
		{ "duration", required_argument, NULL, 'D' },
		{ "verify", required_argument, NULL, 'v' },
		{ "timeout", required_argument, NULL, 't' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "peer-cpu", required_argument, NULL, 'P' },
		{ "meta", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "serve", required_argument, NULL, 's' },
		{ "once", no_argument, NULL, '1' },
		{ "netns", required_argument, NULL, 'n' },
		{ "idle-exit", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c, v;

	cfg.results_dir = DEFAULT_RESULTS;
	cfg.cpu = cfg.peer_cpu = -1;
	parse_transports(DEFAULT_TRANSPORTS);
	ivb_sizes_parse("--lat-sizes", DEFAULT_LAT_SIZES, &cfg.lat_sizes);
	ivb_sizes_parse("--sizes", DEFAULT_SIZES, &cfg.sizes);
	cfg.iterations = (long)ivb_opt_count("--lat-iterations", DEFAULT_ITERATIONS, 10, 100000000);
	cfg.duration_ns = ivb_opt_duration("--duration", DEFAULT_DURATION, 1000000000ull, 1000000ull,
					   600000000000ull, "1ms..10m");
	cfg.timeout_ns = ivb_opt_duration("--timeout", DEFAULT_TIMEOUT, 1000000000ull, 1000000ull,
					  3600000000000ull, "1ms..1h");
	cfg.idle_ns = 0;
	while ((c = getopt_long(argc, argv, "T:o:t:c:m:qs:i:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'T': parse_transports(optarg); break;
		case 'U':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				ivb_die_usage("--unavailable: '%s' is not NAME=REASON", optarg);
			if (cfg.nunavailable == MAX_TRANSPORTS)
				ivb_die_usage("--unavailable: at most %d", MAX_TRANSPORTS);
			cfg.unavailable[cfg.nunavailable++] = optarg;
			break;
		case 'o': cfg.results_dir = optarg; break;
		case 'L': ivb_sizes_parse("--lat-sizes", optarg, &cfg.lat_sizes); break;
		case 'N': cfg.iterations = (long)ivb_opt_count("--lat-iterations", optarg, 10, 100000000); break;
		case 'S': ivb_sizes_parse("--sizes", optarg, &cfg.sizes); break;
		case 'D':
			cfg.duration_ns = ivb_opt_duration("--duration", optarg, 1000000000ull, 1000000ull,
							   600000000000ull, "1ms..10m (e.g. 500ms)");
			break;
		case 'v':
			if ((v = ivb_verify_parse(optarg)) < 0)
				ivb_die_usage("--verify: '%s' is not xxh3, sha256 or none", optarg);
			cfg.verify = (enum ivb_verify)v;
			break;
		case 't':
			cfg.timeout_ns = ivb_opt_duration("--timeout", optarg, 1000000000ull, 1000000ull,
							  3600000000000ull, "1ms..1h (e.g. 10s)");
			break;
		case 'c': cfg.cpu = ivb_opt_cpu("--cpu", optarg, 1); break;
		case 'P': cfg.peer_cpu = ivb_opt_cpu("--peer-cpu", optarg, 1); break;
		case 'm':
			ivb_opt_meta("--meta", optarg, json_keys);
			if (cfg.nmeta == MAX_META)
				ivb_die_usage("--meta: at most %d entries", MAX_META);
			cfg.meta[cfg.nmeta++] = optarg;
			break;
		case 'q': cfg.quiet = 1; break;
		case 's': cfg.serve = optarg; break;
		case '1': cfg.once = 1; break;
		case 'n': cfg.netns = optarg; break;
		case 'i':
			cfg.idle_ns = ivb_opt_duration("--idle-exit", optarg, 1000000000ull, 0,
						       864000000000000ull, "0 (never) or a duration");
			break;
		default: ivb_cli_option(c, usage);
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg.netns && !in_netns(cfg.netns))
		ivb_die_usage("--netns: not running in network namespace '%s' (start it with ip netns exec %s)",
			      cfg.netns, cfg.netns);
	for (int i = 0; i < cfg.ntransports; i++) {
		const char *t = spec_of(cfg.transports[i]), *colon;
		char host[64];
		struct in_addr a;

		if (strncmp(t, "tcp:", 4))
			continue;
		colon = strrchr(t + 4, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - (t + 4)), t + 4);
		if (inet_pton(AF_INET, host, &a) == 1 && !tcp_allowed(a))
			ivb_die_usage("--transport: %s is not an address in 127.0.0.0/8 (another needs --netns)", host);
	}
	if (cfg.serve && strncmp(cfg.serve, "tcp:", 4) && strncmp(cfg.serve, "unix:", 5) &&
	    strncmp(cfg.serve, "serial:", 7) && strncmp(cfg.serve, "vsock:", 6))
		ivb_die_usage("--serve: '%s' is not tcp:PORT, unix:PATH, serial:DEVICE or vsock:PORT",
			      cfg.serve);
}

/* ------------------------------------------------------------------ */
/* Responder                                                           */
/* ------------------------------------------------------------------ */

/*
 * Serve one connection until it closes, sends garbage, or a stop signal.
 * Between tests it waits up to idle_ns (0: for ever, in one-second looks
 * at the stop flag); inside a test every frame has the timeout.
 * Returns 0 when the peer closed or went quiet, -1 on garbage or error.
 */
static int serve_conn(int rfd, int wfd)
{
	struct ivb_xport_setup setup = { 0 };
	struct ivb_xport_result result = { 0 };
	struct ivb_xport_hdr h;
	uint8_t *buf = NULL;
	size_t cap = sizeof(setup);
	uint64_t cpu0 = 0;
	int in_test = 0, rc = 0;

	buf = malloc(cap);
	if (!buf)
		return -1;
	while (!ivb_interrupted) {
		uint64_t deadline = in_test || !cfg.idle_ns ? ivb_now_ns() + (in_test ? cfg.timeout_ns :
					3600ull * 1000000000ull) : ivb_now_ns() + cfg.idle_ns;

		rc = ivb_xport_recv(rfd, &h, buf, cap, deadline);
		if (rc == -ETIMEDOUT && !in_test && !cfg.idle_ns)
			continue;
		if (rc < 0)
			break;
		switch (h.type) {
		case IVB_XF_SETUP: {
			uint8_t refused = 0;

			if (h.len != sizeof(setup)) {
				rc = -EBADMSG;
				goto out;
			}
			memcpy(&setup, buf, sizeof(setup));
			if ((setup.test != IVB_XT_ECHO && setup.test != IVB_XT_SINK) ||
			    setup.verify >= IVB_VERIFY__COUNT || setup.msg_len > IVB_XPORT_MAX_PAYLOAD)
				refused = 1;
			if (!refused && setup.msg_len > cap) {
				uint8_t *nb = realloc(buf, setup.msg_len);

				if (!nb)
					refused = 1;
				else
					buf = nb, cap = setup.msg_len;
			}
			memset(&result, 0, sizeof(result));
			cpu0 = (uint64_t)ivb_thread_cpu_ns(0);
			in_test = !refused;
			rc = ivb_xport_send(wfd, IVB_XF_READY, refused, setup.token, NULL, 0,
					    IVB_VERIFY_NONE, ivb_now_ns() + cfg.timeout_ns);
			break;
		}
		case IVB_XF_DATA: {
			int bad = rc == 1 || !in_test || h.len != setup.msg_len || h.verify != setup.verify;

			if (bad && result.errors++ == 0)
				result.first_bad_seq = h.seq;
			result.received++;
			if (in_test && setup.test == IVB_XT_ECHO)
				rc = ivb_xport_send(wfd, IVB_XF_DATA, bad ? 1 : 0, h.seq, buf, h.len,
						    (enum ivb_verify)setup.verify,
						    ivb_now_ns() + cfg.timeout_ns);
			else
				rc = 0;
			break;
		}
		case IVB_XF_SYNC:
			rc = ivb_xport_send(wfd, IVB_XF_SYNC, 0, h.seq, NULL, 0, IVB_VERIFY_NONE,
					    ivb_now_ns() + cfg.timeout_ns);
			break;
		case IVB_XF_END:
			result.cpu_ns = (uint64_t)ivb_thread_cpu_ns(0) - cpu0;
			in_test = 0;
			rc = ivb_xport_send(wfd, IVB_XF_RESULT, 0, h.seq, &result, sizeof(result),
					    IVB_VERIFY_NONE, ivb_now_ns() + cfg.timeout_ns);
			break;
		default:
			rc = -EBADMSG; /* READY and RESULT are ours to send */
		}
		if (rc < 0)
			break;
	}
out:
	free(buf);
	if (rc == -EPIPE || (rc == -ETIMEDOUT && !in_test) || rc == -EINTR)
		return 0;
	if (rc < 0)
		ivb_warn("connection dropped: %s", ivb_xport_error(rc));
	return rc < 0 ? -1 : 0;
}

static int listen_on(const char *spec, char *err, size_t len)
{
	int fd = -1, one = 1;

	if (!strncmp(spec, "tcp:", 4)) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };

		a.sin_port = htons((uint16_t)ivb_opt_count("--serve tcp:PORT", spec + 4, 1, 65535));
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
				bind(fd, (struct sockaddr *)&a, sizeof(a))))
			goto fail;
	} else if (!strncmp(spec, "vsock:", 6)) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };

		a.svm_port = (unsigned)ivb_opt_count("--serve vsock:PORT", spec + 6, 1, 0xfffffffeu);
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	} else {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		if (strlen(spec + 5) >= sizeof(a.sun_path)) {
			snprintf(err, len, "%s: path too long", spec);
			return -1;
		}
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", spec + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	}
	if (fd < 0 || listen(fd, 4))
		goto fail;
	return fd;
fail:
	snprintf(err, len, "cannot listen on %s: %s", spec, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Set the options a fair comparison needs on a connected socket. */
static void tune_socket(int fd, struct chan *c)
{
	int one = 1;
	socklen_t l = sizeof(int);

	c->nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c->sndbuf, &l))
		c->sndbuf = -1;
	l = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &c->rcvbuf, &l))
		c->rcvbuf = -1;
}

/*
 * Wait until the host side of virtio-serial port fd is connected. While it
 * is not, poll() says POLLHUP at once and read() returns 0, so neither can
 * be slept on; the port's driver sends SIGIO (O_ASYNC) when the host
 * connects, which is waited for here, with a look every second in case it
 * was missed. 0 connected, -EINTR on a stop signal, -ETIMEDOUT after idle_ns.
 */
static int wait_host(int fd, uint64_t idle_ns)
{
	uint64_t start = ivb_now_ns();
	sigset_t io;

	sigemptyset(&io);
	sigaddset(&io, SIGIO);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct timespec slice = { 1, 0 };

		if (ivb_interrupted)
			return -EINTR;
		if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
			return 0;
		if (idle_ns && ivb_now_ns() - start > idle_ns)
			return -ETIMEDOUT;
		sigtimedwait(&io, NULL, &slice); /* SIGIO, a stop signal, or a second */
	}
}

/*
 * A virtio-serial port: opened once; each time the host connects, its
 * frames are served until it closes. Garbage loses the stream: what is
 * there is read and dropped until a quiet 100 ms, and serving goes on.
 */
static int serve_serial(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK), fl;
	sigset_t io;

	if (fd < 0) {
		ivb_warn("cannot open %s: %s", dev, strerror(errno));
		return 1;
	}
	/* SIGIO stays blocked: it is only ever taken by sigtimedwait(). */
	sigemptyset(&io);
	sigaddset(&io, SIGIO);
	sigprocmask(SIG_BLOCK, &io, NULL);
	fl = fcntl(fd, F_GETFL);
	if (fcntl(fd, F_SETOWN, getpid()) || fl < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC))
		ivb_warn("%s: no SIGIO on host connections (%s): looking once a second", dev,
			 strerror(errno));
	printf("TRANSPORT-READY %s\n", cfg.serve);
	fflush(stdout);
	while (!ivb_interrupted) {
		int rc = wait_host(fd, cfg.idle_ns);

		if (rc == -ETIMEDOUT) {
			ivb_warn("no connection for %.0f s; exiting", (double)cfg.idle_ns / 1e9);
			close(fd);
			return 3;
		}
		if (rc)
			break;
		if (serve_conn(fd, fd) < 0) {
			uint8_t junk[4096];

			while (ivb_xport_read_all(fd, junk, 1, ivb_now_ns() + 100000000ull) == 0)
				while (read(fd, junk, sizeof(junk)) > 0)
					;
		}
		if (cfg.once)
			break;
		/* The host may still be connected (garbage), or gone: wait_host tells. */
		if (!ivb_interrupted) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			struct timespec slice = { 0, 100000000 };

			/* A host that just closed is seen by the next poll; a breath
			 * first keeps a stream of garbage from spinning. */
			if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
				sigtimedwait(&io, NULL, &slice);
		}
	}
	close(fd);
	return 0;
}

static int serve(void)
{
	char err[512];
	int lfd;

	if (!strncmp(cfg.serve, "serial:", 7))
		return serve_serial(cfg.serve + 7);
	if ((lfd = listen_on(cfg.serve, err, sizeof(err))) < 0)
		ivb_die("%s", err);
	if (ivb_xport_nonblock(lfd))
		ivb_die("cannot make the listening socket non-blocking");
	printf("TRANSPORT-READY %s\n", cfg.serve);
	fflush(stdout);
	while (!ivb_interrupted) {
		struct chan c = { 0 };
		uint64_t forever = ivb_now_ns() + 3600ull * 1000000000ull;
		int fd, rc = ivb_xport_wait(lfd, POLLIN, cfg.idle_ns ? ivb_now_ns() + cfg.idle_ns : forever);

		if (rc == -ETIMEDOUT && cfg.idle_ns) {
			ivb_warn("no connection for %.0f s; exiting", (double)cfg.idle_ns / 1e9);
			close(lfd);
			return 3;
		}
		if (rc)
			continue; /* an hour without one, or a signal: the loop looks at the flag */
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		tune_socket(fd, &c);
		serve_conn(fd, fd);
		close(fd);
		if (cfg.once)
			break;
	}
	close(lfd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Initiator                                                           */
/* ------------------------------------------------------------------ */

/* Fork a responder on the host serving rfd/wfd, pinned to --peer-cpu. */
static pid_t fork_responder(int rfd, int wfd, int close1, int close2)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	if (close1 >= 0)
		close(close1);
	if (close2 >= 0)
		close(close2);
	if (cfg.peer_cpu >= 0)
		ivb_pin_self(cfg.peer_cpu);
	ivb_xport_nonblock(rfd);
	ivb_xport_nonblock(wfd);
	cfg.idle_ns = cfg.timeout_ns; /* a parent that goes away is not waited for long */
	_exit(serve_conn(rfd, wfd) < 0 ? 1 : 0);
}

/* Connect to host:port (an address in 127.0.0.0/8 only) or a UNIX path or a vsock CID:PORT. */
static int connect_to(const char *spec, struct chan *c)
{
	int fd = -1, rc;
	uint64_t deadline = ivb_now_ns() + cfg.timeout_ns;

	if (!strncmp(spec, "tcp:", 4)) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		char host[64];
		const char *colon = strrchr(spec + 4, ':');

		if (!colon || colon - (spec + 4) >= (int)sizeof(host)) {
			snprintf(c->reason, sizeof(c->reason), "'%s' is not tcp:ADDR:PORT", spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - (spec + 4)), spec + 4);
		if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || !tcp_allowed(a.sin_addr)) {
			snprintf(c->reason, sizeof(c->reason), "%s is not an address in 127.0.0.0/8", host);
			return -1;
		}
		a.sin_port = htons((uint16_t)atoi(colon + 1));
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else if (!strncmp(spec, "vsock:", 6)) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK };
		unsigned cid = 0, port = 0;

		if (sscanf(spec + 6, "%u:%u", &cid, &port) != 2) {
			snprintf(c->reason, sizeof(c->reason), "'%s' is not vsock:CID:PORT", spec);
			return -1;
		}
		a.svm_cid = cid;
		a.svm_port = port;
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof(a));
	} else {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		const char *path = strchr(spec, ':') + 1;

		if (strlen(path) >= sizeof(a.sun_path)) {
			snprintf(c->reason, sizeof(c->reason), "%s: path too long", path);
			return -1;
		}
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof(a));
	}
	if (rc < 0 && errno == EINPROGRESS) {
		int e = 0;
		socklen_t l = sizeof(e);

		rc = ivb_xport_wait(fd, POLLOUT, deadline);
		if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) || e))
			errno = e ? e : errno, rc = -1;
		else if (rc)
			errno = -rc, rc = -1;
	}
	if (fd < 0 || rc < 0) {
		snprintf(c->reason, sizeof(c->reason), "cannot connect to %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	tune_socket(fd, c);
	c->rfd = c->wfd = fd;
	return 0;
}

/* Open transport spec: 0, or -1 with c->reason. */
static int chan_open(const char *spec, struct chan *c)
{
	int p1[2], p2[2], sv[2];

	*c = (struct chan){ .name = spec, .rfd = -1, .wfd = -1, .sndbuf = -1, .rcvbuf = -1 };
	if (spec_of(spec) != spec) { /* NAME=SPEC: the rows say NAME */
		static char names[MAX_TRANSPORTS][48];
		static int next;
		char *n = names[next++ % MAX_TRANSPORTS];

		snprintf(n, sizeof(names[0]), "%.*s", (int)(spec_of(spec) - spec - 1), spec);
		c->name = n;
		spec = spec_of(spec);
	}
	if (!strcmp(spec, "pipe")) {
		if (pipe2(p1, O_CLOEXEC) || pipe2(p2, O_CLOEXEC)) {
			snprintf(c->reason, sizeof(c->reason), "pipe: %s", strerror(errno));
			return -1;
		}
		c->child = fork_responder(p1[0], p2[1], p1[1], p2[0]);
		close(p1[0]);
		close(p2[1]);
		c->wfd = p1[1];
		c->rfd = p2[0];
	} else if (!strcmp(spec, "unix")) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
			snprintf(c->reason, sizeof(c->reason), "socketpair: %s", strerror(errno));
			return -1;
		}
		c->child = fork_responder(sv[1], sv[1], sv[0], -1);
		close(sv[1]);
		c->rfd = c->wfd = sv[0];
		tune_socket(sv[0], c);
	} else if (!strcmp(spec, "tcp")) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t l = sizeof(a);
		int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), afd;
		char target[64];

		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
		    getsockname(lfd, (struct sockaddr *)&a, &l)) {
			snprintf(c->reason, sizeof(c->reason), "TCP loopback: %s", strerror(errno));
			if (lfd >= 0)
				close(lfd);
			return -1;
		}
		snprintf(target, sizeof(target), "tcp:127.0.0.1:%u", ntohs(a.sin_port));
		if (connect_to(target, c)) {
			close(lfd);
			return -1;
		}
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		close(lfd);
		if (afd < 0) {
			snprintf(c->reason, sizeof(c->reason), "TCP loopback accept: %s", strerror(errno));
			return -1;
		}
		{
			int one = 1;

			setsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		c->child = fork_responder(afd, afd, c->rfd, -1);
		close(afd);
	} else if (connect_to(spec, c)) { /* serial:SOCKET is QEMU's chardev: a UNIX socket */
		return -1;
	}
	if (c->child < 0) {
		snprintf(c->reason, sizeof(c->reason), "fork: %s", strerror(errno));
		return -1;
	}
	if (ivb_xport_nonblock(c->rfd) || ivb_xport_nonblock(c->wfd)) {
		snprintf(c->reason, sizeof(c->reason), "cannot make the channel non-blocking");
		return -1;
	}
	return 0;
}

static void chan_close(struct chan *c)
{
	if (c->wfd >= 0 && c->wfd != c->rfd)
		close(c->wfd);
	if (c->rfd >= 0)
		close(c->rfd);
	c->rfd = c->wfd = -1;
	if (c->child > 0) {
		int st;
		uint64_t deadline = ivb_now_ns() + cfg.timeout_ns;

		/* It sees the channel close and exits; a responder that does not is killed. */
		while (waitpid(c->child, &st, WNOHANG) == 0) {
			if (ivb_now_ns() > deadline) {
				kill(c->child, SIGKILL);
				waitpid(c->child, &st, 0);
				break;
			}
			ivb_sleep_ns(1000000);
		}
		c->child = 0;
	}
}

/* Start a test on the channel: SETUP, and READY with our token. 0, or a -errno / 1 refused. */
static int begin(struct chan *c, enum ivb_xport_test test, uint32_t len)
{
	struct ivb_xport_setup s = { .test = test, .verify = cfg.verify, .msg_len = len };
	struct ivb_xport_hdr h;
	uint8_t junk[8];
	int rc;

	if (ivb_random(&s.token, sizeof(s.token)))
		return -EIO;
	rc = ivb_xport_send(c->wfd, IVB_XF_SETUP, 0, 0, &s, sizeof(s), IVB_VERIFY_NONE,
			    ivb_now_ns() + cfg.timeout_ns);
	if (rc)
		return rc;
	rc = ivb_xport_recv(c->rfd, &h, junk, sizeof(junk), ivb_now_ns() + cfg.timeout_ns);
	if (rc)
		return rc < 0 ? rc : -EBADMSG;
	if (h.type != IVB_XF_READY || h.seq != s.token)
		return -EBADMSG;
	return h.flags ? 1 : 0;
}

/* End a test: END, and the responder's RESULT. 0 or a -errno. */
static int finish(struct chan *c, uint64_t seq, struct ivb_xport_result *r)
{
	struct ivb_xport_hdr h;
	int rc = ivb_xport_send(c->wfd, IVB_XF_END, 0, seq, NULL, 0, IVB_VERIFY_NONE,
				ivb_now_ns() + cfg.timeout_ns);

	if (rc)
		return rc;
	rc = ivb_xport_recv(c->rfd, &h, r, sizeof(*r), ivb_now_ns() + cfg.timeout_ns);
	if (rc)
		return rc < 0 ? rc : -EBADMSG;
	if (h.type != IVB_XF_RESULT || h.seq != seq || h.len != sizeof(*r))
		return -EBADMSG;
	return 0;
}

/* Fill buf with seq in its first bytes and random bytes after (made once). */
static void stamp(uint8_t *buf, uint32_t len, uint64_t seq)
{
	memcpy(buf, &seq, len < sizeof(seq) ? len : sizeof(seq));
}

static int row_unavailable(struct ivb_csv *csv, const char *name, const char *test, const char *why)
{
	char clean[256];
	size_t i;

	/* A reason is one CSV field: no commas, quotes or line breaks in it. */
	snprintf(clean, sizeof(clean), "%s", why);
	for (i = 0; clean[i]; i++)
		if (clean[i] == ',' || clean[i] == '"' || clean[i] == '\n' || clean[i] == '\r')
			clean[i] = ';';
	return ivb_csv_row(csv, "%s,%s,,%s,,,,,,,,,,,,,,,,0,%s", name, test,
			   ivb_verify_name(cfg.verify), clean);
}

/*
 * Round trips of one size. 0 measured (a row written), -1 the channel is
 * lost (why in c->reason).
 */
static int run_sizelat(struct chan *c, uint32_t size, struct ivb_csv *csv, long *bad)
{
	long n = size > LARGE_MESSAGE ? cfg.iterations / 10 : cfg.iterations, warm, i;
	uint8_t *src = malloc(size ? size : 1), *dst = malloc(size ? size : 1);
	uint64_t *v = NULL, cpu0, errors = 0;
	struct ivb_xport_result r;
	struct ivb_summary s;
	size_t nv = 0;
	int rc;

	if (n < 10)
		n = 10;
	warm = n / 10 > 10 ? n / 10 : 10;
	v = calloc((size_t)n, sizeof(*v));
	if (!src || !dst || !v || ivb_random(src, size))
		ivb_die("out of memory for %u-byte messages", size);
	rc = begin(c, IVB_XT_ECHO, size);
	cpu0 = (uint64_t)ivb_thread_cpu_ns(0);
	for (i = 0; rc == 0 && i < warm + n; i++) {
		struct ivb_xport_hdr h;
		uint64_t t0 = ivb_now_ns();
		int got;

		stamp(src, size, (uint64_t)i);
		rc = ivb_xport_send(c->wfd, IVB_XF_DATA, 0, (uint64_t)i, src, size, cfg.verify,
				    t0 + cfg.timeout_ns);
		if (rc)
			break;
		got = ivb_xport_recv(c->rfd, &h, dst, size, t0 + cfg.timeout_ns);
		if (got < 0) {
			rc = got;
			break;
		}
		/* A round trip counts only with its own echo, whole and unchanged. */
		if (got || h.type != IVB_XF_DATA || h.seq != (uint64_t)i || h.flags || h.len != size ||
		    memcmp(src, dst, size)) {
			if (h.type != IVB_XF_DATA || h.seq != (uint64_t)i) {
				rc = -EBADMSG; /* not the echo of this message: the stream is lost */
				break;
			}
			errors++;
			continue;
		}
		if (i >= warm)
			v[nv++] = ivb_now_ns() - t0;
	}
	if (rc == 0)
		rc = finish(c, (uint64_t)(warm + n), &r);
	free(src);
	free(dst);
	if (rc) {
		snprintf(c->reason, sizeof(c->reason), "%s during the round trip of a %u-byte message "
			 "(%ld of %ld)", rc == 1 ? "the responder refused the set-up" : ivb_xport_error(rc),
			 size, i, warm + n);
		free(v);
		return -1;
	}
	errors += r.errors;
	*bad += errors != 0;
	if (nv == 0) {
		rc = ivb_csv_row(csv, "%s,sizelat,%u,%s,0,,,,,,,,,,,,%llu,,,1,every echo was bad",
				 c->name, size, ivb_verify_name(cfg.verify), (unsigned long long)errors);
	} else {
		ivb_summarize(v, nv, &s);
		rc = ivb_csv_row(csv, "%s,sizelat,%u,%s,%zu,%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.0f,,,,,%llu,"
				 "%.4f,%.4f,1,", c->name, size, ivb_verify_name(cfg.verify), s.count,
				 s.min, s.mean, s.p50, s.p90, s.p99, s.p999, s.max,
				 (unsigned long long)errors,
				 (double)((uint64_t)ivb_thread_cpu_ns(0) - cpu0) / 1e3 / (double)(warm + n),
				 (double)r.cpu_ns / 1e3 / (double)(warm + n));
		if (!cfg.quiet)
			printf("  %-22s %9u B  round trip p50 %10.3f  p99 %10.3f  max %10.3f us%s\n",
			       c->name, size, s.p50 / 1e3, s.p99 / 1e3, s.max / 1e3,
			       errors ? "  BAD MESSAGES" : "");
	}
	free(v);
	return rc ? -2 : 0;
}

/* A stream of one size. 0 measured (a row written), -1 the channel is lost, -2 the results. */
static int run_stream(struct chan *c, uint32_t size, struct ivb_csv *csv, long *bad)
{
	uint8_t *src = malloc(size ? size : 1), junk[8];
	uint64_t seq = 0, t0 = 0, t1, c0 = 0, measured0 = 0, cpu0, warm_end;
	struct ivb_xport_result r;
	struct ivb_xport_hdr h;
	double secs, msgs;
	int rc;

	if (!src || ivb_random(src, size))
		ivb_die("out of memory for %u-byte messages", size);
	rc = begin(c, IVB_XT_SINK, size);
	cpu0 = (uint64_t)ivb_thread_cpu_ns(0);
	warm_end = ivb_now_ns() + cfg.duration_ns / 5;
	/* Warm-up, then a SYNC: its answer says everything before it was read. */
	while (rc == 0 && (seq % CLOCK_EVERY || ivb_now_ns() < warm_end)) {
		stamp(src, size, seq);
		rc = ivb_xport_send(c->wfd, IVB_XF_DATA, 0, seq, src, size, cfg.verify,
				    ivb_now_ns() + cfg.timeout_ns);
		seq++;
	}
	if (rc == 0)
		rc = ivb_xport_send(c->wfd, IVB_XF_SYNC, 0, seq, NULL, 0, IVB_VERIFY_NONE,
				    ivb_now_ns() + cfg.timeout_ns);
	if (rc == 0) {
		rc = ivb_xport_recv(c->rfd, &h, junk, sizeof(junk), ivb_now_ns() + cfg.timeout_ns);
		if (rc == 0 && (h.type != IVB_XF_SYNC || h.seq != seq))
			rc = -EBADMSG;
		else if (rc > 0)
			rc = -EBADMSG;
	}
	t0 = ivb_now_ns();
	measured0 = seq;
	c0 = (uint64_t)ivb_thread_cpu_ns(0);
	while (rc == 0 && (seq % CLOCK_EVERY || ivb_now_ns() - t0 < cfg.duration_ns)) {
		stamp(src, size, seq);
		rc = ivb_xport_send(c->wfd, IVB_XF_DATA, 0, seq, src, size, cfg.verify,
				    ivb_now_ns() + cfg.timeout_ns);
		seq++;
	}
	if (rc == 0)
		rc = finish(c, seq, &r);
	t1 = ivb_now_ns();
	free(src);
	if (rc) {
		snprintf(c->reason, sizeof(c->reason), "%s in a stream of %u-byte messages (message %llu)",
			 rc == 1 ? "the responder refused the set-up" : ivb_xport_error(rc), size,
			 (unsigned long long)seq);
		return -1;
	}
	if (r.received != seq) {
		snprintf(c->reason, sizeof(c->reason), "the responder read %llu of %llu %u-byte messages",
			 (unsigned long long)r.received, (unsigned long long)seq, size);
		return -1;
	}
	*bad += r.errors != 0;
	msgs = (double)(seq - measured0);
	secs = (double)(t1 - t0) / 1e9;
	(void)cpu0;
	if (ivb_csv_row(csv, "%s,stream,%u,%s,,,,,,,,,%.0f,%.6f,%.1f,%.4f,%llu,%.4f,%.4f,1,", c->name,
			size, ivb_verify_name(cfg.verify), msgs, secs, msgs / secs,
			msgs * size / (double)(t1 - t0), (unsigned long long)r.errors,
			(double)((uint64_t)ivb_thread_cpu_ns(0) - c0) / 1e3 / msgs, (double)r.cpu_ns / 1e3 / (double)seq))
		return -2;
	if (!cfg.quiet)
		printf("  %-22s %9u B  %12.0f msg/s  %8.3f GB/s%s\n", c->name, size, msgs / secs,
		       msgs * size / (double)(t1 - t0), r.errors ? "  BAD MESSAGES" : "");
	return 0;
}

static void run_json(struct ivb_json *j, void *arg)
{
	int i;

	(void)arg;
	ivb_json_provenance(j);
	ivb_json_str(j, "program", PROG);
	ivb_json_str(j, "start_time", start_time);
	ivb_json_str(j, "end_time", end_time);
	ivb_json_str(j, "status", status);
	ivb_json_str(j, "verify", ivb_verify_name(cfg.verify));
	ivb_json_int(j, "lat_iterations", cfg.iterations);
	ivb_json_uint(j, "duration_ns", cfg.duration_ns);
	ivb_json_uint(j, "timeout_ns", cfg.timeout_ns);
	ivb_json_int(j, "cpu", cfg.cpu);
	ivb_json_int(j, "peer_cpu", cfg.peer_cpu);
	ivb_json_begin(j, "transports");
	for (i = 0; i < ndone; i++) {
		ivb_json_begin(j, done[i].name);
		ivb_json_int(j, "available", done[i].opened);
		ivb_json_str(j, "error", done[i].reason);
		if (done[i].sndbuf >= 0) {
			ivb_json_int(j, "so_sndbuf", done[i].sndbuf);
			ivb_json_int(j, "so_rcvbuf", done[i].rcvbuf);
			ivb_json_int(j, "tcp_nodelay", done[i].nodelay);
		}
		ivb_json_end(j);
	}
	ivb_json_end(j);
	for (i = 0; i < cfg.nmeta; i++)
		ivb_json_meta(j, cfg.meta[i]);
}

static int initiate(void)
{
	static const char *const stale[] = { "transport_results.csv", NULL };
	struct ivb_csv *csv;
	long bad = 0, lost = 0;
	int i, k, rc = 0;

	if (ivb_results_open(&res, cfg.results_dir, stale))
		ivb_die("%s", ivb_results_error(&res));
	res.json_keys = json_keys;
	if (cfg.cpu >= 0 && (rc = ivb_pin_self(cfg.cpu)) < 0)
		ivb_warn("cannot pin to CPU %d: %s (continuing unpinned)", cfg.cpu, strerror(-rc));
	signal(SIGPIPE, SIG_IGN); /* a closed channel is -EPIPE, not a death */
	ivb_utc_now(start_time, sizeof(start_time));
	if (ivb_results_write_json(&res, run_json, NULL) || !(csv = ivb_csv_open(&res, &transport_csv)))
		ivb_die("%s", ivb_results_error(&res));
	for (i = 0; i < cfg.nunavailable; i++) {
		char name[64];
		const char *eq = strchr(cfg.unavailable[i], '=');

		snprintf(name, sizeof(name), "%.*s", (int)(eq - cfg.unavailable[i]), cfg.unavailable[i]);
		if (row_unavailable(csv, name, "all", eq + 1))
			goto disk;
		if (!cfg.quiet)
			printf("%s: not available: %s\n", name, eq + 1);
	}
	for (i = 0; i < cfg.ntransports && !ivb_interrupted; i++) {
		struct chan *c = &done[ndone++];

		if (!cfg.quiet)
			printf("%s:\n", cfg.transports[i]);
		if (chan_open(cfg.transports[i], c)) {
			ivb_warn("%s: not available: %s", cfg.transports[i], c->reason);
			if (row_unavailable(csv, c->name, "all", c->reason))
				goto disk;
			chan_close(c);
			continue;
		}
		c->opened = 1;
		for (k = 0; rc == 0 && k < cfg.lat_sizes.n && !ivb_interrupted; k++)
			rc = run_sizelat(c, cfg.lat_sizes.v[k], csv, &bad);
		for (k = 0; rc == 0 && k < cfg.sizes.n && !ivb_interrupted; k++)
			rc = run_stream(c, cfg.sizes.v[k], csv, &bad);
		if (rc == -2)
			goto disk;
		if (rc == -1) {
			/* The channel is lost: the row says where, and the others go on. */
			ivb_warn("%s: %s", c->name, c->reason);
			lost++;
			if (row_unavailable(csv, c->name, "failed", c->reason))
				goto disk;
		}
		rc = 0;
		chan_close(c);
		if (ivb_csv_flush(csv))
			goto disk;
	}
	if (ivb_csv_close(csv))
		goto disk_closed;
	ivb_utc_now(end_time, sizeof(end_time));
	if (ivb_interrupted)
		snprintf(status, sizeof(status), "interrupted");
	else if (lost || bad)
		snprintf(status, sizeof(status), "%ld transport(s) failed, %ld point(s) with bad messages",
			 lost, bad);
	else
		snprintf(status, sizeof(status), "complete");
	if (ivb_results_write_json(&res, run_json, NULL))
		ivb_die("cannot write the results: %s", ivb_results_error(&res));
	if (!cfg.quiet)
		printf("\nResults in %s/\n", cfg.results_dir);
	if (ivb_interrupted)
		return 128 + ivb_interrupted;
	return lost || bad ? 1 : 0;
disk:
	ivb_csv_close(csv);
disk_closed:
	snprintf(status, sizeof(status), "cannot write the results: %s", ivb_results_error(&res));
	for (i = 0; i < ndone; i++)
		chan_close(&done[i]);
	ivb_results_write_json(&res, run_json, NULL);
	ivb_warn("%s", status);
	return 1;
}

int main(int argc, char **argv)
{
	ivb_cli_init(PROG);
	parse_args(argc, argv);
	ivb_cli_catch_signals();
	if (cfg.serve) {
		int rc;

		signal(SIGPIPE, SIG_IGN);
		if (cfg.cpu >= 0 && (rc = ivb_pin_self(cfg.cpu)) < 0)
			ivb_warn("cannot pin to CPU %d: %s (continuing unpinned)", cfg.cpu, strerror(-rc));
		return serve();
	}
	return initiate();
}
