/*
 * copy.h - copying messages into and out of shared memory.
 *
 * glibc's memcpy copies mid-sized blocks (a few KiB to about a MiB) with
 * "rep movsb", which QEMU's TCG emulates a byte at a time: a guest without
 * KVM copies 64 KiB at 0.4 GB/s that way, against 1.1-1.5 GB/s with a plain
 * loop of 64-byte moves (measured with qemu-x86_64 here), while on real
 * hardware memcpy is five times faster than that loop. So ivb_copy() times
 * both once per size class, when first needed, and uses the faster: a
 * figure then measures the channel, not a pathology of one emulated
 * instruction.
 */
#ifndef IVB_COPY_H
#define IVB_COPY_H

#include <stddef.h>

void ivb_copy(void *dst, const void *src, size_t n);

/* What each size class uses, e.g. "memcpy,loop,memcpy" (4K, 64K, 1M classes); "" before use. */
const char *ivb_copy_impl(void);

#endif
