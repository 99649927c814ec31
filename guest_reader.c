/*
 * guest_reader - the guest side of ivshmem-bench.
 *
 * Runs inside the VM on BAR2 of the ivshmem device (found by PCI vendor and
 * device id), or on the host against the shared-memory file (--shm), so the
 * protocol can be tested, and a host-only baseline measured, without a VM.
 *
 * It is a small server: it waits for the host to open a session in the
 * shared-memory header, attaches to it, answers every message with the
 * two-phase acknowledgement (RECEIVED at once, then PROCESSED or ERROR) and
 * goes back to waiting when the host sends STOP or falls silent. Frames are
 * copied out of shared memory once, then hashed with SHA-256 and compared
 * with the digest the host posted.
 *
 * In doorbell mode (--doorbell) the device is opened through VFIO: the
 * guest sleeps in poll() on an eventfd that MSI-X vector 0 signals, and
 * rings the host's peer id through the Doorbell register after each
 * acknowledgement, so no side spins.
 *
 * Shared memory is untrusted input: the header fields of each message are
 * copied once, every size is checked against this side's own mapping, and
 * anything inconsistent is answered with an ERROR state rather than used.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "digest.h"
#include "ivshmem_abi.h"
#include "shm_map.h"
#include "timing.h"
#include "units.h"
#include "version.h"
#include "vfio_irq.h"

#define PROG "guest_reader"
#define DEFAULT_SYSFS "/sys/bus/pci/devices"
#define DEFAULT_SILENCE "60s"     /* detach when an attached host says nothing this long */
#define DEFAULT_IDLE_POLL_US 1000 /* sleep between looks while no session is open */
#define SPIN_CHECK_EVERY 4096     /* spins between clock reads while attached */
#define READY_TOKEN "IVB-GUEST-READY"

struct config {
	const char *shm_path;   /* map this file instead of a PCI BAR */
	const char *sysfs_root; /* where PCI devices are listed */
	const char *bdf;        /* PCI address, or NULL to search by id */
	uint64_t silence_ns;    /* host silence before detaching */
	uint64_t idle_limit_ns; /* exit when no session opens this long (0: never) */
	int cpu;                /* pin to this CPU, or -1 */
	int once;               /* exit after one session */
	long exit_after;        /* fault injection: exit after this many messages (-1: off) */
	int doorbell;           /* VFIO + interrupts instead of polling */
	int vectors;            /* MSI-X vectors to wire (0: all the device has) */
	int verbose;
};

struct reader {
	struct config cfg;      /* settings */
	struct ivb_map map;     /* the shared memory */
	struct ivb_vfio vfio;   /* doorbell mode: the device through VFIO */
	uint32_t host_peer;     /* doorbell mode: whom to ring (from the header) */
	struct ivb_header *hdr; /* = map.base */
	uint8_t *buf;           /* private copy of the current frame */
	size_t buf_size;        /* bytes allocated in buf */
	uint64_t session;       /* session being served, 0 when detached */
	uint64_t last_session;  /* last session served or refused */
	uint64_t last_seq;      /* last message answered in this session */
	long messages;          /* messages answered since start */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " [options]\n"
		"Answer ivshmem-bench messages from the host in shared memory.\n\n"
		"  -s, --shm PATH          map this file instead of the ivshmem PCI device\n"
		"  -d, --device BDF        PCI address of the device (default: first %04x:%04x)\n"
		"      --sysfs DIR         PCI device directory (default " DEFAULT_SYSFS ")\n"
		"  -S, --silence DUR       detach after the host is silent this long (default " DEFAULT_SILENCE ")\n"
		"  -i, --idle-exit DUR     exit with status 3 when no session opens this long\n"
		"                          (default: wait for ever)\n"
		"  -1, --once              exit after serving one session\n"
		"      --doorbell          open the device through VFIO and wait for MSI-X\n"
		"                          interrupts instead of polling (ivshmem-doorbell)\n"
		"      --vectors N         MSI-X vectors to enable (default: all, at most %d)\n"
		"  -c, --cpu N             pin to CPU N (default: no pinning)\n"
		"      --exit-after N      fault injection: exit after answering N messages\n"
		"  -v, --verbose           log every session and error\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"Durations take ns, us, ms, s, m suffixes (default unit: seconds).\n",
		IVB_PCI_VENDOR, IVB_PCI_DEVICE, IVB_VFIO_MAX_VECTORS);
}

__attribute__((format(printf, 1, 2))) static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct config *cfg)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "device", required_argument, NULL, 'd' },
		{ "sysfs", required_argument, NULL, 'Y' },
		{ "silence", required_argument, NULL, 'S' },
		{ "idle-exit", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, '1' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "exit-after", required_argument, NULL, 'X' },
		{ "doorbell", no_argument, NULL, 'D' },
		{ "vectors", required_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	char *end;
	int c;

	*cfg = (struct config){ .sysfs_root = DEFAULT_SYSFS, .cpu = -1, .exit_after = -1 };
	ivb_parse_duration(DEFAULT_SILENCE, 1000000000ull, &cfg->silence_ns);
	while ((c = getopt_long(argc, argv, "s:d:S:i:1c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 's': cfg->shm_path = optarg; break;
		case 'd': cfg->bdf = optarg; break;
		case 'Y': cfg->sysfs_root = optarg; break;
		case 'S':
			if (ivb_parse_duration(optarg, 1000000000ull, &cfg->silence_ns) || !cfg->silence_ns)
				die_usage("--silence: '%s' is not a duration > 0 (e.g. 60s)", optarg);
			break;
		case 'i':
			if (ivb_parse_duration(optarg, 1000000000ull, &cfg->idle_limit_ns) || !cfg->idle_limit_ns)
				die_usage("--idle-exit: '%s' is not a duration > 0 (e.g. 30s)", optarg);
			break;
		case '1': cfg->once = 1; break;
		case 'c':
			cfg->cpu = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || cfg->cpu < 0 || cfg->cpu >= ivb_cpu_count())
				die_usage("--cpu: '%s' is not an online CPU number (0..%d)", optarg,
					  ivb_cpu_count() - 1);
			break;
		case 'X':
			cfg->exit_after = strtol(optarg, &end, 10);
			if (*end || end == optarg || cfg->exit_after < 0)
				die_usage("--exit-after: '%s' is not a count >= 0", optarg);
			break;
		case 'D': cfg->doorbell = 1; break;
		case 'N':
			cfg->vectors = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || cfg->vectors < 1 || cfg->vectors > IVB_VFIO_MAX_VECTORS)
				die_usage("--vectors: '%s' is not a number in 1..8", optarg);
			break;
		case 'v': cfg->verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf(PROG " " IVB_VERSION "\n"); exit(0);
		default: fprintf(stderr, "Try '" PROG " --help'.\n"); exit(2);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (cfg->shm_path && cfg->bdf)
		die_usage("--shm and --device exclude each other");
	if (cfg->shm_path && cfg->doorbell)
		die_usage("--doorbell needs the PCI device; it excludes --shm");
}

/* Map the shared memory the configuration names; exits on failure. */
static void map_shared_memory(struct reader *r)
{
	char err[512], bdf[64];

	if (r->cfg.shm_path) {
		if (ivb_map_file(r->cfg.shm_path, IVB_PAYLOAD_OFFSET, &r->map, err, sizeof(err)) == 0)
			return;
		fprintf(stderr, PROG ": %s\n", err);
		exit(1);
	}
	if (r->cfg.bdf)
		snprintf(bdf, sizeof(bdf), "%s", r->cfg.bdf);
	else if (ivb_pci_find(r->cfg.sysfs_root, IVB_PCI_VENDOR, IVB_PCI_DEVICE, 0, bdf, sizeof(bdf))) {
		fprintf(stderr, PROG ": no ivshmem device (PCI %04x:%04x) under %s: "
			"start QEMU with -device ivshmem-plain, or use --shm FILE\n",
			IVB_PCI_VENDOR, IVB_PCI_DEVICE, r->cfg.sysfs_root);
		exit(1);
	}
	if (r->cfg.doorbell) {
		if (ivb_vfio_open(bdf, r->cfg.vectors, &r->vfio, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s: %s\n", bdf, err);
			exit(1);
		}
		r->map.base = r->vfio.shm;
		r->map.size = r->vfio.shm_size;
		snprintf(r->map.source, sizeof(r->map.source), "vfio:%s (peer %u, %d MSI-X vectors)",
			 bdf, ivb_vfio_peer_id(&r->vfio), r->vfio.nvectors);
		return;
	}
	if (ivb_map_pci_bar(r->cfg.sysfs_root, bdf, 2, &r->map, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		exit(1);
	}
	if (r->map.size < IVB_PAYLOAD_OFFSET) {
		fprintf(stderr, PROG ": %s: BAR2 is %zu bytes, too small\n", r->map.source, r->map.size);
		exit(1);
	}
}

/* Doorbell mode: tell the host an ack changed (vector 0 of its peer id). */
static void ring_host(const struct reader *r)
{
	if (r->cfg.doorbell && r->host_peer != IVB_NO_PEER)
		ivb_vfio_ring(&r->vfio, r->host_peer, 0);
}

/* Publish ack (seq, state) with error and timings; the release store is last. */
static void ack(struct reader *r, uint64_t seq, enum ivb_state state, enum ivb_error error,
		uint64_t read_ns, uint64_t hash_ns)
{
	r->hdr->error_code = error;
	r->hdr->guest_read_ns = read_ns;
	r->hdr->guest_hash_ns = hash_ns;
	ivb_store_release(&r->hdr->ack, ivb_ack_make(seq, state));
	ring_host(r);
}

/*
 * Check the identity line of a new session against this side's mapping.
 * Returns IVB_OK or the error to answer with.
 */
static enum ivb_error check_identity(const struct reader *r, const struct ivb_header *id)
{
	if (id->magic != IVB_MAGIC || id->layout_version != IVB_LAYOUT_VERSION)
		return IVB_ERR_BAD_HEADER;
	if (id->header_size != sizeof(struct ivb_header))
		return IVB_ERR_BAD_HEADER;
	if (id->payload_offset < sizeof(struct ivb_header) || id->payload_offset >= r->map.size)
		return IVB_ERR_BAD_HEADER;
	if (id->mode != (r->cfg.doorbell ? IVB_MODE_DOORBELL : IVB_MODE_PLAIN))
		return IVB_ERR_MODE;
	if (r->cfg.doorbell && id->host_peer_id > 0xffff)
		return IVB_ERR_BAD_HEADER;
	return IVB_OK;
}

/*
 * Attach to session s: check the identity line, fill in the guest line and
 * publish attached_session. A bad identity is answered with an ERROR ack
 * (seq 0) so the host learns why the guest refuses; returns -1 then.
 */
static int attach(struct reader *r, uint64_t s)
{
	struct ivb_header id;
	enum ivb_error e;

	memcpy(&id, r->hdr, offsetof(struct ivb_header, session_id));
	e = check_identity(r, &id);
	r->last_session = s;
	r->host_peer = e == IVB_OK && r->cfg.doorbell ? id.host_peer_id : IVB_NO_PEER;
	r->hdr->guest_version = IVB_LAYOUT_VERSION;
	r->hdr->guest_peer_id = r->cfg.doorbell ? ivb_vfio_peer_id(&r->vfio) : IVB_NO_PEER;
	r->hdr->guest_map_size = r->map.size;
	r->hdr->guest_pid = (uint32_t)getpid();
	r->hdr->guest_wait = r->cfg.doorbell ? IVB_MODE_DOORBELL : IVB_MODE_PLAIN;
	r->hdr->error_code = e;
	ivb_store_release(&r->hdr->ack, ivb_ack_make(0, e == IVB_OK ? IVB_STATE_NONE : IVB_STATE_ERROR));
	ivb_store_release(&r->hdr->attached_session, s);
	ring_host(r);
	if (e != IVB_OK) {
		fprintf(stderr, PROG ": refusing session %016llx: %s (magic %016llx, layout %u, "
			"payload offset %llu, mapping %zu bytes)\n", (unsigned long long)s,
			ivb_error_name(e), (unsigned long long)id.magic, id.layout_version,
			(unsigned long long)id.payload_offset, r->map.size);
		return -1;
	}
	r->session = s;
	r->last_seq = 0;
	if (r->cfg.verbose)
		fprintf(stderr, PROG ": attached to session %016llx\n", (unsigned long long)s);
	return 0;
}

/*
 * Check, copy out and hash one frame. The payload offset was validated at
 * attach; the size is checked here against this side's mapping.
 */
static enum ivb_error handle_frame(struct reader *r, uint64_t size, const uint8_t want[32],
				   uint64_t *read_ns, uint64_t *hash_ns)
{
	uint64_t offset = r->hdr->payload_offset, t0, t1, t2;
	uint8_t got[32];

	if (offset < sizeof(struct ivb_header) || offset >= r->map.size)
		return IVB_ERR_BAD_HEADER;
	if (size == 0 || size > r->map.size - offset)
		return IVB_ERR_BAD_SIZE;
	if (size > r->buf_size) {
		uint8_t *nb = realloc(r->buf, size);

		if (!nb)
			return IVB_ERR_NO_MEMORY;
		r->buf = nb;
		r->buf_size = size;
	}
	t0 = ivb_now_ns();
	memcpy(r->buf, (const uint8_t *)r->map.base + offset, size);
	t1 = ivb_now_ns();
	if (ivb_sha256(r->buf, size, got))
		return IVB_ERR_CRYPTO;
	t2 = ivb_now_ns();
	*read_ns = t1 - t0;
	*hash_ns = t2 - t1;
	return memcmp(got, want, 32) ? IVB_ERR_DIGEST : IVB_OK;
}

/* Answer message seq. Returns 1 when the session ends (STOP), else 0. */
static int handle_message(struct reader *r, uint64_t seq)
{
	uint32_t command = r->hdr->command;
	uint64_t size = r->hdr->payload_size, read_ns = 0, hash_ns = 0;
	uint8_t want[32];
	enum ivb_error e = IVB_OK;

	memcpy(want, r->hdr->sha256, sizeof(want));
	ivb_store_release(&r->hdr->ack, ivb_ack_make(seq, IVB_STATE_RECEIVED));
	ring_host(r);
	switch (command) {
	case IVB_CMD_PING:
	case IVB_CMD_STOP:
		break;
	case IVB_CMD_FRAME:
		e = handle_frame(r, size, want, &read_ns, &hash_ns);
		break;
	default:
		e = IVB_ERR_BAD_COMMAND;
	}
	if (e != IVB_OK && r->cfg.verbose)
		fprintf(stderr, PROG ": message %llu (%s, %llu bytes): %s\n", (unsigned long long)seq,
			ivb_command_name(command), (unsigned long long)size, ivb_error_name(e));
	ack(r, seq, e == IVB_OK ? IVB_STATE_PROCESSED : IVB_STATE_ERROR, e, read_ns, hash_ns);
	r->last_seq = seq;
	r->messages++;
	if (r->cfg.exit_after >= 0 && r->messages >= r->cfg.exit_after) {
		fprintf(stderr, PROG ": exiting after %ld messages (--exit-after)\n", r->messages);
		exit(0);
	}
	return command == IVB_CMD_STOP;
}

/*
 * Doorbell mode: sleep until the host rings or ms pass. The host rings
 * after every store it wants seen, and the eventfd counts rings that came
 * before the call, so checking seq first and then sleeping loses nothing.
 */
static void wait_for_ring(const struct reader *r, int ms)
{
	if (ivb_vfio_wait(&r->vfio, 0, ms) < 0) {
		/* Not expected; look again shortly rather than spin or stall. */
		fprintf(stderr, PROG ": waiting for an interrupt: %s\n", strerror(errno));
		ivb_sleep_ns(100000000ull);
	}
}

/*
 * Serve the attached session: wait for seq to change (spinning, or asleep
 * on the doorbell) until STOP, a new session, host silence or a signal.
 */
static void serve(struct reader *r)
{
	uint64_t last_heard = ivb_now_ns();
	unsigned spins = 0;

	while (!stop_requested) {
		uint64_t s = ivb_load_acquire(&r->hdr->session_id);
		uint64_t seq = ivb_load_acquire(&r->hdr->seq);

		if (s != r->session)
			break;
		if (seq != r->last_seq && seq != 0) {
			if (handle_message(r, seq))
				break;
			last_heard = ivb_now_ns();
			spins = 0;
			continue;
		}
		if (r->cfg.doorbell) {
			uint64_t quiet = ivb_now_ns() - last_heard;

			if (quiet < r->cfg.silence_ns) {
				wait_for_ring(r, (int)((r->cfg.silence_ns - quiet) / 1000000ull) + 1);
				continue;
			}
		} else if (++spins % SPIN_CHECK_EVERY) {
			continue;
		}
		if (ivb_now_ns() - last_heard > r->cfg.silence_ns) {
			fprintf(stderr, PROG ": host silent for %.0f s; detaching from session %016llx\n",
				(double)r->cfg.silence_ns / 1e9, (unsigned long long)r->session);
			break;
		}
	}
	if (r->cfg.verbose)
		fprintf(stderr, PROG ": session %016llx ended after message %llu\n",
			(unsigned long long)r->session, (unsigned long long)r->last_seq);
	r->session = 0;
}

/*
 * Wait for a new session. No one is waiting on us here, so look every
 * millisecond instead of spinning a CPU (in doorbell mode: sleep until the
 * host rings, looking once a second anyway). Returns the session id, or 0
 * when the idle limit passed or a signal arrived.
 */
static uint64_t wait_for_session(struct reader *r)
{
	uint64_t start = ivb_now_ns();

	while (!stop_requested) {
		uint64_t s = ivb_load_acquire(&r->hdr->session_id);

		if (s != 0 && s != r->last_session)
			return s;
		if (r->cfg.idle_limit_ns && ivb_now_ns() - start > r->cfg.idle_limit_ns)
			return 0;
		if (r->cfg.doorbell)
			wait_for_ring(r, 1000);
		else
			ivb_sleep_ns(DEFAULT_IDLE_POLL_US * 1000ull);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct reader r = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	parse_args(argc, argv, &r.cfg);
	if (r.cfg.cpu >= 0 && (rc = ivb_pin_self(r.cfg.cpu)) < 0)
		fprintf(stderr, PROG ": cannot pin to CPU %d: %s (continuing unpinned)\n",
			r.cfg.cpu, strerror(-rc));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	map_shared_memory(&r);
	r.hdr = r.map.base;
	/* A session left open by a host that is gone is not served again. */
	r.last_session = ivb_load_acquire(&r.hdr->attached_session);
	printf(READY_TOKEN " %s %zu bytes\n", r.map.source, r.map.size);
	fflush(stdout);

	for (;;) {
		uint64_t s = wait_for_session(&r);

		if (!s && !stop_requested) {
			fprintf(stderr, PROG ": no session opened for %.0f s; exiting\n",
				(double)r.cfg.idle_limit_ns / 1e9);
			return 3;
		}
		if (!s)
			break;
		if (attach(&r, s) == 0)
			serve(&r);
		if (r.cfg.once)
			break;
	}
	free(r.buf);
	if (r.cfg.doorbell)
		ivb_vfio_close(&r.vfio);
	else
		ivb_unmap(&r.map);
	return 0;
}
