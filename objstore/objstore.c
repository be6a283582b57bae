/*
 * objstore.c - URL dispatch and the os_* calls, which check keys once for
 * every backend and then go through the store's operations table.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lib/tl.h"
#include "objstore/objstore-internal.h"
#include "objstore/objstore.h"

bool
os_key_valid(const char *key)
{
	const char *p, *comp;
	size_t n;

	if (key == NULL || key[0] == '\0' || key[0] == '/')
		return false;
	for (p = key; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (comp = key;; comp += n + 1) {
		n = strcspn(comp, "/");
		if (n == 0)
			return false; /* "a//b" or a trailing '/' */
		if ((n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
		if (comp[n] == '\0')
			return true;
	}
}

/* A list prefix may be empty and its last component may be partial; the
 * components followed by '/' are opened as directories, so they obey the
 * key rules. */
static bool
prefix_valid(const char *prefix)
{
	const char *comp;
	size_t n;

	if (prefix == NULL)
		return true;
	if (prefix[0] == '/')
		return false;
	for (comp = prefix; *comp != '\0'; comp += n + 1) {
		n = strcspn(comp, "/");
		if (comp[n] == '\0')
			break;
		if (n == 0 || (n == 1 && comp[0] == '.') ||
		    (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return false;
	}
	for (comp = prefix; *comp != '\0'; comp++)
		if ((unsigned char)*comp < 0x20)
			return false;
	return true;
}

int
os_open(const char *url, struct os_store **out, char **err)
{
	*out = NULL;
	if (strncmp(url, "file://", 7) == 0) {
		if (url[7] == '\0') {
			if (err)
				*err = tl_strdup("file:// URL without a path");
			return -EINVAL;
		}
		return os_file_open(url + 7, out, err);
	}
	if (err)
		*err = tl_asprintf("unsupported object store URL '%s' "
				   "(expected file:///path)",
				   url);
	return -EINVAL;
}

void
os_close(struct os_store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

int
os_put(struct os_store *s, const char *key, const void *data, size_t len)
{
	if (!os_key_valid(key))
		return -EINVAL;
	return s->ops->put(s, key, data, len);
}

int
os_get(struct os_store *s, const char *key, uint64_t off, size_t len,
       void *buf, size_t *got)
{
	*got = 0;
	if (!os_key_valid(key))
		return -EINVAL;
	return s->ops->get(s, key, off, len, buf, got);
}

int
os_head(struct os_store *s, const char *key, uint64_t *size)
{
	if (!os_key_valid(key))
		return -EINVAL;
	return s->ops->head(s, key, size);
}

int
os_delete(struct os_store *s, const char *key)
{
	if (!os_key_valid(key))
		return -EINVAL;
	return s->ops->del(s, key);
}

int
os_list(struct os_store *s, const char *prefix, const char *start_after,
	os_list_cb cb, void *arg)
{
	if (!prefix_valid(prefix))
		return -EINVAL;
	return s->ops->list(s, prefix ? prefix : "", start_after, cb, arg);
}
