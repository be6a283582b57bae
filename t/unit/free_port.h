/*
 * free_port.h - a free TCP port on 127.0.0.1, for the raft:// engine
 * tests (raft_test.h) and bench/raft_meta.c, which start groups of nodes
 * on loopback ports.
 */
#ifndef T_FREE_PORT_H
#define T_FREE_PORT_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/tl.h"

/* A free TCP port on 127.0.0.1 below the ephemeral range (so that no
 * outgoing connection takes it meanwhile); -1 if none was found. */
static inline int
rt_free_port(void)
{
	for (int tries = 0; tries < 200; tries++) {
		int p = 20000 + (int)(tl_random_u64() % 12000);
		struct sockaddr_in a;
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)p);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return p;
	}
	return -1;
}

#endif
