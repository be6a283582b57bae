/*
 * fuzz_exports - libFuzzer target: the exports file parser
 * (nfsd_exports_parse) on any text, then, for what parses, what the
 * server does with it: matching client addresses (IPv4, IPv6,
 * IPv4-mapped), lookups by path and id, the logged form of every rule,
 * a deep copy.  Host names are never resolved here (that is the control
 * thread's job, off the parser).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfsd-internal.h"
#include "t/fuzz/fuzz_target.h"

static struct sockaddr_storage peers[4];

static void
peer(int i, const char *addr)
{
	memset(&peers[i], 0, sizeof(peers[i]));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&peers[i];

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&peers[i];

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tl_log_set_level(TL_LOG_ERR);
	peer(0, "127.0.0.1");
	peer(1, "10.1.2.3");
	peer(2, "fd00::1");
	peer(3, "::ffff:192.168.1.9");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = tl_malloc(size + 1), *err = NULL;
	struct nfsd_exports ex, copy;
	struct tl_buf b = TL_BUF_INIT;

	memcpy(text, data, size);
	text[size] = '\0';
	if (nfsd_exports_parse(text, "fuzz", &ex, &err) == 0) {
		for (size_t i = 0; i < ex.n; i++) {
			const struct nfsd_export *e = &ex.v[i];

			if (nfsd_export_by_path(&ex, e->path) != e ||
			    nfsd_export_by_id(&ex, e->id) != e)
				abort(); /* paths and ids are unique */
			for (size_t j = 0; j < 4; j++)
				nfsd_export_match(e, &peers[j]);
			for (size_t j = 0; j < e->nrules; j++)
				nfsd_rule_format(&e->rules[j], &b);
		}
		nfsd_exports_copy(&ex, &copy);
		nfsd_exports_free(&copy);
		nfsd_exports_free(&ex);
	}
	free(err);
	tl_buf_free(&b);
	free(text);
	return 0;
}
