/*
 * thbill.c - reading billing lines in the protocol tests (thbill.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/nfs/thbill.h"

long long
thb_field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\":", key);
	p = strstr(line, pat);
	if (p == NULL)
		return -2;
	p += strlen(pat);
	if (strncmp(p, "null", 4) == 0)
		return -1;
	return strtoll(p, NULL, 10);
}

void
thb_sfield(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p, *e;

	buf[0] = '\0';
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	p = strstr(line, pat);
	if (p == NULL)
		return;
	p += strlen(pat);
	e = strchr(p, '"');
	if (e && (size_t)(e - p) < len) {
		memcpy(buf, p, (size_t)(e - p));
		buf[e - p] = '\0';
	}
}

void
thb_lines_free(struct thb_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
thb_lines_add(struct thb_lines *l, const char *dir)
{
	char cmd[400], line[4096];
	FILE *ls, *f;

	snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null | sort", dir);
	ls = popen(cmd, "r");
	if (ls == NULL)
		return;
	while (fgets(cmd, sizeof cmd, ls) != NULL) {
		char path[800];

		cmd[strcspn(cmd, "\n")] = '\0';
		snprintf(path, sizeof path, "%s/%s", dir, cmd);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof line, f) != NULL) {
			l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
			l->v[l->n++] = strdup(line);
		}
		if (f)
			fclose(f);
	}
	pclose(ls);
}

int
thb_is(const char *l, const char *scope, const char *path)
{
	char sc[32], p[256];

	thb_sfield(l, "scope", sc, sizeof sc);
	thb_sfield(l, "path", p, sizeof p);
	return strcmp(sc, scope) == 0 && strcmp(p, path ? path : "") == 0;
}

long long
thb_sum(const struct thb_lines *l, const char *scope, const char *path,
	const char *key, long long upto)
{
	long long sum = 0;

	for (size_t i = 0; i < l->n; i++)
		if (thb_is(l->v[i], scope, path) &&
		    thb_field(l->v[i], "unix") <= upto)
			sum += thb_field(l->v[i], key);
	return sum;
}
