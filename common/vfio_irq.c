/*
 * vfio_irq.c - the VFIO sequence of the kernel's vfio.rst, step by step:
 * container, group, IOMMU type, device, regions, bus mastering (without
 * which no MSI-X message leaves the device), interrupts. No DMA mapping
 * is set up: the ivshmem device does no DMA, it only raises MSI-X.
 */
#include "vfio_irq.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define FAIL(...)                                      \
	do {                                           \
		snprintf(err, errlen, __VA_ARGS__);    \
		goto fail;                             \
	} while (0)

/*
 * Turn on memory decoding and bus mastering in the device's command
 * register. An MSI-X message is a write the device makes as a bus master:
 * with bus mastering off (as vfio-pci leaves a device after its reset) QEMU
 * drops every interrupt without a word.
 */
static int enable_bus_master(int device)
{
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t cmd;

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0)
		return -1;
	if (pread(device, &cmd, sizeof(cmd), (off_t)cfg.offset + PCI_COMMAND) != sizeof(cmd))
		return -1;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(device, &cmd, sizeof(cmd), (off_t)cfg.offset + PCI_COMMAND) != sizeof(cmd))
		return -1;
	return 0;
}

/* Map region index of the device; returns NULL with errno on failure. */
static void *map_region(int device, unsigned index, size_t *size)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };
	void *p;

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
		return NULL;
	if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP) || !info.size) {
		errno = ENOTSUP;
		return NULL;
	}
	p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, device, (off_t)info.offset);
	if (p == MAP_FAILED)
		return NULL;
	*size = info.size;
	return p;
}

int ivb_vfio_open(const char *bdf, int nvectors, struct ivb_vfio *v, char *err, size_t errlen)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	char path[512], link[512];
	struct vfio_irq_set *set = NULL;
	ssize_t n;
	int i;

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = -1;
	for (i = 0; i < IVB_VFIO_MAX_VECTORS; i++)
		v->irq_fd[i] = -1;
	if (nvectors < IVB_VFIO_NO_IRQS || nvectors > IVB_VFIO_MAX_VECTORS)
		FAIL("vectors: %d is not in 0..%d", nvectors, IVB_VFIO_MAX_VECTORS);

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		FAIL("%s: %s (no IOMMU group: boot with intel_iommu=on and QEMU's intel-iommu device)",
		     path, strerror(errno));
	link[n] = 0;
	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		FAIL("/dev/vfio/vfio: %s (is the vfio module loaded?)", strerror(errno));
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		FAIL("VFIO API version mismatch");
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) != 1)
		FAIL("VFIO type 1 IOMMU not supported (is vfio_iommu_type1 loaded?)");
	snprintf(path, sizeof(path), "/dev/vfio/%s", basename(link));
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		FAIL("%s: %s (is %s bound to vfio-pci?)", path, strerror(errno), bdf);
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) < 0 ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		FAIL("%s: group not viable (bind every device in it to vfio-pci)", path);
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0)
		FAIL("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0)
		FAIL("VFIO_SET_IOMMU: %s", strerror(errno));
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->device < 0)
		FAIL("VFIO_GROUP_GET_DEVICE_FD %s: %s", bdf, strerror(errno));

	v->regs = map_region(v->device, VFIO_PCI_BAR0_REGION_INDEX, &v->regs_size);
	if (!v->regs)
		FAIL("BAR0 of %s: %s", bdf, strerror(errno));
	v->shm = map_region(v->device, VFIO_PCI_BAR2_REGION_INDEX, &v->shm_size);
	if (!v->shm)
		FAIL("BAR2 of %s: %s", bdf, strerror(errno));
	if (nvectors == IVB_VFIO_NO_IRQS)
		return 0; /* the mappings are all that was asked for */

	if (enable_bus_master(v->device) < 0)
		FAIL("enabling bus mastering on %s: %s", bdf, strerror(errno));
	if (ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &irq) < 0)
		FAIL("VFIO_DEVICE_GET_IRQ_INFO: %s", strerror(errno));
	if (nvectors == 0)
		nvectors = irq.count < IVB_VFIO_MAX_VECTORS ? (int)irq.count : IVB_VFIO_MAX_VECTORS;
	if (nvectors == 0 || irq.count < (unsigned)nvectors)
		FAIL("%s has %u MSI-X vectors, need %d (QEMU: ivshmem-doorbell,vectors=N)", bdf,
		     irq.count, nvectors);
	set = calloc(1, sizeof(*set) + sizeof(int) * (size_t)nvectors);
	if (!set)
		FAIL("out of memory");
	set->argsz = (uint32_t)(sizeof(*set) + sizeof(int) * (size_t)nvectors);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = (uint32_t)nvectors;
	for (i = 0; i < nvectors; i++) {
		v->irq_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->irq_fd[i] < 0)
			FAIL("eventfd: %s", strerror(errno));
		((int *)set->data)[i] = v->irq_fd[i];
	}
	if (ioctl(v->device, VFIO_DEVICE_SET_IRQS, set) < 0)
		FAIL("VFIO_DEVICE_SET_IRQS (MSI-X, %d vectors): %s", nvectors, strerror(errno));
	v->nvectors = nvectors;
	free(set);
	return 0;

fail:
	free(set);
	ivb_vfio_close(v);
	return -1;
}

uint32_t ivb_vfio_peer_id(const struct ivb_vfio *v)
{
	return v->regs[IVB_REG_IVPOSITION / 4];
}

void ivb_vfio_ring(const struct ivb_vfio *v, uint32_t peer, uint32_t vector)
{
	v->regs[IVB_REG_DOORBELL / 4] = (peer << 16) | (vector & 0xff);
}

int ivb_vfio_wait(const struct ivb_vfio *v, int vector, int timeout_ms)
{
	struct pollfd p = { .fd = v->irq_fd[vector], .events = POLLIN };
	uint64_t count;
	int rc;

	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		return rc;
	if (read(p.fd, &count, sizeof(count)) != sizeof(count))
		return errno == EAGAIN ? 0 : -1;
	return 1;
}

void ivb_vfio_close(struct ivb_vfio *v)
{
	int i;

	for (i = 0; i < IVB_VFIO_MAX_VECTORS; i++)
		if (v->irq_fd[i] >= 0)
			close(v->irq_fd[i]);
	if (v->shm)
		munmap(v->shm, v->shm_size);
	if (v->regs)
		munmap((void *)v->regs, v->regs_size);
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = -1;
	for (i = 0; i < IVB_VFIO_MAX_VECTORS; i++)
		v->irq_fd[i] = -1;
}
