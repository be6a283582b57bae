/*
 * bench/nfsload.c - NFSv3 load generator on libnfs's asynchronous API.
 *
 * One invocation runs one phase of one workload against one server and
 * prints its figures: machine-readable lines
 *	R <workload> <server> <metric> <value>
 * and human text on lines starting with '#'.  bench/run.sh composes the
 * phases into the suite; see bench/README.
 *
 * Load shape: --procs client processes (fork), each with --conns NFS
 * connections (one nfs_context each), each keeping --depth operations in
 * flight.  One operation is a whole chain for file ops (CREATE + WRITE +
 * COMMIT + close for "create"), one RPC for data ops.  Its latency runs
 * from issue to the last reply; all latencies are kept, sorted, and p50/p99
 * taken from them.  The clock starts when every process has mounted and
 * stops when the last one has finished (including the final COMMIT of
 * write phases).
 *
 * With --pid the parent samples VmRSS and RssAnon of that process (the
 * server) every 20 ms and reports the peak and the growth over the value
 * seen just before the start.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

enum op {
	OP_WRITE,    /* sequential WRITEs of --bs, COMMIT at the end */
	OP_READ,     /* sequential READs of --bs */
	OP_RANDRW,   /* random --bs READs/WRITEs, --readpct reads */
	OP_CREATE,   /* create, write --bs (if > 0), COMMIT, close */
	OP_STAT,     /* stat each file (LOOKUP + GETATTR) */
	OP_READF,    /* open, read --bs, close each file */
	OP_REMOVE,   /* remove each file */
	OP_MKDIR,    /* make --ndirs directories d<i> */
	OP_STATRAND, /* --ops stats of random files of --files */
	OP_READDIR,  /* list the directory (READDIRPLUS), count */
};

static const char *op_names[] = {
	"write", "read",   "randrw", "create",   "stat",
	"readf", "remove", "mkdir",  "statrand", "readdir",
};

struct cfg {
	const char *url;
	const char *path; /* file or directory, from the export root */
	const char *label;
	const char *server;
	enum op op;
	uint64_t size; /* file size for data ops */
	uint32_t bs;
	int depth, conns, procs;
	uint64_t nops;     /* ops in total (data ops: from size/bs) */
	uint64_t nfiles;   /* file population for statrand */
	uint32_t ndirs;    /* files spread over d0..d<ndirs-1> */
	int per_proc_file; /* data ops: each process its own file */
	int readpct;
	pid_t rss_pid;
	double secs; /* stop issuing after this long (0: never) */
};

static struct cfg cfg = {
	.path = "/nfsload",
	.label = "test",
	.server = "server",
	.bs = 1 << 20,
	.depth = 8,
	.conns = 1,
	.procs = 1,
	.readpct = 50,
	.rss_pid = 0,
};

struct res_hdr {
	uint64_t ops, bytes, errors, nlat, t0, t1;
};

struct proc;

struct conn {
	struct nfs_context *nfs;
	struct nfsfh *fh;
	struct proc *p;
	int done;
};

struct slot {
	struct conn *c;
	struct nfsfh *fh;
	uint64_t idx, off, t0;
	int stage, is_write;
	char path[512];
	char *buf;
};

struct proc {
	int id;
	uint64_t lo, hi, next; /* index range of this process */
	uint64_t bytes, errors, nlat;
	uint64_t *lat;
	int inflight;
	uint64_t deadline; /* now_ns() past which nothing new starts */
	unsigned seed;
	char file[512];  /* data ops: the file */
	uint64_t blocks; /* data ops: blocks in the file */
};

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "nfsload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		break;
	case '\0':
		break;
	default:
		die("bad size '%s'", s);
	}
	return v;
}

static int
is_data_op(enum op op)
{
	return op == OP_WRITE || op == OP_READ || op == OP_RANDRW;
}

static struct nfs_context *
connect_nfs(void)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *url;

	if (nfs == NULL)
		die("nfs_init_context failed");
	url = nfs_parse_url_dir(nfs, cfg.url);
	if (url == NULL)
		die("url %s: %s", cfg.url, nfs_get_error(nfs));
	if (nfs_mount(nfs, url->server, url->path[0] ? url->path : "/") != 0)
		die("mount %s: %s", cfg.url, nfs_get_error(nfs));
	nfs_destroy_url(url);
	return nfs;
}

static void
file_path(char *dst, size_t len, uint64_t i)
{
	if (cfg.ndirs > 0)
		snprintf(dst, len, "%s/d%" PRIu64 "/f%" PRIu64, cfg.path,
			 i % cfg.ndirs, i);
	else
		snprintf(dst, len, "%s/f%" PRIu64, cfg.path, i);
}

static void slot_cb(int err, struct nfs_context *nfs, void *data, void *priv);
static void start_next(struct slot *s);

static void
finish(struct slot *s, int ok, uint64_t bytes)
{
	struct proc *p = s->c->p;

	if (ok) {
		p->lat[p->nlat++] = now_ns() - s->t0;
		p->bytes += bytes;
	} else {
		p->errors++;
	}
	p->inflight--;
	start_next(s);
}

static void
fail(struct slot *s, int err, struct nfs_context *nfs, const char *what)
{
	if (s->c->p->errors < 5)
		fprintf(stderr, "nfsload: %s %s: %s (%d)\n", what,
			s->path[0] ? s->path : s->c->p->file,
			nfs_get_error(nfs), err);
	finish(s, 0, 0);
}

/* Issues the next operation of this slot, or leaves it idle. */
static void
start_next(struct slot *s)
{
	struct proc *p = s->c->p;
	struct nfs_context *nfs = s->c->nfs;
	int rc = 0;

	if (p->next >= p->hi || (p->deadline && now_ns() > p->deadline))
		return;
	s->idx = p->next++;
	s->stage = 0;
	s->t0 = now_ns();
	p->inflight++;
	switch (cfg.op) {
	case OP_WRITE:
	case OP_READ:
	case OP_RANDRW:
		if (cfg.op == OP_RANDRW) {
			s->off = (uint64_t)rand_r(&p->seed) << 31;
			s->off ^= (uint64_t)rand_r(&p->seed);
			s->off = s->off % p->blocks * cfg.bs;
			s->is_write = rand_r(&p->seed) % 100 >= cfg.readpct;
		} else {
			s->off = (s->idx % p->blocks) * cfg.bs;
			s->is_write = cfg.op == OP_WRITE;
		}
		s->path[0] = '\0'; /* errors name the file instead */
		if (s->is_write)
			rc = nfs_pwrite_async(nfs, s->c->fh, s->off, cfg.bs,
					      s->buf, slot_cb, s);
		else
			rc = nfs_pread_async(nfs, s->c->fh, s->off, cfg.bs,
					     slot_cb, s);
		break;
	case OP_CREATE:
		file_path(s->path, sizeof(s->path), s->idx);
		rc = nfs_creat_async(nfs, s->path, 0644, slot_cb, s);
		break;
	case OP_STAT:
		file_path(s->path, sizeof(s->path), s->idx);
		rc = nfs_stat64_async(nfs, s->path, slot_cb, s);
		break;
	case OP_STATRAND:
		file_path(s->path, sizeof(s->path),
			  (uint64_t)rand_r(&p->seed) % cfg.nfiles);
		rc = nfs_stat64_async(nfs, s->path, slot_cb, s);
		break;
	case OP_READF:
		file_path(s->path, sizeof(s->path), s->idx);
		rc = nfs_open_async(nfs, s->path, O_RDONLY, slot_cb, s);
		break;
	case OP_REMOVE:
		file_path(s->path, sizeof(s->path), s->idx);
		rc = nfs_unlink_async(nfs, s->path, slot_cb, s);
		break;
	case OP_MKDIR: /* -d 0: the directory itself */
		if (cfg.nfiles == 0)
			snprintf(s->path, sizeof(s->path), "%s", cfg.path);
		else
			snprintf(s->path, sizeof(s->path), "%s/d%" PRIu64,
				 cfg.path, s->idx);
		rc = nfs_mkdir_async(nfs, s->path, slot_cb, s);
		break;
	case OP_READDIR:
		snprintf(s->path, sizeof(s->path), "%s", cfg.path);
		rc = nfs_opendir_async(nfs, s->path, slot_cb, s);
		break;
	}
	if (rc != 0)
		die("queue %s %s: %s", op_names[cfg.op], s->path,
		    nfs_get_error(nfs));
}

static void
readdir_done(struct slot *s, struct nfs_context *nfs, struct nfsdir *dir)
{
	uint64_t n = 0;
	struct nfsdirent *e;

	while ((e = nfs_readdir(nfs, dir)) != NULL)
		if (strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0)
			n++;
	nfs_closedir(nfs, dir);
	finish(s, 1, n); /* "bytes" carries the entry count */
}

/* Continues a file chain (create/readf) after its stage-th reply. */
static void
chain_cb(struct slot *s, int err, struct nfs_context *nfs, void *data)
{
	int rc = 0;

	switch (s->stage++) {
	case 0: /* created or opened */
		s->fh = data;
		if (cfg.op == OP_READF)
			rc = nfs_pread_async(nfs, s->fh, 0, cfg.bs, slot_cb, s);
		else if (cfg.bs > 0)
			rc = nfs_pwrite_async(nfs, s->fh, 0, cfg.bs, s->buf,
					      slot_cb, s);
		else {
			s->stage = 3; /* nothing written: close next */
			rc = nfs_close_async(nfs, s->fh, slot_cb, s);
		}
		break;
	case 1: /* written or read */
		if (cfg.op == OP_READF) {
			s->off = (uint64_t)err;
			s->stage = 3;
			rc = nfs_close_async(nfs, s->fh, slot_cb, s);
		} else {
			rc = nfs_fsync_async(nfs, s->fh, slot_cb, s);
		}
		break;
	case 2: /* committed */
		rc = nfs_close_async(nfs, s->fh, slot_cb, s);
		break;
	default: /* closed */
		finish(s, 1, cfg.op == OP_READF ? s->off : cfg.bs);
		return;
	}
	if (rc != 0)
		die("queue %s: %s", s->path, nfs_get_error(nfs));
}

static void
slot_cb(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct slot *s = priv;

	if (err < 0) {
		fail(s, err, nfs, op_names[cfg.op]);
		return;
	}
	switch (cfg.op) {
	case OP_WRITE:
	case OP_READ:
	case OP_RANDRW:
		finish(s, 1, (uint64_t)err);
		break;
	case OP_CREATE:
	case OP_READF:
		chain_cb(s, err, nfs, data);
		break;
	case OP_READDIR:
		readdir_done(s, nfs, data);
		break;
	default:
		finish(s, 1, 0);
		break;
	}
}

static void
event_loop(struct conn *cs, int n, struct proc *p)
{
	struct pollfd pfd[64];
	int i;

	while (p->inflight > 0) {
		for (i = 0; i < n; i++) {
			pfd[i].fd = nfs_get_fd(cs[i].nfs);
			pfd[i].events = (short)nfs_which_events(cs[i].nfs);
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (i = 0; i < n; i++)
			if (pfd[i].revents &&
			    nfs_service(cs[i].nfs, pfd[i].revents) < 0)
				die("service: %s", nfs_get_error(cs[i].nfs));
	}
}

/* Opens (or, for writes, creates) the data file on every connection. */
static void
open_data_file(struct conn *cs, struct proc *p)
{
	struct nfs_stat_64 st;
	int i, flags = cfg.op == OP_READ ? O_RDONLY : O_RDWR;

	if (cfg.per_proc_file)
		snprintf(p->file, sizeof(p->file), "%s.%d", cfg.path, p->id);
	else
		snprintf(p->file, sizeof(p->file), "%s", cfg.path);
	if (cfg.op == OP_WRITE && cfg.per_proc_file) {
		if (nfs_creat(cs[0].nfs, p->file, 0644, &cs[0].fh) != 0)
			die("create %s: %s", p->file, nfs_get_error(cs[0].nfs));
	}
	for (i = 0; i < cfg.conns; i++) {
		if (cs[i].fh != NULL)
			continue;
		if (nfs_open(cs[i].nfs, p->file, flags, &cs[i].fh) != 0)
			die("open %s: %s", p->file, nfs_get_error(cs[i].nfs));
	}
	if (cfg.op == OP_WRITE) {
		p->blocks = cfg.size / cfg.bs;
	} else {
		if (nfs_fstat64(cs[0].nfs, cs[0].fh, &st) != 0)
			die("stat %s: %s", p->file, nfs_get_error(cs[0].nfs));
		p->blocks = st.nfs_size / cfg.bs;
	}
	if (p->blocks == 0)
		die("%s: smaller than one block", p->file);
}

static void
child(int id, int ready_fd, int go_fd, int res_fd)
{
	struct proc p = {.id = id, .seed = 12345u + (unsigned)id * 7919u};
	struct conn cs[64] = {{0}};
	struct slot *slots;
	struct res_hdr h = {0};
	uint64_t per, share;
	int i, j, nslots = cfg.conns * cfg.depth;
	char c = 0;

	for (i = 0; i < cfg.conns; i++) {
		cs[i].nfs = connect_nfs();
		cs[i].p = &p;
	}
	if (is_data_op(cfg.op)) {
		open_data_file(cs, &p);
		if (cfg.op == OP_RANDRW || cfg.per_proc_file) {
			per = cfg.nops ? cfg.nops / (uint64_t)cfg.procs
				       : p.blocks;
			p.lo = 0;
			p.hi = per;
		} else {
			share = p.blocks / (uint64_t)cfg.procs;
			p.lo = share * (uint64_t)id;
			p.hi = id == cfg.procs - 1 ? p.blocks : p.lo + share;
		}
	} else {
		share = cfg.nops / (uint64_t)cfg.procs;
		p.lo = share * (uint64_t)id;
		p.hi = id == cfg.procs - 1 ? cfg.nops : p.lo + share;
	}
	p.next = p.lo;
	p.lat = calloc(p.hi - p.lo + 1, sizeof(uint64_t));
	slots = calloc((size_t)nslots, sizeof(*slots));
	if (p.lat == NULL || slots == NULL)
		die("out of memory");
	for (i = 0; i < nslots; i++) {
		slots[i].c = &cs[i % cfg.conns];
		slots[i].buf = malloc(cfg.bs ? cfg.bs : 1);
		if (slots[i].buf == NULL)
			die("out of memory");
		for (j = 0; j < (int)cfg.bs; j++)
			slots[i].buf[j] = (char)(j * 31 + i + id);
	}
	if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1)
		die("barrier: %s", strerror(errno));
	h.t0 = now_ns();
	if (cfg.secs > 0)
		p.deadline = h.t0 + (uint64_t)(cfg.secs * 1e9);
	for (i = 0; i < nslots; i++)
		start_next(&slots[i]);
	event_loop(cs, cfg.conns, &p);
	if (cfg.op == OP_WRITE || cfg.op == OP_RANDRW)
		for (i = 0; i < cfg.conns; i++)
			if (nfs_fsync(cs[i].nfs, cs[i].fh) != 0)
				die("commit: %s", nfs_get_error(cs[i].nfs));
	h.t1 = now_ns();
	h.ops = p.nlat;
	h.bytes = p.bytes;
	h.errors = p.errors;
	h.nlat = p.nlat;
	if (write(res_fd, &h, sizeof(h)) != sizeof(h) ||
	    write(res_fd, p.lat, p.nlat * sizeof(uint64_t)) !=
		    (ssize_t)(p.nlat * sizeof(uint64_t)))
		die("result: %s", strerror(errno));
	for (i = 0; i < cfg.conns; i++) {
		if (cs[i].fh != NULL)
			nfs_close(cs[i].nfs, cs[i].fh);
		nfs_destroy_context(cs[i].nfs);
	}
	exit(p.errors ? 1 : 0);
}

/* VmRSS and RssAnon of pid in KiB; 0 when unreadable. */
static void
sample_rss(pid_t pid, uint64_t *rss, uint64_t *anon)
{
	char path[64], line[256];
	FILE *f;

	*rss = *anon = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss = strtoull(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			*anon = strtoull(line + 8, NULL, 10);
	}
	fclose(f);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
result(const char *metric, double v)
{
	printf("R %s %s %s %.6g\n", cfg.label, cfg.server, metric, v);
}

static void
report(uint64_t *lat, uint64_t nlat, uint64_t bytes, uint64_t errors,
       double secs)
{
	double p50 = 0, p99 = 0, max = 0;

	if (nlat > 0) {
		qsort(lat, nlat, sizeof(*lat), cmp_u64);
		p50 = (double)lat[nlat / 2] / 1e6;
		p99 = (double)lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100
							   : nlat - 1] /
		      1e6;
		max = (double)lat[nlat - 1] / 1e6;
	}
	printf("# %s on %s: %s, %d proc x %d conn x %d deep: %" PRIu64
	       " ops in %.3f s (%.0f ops/s)",
	       cfg.label, cfg.server, op_names[cfg.op], cfg.procs, cfg.conns,
	       cfg.depth, nlat, secs, nlat / secs);
	if (is_data_op(cfg.op))
		printf(", %.1f MB/s", bytes / secs / 1e6);
	printf(", p50 %.3f ms, p99 %.3f ms, max %.3f ms, %" PRIu64 " errors\n",
	       p50, p99, max, errors);
	result("secs", secs);
	result("errors", (double)errors);
	if (cfg.op == OP_READDIR) {
		result("entries", (double)bytes);
		result("us_per_entry", bytes ? secs * 1e6 / (double)bytes : 0);
		return;
	}
	if (is_data_op(cfg.op)) {
		result("MBps", bytes / secs / 1e6);
		result("ops_s", nlat / secs);
	} else {
		result("files_s", nlat / secs);
	}
	result("p50_ms", p50);
	result("p99_ms", p99);
	result("max_ms", max);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: nfsload [options] OP URL\n"
		"  OP: write read randrw create stat readf remove mkdir "
		"statrand "
		"readdir\n"
		"      (mkdir: -f DIR itself, or with -d N its subdirectories "
		"d0..)\n"
		"  URL: "
		"nfs://127.0.0.1/EXPORT?version=3&nfsport=P&mountport=P\n"
		"  -f PATH    file or directory from the export root "
		"[/nfsload]\n"
		"  -s SIZE    file size for write [0]      -b SIZE  request "
		"size "
		"[1M]\n"
		"  -q N       requests in flight per connection [8]\n"
		"  -c N       connections per process [1]  -p N    processes "
		"[1]\n"
		"  -n N       operations (files for file ops, requests for "
		"randrw)\n"
		"  -N N       file population for statrand\n"
		"  -d N       spread files over N subdirectories d0..d<N-1> "
		"[0]\n"
		"  -r PCT     reads in randrw [50]         -P       file per "
		"process\n"
		"  -l NAME    workload label               -S NAME  server "
		"label\n"
		"  -m PID     sample this process's VmRSS/RssAnon (the "
		"server)\n"
		"  -t SECS    issue nothing new after SECS (randrw, "
		"statrand)\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	int o, i;

	while ((o = getopt(argc, argv, "f:s:b:q:c:p:n:N:d:r:Pl:S:m:t:")) !=
	       -1) {
		switch (o) {
		case 'f':
			cfg.path = optarg;
			break;
		case 's':
			cfg.size = parse_size(optarg);
			break;
		case 'b':
			cfg.bs = (uint32_t)parse_size(optarg);
			break;
		case 'q':
			cfg.depth = atoi(optarg);
			break;
		case 'c':
			cfg.conns = atoi(optarg);
			break;
		case 'p':
			cfg.procs = atoi(optarg);
			break;
		case 'n':
			cfg.nops = parse_size(optarg);
			break;
		case 'N':
			cfg.nfiles = parse_size(optarg);
			break;
		case 'd':
			cfg.ndirs = (uint32_t)atoi(optarg);
			break;
		case 'r':
			cfg.readpct = atoi(optarg);
			break;
		case 'P':
			cfg.per_proc_file = 1;
			break;
		case 'l':
			cfg.label = optarg;
			break;
		case 'S':
			cfg.server = optarg;
			break;
		case 'm':
			cfg.rss_pid = (pid_t)atoi(optarg);
			break;
		case 't':
			cfg.secs = atof(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	for (i = 0; i < (int)(sizeof(op_names) / sizeof(*op_names)); i++)
		if (strcmp(argv[optind], op_names[i]) == 0)
			break;
	if (i == (int)(sizeof(op_names) / sizeof(*op_names)))
		usage();
	cfg.op = (enum op)i;
	cfg.url = argv[optind + 1];
	if (cfg.depth < 1 || cfg.conns < 1 || cfg.conns > 64 || cfg.procs < 1)
		die("bad -q/-c/-p");
	if (cfg.op == OP_MKDIR) { /* nfiles: 0 = make cfg.path */
		cfg.nfiles = cfg.ndirs;
		cfg.nops = cfg.ndirs ? cfg.ndirs : 1;
		cfg.ndirs = 0;
	}
	if (cfg.op == OP_READDIR)
		cfg.nops = 1, cfg.procs = 1, cfg.conns = 1, cfg.depth = 1;
	if (cfg.op == OP_STATRAND && cfg.nfiles == 0)
		die("statrand needs -N");
	if (!is_data_op(cfg.op) && cfg.nops == 0)
		die("%s needs -n", op_names[cfg.op]);
	if (is_data_op(cfg.op) && cfg.bs == 0)
		die("data ops need -b > 0");
	if (cfg.op == OP_WRITE && cfg.size < cfg.bs)
		die("write needs -s >= -b");
}

/* Parent: a shared data file is created before the children open it. */
static void
prepare(void)
{
	struct nfs_context *nfs;
	struct nfsfh *fh;

	if (cfg.op != OP_WRITE || cfg.per_proc_file)
		return;
	nfs = connect_nfs();
	if (nfs_creat(nfs, cfg.path, 0644, &fh) != 0)
		die("create %s: %s", cfg.path, nfs_get_error(nfs));
	nfs_close(nfs, fh);
	nfs_destroy_context(nfs);
}

int
main(int argc, char **argv)
{
	int ready[2], go[2], i, status, live, failed = 0;
	FILE *res[256];
	pid_t pids[256];
	uint64_t rss0 = 0, anon0 = 0, rss, anon, rpeak = 0, apeak = 0;
	uint64_t t0 = UINT64_MAX, t1 = 0, ops = 0, bytes = 0, errors = 0,
		 nlat = 0, *lat;
	struct res_hdr h;
	char c = 1;

	parse_args(argc, argv);
	if (cfg.procs > 256)
		die("at most 256 processes");
	prepare();
	if (pipe(ready) != 0 || pipe(go) != 0)
		die("pipe: %s", strerror(errno));
	fflush(stdout);
	for (i = 0; i < cfg.procs; i++) {
		res[i] = tmpfile();
		if (res[i] == NULL)
			die("tmpfile: %s", strerror(errno));
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0)
			child(i, ready[1], go[0], fileno(res[i]));
	}
	for (i = 0; i < cfg.procs; i++)
		if (read(ready[0], &c, 1) != 1)
			die("a client process failed before the start");
	if (cfg.rss_pid) {
		sample_rss(cfg.rss_pid, &rss0, &anon0);
		rpeak = rss0, apeak = anon0;
	}
	for (i = 0; i < cfg.procs; i++)
		if (write(go[1], &c, 1) != 1)
			die("go: %s", strerror(errno));
	for (live = cfg.procs; live > 0;) {
		pid_t w = waitpid(-1, &status, cfg.rss_pid ? WNOHANG : 0);

		if (w > 0) {
			live--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed = 1;
		} else if (w < 0 && errno != EINTR) {
			die("waitpid: %s", strerror(errno));
		}
		if (cfg.rss_pid) {
			sample_rss(cfg.rss_pid, &rss, &anon);
			rpeak = rss > rpeak ? rss : rpeak;
			apeak = anon > apeak ? anon : apeak;
			if (w == 0)
				usleep(20000);
		}
	}
	lat = malloc(sizeof(uint64_t));
	for (i = 0; i < cfg.procs; i++) {
		rewind(res[i]);
		if (fread(&h, sizeof(h), 1, res[i]) != 1) {
			failed = 1;
			continue;
		}
		lat = realloc(lat, (nlat + h.nlat + 1) * sizeof(uint64_t));
		if (lat == NULL || fread(lat + nlat, sizeof(uint64_t), h.nlat,
					 res[i]) != h.nlat)
			die("reading results");
		nlat += h.nlat;
		/* CLOCK_MONOTONIC is one clock for all processes */
		t0 = h.t0 < t0 ? h.t0 : t0;
		t1 = h.t1 > t1 ? h.t1 : t1;
		ops += h.ops;
		bytes += h.bytes;
		errors += h.errors;
		fclose(res[i]);
	}
	if (t1 <= t0)
		die("no client process reported");
	report(lat, nlat, bytes, errors, (double)(t1 - t0) / 1e9);
	if (cfg.rss_pid) {
		printf("# server pid %d: VmRSS %.1f -> peak %.1f MiB, "
		       "RssAnon %.1f -> peak %.1f MiB\n",
		       (int)cfg.rss_pid, rss0 / 1024.0, rpeak / 1024.0,
		       anon0 / 1024.0, apeak / 1024.0);
		result("rss_peak_MiB", rpeak / 1024.0);
		result("rss_growth_MiB", (double)(rpeak - rss0) / 1024.0);
		result("rssanon_peak_MiB", apeak / 1024.0);
		result("rssanon_growth_MiB", (double)(apeak - anon0) / 1024.0);
	}
	free(lat);
	(void)ops;
	return failed ? 1 : 0;
}
