/*
 * addr-internal.h - socket addresses as nfsd uses them (addr.c): the
 * port and the numeric text of a peer for logs and the "secure" rule,
 * and its address bytes for the exports' client rules and the
 * duplicate request cache's key.
 *
 * The bottom of nfsd/: it includes no other header of nfsd/.  Nothing
 * outside nfsd/ includes this file.
 */
#ifndef NFSD_ADDR_INTERNAL_H
#define NFSD_ADDR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Port of an AF_INET or AF_INET6 address (host order), 0 for other
 * families. */
unsigned nfsd_peer_port(const struct sockaddr_storage *peer);
/* Numeric address of peer into buf ("10.0.0.1", "::1"; "?" for other
 * families). */
void nfsd_peer_str(const struct sockaddr_storage *peer, char *buf, size_t len);
/* The address bytes of peer into addr: 4 for AF_INET, 16 for AF_INET6,
 * an IPv4-mapped IPv6 address as its IPv4 address when unmap.  Returns
 * the family of what was stored, 0 for other families (addr
 * untouched). */
int nfsd_peer_addr(const struct sockaddr_storage *peer, bool unmap,
		   uint8_t addr[16]);

#endif /* NFSD_ADDR_INTERNAL_H */
