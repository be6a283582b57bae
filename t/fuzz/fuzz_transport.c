/*
 * fuzz_transport - libFuzzer target: bytes on a real TCP connection to
 * a real nfsd_server (rpc.c: record marking, fragments admitted into
 * request memory, pipelining, the in-flight cap, replies queued and
 * sent, closing) over the shared volume, with small limits so that
 * inputs reach them: max_record_size 1 MiB + 64 KiB, request_memory
 * 1 MiB, 4 requests in flight per connection.
 *
 * An input is written (file-handle placeholders filled first, see
 * fuzz_vol.h) on a new connection from 127.0.0.N (see dial) while
 * replies are read and dropped; then the write side is shut and
 * replies are read until the server closes the connection.  A
 * connection that neither takes bytes nor answers for 10 s is a hang:
 * the target aborts.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nfsd/nfsd.h"
#include "t/fuzz/fuzz_target.h"
#include "t/fuzz/fuzz_vol.h"

static struct nfsd_server *srv;
static pthread_t srv_thread;
static unsigned port;

static void *
serve(void *arg)
{
	nfsd_server_run(arg, false);
	return NULL;
}

/* At exit, before OpenSSL's and the volume's own exit handlers (atexit
 * runs them in reverse): the server stops and its workers end.  A worker
 * still running the last input's request (the client stops reading once
 * the server closes) met OpenSSL torn down under it and crashed the
 * replay now and then on a loaded machine. */
static void
stop_server(void)
{
	nfsd_server_stop(srv);
	pthread_join(srv_thread, NULL);
	nfsd_server_free(srv);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nfsd_config cfg;
	char *err = NULL;
	int rc;

	(void)argc;
	(void)argv;
	fuzz_vol_init("transport");
	nfsd_config_defaults(&cfg);
	free(cfg.listen);
	cfg.listen = tl_strdup("127.0.0.1:0");
	free(cfg.exports);
	cfg.exports = fuzz_vol_file(
		"exports", "/ 127.0.0.0/24(rw,insecure,no_root_squash)\n"
			   "/ro 127.0.0.0/24(ro,insecure)\n");
	cfg.workers = 2;
	cfg.max_record_size = (1u << 20) + (64u << 10);
	cfg.request_memory = 1u << 20;
	cfg.max_inflight_per_conn = 4;
	cfg.max_connections = 8;
	cfg.idle_timeout = 0;
	cfg.drc_entries = 256;
	cfg.drc_size = 256u << 10;
	rc = nfsd_server_create(&cfg, fuzz_vol.meta, fuzz_vol.cache, &srv,
				&err);
	if (rc != 0)
		fuzz_die("server", rc, err);
	port = nfsd_server_port(srv);
	pthread_create(&srv_thread, NULL, serve, srv);
	atexit(stop_server);
	nfsd_config_free(&cfg);
	return 0;
}

/*
 * This side closes each input's connection first (the write side is
 * shut to make the server answer and close), so the connection's local
 * address and port sit in TIME_WAIT for a minute.  From one source
 * address, a few thousand inputs a second use up the 28,000 ephemeral
 * ports in seconds and connect() answers EADDRNOTAVAIL (the machine,
 * not the server: CI stopped on it after 30,683 inputs).  So each
 * connection comes from the next of 127.0.0.1-127.0.0.254, which the
 * exports allow alike; a port still missing is waited for briefly.
 */
static int
dial(void)
{
	static unsigned next_src;
	struct sockaddr_in sin, src;
	unsigned waited_ms = 0;
	int fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + next_src);
	next_src = (next_src + 1) % 254;
	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			fuzz_die("socket", errno, strerror(errno));
		/* the port is chosen at connect(), for the whole 4-tuple */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			fuzz_die("bind", errno, strerror(errno));
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			break;
		if (errno != EADDRNOTAVAIL || waited_ms >= 5000)
			fuzz_die("connect", errno, strerror(errno));
		close(fd);
		usleep(10000);
		waited_ms += 10;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t junk[65536];
	uint8_t *buf = tl_malloc(size > 0 ? size : 1);
	size_t off = 0;
	bool shut = false;
	int fd = dial();

	memcpy(buf, data, size);
	fuzz_fill_handles(buf, size);
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (off == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		if (off < size)
			p.events |= POLLOUT;
		if (poll(&p, 1, 10000) == 0) {
			fprintf(stderr, "fuzz_transport: no progress for "
					"10 s: the server hangs\n");
			abort();
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, junk, sizeof(junk), 0);
			if (n == 0 ||
			    (n < 0 && errno != EAGAIN && errno != EINTR))
				break; /* closed: after EOF, or refused */
		}
		if (off < size && (p.revents & POLLOUT)) {
			n = send(fd, buf + off, size - off, MSG_NOSIGNAL);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
		}
	}
	close(fd);
	free(buf);
	return 0;
}
