/*
 * svcrun - the part of a service manager that t/pkg/package-test.sh
 * needs where systemd is not PID 1: run a command with NOTIFY_SOCKET
 * pointing at a datagram socket of our own, and write down what it
 * notifies (sd_notify(3)), as systemd's Type=notify reads it.
 *
 *   svcrun SOCKET EVENTS -- COMMAND [ARG...]
 *
 * SOCKET is created (mode 0666, so that a command that drops its
 * privileges can still send) and removed at the end.  EVENTS gets, as
 * they happen:
 *   pid N              the command's process id (the unit's MAINPID)
 *   main KEY=VALUE     one line per assignment sent by that process
 *   other P KEY=VALUE  sent by another process P (systemd, with
 *                      NotifyAccess=main, would ignore it)
 *   exit N | signal N  how the command ended; svcrun then exits 0.
 * svcrun exits 1 only when it cannot do its job.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t/notify_recv.h"

static FILE *events;

/* Read one datagram, if any, and write its lines down. */
static void
take(int fd, pid_t main_pid)
{
	char buf[4096];
	pid_t from;

	if (notify_recv(fd, buf, sizeof(buf), MSG_DONTWAIT, &from) < 0)
		return;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l != NULL;
	     l = strtok_r(NULL, "\n", &save)) {
		if (from == main_pid)
			fprintf(events, "main %s\n", l);
		else
			fprintf(events, "other %ld %s\n", (long)from, l);
	}
	fflush(events);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pollfd p;
	int fd, on = 1, st;
	pid_t pid;

	if (argc < 5 || strcmp(argv[3], "--") != 0 ||
	    strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: svcrun SOCKET EVENTS -- COMMAND "
				"[ARG...]\n");
		return 1;
	}
	events = fopen(argv[2], "w");
	if (events == NULL) {
		perror(argv[2]);
		return 1;
	}
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(argv[1], 0666) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
		perror(argv[1]);
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		setenv("NOTIFY_SOCKET", argv[1], 1);
		execvp(argv[4], argv + 4);
		perror(argv[4]);
		_exit(127);
	}
	fprintf(events, "pid %ld\n", (long)pid);
	fflush(events);
	p.fd = fd;
	p.events = POLLIN;
	for (;;) {
		if (poll(&p, 1, 200) > 0) {
			take(fd, pid);
			continue;
		}
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
	}
	while (poll(&p, 1, 0) > 0)
		take(fd, pid);
	if (WIFEXITED(st))
		fprintf(events, "exit %d\n", WEXITSTATUS(st));
	else
		fprintf(events, "signal %d\n", WTERMSIG(st));
	fclose(events);
	unlink(argv[1]);
	return 0;
}
