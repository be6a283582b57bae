/*
 * fuzz_rpc - libFuzzer target: raw RPC records into the real
 * decode-and-dispatch path of tesserad (nfsd_dispatch, the function the
 * transport's workers call), on a real volume (t/fuzz/fuzz_vol.c, with
 * its file-handle placeholders).
 *
 * An input is one call message (the bytes of a record after record
 * marking), or, if it starts with "RM:", a record-marking stream: the
 * fragments are joined into records as the transport does (records over
 * the transport's limit end the stream) and each record is dispatched.
 * The transport itself is fuzzed by fuzz_transport.
 *
 * The peer is 127.0.0.1 port 700 (a "secure" port), allowed by both
 * exports.  Replies are dropped; ASan/UBSan and libFuzzer's RSS and
 * malloc limits catch what goes wrong.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "t/fuzz/fuzz_target.h"
#include "t/fuzz/fuzz_vol.h"

#define MAX_RECORD (4u << 20)

static struct nfsd_ctx ctx;
static struct sockaddr_storage peer;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;

	(void)argc;
	(void)argv;
	fuzz_vol_init("rpc");
	fuzz_vol_ctx(&ctx, "/ 127.0.0.1(rw,no_root_squash)\n"
			   "/ro 127.0.0.1(ro)\n");
	sin->sin_family = AF_INET;
	sin->sin_port = htons(700);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

static void
dispatch(uint8_t *msg, size_t len)
{
	struct tl_buf reply = TL_BUF_INIT;

	fuzz_fill_handles(msg, len);
	nfsd_dispatch(&ctx, &peer, msg, len, &reply);
	tl_buf_free(&reply);
}

/* A record-marking stream, cut as rpc.c's conn_input does. */
static void
stream(const uint8_t *p, size_t len)
{
	struct tl_buf rec = TL_BUF_INIT;

	while (len >= 4) {
		uint32_t mark = tl_get_be32(p), frag = mark & 0x7fffffffu;

		p += 4;
		len -= 4;
		if (rec.len + frag > MAX_RECORD || frag > len)
			break; /* the transport closes the connection */
		tl_buf_append(&rec, p, frag);
		p += frag;
		len -= frag;
		if (mark & 0x80000000u) {
			dispatch(rec.data, rec.len);
			tl_buf_reset(&rec);
		}
	}
	tl_buf_free(&rec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size >= 3 && memcmp(data, "RM:", 3) == 0) {
		stream(data + 3, size - 3);
		return 0;
	}
	/* a copy of exactly size bytes, so ASan sees any overread */
	copy = tl_malloc(size > 0 ? size : 1);
	memcpy(copy, data, size);
	dispatch(copy, size);
	free(copy);
	return 0;
}
