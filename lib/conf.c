/*
 * conf.c - the configuration table: one declaration per option drives
 * the file parser, defaults, validation and help.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/tl.h"

static const struct tl_conf_opt *
conf_find(const struct tl_conf_opt *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	}
	return NULL;
}

static int
conf_assign(const struct tl_conf_opt *o, void *dst, const char *value,
	    char **err)
{
	char *field = (char *)dst + o->offset;
	uint64_t v = 0;
	bool b;
	int rc = 0;

	switch (o->type) {
	case TL_CONF_BOOL:
		rc = tl_parse_bool(value, &b);
		if (rc == 0)
			*(bool *)field = b;
		break;
	case TL_CONF_U64:
		rc = tl_parse_u64(value, 0, UINT64_MAX, &v);
		break;
	case TL_CONF_SIZE:
		rc = tl_parse_size(value, &v);
		break;
	case TL_CONF_DURATION:
		rc = tl_parse_duration_ms(value, &v);
		break;
	case TL_CONF_STRING:
		free(*(char **)field);
		*(char **)field = tl_strdup(value);
		return 0;
	}
	if (rc == 0 && o->type != TL_CONF_BOOL) {
		if (v < o->min || (o->max && v > o->max))
			rc = -ERANGE;
		else
			*(uint64_t *)field = v;
	}
	if (rc != 0 && err != NULL) {
		if (rc == -ERANGE && o->type != TL_CONF_BOOL)
			*err = tl_asprintf("%s: value '%s' out of range "
					   "[%llu, %llu]",
					   o->name, value,
					   (unsigned long long)o->min,
					   (unsigned long long)o->max);
		else
			*err = tl_asprintf("%s: invalid value '%s'", o->name,
					   value);
	}
	return rc;
}

void
tl_conf_defaults(const struct tl_conf_opt *opts, size_t n, void *dst)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i].type == TL_CONF_STRING)
			*(char **)((char *)dst + opts[i].offset) = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (opts[i].def == NULL)
			continue;
		char *err = NULL;
		if (conf_assign(&opts[i], dst, opts[i].def, &err) != 0) {
			/* A bad default is a programming error. */
			tl_err("conf", "bad default: %s", err);
			abort();
		}
	}
}

int
tl_conf_set(const struct tl_conf_opt *opts, size_t n, void *dst,
	    const char *name, const char *value, char **err)
{
	const struct tl_conf_opt *o = conf_find(opts, n, name);

	if (o == NULL) {
		if (err)
			*err = tl_asprintf("unknown option '%s'", name);
		return -ENOENT;
	}
	return conf_assign(o, dst, value, err);
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int
tl_conf_load(const struct tl_conf_opt *opts, size_t n, void *dst,
	     const char *path, char **err)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		if (err)
			*err = tl_asprintf("%s: %s", path, strerror(errno));
		return rc;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (*s == '\0')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			if (err)
				*err = tl_asprintf("%s:%u: expected "
						   "'name = value'",
						   path, lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char *name = trim(s), *value = trim(eq + 1);
		char *e = NULL;
		rc = tl_conf_set(opts, n, dst, name, value, &e);
		if (rc != 0) {
			if (err)
				*err = tl_asprintf("%s:%u: %s", path, lineno,
						   e);
			free(e);
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

void
tl_conf_free(const struct tl_conf_opt *opts, size_t n, void *dst)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i].type != TL_CONF_STRING)
			continue;
		char **p = (char **)((char *)dst + opts[i].offset);
		free(*p);
		*p = NULL;
	}
}
