/*
 * meta_lock_test.c - the NFS lock table in the metadata (meta/lock.c):
 * POSIX byte-range semantics (conflicts, owners, split, merge, upgrade
 * and downgrade, to end of file), share reservations, the bounds, a
 * client's locks dropped (FREE_ALL, a reboot), recovery after a gateway
 * is gone (adoption, reclaim, grace), and two gateways on one volume:
 * two meta handles on one engine, each with a thread that takes and
 * releases one exclusive range, never both at once.
 *
 * On LMDB by default; TESSERA_TEST_META=raft (t/unit/meta_on_raft.sh)
 * runs it on a one-node raft:// group, where the two handles' writes
 * meet in the leader's conflict check.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>

#include "t/unit/meta_test.h"

#define EOFL META_LOCK_EOF

static struct meta_lock_req
req(const char *client, uint32_t svid, const char *oh, uint64_t start,
    uint64_t end, bool excl)
{
	struct meta_lock_req r;

	memset(&r, 0, sizeof(r));
	r.owner.client = client;
	r.owner.client_len = strlen(client);
	r.owner.svid = svid;
	r.owner.oh = oh;
	r.owner.oh_len = strlen(oh);
	r.start = start;
	r.end = end;
	r.exclusive = excl;
	return r;
}

static int
lk(struct meta *m, uint64_t ino, const char *client, uint32_t svid,
   const char *oh, uint64_t start, uint64_t end, bool excl,
   struct meta_lock_result *res)
{
	struct meta_lock_req r = req(client, svid, oh, start, end, excl);
	struct meta_lock_result tmp;

	return meta_lock(m, ino, &r, res != NULL ? res : &tmp);
}

static int
unlk(struct meta *m, uint64_t ino, const char *client, uint32_t svid,
     const char *oh, uint64_t start, uint64_t end, bool *released)
{
	struct meta_lock_req r = req(client, svid, oh, start, end, false);
	struct meta_lock_result res;
	int rc = meta_unlock(m, ino, &r.owner, start, end, &res);

	if (released != NULL)
		*released = res.released;
	return rc;
}

/* The ranges one owner holds on ino, as "s-e:x s-e:s" (e as "eof"). */
struct show {
	const char *client;
	uint32_t svid;
	char out[512];
};

static int
show_cb(void *arg, const struct meta_lock_info *l)
{
	struct show *s = arg;
	size_t n = strlen(s->out);

	if (l->share || l->svid != s->svid ||
	    l->client_len != strlen(s->client) ||
	    memcmp(l->client, s->client, l->client_len) != 0)
		return 0;
	for (size_t i = 0; i < l->nranges; i++) {
		char e[24];

		if (l->ranges[i].end == EOFL)
			strcpy(e, "eof");
		else
			snprintf(e, sizeof(e), "%llu",
				 (unsigned long long)l->ranges[i].end);
		n += (size_t)snprintf(s->out + n, sizeof(s->out) - n,
				      "%s%llu-%s:%c", n ? " " : "",
				      (unsigned long long)l->ranges[i].start, e,
				      l->ranges[i].exclusive ? 'x' : 's');
	}
	return 0;
}

/* meta_test.h's helper, unused here */
static inline void
unused(void)
{
	(void)mk;
}

static const char *
ranges_of(struct meta *m, uint64_t ino, const char *client, uint32_t svid)
{
	static struct show s;

	memset(&s, 0, sizeof(s));
	s.client = client;
	s.svid = svid;
	if (meta_lock_list(m, ino, show_cb, &s) != 0)
		return "(error)";
	return s.out;
}

static uint64_t
total(struct meta *m)
{
	uint64_t n = ~0ull;

	meta_lock_total(m, &n);
	return n;
}

static void
test_conflicts(struct meta *m)
{
	struct meta_lock_result res;
	struct meta_lock_req r;

	CHECK_EQ(lk(m, 10, "hostA", 1, "1@hostA", 0, 100, true, NULL), 0,
		 "an exclusive lock on a free range is granted");
	CHECK_EQ(lk(m, 10, "hostB", 7, "7@hostB", 50, 60, true, &res), -EBUSY,
		 "another owner's overlapping exclusive lock is refused");
	CHECK(res.holder.svid == 1 && res.holder.exclusive &&
		      res.holder.start == 0 && res.holder.end == 100 &&
		      res.holder.oh_len == 7 &&
		      memcmp(res.holder.oh, "1@hostA", 7) == 0 &&
		      !res.holder.recovering,
	      "the refusal names the holder: svid, handle, range, kind");
	CHECK_EQ(lk(m, 10, "hostB", 7, "7@hostB", 99, 101, false, NULL), -EBUSY,
		 "a shared lock overlapping an exclusive one too");
	CHECK_EQ(lk(m, 10, "hostB", 7, "7@hostB", 100, 200, true, NULL), 0,
		 "the range just past it is free ([start, end) ranges)");
	CHECK_EQ(lk(m, 11, "hostB", 7, "7@hostB", 0, 100, true, NULL), 0,
		 "another inode is another lock table");
	CHECK_EQ(lk(m, 10, "hostA", 1, "1@hostA", 0, 100, true, &res), 0,
		 "the holder asking again is granted");
	CHECK(res.had, "... and told it held the range already");

	/* owner = (client, svid, handle): any one differing is another */
	CHECK_EQ(lk(m, 10, "hostA", 2, "1@hostA", 0, 1, true, NULL), -EBUSY,
		 "same client and handle, another svid: another owner");
	CHECK_EQ(lk(m, 10, "hostA", 1, "2@hostA", 0, 1, true, NULL), -EBUSY,
		 "same client and svid, another handle: another owner");
	CHECK_EQ(lk(m, 10, "hostC", 1, "1@hostA", 0, 1, true, NULL), -EBUSY,
		 "same svid and handle from another client: another owner");

	/* shared locks coexist */
	CHECK_EQ(lk(m, 12, "hostA", 1, "a", 0, 10, false, NULL), 0,
		 "shared lock");
	CHECK_EQ(lk(m, 12, "hostB", 1, "b", 5, 15, false, NULL), 0,
		 "an overlapping shared lock of another owner is granted");
	CHECK_EQ(lk(m, 12, "hostC", 1, "c", 9, 10, true, &res), -EBUSY,
		 "an exclusive lock over both is refused");
	CHECK(!res.holder.exclusive, "the holder is a shared lock");

	r = req("hostC", 1, "c", 9, 10, true);
	CHECK_EQ(meta_lock_test(m, 12, &r, &res), -EBUSY,
		 "TEST reports the conflict");
	r = req("hostA", 1, "a", 0, 5, true);
	CHECK_EQ(meta_lock_test(m, 12, &r, &res), 0,
		 "TEST of the holder's own range with nobody else there: "
		 "free");
	r = req("hostC", 1, "c", 20, EOFL, true);
	CHECK_EQ(meta_lock_test(m, 12, &r, &res), 0,
		 "TEST of a free range to EOF");

	CHECK_EQ(lk(m, 12, "hostC", 1, "c", 0, 0, true, NULL), -EINVAL,
		 "an empty range is refused");
}

static void
test_split_merge(struct meta *m)
{
	bool rel;

	CHECK_EQ(lk(m, 20, "h", 1, "o", 0, 100, true, NULL), 0, "[0,100) x");
	CHECK_EQ(lk(m, 20, "h", 1, "o", 40, 60, false, NULL), 0,
		 "a shared lock inside it by the same owner");
	CHECK(strcmp(ranges_of(m, 20, "h", 1), "0-40:x 40-60:s 60-100:x") == 0,
	      "splits it in three (%s)", ranges_of(m, 20, "h", 1));
	CHECK_EQ(lk(m, 20, "other", 1, "o", 45, 50, false, NULL), 0,
		 "another owner may share the downgraded middle");
	CHECK_EQ(lk(m, 20, "other", 1, "o", 39, 41, false, NULL), -EBUSY,
		 "but not the exclusive part next to it");
	CHECK_EQ(unlk(m, 20, "other", 1, "o", 0, EOFL, NULL), 0, "(released)");
	CHECK_EQ(unlk(m, 20, "h", 1, "o", 50, 70, &rel), 0,
		 "unlock across two of the pieces");
	CHECK(rel, "reports a release");
	CHECK(strcmp(ranges_of(m, 20, "h", 1), "0-40:x 40-50:s 70-100:x") == 0,
	      "leaves a hole (%s)", ranges_of(m, 20, "h", 1));
	CHECK_EQ(lk(m, 20, "h", 1, "o", 40, 70, true, NULL), 0,
		 "upgrade the middle to exclusive");
	CHECK(strcmp(ranges_of(m, 20, "h", 1), "0-100:x") == 0,
	      "touching exclusive ranges merge into one (%s)",
	      ranges_of(m, 20, "h", 1));

	for (int i = 0; i < 10; i++)
		lk(m, 21, "h", 1, "o", (uint64_t)i * 10, (uint64_t)i * 10 + 10,
		   false, NULL);
	CHECK(strcmp(ranges_of(m, 21, "h", 1), "0-100:s") == 0,
	      "ten adjacent shared locks are one range (%s)",
	      ranges_of(m, 21, "h", 1));
	lk(m, 21, "h", 1, "o", 100, 110, true, NULL);
	CHECK(strcmp(ranges_of(m, 21, "h", 1), "0-100:s 100-110:x") == 0,
	      "an adjacent exclusive one stays apart (%s)",
	      ranges_of(m, 21, "h", 1));
	CHECK_EQ(unlk(m, 21, "h", 1, "o", 0, EOFL, NULL), 0, "unlock all");
	CHECK(strcmp(ranges_of(m, 21, "h", 1), "") == 0, "nothing left");
}

static void
test_up_down(struct meta *m)
{
	struct meta_lock_result res;

	CHECK_EQ(lk(m, 30, "a", 1, "a", 0, EOFL, false, NULL), 0,
		 "a shared lock of the whole file (to EOF)");
	CHECK_EQ(lk(m, 30, "b", 1, "b", 1ull << 40, (1ull << 40) + 1, false,
		    NULL),
		 0, "another shared lock far out");
	CHECK_EQ(lk(m, 30, "a", 1, "a", 0, EOFL, true, &res), -EBUSY,
		 "the upgrade waits for the other reader");
	CHECK(res.holder.svid == 1 && res.holder.start == 1ull << 40,
	      "which the refusal names");
	CHECK(strcmp(ranges_of(m, 30, "a", 1), "0-eof:s") == 0,
	      "a refused upgrade leaves the shared lock as it was");
	CHECK_EQ(unlk(m, 30, "b", 1, "b", 0, EOFL, NULL), 0, "reader gone");
	CHECK_EQ(lk(m, 30, "a", 1, "a", 0, EOFL, true, &res), 0,
		 "the upgrade is granted");
	CHECK(!res.released, "an upgrade releases nothing");
	CHECK_EQ(lk(m, 30, "b", 1, "b", 5, 6, false, NULL), -EBUSY,
		 "a reader is now refused anywhere");
	CHECK_EQ(lk(m, 30, "a", 1, "a", 0, 10, false, &res), 0,
		 "downgrade the first 10 bytes");
	CHECK(res.released, "a downgrade counts as a release");
	CHECK_EQ(lk(m, 30, "b", 1, "b", 5, 6, false, NULL), 0,
		 "a reader fits in the downgraded part");
	CHECK_EQ(lk(m, 30, "b", 1, "b", 10, 11, false, NULL), -EBUSY,
		 "not past it");
	CHECK_EQ(lk(m, 30, "b", 1, "b", UINT64_MAX - 1, EOFL, false, NULL),
		 -EBUSY, "the exclusive part reaches the last offset");
}

static void
test_unlock_nothing(struct meta *m)
{
	bool rel = true;
	uint64_t before = total(m);

	CHECK_EQ(unlk(m, 40, "nobody", 9, "x", 0, EOFL, &rel), 0,
		 "unlocking what an unknown owner never held succeeds");
	CHECK(!rel, "... and releases nothing");
	lk(m, 40, "someone", 1, "s", 0, 10, true, NULL);
	CHECK_EQ(unlk(m, 40, "someone", 1, "s", 20, 30, &rel), 0,
		 "unlocking a range the owner does not hold");
	CHECK(!rel && strcmp(ranges_of(m, 40, "someone", 1), "0-10:x") == 0,
	      "changes nothing");
	CHECK_EQ(unlk(m, 40, "someone", 2, "s", 0, 10, &rel), 0,
		 "another owner's unlock of it");
	CHECK(!rel && strcmp(ranges_of(m, 40, "someone", 1), "0-10:x") == 0,
	      "does not release it");
	CHECK_EQ(total(m), before + 1, "the total counts one range more");
	unlk(m, 40, "someone", 1, "s", 0, 10, NULL);
	CHECK_EQ(total(m), before, "and back");
}

static void
test_bounds(struct meta *m)
{
	struct meta_lock_req r;
	struct meta_lock_result res;
	uint64_t base = total(m);
	int rc = 0;

	for (int i = 0; i < 3; i++) {
		r = req("greedy", 1, "g", (uint64_t)i * 10,
			(uint64_t)i * 10 + 5, true);
		r.max_client = 3;
		rc |= meta_lock(m, 50, &r, &res);
	}
	CHECK_EQ(rc, 0, "three ranges within a bound of three per client");
	r = req("greedy", 1, "g", 100, 105, true);
	r.max_client = 3;
	CHECK_EQ(meta_lock(m, 50, &r, &res), -ENOLCK,
		 "a fourth is refused with ENOLCK");
	r = req("greedy", 1, "g", 5, 10, true);
	r.max_client = 3;
	CHECK_EQ(meta_lock(m, 50, &r, &res), 0,
		 "filling a gap (merges: no more ranges) is not");
	r = req("greedy", 2, "g", 200, 205, true);
	r.max_client = 3;
	CHECK_EQ(meta_lock(m, 51, &r, &res), 0,
		 "the bound counts the client's owners and inodes together");
	r = req("greedy", 2, "g", 300, 305, true);
	r.max_client = 3;
	CHECK_EQ(meta_lock(m, 51, &r, &res), -ENOLCK, "... so now it is full");
	r = req("modest", 1, "m", 0, 1, true);
	r.max_client = 3;
	r.max_total = base + 3;
	CHECK_EQ(meta_lock(m, 52, &r, &res), -ENOLCK,
		 "another client is refused when the volume's total is full");
	CHECK_EQ(total(m), base + 3, "refusals took nothing");
	meta_lock_drop(m, "greedy", 6, -1, NULL, NULL, NULL);
	CHECK_EQ(meta_lock(m, 52, &r, &res), 0, "room again once dropped");
	meta_lock_drop(m, "modest", 6, -1, NULL, NULL, NULL);
}

static void
test_shares(struct meta *m)
{
	struct meta_lock_req r = req("pc1", 0, "s1", 0, 0, false);
	struct meta_lock_result res;

	r.access = 1; /* read */
	r.mode = 2;   /* deny write */
	CHECK_EQ(meta_share(m, 60, &r, &res), 0, "share: read, deny write");
	r = req("pc2", 0, "s2", 0, 0, false);
	r.access = 1;
	r.mode = 0;
	CHECK_EQ(meta_share(m, 60, &r, &res), 0,
		 "another reader denying nothing fits");
	r = req("pc3", 0, "s3", 0, 0, false);
	r.access = 3;
	r.mode = 0;
	CHECK_EQ(meta_share(m, 60, &r, &res), -EBUSY,
		 "a writer is refused (deny write)");
	CHECK(res.holder.share && res.holder.mode == 2 &&
		      res.holder.access == 1,
	      "the holder is the first share");
	r = req("pc3", 0, "s3", 0, 0, false);
	r.access = 1;
	r.mode = 1;
	CHECK_EQ(meta_share(m, 60, &r, &res), -EBUSY,
		 "a share denying read to current readers is refused");
	r = req("pc1", 0, "s1", 0, 0, false);
	CHECK_EQ(meta_unshare(m, 60, &r.owner, &res), 0, "unshare");
	CHECK(res.released, "which released");
	r = req("pc3", 0, "s3", 0, 0, false);
	r.access = 3;
	r.mode = 0;
	CHECK_EQ(meta_share(m, 60, &r, &res), 0, "the writer now fits");
	CHECK_EQ(lk(m, 60, "pc1", 0, "s1", 0, EOFL, true, NULL), 0,
		 "byte-range locks ignore share reservations");
	meta_lock_drop(m, "pc1", 3, -1, NULL, NULL, NULL);
	meta_lock_drop(m, "pc2", 3, -1, NULL, NULL, NULL);
	meta_lock_drop(m, "pc3", 3, -1, NULL, NULL, NULL);
}

struct released {
	uint64_t ino[16];
	int n;
};

static void
released_cb(void *arg, uint64_t ino)
{
	struct released *r = arg;

	if (r->n < 16)
		r->ino[r->n++] = ino;
}

static int
count_clients_cb(void *arg, const struct meta_lock_client *c)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_drop(struct meta *m)
{
	struct meta_lock_where w = {"10.0.0.7", "10.0.0.1", 5, 3};
	struct meta_lock_req r;
	struct meta_lock_result res;
	struct released rel = {{0}, 0};
	uint64_t n = 0, base = total(m);
	int clients = 0;

	for (int i = 0; i < 3; i++) {
		r = req("rebooter", (uint32_t)i, "o", 0, 10, true);
		r.where = &w;
		meta_lock(m, 70 + (uint64_t)i, &r, &res);
	}
	w.state = 5; /* after its reboot */
	r = req("rebooter", 9, "o", 0, 10, true);
	r.where = &w;
	CHECK_EQ(meta_lock(m, 73, &r, &res), 0,
		 "four locks, the last under a new NSM state");
	lk(m, 70, "bystander", 1, "b", 20, 30, true, NULL);
	CHECK_EQ(meta_lock_drop(m, "rebooter", 8, 5, released_cb, &rel, &n), 0,
		 "drop the client's locks of other states (its reboot)");
	CHECK_EQ(n, 3, "three records dropped");
	CHECK(rel.n == 3 && rel.ino[0] == 70 && rel.ino[2] == 72,
	      "reported per inode");
	CHECK(strcmp(ranges_of(m, 73, "rebooter", 9), "0-10:x") == 0,
	      "the lock of its new state stays");
	CHECK(strcmp(ranges_of(m, 70, "bystander", 1), "20-30:x") == 0,
	      "another client's lock stays");
	CHECK_EQ(meta_lock_drop(m, "rebooter", 8, -1, NULL, NULL, &n), 0,
		 "FREE_ALL drops the rest");
	CHECK_EQ(n, 1, "one more");
	meta_lock_clients(m, count_clients_cb, &clients);
	CHECK_EQ(meta_lock_drop(m, "rebooter", 8, -1, NULL, NULL, &n), 0,
		 "dropping a client that holds nothing");
	CHECK_EQ(n, 0, "drops nothing");
	CHECK_EQ(total(m), base + 1, "the total is right");
	unlk(m, 70, "bystander", 1, "b", 0, EOFL, NULL);
}

struct find {
	const char *name;
	struct meta_lock_client c;
	bool found;
};

static int
find_cb(void *arg, const struct meta_lock_client *c)
{
	struct find *f = arg;

	if (strcmp(c->name, f->name) == 0) {
		f->c = *c;
		f->found = true;
	}
	return 0;
}

static struct find
client_of(struct meta *m, const char *name)
{
	struct find f;

	memset(&f, 0, sizeof(f));
	f.name = name;

	meta_lock_clients(m, find_cb, &f);
	return f;
}

static void
test_recovery(struct meta *m)
{
	struct meta_lock_where w = {"192.0.2.8", "192.0.2.1", 111, 7};
	struct meta_lock_req r;
	struct meta_lock_result res;
	struct released rel = {{0}, 0};
	uint64_t now = tl_now_ns(), left, dropped;
	uint32_t epoch = 0;
	struct find f;

	r = req("cl", 1, "o", 0, 10, true);
	r.where = &w;
	meta_lock(m, 80, &r, &res);
	r = req("cl", 1, "o", 20, 30, true);
	r.where = &w;
	meta_lock(m, 80, &r, &res);
	r = req("cl", 2, "o", 0, 10, false);
	r.where = &w;
	CHECK_EQ(meta_lock(m, 81, &r, &res), 0,
		 "a client holds three locks through gateway session 111");
	f = client_of(m, "cl");
	CHECK(f.found && f.c.session == 111 && f.c.state == 7 &&
		      strcmp(f.c.addr, "192.0.2.8") == 0 &&
		      strcmp(f.c.local, "192.0.2.1") == 0 && f.c.held == 3,
	      "its record: session, state, addresses, 3 held");

	CHECK_EQ(meta_lock_adopt(m, "cl", 2, 999, 222, now + 3600000000000ull,
				 &epoch),
		 -ESTALE,
		 "adopting it from a session that does not serve it "
		 "fails");
	CHECK_EQ(meta_lock_adopt(m, "cl", 2, 111, 222, now + 3600000000000ull,
				 &epoch),
		 0, "gateway session 222 adopts it (111 is gone)");
	CHECK_EQ(epoch, 1, "a new recovery epoch");
	CHECK_EQ(meta_lock_adopt(m, "cl", 2, 111, 333, now, &epoch), -ESTALE,
		 "a second gateway adopting it too fails");

	CHECK_EQ(lk(m, 80, "newcomer", 1, "n", 5, 6, true, &res), -EBUSY,
		 "its unreclaimed lock still conflicts");
	CHECK(res.holder.recovering, "as a lock being recovered");
	CHECK_EQ(lk(m, 80, "newcomer", 1, "n", 12, 13, true, NULL), 0,
		 "a free range between them is granted");

	r = req("cl", 1, "o", 0, 10, true);
	r.reclaim = true;
	CHECK_EQ(meta_lock(m, 80, &r, &res), 0, "reclaim of one lock");
	CHECK(res.had, "which it held");
	CHECK_EQ(meta_lock_recover(m, "cl", 2, now, &left, released_cb, &rel,
				   &dropped),
		 0, "settle its grace while it lasts");
	CHECK_EQ(left, 2, "two are left to reclaim");
	CHECK_EQ(dropped, 0, "nothing dropped yet");
	CHECK_EQ(lk(m, 80, "newcomer", 1, "n", 5, 6, true, &res), -EBUSY,
		 "the reclaimed lock conflicts");
	CHECK(!res.holder.recovering, "as an ordinary lock");

	CHECK_EQ(meta_lock_notified(m, "cl", 2, epoch), 0,
		 "the client was told to reclaim");
	CHECK_EQ(meta_lock_recover(m, "cl", 2, now + 3600000000001ull, &left,
				   released_cb, &rel, &dropped),
		 0, "its grace is over");
	CHECK_EQ(dropped, 2, "what it did not reclaim is dropped");
	CHECK(strcmp(ranges_of(m, 80, "cl", 1), "0-10:x") == 0 &&
		      strcmp(ranges_of(m, 81, "cl", 2), "") == 0,
	      "the reclaimed lock stays");
	CHECK(rel.n >= 2, "the releases are reported");
	f = client_of(m, "cl");
	CHECK(f.found && f.c.grace_until_ns == 0 && f.c.session == 222 &&
		      f.c.held == 1,
	      "out of grace, served by 222, holding one");
	CHECK_EQ(lk(m, 80, "newcomer", 1, "n", 25, 26, true, NULL), 0,
		 "the dropped range is free");

	/* not told: its locks stay */
	r = req("quiet", 1, "q", 0, 10, true);
	w.session = 222;
	r.where = &w;
	meta_lock(m, 82, &r, &res);
	CHECK_EQ(meta_lock_adopt(m, "quiet", 5, 222, 444, now + 1, &epoch), 0,
		 "another client adopted");
	CHECK_EQ(meta_lock_recover(m, "quiet", 5, now + 2, &left, NULL, NULL,
				   &dropped),
		 0, "its grace ends without it having been told");
	CHECK(left == 1 && dropped == 0 &&
		      strcmp(ranges_of(m, 82, "quiet", 1), "0-10:x") == 0,
	      "its lock is kept (it still believes it holds it)");
	CHECK_EQ(lk(m, 82, "newcomer", 1, "n", 0, 1, true, &res), -EBUSY,
		 "and conflicts");
	CHECK(!res.holder.recovering, "as an ordinary lock again");

	/* a client that holds nothing is not adopted */
	meta_lock_drop(m, "quiet", 5, -1, NULL, NULL, NULL);
	r = req("gone", 1, "g", 0, 10, true);
	r.where = &w;
	meta_lock(m, 83, &r, &res);
	unlk(m, 83, "gone", 1, "g", 0, 10, NULL);
	CHECK_EQ(meta_lock_adopt(m, "gone", 4, 222, 555, now, &epoch), -ENOENT,
		 "a client holding nothing is not adopted");
	f = client_of(m, "gone");
	CHECK(!f.found, "and its record is gone");

	meta_lock_drop(m, "cl", 2, -1, NULL, NULL, NULL);
	meta_lock_drop(m, "newcomer", 8, -1, NULL, NULL, NULL);
}

static void
test_counters(struct meta *m)
{
	uint64_t r0, r1, removed = 0;
	int32_t s1 = 0, s2 = 0;
	struct find f;

	meta_lock_releases(m, &r0);
	lk(m, 90, "c", 1, "c", 0, 10, true, NULL);
	unlk(m, 90, "c", 1, "c", 0, 10, NULL);
	meta_lock_releases(m, &r1);
	CHECK(r1 > r0, "an unlock bumps the release counter");
	CHECK_EQ(meta_lock_nsm_state(m, &s1), 0, "an NSM state");
	CHECK_EQ(meta_lock_nsm_state(m, &s2), 0, "another");
	CHECK(s1 % 2 == 1 && s2 % 2 == 1 && s2 > s1, "odd and growing (%d, %d)",
	      s1, s2);
	f = client_of(m, "c");
	CHECK(f.found && f.c.held == 0, "an idle client's record stays");
	CHECK_EQ(meta_lock_tidy(m, &removed), 0, "tidy");
	f = client_of(m, "c");
	CHECK(!f.found && removed >= 1, "removes it");
}

static void
test_long_names(struct meta *m)
{
	char *name = tl_malloc(META_LOCK_STR_MAX + 2);
	char *oh = tl_malloc(META_LOCK_STR_MAX + 1);
	struct meta_lock_req r;
	struct meta_lock_result res;

	memset(name, 'n', META_LOCK_STR_MAX + 1);
	name[META_LOCK_STR_MAX + 1] = '\0';
	memset(oh, 0, META_LOCK_STR_MAX); /* a handle of NUL bytes */
	r = req(name, 1, "", 0, 1, true);
	r.owner.client_len = META_LOCK_STR_MAX;
	r.owner.oh = oh;
	r.owner.oh_len = META_LOCK_STR_MAX;
	CHECK_EQ(meta_lock(m, 95, &r, &res), 0,
		 "1024-byte client name and owner handle");
	r.owner.oh_len = META_LOCK_STR_MAX - 1;
	CHECK_EQ(meta_lock(m, 95, &r, &res), -EBUSY,
		 "a handle one byte shorter is another owner");
	r.owner.client_len = META_LOCK_STR_MAX + 1;
	CHECK_EQ(meta_lock(m, 95, &r, &res), -EINVAL,
		 "a name longer than 1024 bytes is refused");
	meta_lock_drop(m, name, META_LOCK_STR_MAX, -1, NULL, NULL, NULL);
	free(name);
	free(oh);
}

/* Two gateways: one thread per meta handle takes the same exclusive
 * range, checks nobody else is inside, and releases it. */
#define ROUNDS 150

struct gw {
	struct meta *m;
	const char *name;
	atomic_int *inside;
	int got, overlaps, errors;
};

static void *
gw_main(void *arg)
{
	struct gw *g = arg;

	while (g->got < ROUNDS) {
		struct meta_lock_result res;
		int rc = lk(g->m, 99, g->name, 1, "o", 100, 200, true, &res);

		if (rc == -EBUSY) {
			sched_yield();
			continue;
		}
		if (rc != 0) {
			g->errors++;
			break;
		}
		if (atomic_fetch_add(g->inside, 1) != 0)
			g->overlaps++;
		atomic_fetch_sub(g->inside, 1);
		if (unlk(g->m, 99, g->name, 1, "o", 0, EOFL, NULL) != 0) {
			g->errors++;
			break;
		}
		g->got++;
	}
	return NULL;
}

static void
test_two_gateways(struct fixture *f, struct meta *m1)
{
	struct meta *m2 = NULL;
	char *err = NULL;
	atomic_int inside = 0;
	struct gw a = {m1, "gwA-client", &inside, 0, 0, 0};
	struct gw b = {NULL, "gwB-client", &inside, 0, 0, 0};
	pthread_t ta, tb;
	struct meta_lock_result res;

	CHECK_FATAL(meta_open(f->url, "test", &m2, &err) == 0,
		    "a second handle on the engine (%s)", err ? err : "");
	b.m = m2;
	CHECK_EQ(lk(m1, 98, "x", 1, "x", 0, 10, true, NULL), 0,
		 "gateway A grants a lock");
	CHECK_EQ(lk(m2, 98, "y", 1, "y", 5, 6, false, &res), -EBUSY,
		 "gateway B sees it and refuses a conflicting one");
	unlk(m1, 98, "x", 1, "x", 0, 10, NULL);
	CHECK_EQ(lk(m2, 98, "y", 1, "y", 5, 6, false, NULL), 0,
		 "released on A, granted on B");
	unlk(m2, 98, "y", 1, "y", 0, 10, NULL);

	pthread_create(&ta, NULL, gw_main, &a);
	pthread_create(&tb, NULL, gw_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.errors == 0 && b.errors == 0, "no errors (%d, %d)", a.errors,
	      b.errors);
	CHECK(a.got == ROUNDS && b.got == ROUNDS,
	      "each gateway got the range %d times", ROUNDS);
	CHECK_EQ(a.overlaps + b.overlaps, 0,
		 "never both at once (mutual exclusion across handles)");
	meta_lock_drop(m1, "gwA-client", 10, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, "gwB-client", 10, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, "x", 1, -1, NULL, NULL, NULL);
	meta_lock_drop(m1, "y", 1, -1, NULL, NULL, NULL);
	free(err);
	meta_close(m2);
}

int
main(void)
{
	struct fixture f;
	struct meta *m;
	uint64_t n = 1;

	fixture_init(&f);
	m = fixture_volume(&f, 0, 0);
	test_conflicts(m);
	test_split_merge(m);
	test_up_down(m);
	test_unlock_nothing(m);
	test_bounds(m);
	test_shares(m);
	test_drop(m);
	test_recovery(m);
	test_counters(m);
	test_long_names(m);
	test_two_gateways(&f, m);
	CHECK_EQ(meta_lock_drop(m, "hostA", 5, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "hostB", 5, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "hostC", 5, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "h", 1, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "other", 5, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "a", 1, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "b", 1, -1, NULL, NULL, NULL) |
			 meta_lock_drop(m, "someone", 7, -1, NULL, NULL, NULL),
		 0, "drop every client");
	meta_lock_total(m, &n);
	CHECK_EQ(n, 0, "the total is back to zero");
	meta_close(m);
	fixture_done(&f);
	return tap_done();
}
