/*
 * chain.h - the forwarding chain's remote receiver (chain.c): a process
 * that is not the initiator takes ring B and verifies and times every
 * message on it. In a vm-vm run it is the host's chain_sink, the end of
 * guest A -> guest B -> host.
 */
#ifndef IVB_CHAIN_H
#define IVB_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ivb_chain_sink_opts {
	uint64_t timeout_ns; /* longest wait within a point (the initiator's may be shorter) */
	uint64_t idle_ns;    /* return after this long without a point; 0: only on a stop signal */
	uint64_t poll_ns;    /* between looks for a point */
	int yield;           /* yield the CPU while ring B is empty (it shares one) */
	uint64_t idle_sleep_ns; /* or sleep this long each time it finds ring B empty */
	int cpu;             /* the CPU it receives on, -1 unpinned */
	int probe_cpu;       /* the CPU it measures the clocks' offset on (one where the
			      * sender can answer at once), -1: cpu */
	FILE *say;           /* a line per point, or NULL */
};

/*
 * Receive every point of --chain-receiver remote posted in the shared
 * memory at base (map_size bytes), until a stop signal or idle_ns without
 * one. Each point's outcome goes back to the initiator through the shared
 * memory. Returns the number of points served, or -1 when the mapping is
 * too small to hold a chain.
 */
int ivb_chain_sink(void *base, size_t map_size, const struct ivb_chain_sink_opts *o);

#endif
