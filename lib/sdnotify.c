/*
 * sdnotify.c - tell the service manager how the daemon is doing: the
 * notification protocol of sd_notify(3), spoken directly.
 *
 * The protocol is one datagram of "KEY=VALUE" lines sent to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" in the
 * abstract namespace); systemd documents it as a stable interface meant
 * to be reimplemented.  It is a dozen lines, so tesserad does not link
 * libsystemd for it: the daemon then builds and runs the same way with
 * or without systemd, and a test can play the service manager with a
 * socket of its own.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/tl.h"

bool
tl_sd_managed(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	return path != NULL && path[0] != '\0';
}

int
tl_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t len;
	int fd, rc = 1;

	if (path == NULL || path[0] == '\0')
		return 0;
	len = strlen(path);
	/* vsock addresses (systemd 254 and later in VMs) are not spoken */
	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: no terminating NUL */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (const struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			       (path[0] == '/'))) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int
tl_sd_notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	/* systemd 253 and later want the time the reload began, so that a
	 * READY=1 from before it is not taken for its end. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL +
			 (unsigned long long)ts.tv_nsec / 1000);
	return tl_sd_notify(msg);
}
