/*
 * udp.c - NSM over UDP on the NFS port.
 *
 * A client that boots tells the servers it held locks on (sm-notify)
 * with SM_NOTIFY over UDP only, to the port rpcbind gives for NSM over
 * UDP.  So tesserad answers NSM, and only NSM, on a UDP socket bound
 * like its TCP listener: a datagram for any other program is dropped
 * unanswered (no reply for a forged source address to reflect), and so
 * is anything that is not a well-formed call.  NSM's procedures only
 * queue work for the lock manager (nlm-internal.h), so datagrams are
 * run on the event loop, as they come.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nfsd/server-internal.h"

#define UDP_MAX 8192 /* an NSM call is a few hundred bytes */

static void
udp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nfsd_server *s = arg;
	struct tl_buf reply = TL_BUF_INIT;
	struct sockaddr_storage peer;
	struct nfsd_tail tail;

	for (int i = 0; i < 64; i++) {
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, s->udp_buf, UDP_MAX, MSG_DONTWAIT,
				     (struct sockaddr *)&peer, &plen);

		if (n < 0)
			break;
		/* xid, CALL, RPC 2, program NSM */
		if (n < 40 || tl_get_be32(s->udp_buf + 4) != 0 ||
		    tl_get_be32(s->udp_buf + 8) != NFSD_RPC_VERS ||
		    tl_get_be32(s->udp_buf + 12) != NFSD_PROG_NSM)
			continue;
		tail.files = false;
		nfsd_dispatch_from(&s->ctx, &peer, NULL, s->udp_buf, (size_t)n,
				   &reply, &tail);
		nfsd_tail_free(&tail);
		/* the record mark is TCP's */
		if (reply.len > 4)
			(void)!sendto(fd, reply.data + 4, reply.len - 4,
				      MSG_DONTWAIT, (struct sockaddr *)&peer,
				      plen);
	}
	tl_buf_free(&reply);
}

int
nfsd_udp_listen(struct nfsd_server *s, const char *listen, char **err)
{
	struct sockaddr_storage ss;
	unsigned len;
	int fd, one = 1;

	s->udp_fd = -1;
	if (nfsd_parse_listen(listen, &ss, &len) != 0) {
		*err = tl_asprintf("bad listen address \"%s\"", listen);
		return -EINVAL;
	}
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(s->port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons(s->port);
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		*err = tl_asprintf("cannot listen on UDP port %u for NSM: %s",
				   s->port, strerror(e));
		return -e;
	}
	s->udp_buf = tl_malloc(UDP_MAX);
	s->udp_ev = event_new(s->base, fd, EV_READ | EV_PERSIST, udp_cb, s);
	if (s->udp_ev == NULL) {
		close(fd);
		*err = tl_strdup("cannot watch the UDP socket");
		return -ENOMEM;
	}
	event_add(s->udp_ev, NULL);
	s->udp_fd = fd;
	return 0;
}

void
nfsd_udp_close(struct nfsd_server *s)
{
	if (s->udp_ev != NULL)
		event_free(s->udp_ev);
	s->udp_ev = NULL;
	if (s->udp_fd >= 0)
		close(s->udp_fd);
	s->udp_fd = -1;
	free(s->udp_buf);
	s->udp_buf = NULL;
}
