/*
 * notify_recv.h - receive one sd_notify(3) datagram and who sent it, as
 * a service manager reads NOTIFY_SOCKET.  Header-only: t/pkg/svcrun
 * links none of the project's libraries.
 */
#ifndef T_NOTIFY_RECV_H
#define T_NOTIFY_RECV_H

#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* One datagram from fd (bound, with SO_PASSCRED) into buf, NUL-ended
 * (size - 1 bytes at most); *pid receives the sender's pid from its
 * SCM_CREDENTIALS, -1 without them.  recvmsg's result (flags are
 * recvmsg's); buf and *pid are untouched when it is negative. */
static inline ssize_t
notify_recv(int fd, char *buf, size_t size, int flags, pid_t *pid)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {buf, size - 1};
	struct msghdr mh = {0};
	ssize_t n;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.b;
	mh.msg_controllen = sizeof(ctl.b);
	n = recvmsg(fd, &mh, flags);
	if (n < 0)
		return n;
	buf[n] = '\0';
	*pid = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			*pid = uc.pid;
		}
	}
	return n;
}

#endif
