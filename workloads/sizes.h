/*
 * sizes.h - message-size lists for the workloads that sweep sizes:
 * "64,4k,1M", or "ladder" for powers of 4 from 8 B to 8 MiB and then 16 MiB;
 * a message may be up to 64 MiB (when the shared memory holds it).
 */
#ifndef IVB_SIZES_H
#define IVB_SIZES_H

#include <stdint.h>

/* struct ivb_sizes, IVB_MAX_SIZES, IVB_MAX_MESSAGE and the parsers,
 * ivb_parse_size_list() and ivb_sizes_parse(), beside the other units. */
#include "units.h"

/*
 * Exit 2 naming opt when a size the user gave cannot fit the shared memory
 * (capacity payload bytes, in shm_name); a ladder's sizes that do not fit
 * are skipped at run time instead.
 */
void ivb_sizes_check(const char *opt, const struct ivb_sizes *s, uint64_t capacity,
		     const char *shm_name);

#endif
