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

/* ---- the PROXY protocol ------------------------------------------------ */

static const uint8_t proxy_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define PROXY_V1_MAX 107

static void
proxy_in4(struct sockaddr_storage *ss, const uint8_t *a, const uint8_t *port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	memcpy(&s->sin_addr, a, 4);
	memcpy(&s->sin_port, port, 2);
}

static void
proxy_in6(struct sockaddr_storage *ss, const uint8_t *a, const uint8_t *port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	memcpy(&s->sin6_addr, a, 16);
	memcpy(&s->sin6_port, port, 2);
}

/* A decimal port of version 1: 0 to 65535, no sign, no leading zero. */
static bool
proxy_port(const char *s, uint8_t out[2])
{
	unsigned long v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 5)
		return false;
	for (const char *c = s; *c != '\0'; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v > 65535)
		return false;
	out[0] = (uint8_t)(v >> 8);
	out[1] = (uint8_t)v;
	return true;
}

/* "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n". */
static int
proxy_v1(const uint8_t *p, size_t n, bool *proxied,
	 struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	char line[PROXY_V1_MAX + 1], *f[6], *save = NULL;
	uint8_t a[2][16], port[2][2];
	size_t end;
	bool found = false;
	int nf = 0, fam;

	for (end = 0; end + 1 < n && end + 2 <= PROXY_V1_MAX; end++)
		if (p[end] == '\r' && p[end + 1] == '\n') {
			found = true;
			break;
		}
	if (!found)
		return n >= PROXY_V1_MAX ? -1 : 0;
	memcpy(line, p, end);
	line[end] = '\0';
	if (strlen(line) != end) /* a NUL inside */
		return -1;
	for (char *t = strtok_r(line, " ", &save); t != NULL && nf < 6;
	     t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
		*proxied = false;
		return (int)end + 2;
	}
	if (nf != 6 || strtok_r(NULL, " ", &save) != NULL)
		return -1;
	if (strcmp(f[1], "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		fam = AF_INET6;
	else
		return -1;
	if (inet_pton(fam, f[2], a[0]) != 1 ||
	    inet_pton(fam, f[3], a[1]) != 1 || !proxy_port(f[4], port[0]) ||
	    !proxy_port(f[5], port[1]))
		return -1;
	if (fam == AF_INET) {
		proxy_in4(src, a[0], port[0]);
		proxy_in4(dst, a[1], port[1]);
	} else {
		proxy_in6(src, a[0], port[0]);
		proxy_in6(dst, a[1], port[1]);
	}
	*proxied = true;
	return (int)end + 2;
}

static int
proxy_v2(const uint8_t *p, size_t n, bool *proxied,
	 struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	size_t len, total;

	if (n < 16)
		return 0;
	if ((p[12] & 0xf0) != 0x20 || (p[12] & 0x0f) > 1)
		return -1;
	len = (size_t)p[14] << 8 | p[15];
	total = 16 + len;
	if (total > NFSD_PROXY_MAX)
		return -1;
	if (n < total)
		return 0;
	*proxied = false;
	if ((p[12] & 0x0f) == 0) /* LOCAL */
		return (int)total;
	if (p[13] == 0x11) { /* TCP over IPv4 */
		if (len < 12)
			return -1;
		proxy_in4(src, p + 16, p + 24);
		proxy_in4(dst, p + 20, p + 26);
		*proxied = true;
	} else if (p[13] == 0x21) { /* TCP over IPv6 */
		if (len < 36)
			return -1;
		proxy_in6(src, p + 16, p + 48);
		proxy_in6(dst, p + 32, p + 50);
		*proxied = true;
	}
	return (int)total;
}

int
nfsd_proxy_parse(const uint8_t *p, size_t n, bool *proxied,
		 struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	size_t k;

	*proxied = false;
	if (n == 0)
		return 0;
	if (p[0] == 'P') {
		k = n < 6 ? n : 6;
		if (memcmp(p, "PROXY ", k) != 0)
			return -1;
		return n < 6 ? 0 : proxy_v1(p, n, proxied, src, dst);
	}
	k = n < 12 ? n : 12;
	if (memcmp(p, proxy_v2_sig, k) != 0)
		return -1;
	return n < 12 ? 0 : proxy_v2(p, n, proxied, src, dst);
}
