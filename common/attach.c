/*
 * attach.c - reaching the shared memory from either side (see attach.h).
 */
#include "attach.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ivshmem_abi.h"
#include "waiter_vfio.h"

int ivb_attach(const struct ivb_attach_opts *o, size_t min_size, struct ivb_endpoint *ep,
	       char *err, size_t errlen)
{
	const char *sysfs = o->sysfs_root ? o->sysfs_root : IVB_DEFAULT_SYSFS;
	char bdf[64];

	memset(ep, 0, sizeof(*ep));
	ep->map.fd = -1;
	ivb_waiter_poll(&ep->waiter);
	snprintf(ep->bar_map, sizeof(ep->bar_map), "not applicable: host mapping");
	if ((o->shm_path || o->shm_fd_given) && o->bar_map_given) {
		snprintf(err, errlen, "--bar-map is how a guest maps the PCI device's BAR2; it does "
			 "not apply to --shm or --shm-fd");
		return -1;
	}
	if (o->shm_path && o->shm_fd_given) {
		snprintf(err, errlen, "--shm and --shm-fd exclude each other");
		return -1;
	}
	if (o->shm_fd_given) {
		if (ivb_map_inherited_fd(o->shm_fd, min_size, &ep->map, err, errlen))
			return -1;
		snprintf(ep->describe, sizeof(ep->describe), "%s", ep->map.source);
		return 0;
	}
	if (o->shm_path) {
		if (ivb_map_file(o->shm_path, min_size, o->shm_any_fs ? IVB_MAP_ANY_FS : 0, &ep->map,
				 err, errlen))
			return -1;
		snprintf(ep->describe, sizeof(ep->describe), "%s", o->shm_path);
		return 0;
	}
	if (o->bdf)
		snprintf(bdf, sizeof(bdf), "%s", o->bdf);
	else if (ivb_pci_find(sysfs, IVB_PCI_VENDOR, IVB_PCI_DEVICE, 0, bdf, sizeof(bdf))) {
		snprintf(err, errlen, "no ivshmem device (PCI %04x:%04x) under %s: start QEMU with "
			 "-device ivshmem-plain, or use --shm FILE", IVB_PCI_VENDOR, IVB_PCI_DEVICE,
			 sysfs);
		return -1;
	}
	if (o->vfio && o->bar_map == IVB_BAR_MAP_WC) {
		snprintf(err, errlen, "--bar-map wc: not available with --vfio (doorbell): VFIO maps "
			 "BAR2 uncached, and only sysfs has resource2_wc");
		return -1;
	}
	if (o->vfio || o->bar_map == IVB_BAR_MAP_VFIO) {
		/* Plain mode with --bar-map vfio: the same mappings, no interrupts. */
		if (ivb_vfio_open(bdf, o->vfio ? o->vectors : IVB_VFIO_NO_IRQS, &ep->vfio, err, errlen))
			return -1;
		ep->using_vfio = 1;
		ep->map.base = ep->vfio.shm;
		ep->map.size = ep->vfio.shm_size;
		if (o->vfio) {
			snprintf(ep->map.source, sizeof(ep->map.source), "vfio:%s (peer %u, %d MSI-X "
				 "vectors)", bdf, ivb_vfio_peer_id(&ep->vfio), ep->vfio.nvectors);
			ivb_waiter_vfio(&ep->waiter, &ep->vfio);
		} else {
			snprintf(ep->map.source, sizeof(ep->map.source), "vfio:%s (region 2, no "
				 "interrupts)", bdf);
		}
		snprintf(ep->bar_map, sizeof(ep->bar_map), o->bar_map == IVB_BAR_MAP_VFIO ? "vfio" :
			 "uc (VFIO)");
	} else if (ivb_map_pci_bar(sysfs, bdf, 2, o->bar_map, &ep->map, err, errlen)) {
		return -1;
	} else {
		snprintf(ep->bar_map, sizeof(ep->bar_map), "%s", ivb_bar_map_name(o->bar_map));
	}
	snprintf(ep->describe, sizeof(ep->describe), "%s", ep->map.source);
	if (ep->map.size < min_size) {
		snprintf(err, errlen, "%s: BAR2 is %zu bytes, too small (need %zu)", ep->map.source,
			 ep->map.size, min_size);
		ivb_detach(ep);
		return -1;
	}
	return 0;
}

int ivb_attach_option(struct ivb_attach_opts *o, int c, const char *arg)
{
	switch (c) {
	case IVB_OPT_SHM: o->shm_path = arg; break;
	case IVB_OPT_SHM_ANY_FS: o->shm_any_fs = 1; break;
	case IVB_OPT_DEVICE: o->bdf = arg; break;
	case IVB_OPT_SYSFS: o->sysfs_root = arg; break;
	case IVB_OPT_VFIO: o->vfio = 1; break;
	case IVB_OPT_VECTORS: o->vectors = (int)ivb_opt_count("--vectors", arg, 1, 64); break;
	case IVB_OPT_BAR_MAP:
		if (!strcmp(arg, "uc"))
			o->bar_map = IVB_BAR_MAP_UC;
		else if (!strcmp(arg, "wc"))
			o->bar_map = IVB_BAR_MAP_WC;
		else if (!strcmp(arg, "vfio"))
			o->bar_map = IVB_BAR_MAP_VFIO;
		else
			ivb_die_usage("--bar-map: '%s' is not uc, wc or vfio", arg);
		o->bar_map_given = 1;
		break;
	case IVB_OPT_SHM_FD:
		o->shm_fd = (int)ivb_opt_count("--shm-fd", arg, 0, 1 << 20);
		o->shm_fd_given = 1;
		break;
	default: return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Bus errors on a shrunk file                                         */
/* ------------------------------------------------------------------ */

/* The jump is per thread: a bus error is delivered to the thread that
 * faulted, and only that thread's own sigsetjmp may be jumped to. */
static _Thread_local sigjmp_buf guard_jump;
static const struct ivb_map *guard_map;
static _Thread_local volatile sig_atomic_t guard_active;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	const char *addr = si->si_addr, *base = guard_map ? guard_map->base : NULL;

	(void)uc;
	if (guard_active && base && addr >= base && addr < base + guard_map->size)
		siglongjmp(guard_jump, 1);
	/* Not ours: die of it, as without the handler. */
	signal(sig, SIG_DFL);
	raise(sig);
}

int ivb_guarded_run(struct ivb_endpoint *ep, int (*fn)(void *), void *arg, long long *shrunk_to)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	struct sigaction old;
	int rc;

	sigemptyset(&sa.sa_mask);
	guard_map = &ep->map;
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(guard_jump, 1)) {
		guard_active = 0;
		sigaction(SIGBUS, &old, NULL);
		*shrunk_to = ivb_map_file_size(&ep->map);
		return -1;
	}
	guard_active = 1;
	rc = fn(arg);
	guard_active = 0;
	sigaction(SIGBUS, &old, NULL);
	return rc;
}

int ivb_guarded_thread(int (*fn)(void *), void *arg)
{
	int rc;

	if (sigsetjmp(guard_jump, 1)) {
		guard_active = 0;
		return -EFAULT;
	}
	guard_active = 1;
	rc = fn(arg);
	guard_active = 0;
	return rc;
}

void ivb_detach(struct ivb_endpoint *ep)
{
	if (ep->release)
		ep->release(ep);
	ep->release = NULL;
	if (ep->using_vfio) {
		ivb_vfio_close(&ep->vfio);
		ep->using_vfio = 0;
		ep->map.base = NULL;
	} else {
		ivb_unmap(&ep->map);
	}
	ivb_waiter_poll(&ep->waiter);
}
