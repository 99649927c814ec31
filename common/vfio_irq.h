/*
 * vfio_irq.h - the guest's view of an ivshmem-doorbell device through
 * VFIO: BAR0 (registers) and BAR2 (shared memory) mapped from the VFIO
 * device, and one eventfd per MSI-X vector that the kernel signals on each
 * interrupt. This is how guest_reader blocks on interrupts from userspace.
 *
 * The device must be bound to vfio-pci first (the micro guest's /init does
 * it); Debian's 6.1 kernel has no VFIO no-IOMMU mode, so the VM needs an
 * IOMMU (QEMU's intel-iommu, guest intel_iommu=on).
 */
#ifndef IVB_VFIO_IRQ_H
#define IVB_VFIO_IRQ_H

#include <stddef.h>
#include <stdint.h>

#define IVB_VFIO_MAX_VECTORS 8

/* ivshmem BAR0 register offsets (32-bit registers). */
#define IVB_REG_IVPOSITION 8 /* this VM's peer id */
#define IVB_REG_DOORBELL 12  /* write (peer << 16) | vector to ring a peer */

struct ivb_vfio {
	int container;                    /* /dev/vfio/vfio */
	int group;                        /* /dev/vfio/N */
	int device;                       /* the device fd */
	volatile uint32_t *regs;          /* BAR0, MMIO registers (device memory) */
	size_t regs_size;                 /* bytes of BAR0 mapped */
	void *shm;                        /* BAR2, the shared memory */
	size_t shm_size;                  /* bytes of BAR2 mapped */
	int nvectors;                     /* MSI-X vectors wired to eventfds */
	int irq_fd[IVB_VFIO_MAX_VECTORS]; /* eventfd per vector */
};

/*
 * Open PCI device bdf through VFIO, map BAR0 and BAR2 and route nvectors
 * MSI-X vectors (0: all the device has, at most IVB_VFIO_MAX_VECTORS) to
 * eventfds, which also enables MSI-X and bus mastering; IVB_VFIO_NO_IRQS:
 * none of that, the mappings only (ivshmem-plain has no MSI-X). Returns 0,
 * or -1 with a message naming the failed step in err.
 */
#define IVB_VFIO_NO_IRQS (-1)
int ivb_vfio_open(const char *bdf, int nvectors, struct ivb_vfio *v, char *err, size_t errlen);

/* This VM's peer id (the IVPosition register). */
uint32_t ivb_vfio_peer_id(const struct ivb_vfio *v);

/* Ring vector of peer: one 32-bit write to the Doorbell register. */
void ivb_vfio_ring(const struct ivb_vfio *v, uint32_t peer, uint32_t vector);

/*
 * Wait up to timeout_ms (-1: no limit) for an interrupt on vector. Returns
 * 1 when one arrived (the count is consumed), 0 on timeout, -1 on error.
 */
int ivb_vfio_wait(const struct ivb_vfio *v, int vector, int timeout_ms);

void ivb_vfio_close(struct ivb_vfio *v);

#endif
