/*
 * shm_map.h - mapping the shared memory, from either side.
 *
 * The host maps the file QEMU's memory backend uses (/dev/shm/ivshmem by
 * default). The guest maps BAR2 of the ivshmem PCI device through sysfs
 * (resource2), found by vendor and device id. guest_reader can also map a
 * file, so the whole protocol runs without a VM.
 */
#ifndef IVB_SHM_MAP_H
#define IVB_SHM_MAP_H

#include <stddef.h>
#include <stdint.h>

struct ivb_map {
	void *base;        /* start of the mapping */
	size_t size;       /* bytes mapped */
	int fd;            /* the file, kept open to tell its size later; -1 if none */
	char source[1024]; /* file or sysfs path it came from, for messages */
};

/* Flags of ivb_map_file(). */
#define IVB_MAP_ANY_FS 1 /* accept a file outside tmpfs and hugetlbfs */

/*
 * Map an existing file of at least min_size bytes read-write and shared.
 * The path must not be a symlink (someone else could point it at a file of
 * yours) and, unless flags has IVB_MAP_ANY_FS, must be on tmpfs or hugetlbfs
 * (where QEMU's shared memory lives; anything else is not shared memory, or
 * is a file a typo would overwrite). On failure returns -1 and writes a
 * message (naming the file and the reason, with a hint) into err.
 */
int ivb_map_file(const char *path, size_t min_size, int flags, struct ivb_map *m, char *err,
		 size_t errlen);

/* The current size of a mapped file (it may have shrunk), or -1. */
long long ivb_map_file_size(const struct ivb_map *m);

/*
 * Map size bytes of an open shared-memory fd (one a doorbell server sent);
 * source names it in messages. Returns 0 or -1 with a message in err.
 */
int ivb_map_fd(int fd, size_t size, const char *source, struct ivb_map *m, char *err, size_t errlen);

/*
 * Find the n-th (0-based) PCI device with the given vendor/device id under
 * sysfs_root ("/sys/bus/pci/devices"), write its address ("0000:00:03.0")
 * into bdf. Returns 0, or -1 when there is none.
 */
int ivb_pci_find(const char *sysfs_root, unsigned vendor, unsigned device, int index,
		 char *bdf, size_t len);

/* How a guest maps a BAR through sysfs (ivb_map_pci_bar()). */
enum ivb_bar_map {
	IVB_BAR_MAP_UC = 0, /* resourceN: uncached (UC-), the default */
	IVB_BAR_MAP_WC = 1, /* resourceN_wc: write-combining (a prefetchable BAR only) */
	IVB_BAR_MAP_VFIO = 2, /* VFIO's region N (attach.c): the device bound to vfio-pci */
};

/* "uc", "wc" or "vfio". */
const char *ivb_bar_map_name(enum ivb_bar_map how);

/*
 * Enable the PCI device and map BAR bar of it: its resourceN file, or
 * resourceN_wc with IVB_BAR_MAP_WC (the kernel makes that file only for a
 * prefetchable BAR; without it the message says "not available: ...").
 * Returns 0 or -1 with a message in err.
 */
int ivb_map_pci_bar(const char *sysfs_root, const char *bdf, int bar, enum ivb_bar_map how,
		    struct ivb_map *m, char *err, size_t errlen);

/*
 * Map an inherited descriptor of shared memory (a memfd, or a file on tmpfs
 * or hugetlbfs), its whole size, at least min_size bytes. The descriptor is
 * duplicated and kept (to tell its size later); source names it. Returns 0
 * or -1 with a message in err.
 */
int ivb_map_inherited_fd(int fd, size_t min_size, struct ivb_map *m, char *err, size_t errlen);

void ivb_unmap(struct ivb_map *m);

/* 1 when x is a power of two (and non-zero). */
static inline int ivb_is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

#endif
