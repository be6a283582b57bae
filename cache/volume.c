/*
 * volume.c - a volume's claim on its object store: the marker that says
 * which volume NAME/ of a store belongs to (objstore/marker.c), checked
 * against the metadata, and the read-back of referenced blocks that
 * proves a store without a marker holds this volume's data.
 *
 * Why: two volumes of one name in one store (a second format with
 * another metadata engine, a reformat) hand out the same slice ids, so
 * each overwrites the other's blocks and a file of one comes back with
 * the other's bytes.  With the marker, only the volume it names is
 * served from that store.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "lib/tl.h"

#define PROBE_SLICES 8

int
cache_store_check(struct meta *m, struct os_store *s,
		  struct cache_store_check *c)
{
	const struct meta_settings *set = meta_settings(m);
	int rc;

	memset(c, 0, sizeof(*c));
	rc = os_marker_read(s, set->name, &c->marker);
	if (rc == 0) {
		c->state = memcmp(c->marker.uuid, set->uuid, 16) == 0
				   ? CACHE_STORE_OWNED
				   : CACHE_STORE_FOREIGN;
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	rc = os_volume_objects(s, set->name, &c->first);
	if (rc < 0)
		return rc;
	c->state = rc ? CACHE_STORE_UNMARKED : CACHE_STORE_EMPTY;
	return 0;
}

void
cache_store_check_free(struct cache_store_check *c)
{
	free(c->first);
	c->first = NULL;
}

int
cache_store_probe(struct meta *m, struct os_store *s, char **key)
{
	const struct meta_settings *set = meta_settings(m);
	struct meta_slice_ref refs[PROBE_SLICES];
	char k[512];
	uint8_t *buf = NULL;
	size_t n = 0, got;
	int rc;

	*key = NULL;
	rc = meta_sample_slices(m, refs, PROBE_SLICES, &n);
	if (rc)
		return rc;
	if (n == 0)
		return 1;
	buf = tl_malloc(set->block_size);
	rc = -ENOENT;
	for (size_t i = 0; i < n && rc != 0; i++) {
		uint32_t len = TL_MIN(set->block_size, refs[i].size);

		cache_block_key(k, sizeof(k), set->name, refs[i].id, 0, len);
		got = 0;
		rc = os_get(s, k, 0, len, buf, &got);
		if (rc == 0 && got != len)
			rc = -EIO;
		if (rc != -ENOENT || *key == NULL) {
			free(*key);
			*key = tl_strdup(k);
		}
	}
	free(buf);
	return rc;
}

int
cache_store_mark(struct meta *m, struct os_store *s, const char *meta_url)
{
	const struct meta_settings *set = meta_settings(m);
	struct os_marker mk;

	os_marker_init(&mk, set->name, set->uuid, set->ctime_ns, meta_url);
	return os_marker_write(s, &mk);
}

char *
cache_store_foreign_msg(struct meta *m, const struct os_store *s,
			const struct os_marker *mk)
{
	const struct meta_settings *set = meta_settings(m);
	char theirs[37], ours[37];

	os_uuid_format(mk->uuid, theirs);
	os_uuid_format(set->uuid, ours);
	return tl_asprintf("object store %s belongs to another volume named "
			   "\"%s\" (uuid %s, formatted %s with metadata %s), "
			   "not to this one (uuid %s): two volumes in one "
			   "store overwrite each other's blocks.  Give this "
			   "volume its own store (tessera config --storage) "
			   "or serve the volume the store belongs to",
			   s->url, mk->name, theirs, mk->created,
			   mk->meta[0] ? mk->meta : "?", ours);
}

int
cache_store_claim(struct meta *m, struct os_store *s, const char *meta_url,
		  char **err)
{
	struct cache_store_check c;
	char *key = NULL;
	int rc;

	*err = NULL;
	rc = cache_store_check(m, s, &c);
	if (rc) {
		*err = tl_asprintf("object store %s: cannot read the volume "
				   "marker: %s",
				   s->url,
				   rc == -EBADMSG ? "not a volume marker"
						  : strerror(-rc));
		return rc;
	}
	switch (c.state) {
	case CACHE_STORE_OWNED:
		break;
	case CACHE_STORE_FOREIGN:
		*err = cache_store_foreign_msg(m, s, &c.marker);
		rc = -EEXIST;
		break;
	case CACHE_STORE_EMPTY:
	case CACHE_STORE_UNMARKED:
		/* No marker: a volume formatted before markers existed,
		 * a marker removed, or the wrong store.  Mark it only if
		 * it holds this volume's data. */
		rc = cache_store_probe(m, s, &key);
		if (rc < 0) {
			*err = tl_asprintf(
				"object store %s has no volume marker and "
				"does not hold this volume's data (block %s: "
				"%s): wrong storage URL?  If it is the right "
				"store, 'tessera config --storage URL "
				"--force' marks it as this volume's",
				s->url, key ? key : "?",
				rc == -ENOENT ? "missing" : strerror(-rc));
			break;
		}
		if (rc == 0 || c.state == CACHE_STORE_EMPTY) {
			rc = cache_store_mark(m, s, meta_url);
			if (rc)
				*err = tl_asprintf("object store %s: cannot "
						   "write the volume marker: "
						   "%s",
						   s->url, strerror(-rc));
			else
				tl_notice("cache",
					  "object store %s had no "
					  "volume marker%s%s%s; marked as "
					  "volume \"%s\"",
					  s->url,
					  key ? " (this volume's block " : "",
					  key ? key : "",
					  key ? " read back)" : "",
					  meta_settings(m)->name);
			break;
		}
		/* Objects under NAME/, and no block referenced to tell
		 * whose they are. */
		*err = tl_asprintf("object store %s has no volume marker and "
				   "holds objects of a volume named \"%s\" "
				   "(%s) while this volume references none: "
				   "another volume's?  Give this volume its "
				   "own store (tessera config --storage)",
				   s->url, meta_settings(m)->name, c.first);
		rc = -EEXIST;
		break;
	}
	free(key);
	cache_store_check_free(&c);
	return rc;
}
