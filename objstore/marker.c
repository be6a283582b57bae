/*
 * marker.c - the volume marker: which volume a store's NAME/ belongs to.
 *
 * `tessera format` writes NAME/tessera.volume (OS_MARKER_FILE) in the
 * store at the bottom of the stack (os_bottom: never compressed or
 * encrypted, so any tool reads it whatever the volume's key), as text:
 *
 *   tessera-volume 1
 *   name vol1
 *   uuid 0f1e2d3c-4b5a-4697-8877-665544332211
 *   created 2026-12-07T13:36:41Z
 *   metadata lmdb:///var/lib/tessera/meta
 *
 * Readers need the first three lines; the others are for people, and
 * lines a reader does not know are ignored (later versions may add
 * some).  The name, never a '.', cannot collide with a volume's own
 * keys ("NAME/chunks/...").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/tl.h"
#include "objstore/objstore.h"

#define MARKER_MAX 4096

static char *
marker_key(const char *name)
{
	return tl_asprintf("%s/" OS_MARKER_FILE, name);
}

void
os_uuid_format(const uint8_t u[16], char out[37])
{
	char *p = out;

	for (int i = 0; i < 16; i++) {
		p += sprintf(p, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			*p++ = '-';
	}
	*p = '\0';
}

static int
uuid_parse(const char *s, uint8_t u[16])
{
	int n = 0;

	for (const char *p = s; *p && n < 32; p++) {
		unsigned v;

		if (*p == '-')
			continue;
		if (sscanf(p, "%1x", &v) != 1)
			return -EINVAL;
		if (n % 2 == 0)
			u[n / 2] = (uint8_t)(v << 4);
		else
			u[n / 2] |= (uint8_t)v;
		n++;
	}
	return n == 32 ? 0 : -EINVAL;
}

int
os_marker_write(struct os_store *s, const struct os_marker *mk)
{
	char uuid[37], *key = marker_key(mk->name), *text;
	int rc;

	os_uuid_format(mk->uuid, uuid);
	text = tl_asprintf("tessera-volume 1\nname %s\nuuid %s\ncreated %s\n"
			   "metadata %s\n",
			   mk->name, uuid, mk->created, mk->meta);
	rc = os_put(os_bottom(s), key, text, strlen(text));
	free(text);
	free(key);
	return rc;
}

static void
copy_field(char *dst, size_t cap, const char *line, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n) == 0 && line[n] == ' ')
		snprintf(dst, cap, "%s", line + n + 1);
}

int
os_marker_read(struct os_store *s, const char *name, struct os_marker *mk)
{
	char *key = marker_key(name), *buf = tl_malloc(MARKER_MAX + 1);
	char uuid[64] = "", version[16] = "";
	size_t got = 0;
	int rc;

	memset(mk, 0, sizeof(*mk));
	rc = os_get(os_bottom(s), key, 0, MARKER_MAX, buf, &got);
	if (rc == -ERANGE) /* an empty object */
		rc = 0;
	if (rc == 0) {
		buf[got] = '\0';
		for (char *l = buf, *e; l != NULL && *l; l = e ? e + 1 : NULL) {
			e = strchr(l, '\n');
			if (e != NULL)
				*e = '\0';
			copy_field(version, sizeof(version), l,
				   "tessera-volume");
			copy_field(mk->name, sizeof(mk->name), l, "name");
			copy_field(uuid, sizeof(uuid), l, "uuid");
			copy_field(mk->created, sizeof(mk->created), l,
				   "created");
			copy_field(mk->meta, sizeof(mk->meta), l, "metadata");
		}
		if (strcmp(version, "1") != 0 || mk->name[0] == '\0' ||
		    uuid_parse(uuid, mk->uuid) != 0)
			rc = -EBADMSG;
	}
	free(buf);
	free(key);
	return rc;
}

int
os_marker_delete(struct os_store *s, const char *name)
{
	char *key = marker_key(name);
	int rc = os_delete(os_bottom(s), key);

	free(key);
	return rc;
}

void
os_marker_init(struct os_marker *mk, const char *name, const uint8_t uuid[16],
	       uint64_t ctime_ns, const char *meta)
{
	time_t t = (time_t)(ctime_ns / 1000000000ULL);
	struct tm tm;

	memset(mk, 0, sizeof(*mk));
	snprintf(mk->name, sizeof(mk->name), "%s", name);
	memcpy(mk->uuid, uuid, 16);
	gmtime_r(&t, &tm);
	strftime(mk->created, sizeof(mk->created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(mk->meta, sizeof(mk->meta), "%s", meta ? meta : "");
}

struct first_obj {
	const char *skip_prefix; /* NAME/.probe- */
	const char *marker;      /* NAME/tessera.volume */
	char *key;
};

static int
first_cb(void *arg, const char *key, uint64_t size)
{
	struct first_obj *f = arg;

	(void)size;
	if (strcmp(key, f->marker) == 0 ||
	    strncmp(key, f->skip_prefix, strlen(f->skip_prefix)) == 0)
		return 0;
	f->key = tl_strdup(key);
	return 1;
}

int
os_volume_objects(struct os_store *s, const char *name, char **first)
{
	char *prefix = tl_asprintf("%s/", name);
	char *skip = tl_asprintf("%s/.probe-", name);
	char *marker = marker_key(name);
	struct first_obj f = {skip, marker, NULL};
	int rc;

	*first = NULL;
	rc = os_list(os_bottom(s), prefix, NULL, first_cb, &f);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && f.key != NULL) {
		*first = f.key;
		rc = 1;
	}
	if (rc < 0)
		free(f.key);
	free(prefix);
	free(skip);
	free(marker);
	return rc;
}
