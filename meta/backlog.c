/*
 * backlog.c - what the background jobs have left to do, read from the
 * queues themselves (meta.h, meta_backlog): removed files whose keys
 * wait to be purged (D records), released slices whose objects wait to
 * be deleted (R), slices compaction dropped that wait out their grace
 * period (L); and what the trash holds, from the usage records of its
 * hour directories.  One read transaction, three range scans: the cost
 * grows with the backlog (a million entries read in a fraction of a
 * second), never with the volume.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "meta/meta-internal.h"

struct backlog_scan {
	struct meta_backlog *b;
	size_t p; /* prefix length */
	char tag;
};

static int
backlog_cb(void *arg, const void *key, size_t klen, const void *val,
	   size_t vlen)
{
	struct backlog_scan *sc = arg;
	const uint8_t *k = (const uint8_t *)key + sc->p;
	struct meta_backlog *b = sc->b;

	(void)val;
	(void)vlen;
	switch (sc->tag) {
	case 'D':
		if (klen != sc->p + 17)
			break;
		b->files++;
		b->file_bytes += tl_get_be64(k + 9);
		break;
	case 'R':
		if (klen != sc->p + 13)
			break;
		b->slices++;
		b->slice_bytes += tl_get_be32(k + 9);
		break;
	case 'L':
		if (klen != sc->p + 21)
			break;
		b->grace++;
		b->grace_bytes += tl_get_be32(k + 17);
		if (b->grace_oldest_ns == 0)
			b->grace_oldest_ns = tl_get_be64(k + 1);
		break;
	}
	return 0;
}

int
meta_backlog(struct meta *m, struct meta_backlog *b)
{
	static const char tags[] = {'D', 'R', 'L'};
	struct backlog_scan sc = {b, m->pfxlen, 0};
	struct meta_key s, e;
	struct mtxn t;
	int rc;

	memset(b, 0, sizeof(*b));
	b->grace_ns = m->compact_grace_ns;
	rc = meta_txn_begin(m, &t, true);
	if (rc)
		return rc;
	for (size_t i = 0; rc == 0 && i < sizeof(tags); i++) {
		sc.tag = tags[i];
		meta_key_tag(m, &s, tags[i]);
		meta_key_tag(m, &e, (char)(tags[i] + 1));
		rc = meta_kv_scan(t.kv, s.b, s.len, e.b, e.len, backlog_cb,
				  &sc);
	}
	if (rc == 0)
		rc = meta_counter_get(&t, CNT_PENDING, &b->items);
	if (rc == 0)
		rc = meta_trash_usage(&t, &b->trash_files, &b->trash_bytes);
	rc = meta_txn_end(&t, rc);
	if (rc)
		memset(b, 0, sizeof(*b));
	return rc;
}
