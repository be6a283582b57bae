/*
 * thbill.h - reading billing lines (tessera(1), BILLING) in the protocol
 * tests: the files of a billing_dir, and the fields of a line.
 */
#ifndef TESSERA_T_NFS_THBILL_H
#define TESSERA_T_NFS_THBILL_H

#include <stddef.h>

/* The number after "key": in line; -1: null, -2: absent. */
long long thb_field(const char *line, const char *key);
/* The string after "key": into buf ("" for null or absent). */
void thb_sfield(const char *line, const char *key, char *buf, size_t len);

struct thb_lines {
	char **v;
	size_t n;
};

void thb_lines_free(struct thb_lines *l);
/* Every line of every file of dir added to *l, in file-name order. */
void thb_lines_add(struct thb_lines *l, const char *dir);
/* Whether line l is of scope and path (NULL: the volume's, no path). */
int thb_is(const char *l, const char *scope, const char *path);
/* The sum of figure key over the lines of scope and path of periods
 * ending at or before unix time upto. */
long long thb_sum(const struct thb_lines *l, const char *scope,
		  const char *path, const char *key, long long upto);

#endif
