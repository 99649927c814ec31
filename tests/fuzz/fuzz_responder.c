/*
 * fuzz_responder - libFuzzer on the responder: guest_reader's handling of
 * whatever the shared memory holds. The input is laid over the start of a
 * shared region (the session header, the payload area, a stream's set-up
 * and rings) and the project's responder (session.c with every workload's
 * serve(), as guest_reader registers them) attaches and answers until the
 * initiator falls silent. Nothing it reads may crash it, make it read or
 * write outside the region, or keep it busy past its silence limit.
 *
 * The first input byte's low bit makes the identity line valid (magic,
 * layout, sizes, plain mode), so most inputs get past the session check
 * and reach the commands; the rest of the header, the message and the
 * payload come from the input as they are. The responder's warnings
 * (refused sessions, silence) are expected: run it with -close_fd_mask=2,
 * as tests/server_fuzz.sh and make fuzz do.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "session.h"
#include "workload.h"

#define REGION (256u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	struct ivb_header *h;
	struct ivb_waiter w;
	struct ivb_responder r;
	uint64_t s;
	int i;

	if (!mem) {
		mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			abort();
	}
	memset(mem, 0, REGION);
	memcpy(mem, data, size < REGION ? size : REGION);
	h = (struct ivb_header *)mem;
	if (size && (data[0] & 1)) {
		h->magic = IVB_MAGIC;
		h->layout_version = IVB_LAYOUT_VERSION;
		h->header_size = sizeof(*h);
		h->payload_offset = IVB_PAYLOAD_OFFSET;
		h->mode = IVB_MODE_PLAIN;
	}
	s = h->session_id ? h->session_id : 1;
	h->session_id = s;
	h->attached_session = 0;
	if (!h->seq)
		h->seq = 1;
	ivb_waiter_poll(&w);
	ivb_responder_init(&r, mem, REGION, &w);
	r.last_session = 0;
	r.silence_ns = 200000; /* the initiator never answers: give up soon */
	for (i = 0; ivb_workloads[i]; i++) {
		uint32_t cmd = ivb_workloads[i]->command;

		if (cmd < IVB_CMD__COUNT) {
			r.serve[cmd] = ivb_workloads[i]->serve;
			r.accepts[cmd] = 1;
		}
	}
	ivb_responder_serve(&r, s);
	free(r.scratch);
	return 0;
}
