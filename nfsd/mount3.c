/*
 * mount3.c - the MOUNT v3 program (RFC 1813 appendix I), served on the
 * NFS port.
 *
 * MNT answers the root handle of the export whose path is exactly the
 * one asked for, after the same client check as NFS (rule match, secure
 * port), with AUTH_UNIX as the only flavour.  EXPORT lists every export
 * with its client patterns so `showmount -e` works.
 *
 * The mount list for DUMP (`showmount -a`) is kept in memory only: like
 * knfsd's rmtab it is advisory, and clients never depend on it.  Any
 * client may MNT, from as many addresses as it has, so the list is
 * bounded: one entry per client address and export, renewed by each MNT,
 * forgotten NFSD_MOUNTS_TTL_NS after the last one (a client that died
 * without UMNT), at most NFSD_MOUNTS_MAX entries (the least recently
 * mounted goes first).  The rpcgen XDR of the mount and export lists
 * recurses once per entry, which a long list turns into a stack overflow
 * on a worker; DUMP and EXPORT results are encoded by the loops below.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "nfsd/mount3_prot.h"
#include "nfsd/addr-internal.h"
#include "nfsd/nfsd-internal.h"

struct mount_ent {
	char host[INET6_ADDRSTRLEN];
	char *dir;
	uint64_t when_ns;            /* last MNT */
	TAILQ_ENTRY(mount_ent) link; /* most recently mounted first */
};

static pthread_mutex_t mounts_lock = PTHREAD_MUTEX_INITIALIZER;
/* under mounts_lock */
static TAILQ_HEAD(mount_list,
		  mount_ent) mounts = TAILQ_HEAD_INITIALIZER(mounts);
static size_t nmounts;

static void
ent_unlink(struct mount_ent *m)
{
	TAILQ_REMOVE(&mounts, m, link);
	nmounts--;
}

static void
ent_push(struct mount_ent *m)
{
	TAILQ_INSERT_HEAD(&mounts, m, link);
	nmounts++;
}

static void
ent_drop(struct mount_ent *m)
{
	ent_unlink(m);
	free(m->dir);
	free(m);
}

/* Forget entries not renewed for the TTL (under mounts_lock): they are
 * the oldest, at the tail. */
static void
mounts_expire(uint64_t now_ns)
{
	struct mount_ent *m;

	while ((m = TAILQ_LAST(&mounts, mount_list)) != NULL &&
	       now_ns - m->when_ns >= NFSD_MOUNTS_TTL_NS)
		ent_drop(m);
}

void
nfsd_mounts_add(const char *host, const char *dir, uint64_t now_ns)
{
	struct mount_ent *m;

	pthread_mutex_lock(&mounts_lock);
	mounts_expire(now_ns);
	TAILQ_FOREACH(m, &mounts, link)
	if (strcmp(m->host, host) == 0 && strcmp(m->dir, dir) == 0)
		break;
	if (m != NULL) {
		ent_unlink(m);
	} else {
		if (nmounts >= NFSD_MOUNTS_MAX)
			ent_drop(TAILQ_LAST(&mounts, mount_list));
		m = tl_calloc(1, sizeof(*m));
		snprintf(m->host, sizeof(m->host), "%s", host);
		m->dir = tl_strdup(dir);
	}
	m->when_ns = now_ns;
	ent_push(m);
	pthread_mutex_unlock(&mounts_lock);
}

void
nfsd_mounts_del(const char *host, const char *dir)
{
	struct mount_ent *m, *next;

	pthread_mutex_lock(&mounts_lock);
	for (m = TAILQ_FIRST(&mounts); m != NULL; m = next) {
		next = TAILQ_NEXT(m, link);
		if (strcmp(m->host, host) == 0 &&
		    (dir == NULL || strcmp(m->dir, dir) == 0))
			ent_drop(m);
	}
	pthread_mutex_unlock(&mounts_lock);
}

size_t
nfsd_mounts_count(uint64_t now_ns)
{
	size_t n;

	pthread_mutex_lock(&mounts_lock);
	mounts_expire(now_ns);
	n = nmounts;
	pthread_mutex_unlock(&mounts_lock);
	return n;
}

void
nfsd_mnt3_reset(void)
{
	pthread_mutex_lock(&mounts_lock);
	while (!TAILQ_EMPTY(&mounts))
		ent_drop(TAILQ_FIRST(&mounts));
	pthread_mutex_unlock(&mounts_lock);
}

/* ---- iterative XDR of the DUMP and EXPORT results ---------------------- */

/* DUMP: the mount list copied out of the lock, most recent first. */
struct mnt_dump_res {
	size_t n;
	struct {
		char *host, *dir;
	} * v;
};

/* EXPORT: every export with its client patterns. */
struct mnt_export_res {
	size_t n;
	struct {
		char *dir;
		size_t ngroups;
		char **groups;
	} * v;
};

/* A list item: TRUE and the item follow, or FALSE ends the list. */
static bool_t
more(XDR *x, bool_t follows)
{
	return xdr_bool(x, &follows);
}

/* mountlist (RFC 1813: a linked list of mountbody) of r; only
 * XDR_ENCODE and XDR_FREE: the server never decodes a result, clients
 * decode with the rpcgen xdr_mnt3_dump_res. */
static bool_t
nfsd_xdr_mount_dump(XDR *x, struct mnt_dump_res *r)
{
	if (x->x_op == XDR_FREE) {
		for (size_t i = 0; i < r->n; i++) {
			free(r->v[i].host);
			free(r->v[i].dir);
		}
		free(r->v);
		r->v = NULL;
		r->n = 0;
		return TRUE;
	}
	if (x->x_op != XDR_ENCODE)
		return FALSE;
	for (size_t i = 0; i < r->n; i++)
		if (!more(x, TRUE) ||
		    !xdr_string(x, &r->v[i].host, MNTNAMLEN) ||
		    !xdr_string(x, &r->v[i].dir, MNTPATHLEN))
			return FALSE;
	return more(x, FALSE);
}

/* exports (a linked list of exportnode, each with a linked list of
 * groupnode) of r; XDR_ENCODE and XDR_FREE as above. */
static bool_t
nfsd_xdr_mount_exports(XDR *x, struct mnt_export_res *r)
{
	if (x->x_op == XDR_FREE) {
		for (size_t i = 0; i < r->n; i++) {
			for (size_t j = 0; j < r->v[i].ngroups; j++)
				free(r->v[i].groups[j]);
			free(r->v[i].groups);
			free(r->v[i].dir);
		}
		free(r->v);
		r->v = NULL;
		r->n = 0;
		return TRUE;
	}
	if (x->x_op != XDR_ENCODE)
		return FALSE;
	for (size_t i = 0; i < r->n; i++) {
		if (!more(x, TRUE) || !xdr_string(x, &r->v[i].dir, MNTPATHLEN))
			return FALSE;
		for (size_t j = 0; j < r->v[i].ngroups; j++)
			if (!more(x, TRUE) ||
			    !xdr_string(x, &r->v[i].groups[j], MNTNAMLEN))
				return FALSE;
		if (!more(x, FALSE))
			return FALSE;
	}
	return more(x, FALSE);
}

static void
mnt_null(struct nfsd_call *c, void *args, void *res)
{
}

static mountstat3
mnt_check(struct nfsd_call *c, const char *path, struct nfsd_export **exp)
{
	const struct nfsd_client_rule *r;
	char who[INET6_ADDRSTRLEN];

	nfsd_peer_str(&c->peer, who, sizeof(who));
	if (strlen(path) > MNTPATHLEN)
		return MNT3ERR_NAMETOOLONG;
	if (path[0] == '\0')
		path = "/"; /* libnfs asks for "" with nfs://host/file URLs */
	*exp = nfsd_export_by_path(c->exports, path);
	if (*exp == NULL || (*exp)->root_ino == 0) {
		tl_info("mount", "%s: no export \"%s\"", who, path);
		return MNT3ERR_NOENT;
	}
	r = nfsd_export_match(*exp, &c->peer);
	if (r == NULL) {
		tl_notice("mount", "refused mount of %s by %s: no rule",
			  (*exp)->path, who);
		return MNT3ERR_ACCES;
	}
	if (r->secure && nfsd_peer_port(&c->peer) >= 1024) {
		tl_notice("mount",
			  "refused mount of %s by %s: port %u is "
			  "not privileged (export option insecure allows it)",
			  (*exp)->path, who, nfsd_peer_port(&c->peer));
		return MNT3ERR_ACCES;
	}
	return MNT3_OK;
}

static void
mnt_mnt(struct nfsd_call *c, void *args, void *res)
{
	struct mnt3_dirpath_args *a = args;
	mountres3 *r = res;
	mountres3_ok *ok = &r->mountres3_u.mountinfo;
	struct nfsd_export *exp = NULL;
	struct meta_attr attr;
	struct nfsd_fh fh;
	char who[INET6_ADDRSTRLEN];

	r->fhs_status = c->ctx->meta == NULL ? MNT3ERR_SERVERFAULT
					     : mnt_check(c, a->dirpath, &exp);
	if (r->fhs_status != MNT3_OK)
		return;
	if (meta_getattr(c->ctx->meta, exp->root_ino, &attr) != 0) {
		r->fhs_status = MNT3ERR_IO;
		return;
	}
	fh.export_id = exp->id;
	fh.ino = exp->root_ino;
	fh.gen = attr.gen;
	ok->fhandle.mnt3_fhandle_len = NFSD_FH_SIZE;
	ok->fhandle.mnt3_fhandle_val = tl_malloc(NFSD_FH_SIZE);
	nfsd_fh_encode(c->ctx->vol, &fh,
		       (uint8_t *)ok->fhandle.mnt3_fhandle_val);
	ok->auth_flavors.auth_flavors_len = 1;
	ok->auth_flavors.auth_flavors_val = tl_malloc(sizeof(int));
	ok->auth_flavors.auth_flavors_val[0] = AUTH_SYS;
	nfsd_peer_str(&c->peer, who, sizeof(who));
	nfsd_mounts_add(who, exp->path, tl_mono_ns());
	tl_info("mount", "%s mounted %s", who, exp->path);
}

static void
mnt_dump(struct nfsd_call *c, void *args, void *res)
{
	struct mnt_dump_res *r = res;
	struct mount_ent *m;
	size_t i = 0;

	pthread_mutex_lock(&mounts_lock);
	mounts_expire(tl_mono_ns());
	r->v = tl_calloc(nmounts > 0 ? nmounts : 1, sizeof(*r->v));
	TAILQ_FOREACH(m, &mounts, link)
	{
		r->v[i].host = tl_strdup(m->host);
		r->v[i].dir = tl_strdup(m->dir);
		i++;
	}
	r->n = i;
	pthread_mutex_unlock(&mounts_lock);
}

static void
mnt_umnt(struct nfsd_call *c, void *args, void *res)
{
	struct mnt3_dirpath_args *a = args;
	char who[INET6_ADDRSTRLEN];

	nfsd_peer_str(&c->peer, who, sizeof(who));
	nfsd_mounts_del(who, a->dirpath);
}

static void
mnt_umntall(struct nfsd_call *c, void *args, void *res)
{
	char who[INET6_ADDRSTRLEN];

	nfsd_peer_str(&c->peer, who, sizeof(who));
	nfsd_mounts_del(who, NULL);
}

static void
mnt_export(struct nfsd_call *c, void *args, void *res)
{
	struct mnt_export_res *r = res;
	const struct nfsd_exports *ex = c->exports;

	r->n = ex->n;
	r->v = tl_calloc(ex->n > 0 ? ex->n : 1, sizeof(*r->v));
	for (size_t i = 0; i < ex->n; i++) {
		const struct nfsd_export *e = &ex->v[i];

		r->v[i].dir = tl_strdup(e->path);
		r->v[i].ngroups = e->nrules;
		r->v[i].groups = tl_calloc(e->nrules > 0 ? e->nrules : 1,
					   sizeof(char *));
		for (size_t j = 0; j < e->nrules; j++)
			r->v[i].groups[j] = tl_strdup(e->rules[j].pattern);
	}
}

/* xdr_void takes no parameters; a cast of it to xdrproc_t is flagged. */
static bool_t
mnt_xdr_void(XDR *x, void *p)
{
	return TRUE;
}

#define PROC(name, xa, ta, xr, tr, fn)                                         \
	{                                                                      \
		name, (xdrproc_t)(xa), sizeof(ta), (xdrproc_t)(xr),            \
			sizeof(tr), fn, 0, NULL                                \
	}

const struct nfsd_proc nfsd_mnt3_procs[] = {
	PROC("MNT_NULL", mnt_xdr_void, char, mnt_xdr_void, char, mnt_null),
	PROC("MNT", xdr_mnt3_dirpath_args, struct mnt3_dirpath_args,
	     xdr_mountres3, mountres3, mnt_mnt),
	PROC("DUMP", mnt_xdr_void, char, nfsd_xdr_mount_dump,
	     struct mnt_dump_res, mnt_dump),
	PROC("UMNT", xdr_mnt3_dirpath_args, struct mnt3_dirpath_args,
	     mnt_xdr_void, char, mnt_umnt),
	PROC("UMNTALL", mnt_xdr_void, char, mnt_xdr_void, char, mnt_umntall),
	PROC("EXPORT", mnt_xdr_void, char, nfsd_xdr_mount_exports,
	     struct mnt_export_res, mnt_export),
};
const size_t nfsd_mnt3_nprocs = TL_ARRAY_SIZE(nfsd_mnt3_procs);
