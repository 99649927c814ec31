/*
 * ivb_hostile.c - a hostile peer for the tests (tests/hostile_host.sh,
 * tests/vm_hostile.sh): a third process that maps the shared memory and,
 * at a chosen moment, writes chosen values into the session header, a
 * stream point's set-up and result lines, a ring's control block or its
 * slot headers, once or over and over. What it may reach is what any side
 * of the shared memory may reach; the tests then check that the real
 * initiator and responder report nothing that did not happen and recover.
 *
 * Offsets come from the ABI headers (ivshmem_abi.h, ring.h, channel.h), so
 * the attack lands where the programs really look. The geometry of the
 * rings is read from the point's set-up at the payload offset and checked
 * against the mapping before any slot is touched.
 *
 *   --at MOMENT    now (default), attached (a responder serves a session
 *                  opened after we started), seq:N (that session's
 *                  message N posted), started (a stream point started:
 *                  STREAM posted and the responder said so, not yet
 *                  answered), moved:N (started, and N messages consumed on
 *                  ring 0 or ring 1)
 *   --delay DUR    then wait this long
 *   --set F=V      write V into F (repeatable; all of them, in order, each time)
 *   --count N      write N times (default 1), --every DUR apart (default 0)
 *   --for DUR      write over and over for DUR
 *   --while-pid P  write over and over while process P lives (bounded by --for
 *                  when given, else by --deadline)
 *   --when-empty R write only while ring R looks empty (head == tail); wait
 *                  for it up to --deadline before each write
 *   --deadline DUR give up waiting for the moment after this long (default 30s)
 *   --restore      at the end, write back into each field (not slots) the
 *                  last value the other side wrote there (found in place of
 *                  ours), so an attack on an index can stop without leaving
 *                  the index wrong for ever
 *
 * Fields: hdr.{session_id,seq,ack,command,payload_size,attached_session,
 * error_code,magic,host_flags,guest_flags}; ringN.{head,end,tail,
 * producer_sleeping,consumer_sleeping,errors,first_bad_seq};
 * ringN.slot[S].{seq,len,verify,check,data} with S a slot number, "all",
 * "next" (the one at the tail) or "pending" (every one between tail and
 * head); params.{stop,kind,msg_len,batch}; result.{started,consumed,
 * produced,errors,cpu_ns}. check and data: their first 8 bytes.
 * Values: a number (decimal or 0x hex: written as is), +N or -N (added to
 * what the other side last wrote there, not to our own last value), ^N
 * (xored), random, or for hdr.ack ack:STATE[+K] (the ack word for message
 * hdr.seq + K in STATE: received, processed or error).
 *
 * Prints a line once it has mapped the memory ("ivb_hostile: waiting"),
 * one when it first writes ("ivb_hostile: attack ...", naming the session,
 * the message and each field's old and new value), or "moment came" with
 * no --set, and one when it stops ("ivb_hostile: done N writes ..."),
 * flushed, so a script can wait on them. Exit 0 once it has written (or, with no --set, once the
 * moment came), 3 when the moment did not come before the deadline, 1 on a
 * mapping or geometry failure, 2 on bad usage. Not a test itself.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "channel.h"
#include "cli.h"
#include "ivshmem_abi.h"
#include "ring.h"
#include "shm_map.h"

#define PROG "ivb_hostile"
#define HOSTILE_MAX_SETS 8
#define HOSTILE_DEFAULT_DEADLINE "30s"
#define HOSTILE_POLL_NS 20000ull /* between looks while waiting for a moment */

enum moment { AT_NOW, AT_ATTACHED, AT_SEQ, AT_STARTED, AT_MOVED };

enum value_op { V_SET, V_ADD, V_SUB, V_XOR, V_RANDOM, V_ACK };

/* Where a field lives: a region, a byte offset in it, a width. */
enum region { R_HDR, R_PARAMS, R_RESULT, R_CTL, R_SLOT };
enum slot_sel { S_INDEX, S_ALL, S_NEXT, S_PENDING };

struct set {
	const char *text;     /* as given, for messages */
	enum region region;
	int ring;             /* R_CTL, R_SLOT: 0 or 1 */
	enum slot_sel sel;    /* R_SLOT */
	uint64_t slot;        /* S_INDEX */
	size_t off;           /* within the region (the slot, for R_SLOT) */
	unsigned width;       /* 4 or 8 bytes */
	enum value_op op;
	uint64_t value;       /* operand; V_ACK: the offset K */
	uint32_t ack_state;   /* V_ACK */
};

/*
 * A word we write (not a slot's): our last value and the other side's
 * last one (a value found in place of ours), for relative values and
 * --restore. Two --set of one field share it.
 */
struct word {
	uint8_t *p;
	unsigned width;
	uint64_t written;     /* our last value */
	uint64_t seen;        /* the other side's last value */
	int have_written, have_seen;
	const char *text;     /* the first --set that wrote it */
};

static struct word words[HOSTILE_MAX_SETS];
static int nwords;

static struct word *word_at(uint8_t *p, const struct set *s)
{
	int i;

	for (i = 0; i < nwords; i++)
		if (words[i].p == p)
			return &words[i];
	words[nwords] = (struct word){ .p = p, .width = s->width, .text = s->text };
	return &words[nwords++];
}

struct config {
	const char *shm;
	enum moment at;
	uint64_t at_n;        /* seq:N, moved:N */
	uint64_t delay_ns;
	uint64_t deadline_ns;
	uint64_t count;
	uint64_t every_ns;
	uint64_t for_ns;      /* 0: not given */
	pid_t while_pid;      /* 0: not given */
	int when_empty;       /* ring number, -1 off */
	int restore;          /* at the end, put back what the other side last wrote */
	struct set sets[HOSTILE_MAX_SETS];
	int nsets;
};

struct shm {
	uint8_t *base;
	size_t size;
	struct ivb_header *hdr;
	struct ivb_stream_params *params;
	struct ivb_stream_result *result;
	struct ivb_ring_geometry ring[2]; /* checked copies */
	int rings_ok;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " --shm FILE [--at MOMENT] [--delay DUR] [--set FIELD=VALUE]...\n"
		"       [--count N] [--every DUR] [--for DUR] [--while-pid PID] [--when-empty RING]\n"
		"       [--deadline DUR] [--restore]\n"
		"A hostile peer for the tests: writes chosen values into the shared memory at a\n"
		"chosen moment. See the comment at the top of tests/helpers/ivb_hostile.c.\n"
		"  MOMENT  now, attached, seq:N, started, moved:N (default now)\n"
		"  FIELD   hdr.NAME, ringN.NAME, ringN.slot[S].NAME, params.NAME, result.NAME\n"
		"  VALUE   N, +N, -N, ^N, random, ack:received|processed|error[+K]\n"
		"  --deadline defaults to " HOSTILE_DEFAULT_DEADLINE "; --count to 1.\n"
		"Exit: 0 written, 3 the moment never came, 1 failure, 2 bad usage.\n");
}

/* ------------------------------------------------------------------ */
/* Fields and values                                                   */
/* ------------------------------------------------------------------ */

struct field_name {
	const char *name;
	size_t off;
	unsigned width;
};

#define F64(s, f) { #f, offsetof(s, f), 8 }
#define F32(s, f) { #f, offsetof(s, f), 4 }

static const struct field_name hdr_fields[] = {
	F64(struct ivb_header, session_id), F64(struct ivb_header, seq),
	F32(struct ivb_header, command), F64(struct ivb_header, payload_size),
	F64(struct ivb_header, ack), F32(struct ivb_header, error_code),
	F64(struct ivb_header, attached_session), F64(struct ivb_header, magic),
	F32(struct ivb_header, host_flags), F32(struct ivb_header, guest_flags),
	{ 0 },
};
static const struct field_name params_fields[] = {
	F64(struct ivb_stream_params, stop), F32(struct ivb_stream_params, kind),
	F32(struct ivb_stream_params, msg_len), F32(struct ivb_stream_params, batch),
	{ 0 },
};
static const struct field_name result_fields[] = {
	F64(struct ivb_stream_result, started), F64(struct ivb_stream_result, consumed),
	F64(struct ivb_stream_result, produced), F64(struct ivb_stream_result, errors),
	F64(struct ivb_stream_result, cpu_ns),
	{ 0 },
};
static const struct field_name ctl_fields[] = {
	F64(struct ivb_ring_ctl, head), F64(struct ivb_ring_ctl, end),
	F64(struct ivb_ring_ctl, tail), F32(struct ivb_ring_ctl, producer_sleeping),
	F32(struct ivb_ring_ctl, consumer_sleeping), F64(struct ivb_ring_ctl, errors),
	F64(struct ivb_ring_ctl, first_bad_seq),
	{ 0 },
};
/* check and data: their first 8 bytes. */
static const struct field_name slot_fields[] = {
	F64(struct ivb_slot_header, seq), F32(struct ivb_slot_header, len),
	F32(struct ivb_slot_header, verify), { "check", offsetof(struct ivb_slot_header, check), 8 },
	{ "data", IVB_SLOT_HEADER, 8 },
	{ 0 },
};

static int find_field(const struct field_name *t, const char *name, struct set *s)
{
	for (; t->name; t++) {
		if (!strcmp(t->name, name)) {
			s->off = t->off;
			s->width = t->width;
			return 0;
		}
	}
	return -1;
}

static uint64_t parse_u64(const char *opt, const char *arg)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-')
		ivb_die_usage("%s: '%s' is not a number (decimal or 0x hex)", opt, arg);
	return v;
}

static void parse_value(struct set *s, const char *v)
{
	static const char *const states[] = { "none", "received", "processed", "error" };

	switch (v[0]) {
	case '+': s->op = V_ADD; s->value = parse_u64("--set", v + 1); return;
	case '-': s->op = V_SUB; s->value = parse_u64("--set", v + 1); return;
	case '^': s->op = V_XOR; s->value = parse_u64("--set", v + 1); return;
	}
	if (!strcmp(v, "random")) {
		s->op = V_RANDOM;
		return;
	}
	if (!strncmp(v, "ack:", 4)) {
		const char *plus = strchr(v + 4, '+');
		size_t n = plus ? (size_t)(plus - v - 4) : strlen(v + 4);
		unsigned k;

		s->op = V_ACK;
		s->value = plus ? parse_u64("--set", plus + 1) : 0;
		for (k = 1; k < 4; k++)
			if (strlen(states[k]) == n && !strncmp(states[k], v + 4, n))
				break;
		if (k == 4)
			ivb_die_usage("--set: '%s': the state is received, processed or error", v);
		s->ack_state = k;
		return;
	}
	s->op = V_SET;
	s->value = parse_u64("--set", v);
}

/* FIELD=VALUE into s; exits 2 when either is not understood. */
static void parse_set(const char *arg, struct set *s)
{
	char buf[128], *eq, *name, *dot;

	memset(s, 0, sizeof(*s));
	s->text = arg;
	if (strlen(arg) >= sizeof(buf) || !(eq = strchr(arg, '=')))
		ivb_die_usage("--set: '%s' is not FIELD=VALUE", arg);
	snprintf(buf, sizeof(buf), "%.*s", (int)(eq - arg), arg);
	dot = strrchr(buf, '.');
	if (!dot)
		ivb_die_usage("--set: '%s': no such field", buf);
	*dot = 0;
	name = dot + 1;
	if (!strcmp(buf, "hdr")) {
		s->region = R_HDR;
		if (find_field(hdr_fields, name, s))
			ivb_die_usage("--set: 'hdr.%s': no such field", name);
	} else if (!strcmp(buf, "params")) {
		s->region = R_PARAMS;
		if (find_field(params_fields, name, s))
			ivb_die_usage("--set: 'params.%s': no such field", name);
	} else if (!strcmp(buf, "result")) {
		s->region = R_RESULT;
		if (find_field(result_fields, name, s))
			ivb_die_usage("--set: 'result.%s': no such field", name);
	} else if ((!strncmp(buf, "ring0", 5) || !strncmp(buf, "ring1", 5)) && !buf[5]) {
		s->region = R_CTL;
		s->ring = buf[4] - '0';
		if (find_field(ctl_fields, name, s))
			ivb_die_usage("--set: 'ringN.%s': no such field", name);
	} else if ((!strncmp(buf, "ring0.slot[", 11) || !strncmp(buf, "ring1.slot[", 11)) &&
		   buf[strlen(buf) - 1] == ']') {
		char *sel = buf + 11;

		s->region = R_SLOT;
		s->ring = buf[4] - '0';
		buf[strlen(buf) - 1] = 0;
		if (!strcmp(sel, "all"))
			s->sel = S_ALL;
		else if (!strcmp(sel, "next"))
			s->sel = S_NEXT;
		else if (!strcmp(sel, "pending"))
			s->sel = S_PENDING;
		else
			s->sel = S_INDEX, s->slot = parse_u64("--set (slot)", sel);
		if (find_field(slot_fields, name, s))
			ivb_die_usage("--set: 'slot.%s': no such field", name);
	} else {
		ivb_die_usage("--set: '%s': not hdr, params, result, ring0, ring1 or ringN.slot[S]", buf);
	}
	if (s->region == R_HDR && s->off == offsetof(struct ivb_header, ack))
		parse_value(s, eq + 1);
	else if (!strncmp(eq + 1, "ack:", 4))
		ivb_die_usage("--set: ack:STATE is for hdr.ack only");
	else
		parse_value(s, eq + 1);
}

static void parse_moment(const char *arg, struct config *c)
{
	if (!strcmp(arg, "now"))
		c->at = AT_NOW;
	else if (!strcmp(arg, "attached"))
		c->at = AT_ATTACHED;
	else if (!strcmp(arg, "started"))
		c->at = AT_STARTED;
	else if (!strncmp(arg, "seq:", 4))
		c->at = AT_SEQ, c->at_n = ivb_opt_count("--at seq:", arg + 4, 0, UINT64_MAX / 2);
	else if (!strncmp(arg, "moved:", 6))
		c->at = AT_MOVED, c->at_n = ivb_opt_count("--at moved:", arg + 6, 0, UINT64_MAX / 2);
	else
		ivb_die_usage("--at: '%s' is not now, attached, seq:N, started or moved:N", arg);
}

static void parse_args(int argc, char **argv, struct config *c)
{
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 'a' },
		{ "delay", required_argument, NULL, 'D' },
		{ "set", required_argument, NULL, 'S' },
		{ "count", required_argument, NULL, 'n' },
		{ "every", required_argument, NULL, 'e' },
		{ "for", required_argument, NULL, 'f' },
		{ "while-pid", required_argument, NULL, 'p' },
		{ "when-empty", required_argument, NULL, 'E' },
		{ "deadline", required_argument, NULL, 'd' },
		{ "restore", no_argument, NULL, 'r' },
		IVB_CLI_OPTIONS,
		{ 0 }
	};
	int o;

	*c = (struct config){ .count = 1, .when_empty = -1 };
	c->deadline_ns = ivb_opt_duration("--deadline", HOSTILE_DEFAULT_DEADLINE, 1000000000ull, 1,
					  ~0ull, "");
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 's': c->shm = optarg; break;
		case 'a': parse_moment(optarg, c); break;
		case 'D':
			c->delay_ns = ivb_opt_duration("--delay", optarg, 1000000000ull, 0, 600000000000ull,
						       "0..10m (e.g. 50ms)");
			break;
		case 'S':
			if (c->nsets == HOSTILE_MAX_SETS)
				ivb_die_usage("--set: at most %d", HOSTILE_MAX_SETS);
			parse_set(optarg, &c->sets[c->nsets++]);
			break;
		case 'n': c->count = ivb_opt_count("--count", optarg, 1, UINT64_MAX / 2); break;
		case 'e':
			c->every_ns = ivb_opt_duration("--every", optarg, 1000000000ull, 0, 60000000000ull,
						       "0..1m (e.g. 1ms)");
			break;
		case 'f':
			c->for_ns = ivb_opt_duration("--for", optarg, 1000000000ull, 1, 600000000000ull,
						     "1ns..10m (e.g. 2s)");
			break;
		case 'p': c->while_pid = (pid_t)ivb_opt_count("--while-pid", optarg, 1, 1 << 30); break;
		case 'r': c->restore = 1; break;
		case 'E': c->when_empty = (int)ivb_opt_count("--when-empty", optarg, 0, 1); break;
		case 'd':
			c->deadline_ns = ivb_opt_duration("--deadline", optarg, 1000000000ull, 1000000ull,
							  3600000000000ull, "1ms..1h (e.g. 10s)");
			break;
		default: ivb_cli_option(o, usage); ivb_bad_option();
		}
	}
	if (optind < argc)
		ivb_die_usage("unexpected argument '%s'", argv[optind]);
	if (!c->shm)
		ivb_die_usage("--shm FILE is required");
}

/* ------------------------------------------------------------------ */
/* The shared memory                                                   */
/* ------------------------------------------------------------------ */

static uint64_t load64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }
static uint32_t load32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE); }

/* Copy the point's ring geometry and check it against the mapping. */
static int read_rings(struct shm *m)
{
	struct ivb_stream_params p;
	int k;

	m->rings_ok = 0;
	memcpy(&p, m->params, sizeof(p));
	for (k = 0; k < 2; k++) {
		const struct ivb_ring_geometry *g = &p.ring[k];

		if (!ivb_is_pow2(g->nslots) || g->nslots > (1u << 24) || g->slot_size < IVB_SLOT_HEADER + 8 ||
		    g->slot_size % IVB_CACHE_LINE || g->slot_size > m->size || g->offset % IVB_CACHE_LINE ||
		    g->offset < IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES || g->offset > m->size ||
		    g->nslots > (m->size - g->offset) / g->slot_size ||
		    IVB_RING_CTL_SIZE + g->nslots * g->slot_size > m->size - g->offset)
			return -1;
		m->ring[k] = *g;
	}
	m->rings_ok = 1;
	return 0;
}

static struct ivb_ring_ctl *ctl(const struct shm *m, int k)
{
	return (struct ivb_ring_ctl *)(m->base + m->ring[k].offset);
}

static uint8_t *slot_at(const struct shm *m, int k, uint64_t i)
{
	return m->base + m->ring[k].offset + IVB_RING_CTL_SIZE + (i & (m->ring[k].nslots - 1)) *
	       m->ring[k].slot_size;
}

/* 1 when the moment has come (and fills session with the session it came in). */
static int moment_came(const struct config *c, struct shm *m, uint64_t first_session,
		       uint64_t *session)
{
	uint64_t s, ack, seq;

	if (c->at == AT_NOW)
		return *session = load64(&m->hdr->session_id), 1;
	s = load64(&m->hdr->session_id);
	if (!s || s == first_session || load64(&m->hdr->attached_session) != s)
		return 0;
	*session = s;
	if (c->at == AT_ATTACHED)
		return 1;
	seq = load64(&m->hdr->seq);
	if (c->at == AT_SEQ)
		return seq >= c->at_n;
	/* started, moved: a STREAM posted, started and not yet answered */
	ack = load64(&m->hdr->ack);
	if (load32(&m->hdr->command) != IVB_CMD_STREAM || !seq || !load64(&m->result->started) ||
	    (ivb_ack_seq(ack) == seq && ivb_ack_state(ack) >= IVB_STATE_PROCESSED))
		return 0;
	if (read_rings(m))
		return 0;
	if (c->at == AT_STARTED)
		return 1;
	return load64(&ctl(m, 0)->tail) >= c->at_n || load64(&ctl(m, 1)->tail) >= c->at_n;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static uint64_t rnd(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)ivb_now_ns() * 0x9e3779b97f4a7c15ull;
	return v;
}

static uint64_t new_value(const struct set *s, const struct shm *m, uint64_t old)
{
	switch (s->op) {
	case V_SET: return s->value;
	case V_ADD: return old + s->value;
	case V_SUB: return old - s->value;
	case V_XOR: return old ^ s->value;
	case V_RANDOM: return rnd();
	case V_ACK: return ivb_ack_make(load64(&m->hdr->seq) + s->value, (enum ivb_state)s->ack_state);
	}
	return old;
}

/* Store v into the word at p (of s's width); returns old, v as stored in *nv. */
static uint64_t write_value(const struct set *s, uint8_t *p, uint64_t old, uint64_t v, uint64_t *nv)
{
	if (s->width == 8)
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
	else
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE);
	*nv = s->width == 8 ? v : (uint32_t)v;
	return old;
}

/*
 * Write one word; returns the old value, the new one in *nv. A relative
 * value (+N, -N, ^N) applies to what the other side last wrote: when the
 * word still holds our own last value, to the value we found before it
 * (so --set F=0 --set F=+0 flickers F between 0 and the other side's value).
 * w, for a word other than a slot's, keeps that history.
 */
static uint64_t write_word(const struct set *s, const struct shm *m, uint8_t *p, struct word *w,
			   uint64_t *nv)
{
	uint64_t old = s->width == 8 ? load64(p) : load32(p), base = old;

	if (w) {
		if (!w->have_written || old != w->written)
			w->seen = old, w->have_seen = 1;
		else if (w->have_seen)
			base = w->seen;
	}
	write_value(s, p, old, new_value(s, m, base), nv);
	if (w)
		w->written = *nv, w->have_written = 1;
	return old;
}

/* Where a --set other than a slot's points; NULL when the rings are unknown. */
static uint8_t *place(const struct set *s, const struct shm *m)
{
	switch (s->region) {
	case R_HDR: return (uint8_t *)m->hdr + s->off;
	case R_PARAMS: return (uint8_t *)m->params + s->off;
	case R_RESULT: return (uint8_t *)m->result + s->off;
	case R_CTL: return m->rings_ok ? (uint8_t *)ctl(m, s->ring) + s->off : NULL;
	default: return NULL;
	}
}

/* Apply one --set; the first time, say what it did (report != NULL). */
static int apply(const struct set *s, const struct shm *m, FILE *report)
{
	uint64_t old = 0, nv = 0, i, from, to, n = 0;
	uint8_t *p;

	if (s->region == R_SLOT) {
		if (!m->rings_ok)
			return -1;
		if (s->width + s->off > m->ring[s->ring].slot_size)
			return -1;
		if (s->sel == S_INDEX) {
			from = s->slot, to = s->slot + 1;
		} else if (s->sel == S_ALL) {
			from = 0, to = m->ring[s->ring].nslots;
		} else {
			from = load64(&ctl(m, s->ring)->tail);
			to = s->sel == S_NEXT ? from + 1 : load64(&ctl(m, s->ring)->head);
			if (to - from > m->ring[s->ring].nslots)
				to = from + m->ring[s->ring].nslots;
		}
		for (i = from; i != to; i++, n++) {
			uint64_t o = write_word(s, m, slot_at(m, s->ring, i) + s->off, NULL, &nv);

			if (!n)
				old = o;
		}
		if (report)
			fprintf(report, " %s (ring %d slots %" PRIu64 "..%" PRIu64 ", first was %#" PRIx64
				" now %#" PRIx64 ")", s->text, s->ring, from, to, old, nv);
		return 0;
	}
	if (!(p = place(s, m)))
		return -1;
	old = write_word(s, m, p, word_at(p, s), &nv);
	if (report)
		fprintf(report, " %s (was %#" PRIx64 " now %#" PRIx64 ")", s->text, old, nv);
	return 0;
}

static int alive(pid_t p)
{
	return kill(p, 0) == 0 || errno == EPERM;
}

/* Spin until ring k looks empty, up to the deadline. 0 or -1. */
static int wait_empty(const struct shm *m, int k, uint64_t deadline)
{
	while (load64(&ctl(m, k)->head) != load64(&ctl(m, k)->tail))
		if (ivb_now_ns() > deadline)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct config c;
	struct shm m = { 0 };
	struct ivb_map map;
	char err[1200];
	uint64_t start, first_session, session = 0, deadline, stop_at, writes = 0, i;
	int k, written = 0;

	ivb_cli_init(PROG);
	parse_args(argc, argv, &c);
	if (ivb_map_file(c.shm, IVB_PAYLOAD_OFFSET + IVB_CHANNEL_SETUP_BYTES, IVB_MAP_ANY_FS, &map,
			 err, sizeof(err)))
		ivb_die("%s", err);
	m.base = map.base;
	m.size = map.size;
	m.hdr = (struct ivb_header *)m.base;
	m.params = (struct ivb_stream_params *)(m.base + IVB_PAYLOAD_OFFSET);
	m.result = (struct ivb_stream_result *)(m.base + IVB_PAYLOAD_OFFSET + sizeof(*m.params));
	start = ivb_now_ns();
	deadline = start + c.deadline_ns;
	first_session = c.at == AT_NOW ? 0 : load64(&m.hdr->session_id);
	printf(PROG ": waiting for the moment (session %016" PRIx64 " now)\n", first_session);
	fflush(stdout);

	/* The moment. */
	while (!moment_came(&c, &m, first_session, &session)) {
		if (ivb_now_ns() > deadline || (c.while_pid && !alive(c.while_pid))) {
			printf(PROG ": the moment never came (session %016" PRIx64 " seq %" PRIu64 ")\n",
			       load64(&m.hdr->session_id), load64(&m.hdr->seq));
			return 3;
		}
		ivb_sleep_ns(HOSTILE_POLL_NS);
	}
	if (c.delay_ns)
		ivb_sleep_ns(c.delay_ns);
	for (k = 0; k < c.nsets; k++)
		if ((c.sets[k].region == R_CTL || c.sets[k].region == R_SLOT) && read_rings(&m))
			ivb_die("the point's ring geometry is not valid (no stream point set up?)");
	if (!c.nsets) {
		printf(PROG ": moment came: session %016" PRIx64 " seq %" PRIu64 "\n", session,
		       load64(&m.hdr->seq));
		return 0;
	}

	/* The writes. */
	stop_at = c.for_ns ? ivb_now_ns() + c.for_ns : c.while_pid ? deadline : 0;
	for (i = 0;; i++) {
		if (stop_at ? ivb_now_ns() >= stop_at && written : i >= c.count)
			break;
		if (c.while_pid && written && (i % 64) == 0 && !alive(c.while_pid))
			break;
		if (c.when_empty >= 0 && wait_empty(&m, c.when_empty, stop_at ? stop_at : deadline)) {
			if (written)
				break;
			printf(PROG ": ring %d never looked empty\n", c.when_empty);
			return 3;
		}
		if (!written)
			printf(PROG ": attack in session %016" PRIx64 " at message %" PRIu64 ":", session,
			       load64(&m.hdr->seq));
		for (k = 0; k < c.nsets; k++)
			if (apply(&c.sets[k], &m, written ? NULL : stdout))
				ivb_die("%s: no such place in this mapping", c.sets[k].text);
		if (!written) {
			printf("\n");
			fflush(stdout);
		}
		written = 1;
		writes++;
		if (c.every_ns)
			ivb_sleep_ns(c.every_ns);
	}
	for (k = 0; c.restore && k < nwords; k++) {
		struct word *w = &words[k];

		if (w->have_seen) {
			if (w->width == 8)
				__atomic_store_n((uint64_t *)w->p, w->seen, __ATOMIC_RELEASE);
			else
				__atomic_store_n((uint32_t *)w->p, (uint32_t)w->seen, __ATOMIC_RELEASE);
			printf(PROG ": restored %.*s to %#" PRIx64 "\n", (int)strcspn(w->text, "="),
			       w->text, w->seen);
		}
	}
	printf(PROG ": done: %" PRIu64 " write(s) over %.3f s, last at message %" PRIu64 "\n", writes,
	       (double)(ivb_now_ns() - start) / 1e9, load64(&m.hdr->seq));
	fflush(stdout);
	ivb_unmap(&map);
	return 0;
}
