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

/*
 * The PROXY protocol header (HAProxy's, versions 1 and 2) a load
 * balancer sends first on a connection, saying whom it proxies: the
 * client's address (src) and the one the client reached (dst).  Parse
 * the n bytes at p: 0 when more are needed to decide, -1 when they are
 * not a valid header (version 1 ends within 107 bytes, version 2 within
 * NFSD_PROXY_MAX), else the header's length.  *proxied is false for a
 * header that proxies nothing (version 2 LOCAL, the balancer's own
 * health check, or an address family other than TCP over IPv4 or IPv6,
 * "UNKNOWN" in version 1): the connection's own addresses stand.
 */
#define NFSD_PROXY_MAX 536
int nfsd_proxy_parse(const uint8_t *p, size_t n, bool *proxied,
		     struct sockaddr_storage *src,
		     struct sockaddr_storage *dst);

#endif /* NFSD_ADDR_INTERNAL_H */
