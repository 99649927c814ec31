/*
 * main.c - ivshmem_server, the doorbell server for QEMU's ivshmem-doorbell
 * device: options, signals and the event loop around ivshmem_server.c.
 *
 * It runs in the foreground by default (unlike QEMU's example server,
 * which daemonizes unless given -F; -F is accepted and changes nothing).
 * Once the socket listens it writes the pidfile, if asked for, and prints
 * "ivshmem_server: listening on PATH" to stdout, so a script can start it
 * in the background and wait for that line. With -d it forks instead: the
 * parent waits until the child listens and has written the pidfile, prints
 * the same line and exits 0 (1 if the child failed), so "ivshmem_server -d"
 * returning means the server is ready. The daemon keeps stderr for its log
 * and does not chdir, so relative paths stay valid.
 *
 * SIGTERM, SIGINT and SIGHUP end it cleanly: peers are disconnected, the
 * socket and the pidfile removed, and the shared memory too if this server
 * created it (an existing shm object or file is left as it was). Signals
 * arrive through a signalfd polled with the peers, so no handler runs in
 * the middle of the library.
 *
 * Exit codes: 0 after a signal, 1 on a runtime failure, 2 on bad options.
 */
#include "cli.h"
#include "ivshmem_server.h"
#include "shm_map.h"
#include "version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <unistd.h>

#define PROG "ivshmem_server"
#define SERVER_MS_NS 1000000ull
#define SERVER_MAX_SEND_TIMEOUT_NS (600ull * 1000 * SERVER_MS_NS)

struct config {
	struct ivs_server_options server; /* what the library needs */
	const char *pidfile;      /* write our pid here once listening, or NULL */
	bool daemon;              /* fork into the background once listening */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [options]\n"
		"The doorbell server for QEMU's ivshmem-doorbell device (protocol version %d).\n"
		"\n"
		"  -S, --socket PATH      UNIX socket to listen on (default %s)\n"
		"  -M, --shm NAME|PATH    shared memory: a shm_open name, or a file if it\n"
		"                         starts with / (default %s)\n"
		"  -l, --size SIZE        shared memory size, a power of two from 4K to 1T;\n"
		"                         suffixes k, M, G, T (default %lluM)\n"
		"  -n, --vectors N        eventfds (MSI-X vectors) per peer, 1..%d (default %d)\n"
		"      --max-peers N      peers at once, 1..%d (default %d)\n"
		"      --send-timeout T   drop a peer that leaves its socket full this long,\n"
		"                         0..10m; a bare number is in ms (default %d)\n"
		"  -p, --pidfile PATH     write the pid here once listening\n"
		"  -d, --daemon           fork; return once the server listens\n"
		"  -F, --foreground       run in the foreground (the default)\n"
		"  -v, --verbose          log connects and disconnects to stderr\n"
		"  -h, --help             this text\n"
		"  -V, --version          print the version\n"
		"\n"
		"Prints \"" PROG ": listening on PATH\" to stdout when ready. SIGTERM/SIGINT:\n"
		"clean exit; the shared memory is removed only if this server created it.\n",
		IVS_PROTO_VERSION, IVS_SERVER_DEFAULT_SOCKET, IVS_SERVER_DEFAULT_SHM,
		IVS_SERVER_DEFAULT_SHM_SIZE >> 20, IVS_PROTO_MAX_VECTORS,
		IVS_SERVER_DEFAULT_VECTORS, IVS_SERVER_MAX_PEERS_LIMIT,
		IVS_SERVER_DEFAULT_MAX_PEERS, IVS_SERVER_DEFAULT_SEND_TIMEOUT_MS);
}

static void parse_args(struct config *cfg, int argc, char **argv)
{
	enum { OPT_MAX_PEERS = 256, OPT_SEND_TIMEOUT };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "shm", required_argument, NULL, 'M' },
		{ "size", required_argument, NULL, 'l' },
		{ "vectors", required_argument, NULL, 'n' },
		{ "max-peers", required_argument, NULL, OPT_MAX_PEERS },
		{ "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int c;

	memset(cfg, 0, sizeof(*cfg));
	ivs_server_options_default(&cfg->server);

	while ((c = getopt_long(argc, argv, "S:M:l:n:p:dFvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			cfg->server.socket_path = optarg;
			break;
		case 'M':
			cfg->server.shm = optarg;
			break;
		case 'l':
			cfg->server.shm_size = ivb_opt_size("--size", optarg, IVS_SERVER_MIN_SHM_SIZE,
							    IVS_SERVER_MAX_SHM_SIZE);
			if (!ivb_is_pow2(cfg->server.shm_size))
				ivb_die_usage("--size: '%s' is not a power of two", optarg);
			break;
		case 'n':
			cfg->server.n_vectors = (unsigned)ivb_opt_count("--vectors", optarg, 1,
									IVS_PROTO_MAX_VECTORS);
			break;
		case OPT_MAX_PEERS:
			cfg->server.max_peers = (unsigned)ivb_opt_count("--max-peers", optarg, 1,
									IVS_SERVER_MAX_PEERS_LIMIT);
			break;
		case OPT_SEND_TIMEOUT:
			/* Whole milliseconds, rounded up: 100us must not become "never wait". */
			cfg->server.send_timeout_ms = (int)((ivb_opt_duration(
				"--send-timeout", optarg, SERVER_MS_NS, 0, SERVER_MAX_SEND_TIMEOUT_NS,
				"0..10m (a bare number is in ms)") + SERVER_MS_NS - 1) / SERVER_MS_NS);
			break;
		case 'p':
			cfg->pidfile = optarg;
			break;
		case 'd':
			cfg->daemon = true;
			break;
		case 'F':
			cfg->daemon = false;
			break;
		case 'v':
			cfg->server.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " %s\n", IVB_VERSION);
			exit(0);
		default:
			ivb_bad_option(); /* getopt_long has named the option */
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	/* Cross-field and length rules live in the library: same words. */
	if (ivs_server_options_check(&cfg->server, err, sizeof(err)) < 0)
		ivb_die_usage("%s", err);
}

/* Write the pid through a temporary file, so readers never see it half-written. */
static int write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int ret = -errno;

		unlink(tmp);
		return ret;
	}
	return 0;
}

static void announce_ready(const char *socket_path)
{
	printf(PROG ": listening on %s\n", socket_path);
	fflush(stdout);
}

/*
 * Fork. The parent returns only to exit: 0 once the child reports it is
 * ready (through the pipe), 1 if the child died first. The child gets its
 * own session and loses stdin/stdout, so `$(ivshmem_server -d)` returns.
 */
static void daemonize(const struct config *cfg, int ready_pipe[2])
{
	char byte = 0;
	ssize_t n;
	pid_t pid;
	int fd;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		ivb_warn("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(ready_pipe[1]);
		do
			n = read(ready_pipe[0], &byte, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || byte != 'R') {
			ivb_warn("the daemon failed to start");
			_exit(1);
		}
		announce_ready(cfg->server.socket_path);
		_exit(0);
	}
	close(ready_pipe[0]);
	setsid();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}

/* Serve until a signal arrives on sfd. Returns the exit code. */
static int serve(struct ivs_server *server, int sfd)
{
	size_t cap = (size_t)server->opts.max_peers + 2;
	struct pollfd *pfds = calloc(cap, sizeof(*pfds));
	struct signalfd_siginfo si;
	int n, ret, rc = 1;

	if (!pfds) {
		ivb_warn("out of memory");
		return 1;
	}
	for (;;) {
		n = ivs_server_get_fds(server, pfds, cap - 1);
		if (n < 0) {
			ivb_warn("cannot list the fds to poll: %s", strerror(-n));
			break;
		}
		pfds[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (poll(pfds, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			ivb_warn("poll: %s", strerror(errno));
			break;
		}
		if (pfds[n].revents) {
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && server->opts.verbose)
				ivb_warn("%s, shutting down", strsignal((int)si.ssi_signo));
			rc = 0;
			break;
		}
		ret = ivs_server_handle_fds(server, pfds, (size_t)n);
		if (ret < 0) {
			ivb_warn("serving peers failed: %s", strerror(-ret));
			break;
		}
	}
	free(pfds);
	return rc;
}

int main(int argc, char **argv)
{
	struct ivs_server server;
	struct config cfg;
	int ready_pipe[2] = { -1, -1 };
	sigset_t sigs;
	int sfd, ret, rc;

	ivb_cli_init(PROG);
	parse_args(&cfg, argc, argv);

	/* Signals are read from a signalfd; block them before anything starts. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (ivs_server_init(&server, &cfg.server) < 0)
		return 2;
	ret = ivs_server_start(&server);
	if (ret < 0) {
		ivb_warn("cannot start: %s", strerror(-ret));
		return 1;
	}
	if (cfg.daemon) {
		if (pipe2(ready_pipe, O_CLOEXEC) < 0) {
			ivb_warn("pipe: %s", strerror(errno));
			rc = 1;
			goto out_close;
		}
		daemonize(&cfg, ready_pipe);
	}
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		ivb_warn("signalfd: %s", strerror(errno));
		rc = 1;
		goto out_close;
	}
	if (cfg.pidfile) {
		ret = write_pidfile(cfg.pidfile);
		if (ret < 0) {
			ivb_warn("cannot write pidfile %s: %s", cfg.pidfile,
				strerror(-ret));
			cfg.pidfile = NULL;
			rc = 1;
			goto out_sfd;
		}
	}
	if (cfg.daemon) {
		if (write(ready_pipe[1], "R", 1) != 1)
			ivb_warn("cannot report readiness: %s", strerror(errno));
		close(ready_pipe[1]);
		ready_pipe[1] = -1;
	} else {
		announce_ready(server.socket_path);
	}

	rc = serve(&server, sfd);

	if (cfg.pidfile)
		unlink(cfg.pidfile);
out_sfd:
	close(sfd);
out_close:
	if (ready_pipe[1] >= 0)
		close(ready_pipe[1]); /* the waiting parent sees EOF: failure */
	ivs_server_close(&server);
	return rc;
}
