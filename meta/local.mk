# meta: the engine interface (kv.h, LMDB engine) and the file-system layer.
noinst_LIBRARIES += meta/libmeta.a
meta_libmeta_a_SOURCES = meta/meta.h meta/kv.h meta/meta-internal.h \
	meta/kv.c meta/kv_lmdb.c meta/schema.c meta/volume.c meta/fs.c \
	meta/dir.c meta/data.c meta/fsck.c meta/scan.c meta/under.c \
	meta/session.c meta/quota.c meta/usage.c meta/recount.c meta/backlog.c meta/bgwatch.c meta/trash.c meta/lock-internal.h meta/lock.c meta/lock_client.c \
	meta/kv_copy.c meta/dump.c meta/dump_json.c meta/backup.c meta/billing.c \
	meta/kv_raft-internal.h meta/kv_raft_node.h meta/kv_raft.c \
	meta/kv_raft_wire.c meta/kv_raft_node.c meta/kv_raft_leader.c \
	meta/kv_raft_net.c meta/kv_raft_snap.c meta/kv_raft_admin.c \
	meta/kv_raft_apply.c meta/kv_raft_lease.c
meta_libmeta_a_CPPFLAGS = $(AM_CPPFLAGS) $(RAFT_CFLAGS)
