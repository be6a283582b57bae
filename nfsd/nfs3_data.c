/*
 * nfs3_data.c - the NFSv3 procedures that move file contents: READLINK,
 * READ, WRITE and COMMIT (RFC 1813 sections 3.3.5-3.3.7 and 3.3.21).
 *
 * Durability (doc/DESIGN.md, "NFS semantics"): an UNSTABLE WRITE is buffered
 * by the cache and acknowledged as UNSTABLE; a DATA_SYNC or FILE_SYNC
 * write, like COMMIT, returns only once the file's buffered data is stored
 * in the object store and its slices are committed in metadata (which
 * includes size and mtime), so those writes answer FILE_SYNC.  The write
 * verifier (ctx->write_verf) is random per process start; a client that
 * sees it change resends its uncommitted writes.  RFC 1813 wants it to
 * change whenever uncommitted data may have been lost; it need not while
 * the process runs, because the cache never drops uncommitted data of an
 * existing file (cache/flush.c: a failed store, sync or commit keeps it
 * and the flush answers the error, so COMMIT never answers OK for bytes
 * not stored).  The one drop is at shutdown (cache.c, flush_all), after
 * the last reply; the next process answers with another verifier.
 */
#include <errno.h>

#include "nfsd/nfs3-internal.h"

void
nfsd_nfs3_readlink(struct nfsd_call *c, void *args, void *res)
{
	READLINK3res *r = res;
	char *target = NULL;
	int err;

	if (c->attr.type != META_LNK) {
		err = -EINVAL;
		goto out;
	}
	err = meta_readlink(c->ctx->meta, c->ino, &target);
out:
	r->status = nfsd_errno_to_nfs3(err);
	nfsd_nfs3_post_from(c, &c->attr,
			    &r->READLINK3res_u.resok.symlink_attributes);
	if (err == 0) {
		/* The result is xdr_freed with free(); hand it over. */
		r->READLINK3res_u.resok.data = tl_strdup(target);
	}
	free(target);
}

/* Regular files only: a directory is ISDIR, anything else INVAL
 * (like knfsd, whose nfsd_open refuses other types). */
static int
nfs3_check_reg(const struct meta_attr *a)
{
	if (a->type == META_REG)
		return 0;
	return a->type == META_DIR ? -EISDIR : -EINVAL;
}

/* knfsd's NFSD_MAY_OWNER_OVERRIDE: the owner may read and write its file
 * whatever the mode (a file created 0444 is still written by its
 * creator), and, for READ, execute permission suffices (the client reads
 * binaries it may only execute: NFSD_MAY_READ_IF_EXEC). */
static bool
nfs3_may_io(const struct nfsd_call *c, bool write)
{
	unsigned want = write ? META_MAY_WRITE : META_MAY_READ;

	if (c->cred.uid == c->attr.uid)
		return true;
	if (meta_access(&c->attr, &c->cred, want) == want)
		return true;
	return !write && meta_access(&c->attr, &c->cred, META_MAY_EXEC) != 0;
}

/* Reads that find a block gone before the read answers IO. */
#define NFS3_READ_TRIES 3

/* One attempt of READ's data: [off, off+count) of the file whose
 * attributes are attr, into *buf (or lent through *ref). */
static int
nfs3_read_once(struct nfsd_call *c, uint64_t off, size_t count,
	       const struct meta_attr *attr, char **buf, void **ref,
	       size_t *got, bool *eof)
{
	void *data = NULL;
	int err;

	*buf = NULL;
	*ref = NULL;
	*got = 0;
	*eof = off >= attr->size;
	if (off >= attr->size || count == 0)
		return 0;
	if (c->read_lend) {
		/* No copy when the bytes are one block in memory. */
		err = cache_read_ref(c->ctx->cache, c->ino, attr->size, off,
				     count, c->read_files, &data, ref, got,
				     eof);
		*buf = data;
		return err;
	}
	*buf = tl_malloc(count);
	err = cache_read(c->ctx->cache, c->ino, attr->size, off, count, *buf,
			 got, eof);
	if (err != 0) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

/* The file's attributes again, after a read found a block gone:
 * -ESTALE once the file is removed. */
static int
nfs3_reread_attr(struct nfsd_call *c, struct meta_attr *attr)
{
	int err = meta_getattr(c->ctx->meta, c->ino, attr);

	if (err == -ENOENT)
		return -ESTALE;
	if (err != 0)
		return err;
	cache_overlay_attr(c->ctx->cache, attr);
	return 0;
}

void
nfsd_nfs3_read(struct nfsd_call *c, void *args, void *res)
{
	READ3args *a = args;
	READ3res *r = res;
	READ3resok *ok = &r->READ3res_u.resok;
	struct meta_attr attr = c->attr;
	size_t count = TL_MIN(a->count, NFS3_IOMAX), got = 0;
	char *buf = NULL;
	void *ref = NULL;
	bool eof = true;
	int err;

	nfsd_nfs3_overlay(c, &attr);
	err = nfs3_check_reg(&attr);
	if (err != 0)
		goto out;
	if (!nfs3_may_io(c, false)) {
		err = -EACCES;
		goto out;
	}
	for (int tries = 0;; tries++) {
		err = nfs3_read_once(c, a->offset, count, &attr, &buf, &ref,
				     &got, &eof);
		if (err != -ENOENT)
			break;
		/* A block the read planned with is not in the store: the
		 * file was removed or truncated since (the deletion job
		 * was quick), which is no failure: read what the file is
		 * now.  A file that stays the same and still misses its
		 * block has lost it. */
		err = nfs3_reread_attr(c, &attr);
		if (err != 0)
			break;
		if (tries == NFS3_READ_TRIES) {
			tl_warn(NFS3_SUBSYS,
				"inode %llu: a block of [%llu, "
				"+%zu) is missing from the object store",
				(unsigned long long)c->ino,
				(unsigned long long)a->offset, count);
			err = -EIO;
			break;
		}
	}
out:
	r->status = nfsd_errno_to_nfs3(err);
	/* file_attributes is the first member of resok and resfail. */
	nfsd_nfs3_post_from(c, &attr, &ok->file_attributes);
	if (err != 0) {
		free(buf);
		return;
	}
	ok->count = (count3)got;
	ok->eof = eof;
	ok->data.data_len = (u_int)got;
	ok->data.data_val = buf;
	c->read_ref = ref;
	if (buf != NULL && got == 0 && ref == NULL) {
		free(buf);
		ok->data.data_val = NULL;
	}
}

void
nfsd_nfs3_write(struct nfsd_call *c, void *args, void *res)
{
	WRITE3args *a = args;
	WRITE3res *r = res;
	WRITE3resok *ok = &r->WRITE3res_u.resok;
	struct meta_attr pre = c->attr;
	struct meta_pre_attr w;
	size_t count;
	bool stable = a->stable != UNSTABLE;
	int err;

	nfsd_nfs3_overlay(c, &pre);
	nfsd_nfs3_wcc_of(&pre, &w);
	/* The client's count, but never more than sent or than wtmax. */
	count = TL_MIN(a->count, a->data.data_len);
	count = TL_MIN(count, NFS3_IOMAX);
	err = nfs3_check_reg(&pre);
	if (err != 0)
		goto out;
	if (!nfs3_may_io(c, true)) {
		err = -EACCES;
		goto out;
	}
	if (a->offset > META_MAX_FILE_SIZE ||
	    count > META_MAX_FILE_SIZE - a->offset) {
		err = -EFBIG;
		goto out;
	}
	/* Directory quotas: a WRITE that grows the file past what the
	 * quotas above it allow is refused now, not at COMMIT (the
	 * committed usage plus this file's growth; meta.h). */
	if (count > 0 && a->offset + count > pre.size) {
		err = meta_quota_write_room(c->ctx->meta, c->ino,
					    a->offset + count);
		if (err != 0)
			goto out;
	}
	/* Linux's file_remove_privs: a write by anyone but root clears
	 * the set-id bits first, so no byte lands in a file that still
	 * runs with its owner's privileges.  The mode is the one fetched
	 * at dispatch: an ordinary write pays nothing. */
	if (count > 0 && meta_kills_privs(&c->attr, &c->cred)) {
		struct meta_setattr kp = {.valid = META_SET_KILLPRIV};

		err = meta_setattr(c->ctx->meta, &c->cred, c->ino, &kp, NULL,
				   NULL);
		if (err != 0)
			goto out;
	}
	if (count > 0 || stable)
		err = cache_write(c->ctx->cache, c->ino, a->offset,
				  a->data.data_val, count, stable);
out:
	r->status = nfsd_errno_to_nfs3(err);
	/* file_wcc is the first member of resok and resfail. */
	nfsd_nfs3_wcc(c, c->ino, &w, NULL, &ok->file_wcc);
	if (err != 0)
		return;
	ok->count = (count3)count;
	ok->committed = stable ? FILE_SYNC : UNSTABLE;
	memcpy(ok->verf, c->ctx->write_verf, NFS3_WRITEVERFSIZE);
}

/*
 * COMMIT flushes the whole file whatever offset and count say (allowed by
 * RFC 1813: the server may commit more).  No permission check: it cannot
 * change the contents, only make WRITEs that were already checked durable,
 * and knfsd's write-permission check would fail the owner of a 0444 file
 * it is still writing.
 */
void
nfsd_nfs3_commit(struct nfsd_call *c, void *args, void *res)
{
	COMMIT3res *r = res;
	COMMIT3resok *ok = &r->COMMIT3res_u.resok;
	struct meta_attr pre = c->attr;
	struct meta_pre_attr w;
	int err;

	nfsd_nfs3_overlay(c, &pre);
	nfsd_nfs3_wcc_of(&pre, &w);
	err = nfs3_check_reg(&pre);
	if (err == 0)
		err = cache_flush(c->ctx->cache, c->ino);
	r->status = nfsd_errno_to_nfs3(err);
	nfsd_nfs3_wcc(c, c->ino, &w, NULL, &ok->file_wcc);
	if (err == 0)
		memcpy(ok->verf, c->ctx->write_verf, NFS3_WRITEVERFSIZE);
}
