/*
 * fuzz_mount - libFuzzer target: MOUNT calls (MNT, UMNT, UMNTALL, DUMP,
 * EXPORT, any version, any bytes) from many client addresses, through
 * the real dispatcher, against a mount list kept full (NFSD_MOUNTS_MAX
 * entries, refilled when an input leaves it short): what matters there
 * is bounding the list and encoding a long one without recursion.
 *
 * An input is a sequence of calls, each: 2 bytes choosing the client
 * (the high bit an IPv6 address fd00::N, else 127.0.x.y), 2 bytes of
 * length (big-endian), then that many bytes of call message.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/fuzz/fuzz_target.h"
#include "t/fuzz/fuzz_vol.h"

static struct nfsd_ctx ctx;

static void
fill_list(void)
{
	char host[32];

	for (unsigned i = 0; nfsd_mounts_count(tl_mono_ns()) < NFSD_MOUNTS_MAX;
	     i++) {
		snprintf(host, sizeof(host), "10.%u.%u.%u", i >> 16,
			 (i >> 8) & 255, i & 255);
		nfsd_mounts_add(host, i % 2 ? "/ro" : "/", tl_mono_ns());
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_vol_init("mount");
	fuzz_vol_ctx(&ctx, "/ 127.0.0.0/8(rw,insecure) fd00::/8(rw,insecure)\n"
			   "/ro *(ro,insecure)\n");
	fill_list();
	return 0;
}

static void
peer_of(uint16_t sel, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (sel & 0x8000) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		s6->sin6_addr.s6_addr[0] = 0xfd;
		s6->sin6_addr.s6_addr[14] = (uint8_t)(sel >> 8 & 0x7f);
		s6->sin6_addr.s6_addr[15] = (uint8_t)sel;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		s4->sin_addr.s_addr = htonl(127u << 24 | sel);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size >= 4) {
		uint16_t sel = (uint16_t)(data[0] << 8 | data[1]);
		size_t len = (size_t)(data[2] << 8 | data[3]);
		struct sockaddr_storage peer;
		struct tl_buf reply = TL_BUF_INIT;
		uint8_t *msg;

		data += 4;
		size -= 4;
		len = TL_MIN(len, size);
		/* exactly len bytes, so ASan sees any overread */
		msg = tl_malloc(len > 0 ? len : 1);
		memcpy(msg, data, len);
		peer_of(sel, &peer);
		nfsd_dispatch(&ctx, &peer, msg, len, &reply);
		tl_buf_free(&reply);
		free(msg);
		data += len;
		size -= len;
	}
	fill_list();
	return 0;
}
