/*
 * mount3.c - the MOUNT v3 program (RFC 1813 appendix I), served on the
 * NFS port.
 *
 * MNT answers the root handle of the export whose path is exactly the
 * one asked for, after the same client check as NFS (rule match, secure
 * port), with AUTH_UNIX as the only flavour.  The mount list for DUMP is
 * kept in memory only: like knfsd's rmtab it is advisory, and clients
 * never depend on it.  EXPORT lists every export with its client
 * patterns so `showmount -e` works.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/mount3_prot.h"
#include "nfsd/rpc-internal.h"

struct mount_ent {
	char *host;
	char *dir;
	struct mount_ent *next;
};

static pthread_mutex_t mounts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mount_ent *mounts;

static void
mounts_add(const char *host, const char *dir)
{
	struct mount_ent *m;

	pthread_mutex_lock(&mounts_lock);
	for (m = mounts; m != NULL; m = m->next)
		if (strcmp(m->host, host) == 0 && strcmp(m->dir, dir) == 0)
			break;
	if (m == NULL) {
		m = tl_malloc(sizeof(*m));
		m->host = tl_strdup(host);
		m->dir = tl_strdup(dir);
		m->next = mounts;
		mounts = m;
	}
	pthread_mutex_unlock(&mounts_lock);
}

/* Remove host's entries for dir (every entry of host when dir is NULL). */
static void
mounts_del(const char *host, const char *dir)
{
	struct mount_ent **pp, *m;

	pthread_mutex_lock(&mounts_lock);
	for (pp = &mounts; (m = *pp) != NULL;) {
		if (strcmp(m->host, host) == 0 &&
		    (dir == NULL || strcmp(m->dir, dir) == 0)) {
			*pp = m->next;
			free(m->host);
			free(m->dir);
			free(m);
		} else {
			pp = &m->next;
		}
	}
	pthread_mutex_unlock(&mounts_lock);
}

void
nfsd_mnt3_reset(void)
{
	pthread_mutex_lock(&mounts_lock);
	while (mounts != NULL) {
		struct mount_ent *m = mounts;

		mounts = m->next;
		free(m->host);
		free(m->dir);
		free(m);
	}
	pthread_mutex_unlock(&mounts_lock);
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
	*exp = nfsd_export_by_path(&c->ctx->exports, path);
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
	mounts_add(who, exp->path);
	tl_info("mount", "%s mounted %s", who, exp->path);
}

static void
mnt_dump(struct nfsd_call *c, void *args, void *res)
{
	struct mnt3_dump_res *r = res;
	mnt3_mountlist *tail = &r->list;

	pthread_mutex_lock(&mounts_lock);
	for (struct mount_ent *m = mounts; m != NULL; m = m->next) {
		struct mountbody *b = tl_calloc(1, sizeof(*b));

		b->ml_hostname = tl_strdup(m->host);
		b->ml_directory = tl_strdup(m->dir);
		*tail = b;
		tail = &b->ml_next;
	}
	pthread_mutex_unlock(&mounts_lock);
}

static void
mnt_umnt(struct nfsd_call *c, void *args, void *res)
{
	struct mnt3_dirpath_args *a = args;
	char who[INET6_ADDRSTRLEN];

	nfsd_peer_str(&c->peer, who, sizeof(who));
	mounts_del(who, a->dirpath);
}

static void
mnt_umntall(struct nfsd_call *c, void *args, void *res)
{
	char who[INET6_ADDRSTRLEN];

	nfsd_peer_str(&c->peer, who, sizeof(who));
	mounts_del(who, NULL);
}

static void
mnt_export(struct nfsd_call *c, void *args, void *res)
{
	struct mnt3_export_res *r = res;
	const struct nfsd_exports *ex = &c->ctx->exports;
	mnt3_exports *tail = &r->list;

	for (size_t i = 0; i < ex->n; i++) {
		struct exportnode *n = tl_calloc(1, sizeof(*n));
		mnt3_groups *gt = &n->ex_groups;

		n->ex_dir = tl_strdup(ex->v[i].path);
		for (size_t j = 0; j < ex->v[i].nrules; j++) {
			struct groupnode *g = tl_calloc(1, sizeof(*g));

			g->gr_name = tl_strdup(ex->v[i].rules[j].pattern);
			*gt = g;
			gt = &g->gr_next;
		}
		*tail = n;
		tail = &n->ex_next;
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
		    sizeof(tr), fn, 0                                          \
	}

const struct nfsd_proc nfsd_mnt3_procs[] = {
    PROC("MNT_NULL", mnt_xdr_void, char, mnt_xdr_void, char, mnt_null),
    PROC("MNT", xdr_mnt3_dirpath_args, struct mnt3_dirpath_args, xdr_mountres3,
	 mountres3, mnt_mnt),
    PROC("DUMP", mnt_xdr_void, char, xdr_mnt3_dump_res, struct mnt3_dump_res,
	 mnt_dump),
    PROC("UMNT", xdr_mnt3_dirpath_args, struct mnt3_dirpath_args, mnt_xdr_void,
	 char, mnt_umnt),
    PROC("UMNTALL", mnt_xdr_void, char, mnt_xdr_void, char, mnt_umntall),
    PROC("EXPORT", mnt_xdr_void, char, xdr_mnt3_export_res,
	 struct mnt3_export_res, mnt_export),
};
const size_t nfsd_mnt3_nprocs = TL_ARRAY_SIZE(nfsd_mnt3_procs);
