/*
 * attach.h - how a side reaches the shared memory and learns how to wait,
 * wherever it runs:
 *
 *   --shm FILE            a file on tmpfs/hugetlbfs (the host's side of
 *                         ivshmem-plain, or both sides of a host-only run): polling
 *   --shm-fd N            an inherited descriptor of such memory (a memfd, for
 *                         a host-only run whose memory has no path): polling
 *   (default in a guest)  BAR2 of the ivshmem PCI device through sysfs: polling;
 *                         --bar-map uc|wc says how (resource2, uncached, the
 *                         default; resource2_wc, write-combining)
 *   --vfio                the ivshmem-doorbell device through VFIO in a guest:
 *                         BAR2, and MSI-X vector 0 to sleep on
 *   --doorbell SOCKET     a host process as a peer of the ivshmem server
 *                         (attach_server.h, kept apart so a guest binary does
 *                         not link the server client)
 *
 * The result is an endpoint: a mapping and a waiter (waiter.h), which is all
 * the session and the workloads need. Both programs, initiator and
 * responder, attach through here, so either can run on either side.
 */
#ifndef IVB_ATTACH_H
#define IVB_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "shm_map.h"
#include "vfio_irq.h"
#include "waiter.h"

#define IVB_DEFAULT_SYSFS "/sys/bus/pci/devices"

struct ivs_client;

struct ivb_attach_opts {
	const char *shm_path;   /* map this file, or NULL */
	int shm_any_fs;         /* accept a file outside tmpfs/hugetlbfs */
	const char *bdf;        /* PCI address, or NULL for the first ivshmem device */
	const char *sysfs_root; /* where PCI devices are listed (IVB_DEFAULT_SYSFS) */
	int vfio;               /* doorbell in a guest: the device through VFIO */
	int vectors;            /* VFIO: MSI-X vectors to wire (0: all, at most 8) */
	enum ivb_bar_map bar_map; /* BAR2: resource2 (uc), resource2_wc (wc) or VFIO's region (vfio) */
	int bar_map_given;      /* --bar-map was given (it needs the PCI device) */
	int shm_fd;             /* map this inherited descriptor, when shm_fd_given */
	int shm_fd_given;
};

/*
 * The options every program attaches with, for its getopt_long table, and
 * their parser: ivb_attach_option() returns 1 when c was one of them.
 */
enum {
	IVB_OPT_SHM = 's',
	IVB_OPT_SHM_ANY_FS = 900,
	IVB_OPT_DEVICE,
	IVB_OPT_SYSFS,
	IVB_OPT_VFIO,
	IVB_OPT_VECTORS,
	IVB_OPT_BAR_MAP,
	IVB_OPT_SHM_FD,
};
#define IVB_ATTACH_OPTIONS                                                     \
	{ "shm", required_argument, NULL, IVB_OPT_SHM },                       \
	{ "shm-any-fs", no_argument, NULL, IVB_OPT_SHM_ANY_FS },               \
	{ "device", required_argument, NULL, IVB_OPT_DEVICE },                 \
	{ "sysfs", required_argument, NULL, IVB_OPT_SYSFS },                   \
	{ "vfio", no_argument, NULL, IVB_OPT_VFIO },                           \
	{ "vectors", required_argument, NULL, IVB_OPT_VECTORS },               \
	{ "bar-map", required_argument, NULL, IVB_OPT_BAR_MAP },               \
	{ "shm-fd", required_argument, NULL, IVB_OPT_SHM_FD }
int ivb_attach_option(struct ivb_attach_opts *o, int c, const char *arg);

struct ivb_endpoint {
	struct ivb_map map;          /* the shared memory */
	struct ivb_vfio vfio;        /* VFIO: the device */
	int using_vfio;              /* vfio is open */
	struct ivs_client *client;   /* server peer: the connection (attach_server.c) */
	struct ivb_waiter waiter;    /* how to wait and ring */
	void (*release)(struct ivb_endpoint *ep); /* a backend's own clean-up, or NULL */
	char describe[1100];         /* where the memory came from, for messages and run.json */
	char bar_map[64];            /* how it is mapped: "uc" or "wc" (BAR2 through sysfs),
				      * "uc (VFIO)", or "not applicable: host mapping" */
};

/*
 * Attach as opts says, checking the mapping holds at least min_size bytes.
 * Returns 0, or -1 with a message (naming what failed, with a hint) in err.
 */
int ivb_attach(const struct ivb_attach_opts *opts, size_t min_size, struct ivb_endpoint *ep,
	       char *err, size_t errlen);

/* Undo ivb_attach() or ivb_attach_server(). */
void ivb_detach(struct ivb_endpoint *ep);

/*
 * Run fn(arg) so that a bus error on the endpoint's mapping (its file was
 * truncated under us) returns -1 with *shrunk_to set to the file's size
 * now, instead of killing the process; other faults kill it as usual.
 * Returns fn's result otherwise. Not reentrant; one guarded run at a time.
 */
int ivb_guarded_run(struct ivb_endpoint *ep, int (*fn)(void *), void *arg, long long *shrunk_to);

/*
 * The same for another thread of a guarded run, while that run lasts (it
 * installs the handler): fn(arg) in this thread, and -EFAULT instead of
 * fn's result when a bus error on the mapping hits this thread. Each thread
 * has a jump of its own: a fault never lands on another thread's stack.
 */
int ivb_guarded_thread(int (*fn)(void *), void *arg);

#endif
