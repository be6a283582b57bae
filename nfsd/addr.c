/*
 * addr.c - socket addresses: ports, numeric text and address bytes of
 * the peers (and listening sockets) of nfsd.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "nfsd/addr-internal.h"

unsigned
nfsd_peer_port(const struct sockaddr_storage *peer)
{
	if (peer->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)peer)->sin_port);
	if (peer->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)peer)->sin6_port);
	return 0;
}

void
nfsd_peer_str(const struct sockaddr_storage *peer, char *buf, size_t len)
{
	const void *a = NULL;

	if (peer->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)peer)->sin_addr;
	else if (peer->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
	if (a == NULL || inet_ntop(peer->ss_family, a, buf, len) == NULL)
		snprintf(buf, len, "?");
}

int
nfsd_peer_addr(const struct sockaddr_storage *peer, bool unmap,
	       uint8_t addr[16])
{
	if (peer->ss_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		return AF_INET;
	}
	if (peer->ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)peer)->sin6_addr;

		if (unmap && IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(addr, a->s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(addr, a->s6_addr, 16);
		return AF_INET6;
	}
	return 0;
}
