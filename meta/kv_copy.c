/*
 * kv_copy.c - a snapshot of a whole engine that pins nothing of it once
 * made (meta_kv_snapshot, kv.h).
 *
 * LMDB cannot reuse a page that an open read transaction can still see,
 * so a reader that holds one snapshot for minutes while clients write
 * makes the map file grow by everything written meanwhile.  A dump that
 * takes its time (compression, a slow object store, a pipe to another
 * machine) therefore reads from a copy instead: mdb_env_copyfd2 with
 * MDB_CP_COMPACT writes the live tree, one read transaction long, at the
 * speed of a sequential write of its used pages, and the dump then reads
 * the copy for as long as it likes.  bench/dump_meta.c measures the map's
 * growth either way.
 *
 * The copy lives in a directory of its own under tmpdir, named
 * tessera-snapshot.<pid>.<n>.XXXXXX: the pid and a counter make the name
 * unique in this process (kv_lmdb.c shares environments by path, and the
 * directory is gone while the environment is open), mkdtemp makes it
 * unique on the machine.  It is opened read-only and unlinked at once:
 * the space comes back when the engine is closed, or when the process
 * dies.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/tl.h"
#include "meta/kv.h"

#define SNAPSHOT_TMPDIR "/var/tmp"

static atomic_uint snapshot_seq;

static void
remove_copy(const char *dir)
{
	char *p = tl_asprintf("%s/data.mdb", dir);

	unlink(p);
	free(p);
	p = tl_asprintf("%s/lock.mdb", dir);
	unlink(p);
	free(p);
	rmdir(dir);
}

int
meta_kv_snapshot(struct meta_kv *kv, const char *tmpdir, struct meta_kv **out,
		 uint64_t *bytes, char **err)
{
	const char *base = tmpdir;
	char *dir, *data = NULL, *e = NULL;
	struct stat st;
	int fd = -1, rc = 0;

	*out = NULL;
	if (base == NULL || base[0] == '\0')
		base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = SNAPSHOT_TMPDIR;
	dir = tl_asprintf("%s/tessera-snapshot.%ld.%u.XXXXXX", base,
			  (long)getpid(), atomic_fetch_add(&snapshot_seq, 1));
	if (mkdtemp(dir) == NULL) {
		rc = -errno;
		e = tl_asprintf("cannot make a directory for the snapshot in "
				"%s: %s",
				base, strerror(errno));
		free(dir);
		goto out;
	}
	data = tl_asprintf("%s/data.mdb", dir);
	fd = open(data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		e = tl_asprintf("%s: %s", data, strerror(errno));
		goto out_dir;
	}
	rc = meta_kv_copyfd(kv, fd);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	close(fd);
	if (rc) {
		e = tl_asprintf("cannot copy the metadata engine to %s: %s%s",
				base, strerror(-rc),
				rc == -ENOSPC ? " (the copy needs the store's "
						"compacted size)"
					      : "");
		goto out_dir;
	}
	if (bytes != NULL)
		*bytes = (uint64_t)st.st_size;
	/* a map of the file's size: nothing is added to a read-only copy
	 * (and valgrind cannot reserve the 64 GiB default) */
	rc = meta_kv_lmdb_open(dir,
			       ((uint64_t)st.st_size | ((1u << 20) - 1)) + 1,
			       META_KV_LMDB_RESIDENT, META_KV_RDONLY, out, &e);
out_dir:
	/* open or not, nothing stays on disk under a name */
	remove_copy(dir);
	free(dir);
out:
	free(data);
	if (rc && err != NULL)
		*err = e;
	else
		free(e);
	return rc;
}
