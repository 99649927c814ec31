/*
 * waiter_server.h - the doorbell waiter of a host process that is a peer
 * of the ivshmem server (ivshmem_client.h): it sleeps on its own eventfd
 * for vector 0 and rings a peer by writing that peer's eventfd, which for a
 * QEMU peer raises MSI-X vector 0 in its guest.
 */
#ifndef IVB_WAITER_SERVER_H
#define IVB_WAITER_SERVER_H

#include "ivshmem_client.h"
#include "waiter.h"

/* A waiter over a connected client (which must outlive it). */
void ivb_waiter_server(struct ivb_waiter *w, struct ivs_client *c);

#endif
