/*
 * waiter_vfio.h - the doorbell waiter of a guest: MSI-X vector 0 through
 * VFIO (vfio_irq.h), rings through BAR0's Doorbell register.
 */
#ifndef IVB_WAITER_VFIO_H
#define IVB_WAITER_VFIO_H

#include "vfio_irq.h"
#include "waiter.h"

/* A waiter over an opened VFIO device (which must outlive it). */
void ivb_waiter_vfio(struct ivb_waiter *w, struct ivb_vfio *v);

#endif
