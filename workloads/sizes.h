/*
 * sizes.h - message-size lists for the workloads that sweep sizes:
 * "64,4k,1M", or "ladder" for powers of 4 from 8 B to 8 MiB and then 16 MiB;
 * a message may be up to 64 MiB (when the shared memory holds it).
 */
#ifndef IVB_SIZES_H
#define IVB_SIZES_H

#include <stdint.h>

#define IVB_MAX_SIZES 32
#define IVB_MAX_MESSAGE (64u << 20) /* 64 MiB: a 4K RGB frame (24.9 MB) fits */

struct ivb_sizes {
	uint32_t v[IVB_MAX_SIZES]; /* bytes, in the order given */
	int n;
	int ladder;                /* the list was "ladder" */
};

/* Parse list for option opt into s; exits 2 naming the option when it is bad. */
void ivb_sizes_parse(const char *opt, const char *list, struct ivb_sizes *s);

/*
 * Exit 2 naming opt when a size the user gave cannot fit the shared memory
 * (capacity payload bytes, in shm_name); a ladder's sizes that do not fit
 * are skipped at run time instead.
 */
void ivb_sizes_check(const char *opt, const struct ivb_sizes *s, uint64_t capacity,
		     const char *shm_name);

#endif
