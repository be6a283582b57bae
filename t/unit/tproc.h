/*
 * tproc.h - time and child processes, the same for every C test (the
 * unit tests and the protocol tests' harness, t/nfs/tharness.c): wait
 * for an event with a bound that only a hung program reaches, and fork
 * a daemon whose output goes to a log file and which dies with the test.
 *
 * No test asserts how long something took: a 2-core machine under load
 * is slow at random.  T_STALL_S bounds a wait so that a hang fails the
 * test instead of hanging `make check`; it is never a speed limit.
 */
#ifndef T_TPROC_H
#define T_TPROC_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define T_STALL_S 300

/* Milliseconds of CLOCK_MONOTONIC. */
static inline uint64_t
t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Poll cond every 10 ms until it holds; evaluates to whether it did
 * (false after T_STALL_S: a stall). */
#define T_WAIT(cond)                                                           \
	({                                                                     \
		uint64_t t_wait_t0_ = t_now_ms();                              \
		bool t_wait_ok_;                                               \
		while (!(t_wait_ok_ = (cond)) &&                               \
		       t_now_ms() - t_wait_t0_ < T_STALL_S * 1000ull)          \
			usleep(10000);                                         \
		t_wait_ok_;                                                    \
	})

/* fork() for a child that runs a daemon: in the child, stdout and
 * stderr go to the file log (appended) and SIGKILL comes when the test
 * dies. */
static inline pid_t
t_fork_logged(const char *log)
{
	pid_t pid = fork();
	int fd;

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
	}
	return pid;
}

#endif
