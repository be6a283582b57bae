/*
 * server.c - the life of tesserad's NFS server: create it from the
 * configuration, run the event loop with its signals, reload the exports
 * (in a control thread that also re-resolves their host names, so
 * neither ever runs on the loop), register with rpcbind, and shut down.
 * The transport itself (connections, records, limits) is rpc.c.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <rpc/pmap_clnt.h>
#include <rpc/rpcb_clnt.h>

#include "nfsd/nlm-internal.h"
#include "nfsd/server-internal.h"

/* ---- exports
 * ------------------------------------------------------------------ */

static int
read_text(const char *path, char **out, char **err)
{
	FILE *f = fopen(path, "r");
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096];
	size_t n;
	int rc = 0;

	if (f == NULL) {
		rc = -errno;
		*err = tl_asprintf("%s: %s", path, strerror(errno));
		return rc;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tl_buf_append(&b, chunk, n);
	if (ferror(f)) {
		rc = -EIO;
		*err = tl_asprintf("%s: read error", path);
	}
	fclose(f);
	tl_buf_append(&b, "", 1);
	*out = (char *)b.data;
	return rc;
}

/* Read, parse and resolve the exports into out: the roots in the
 * metadata, the host names with the resolver (names that do not resolve
 * now keep the addresses they have in the exports in force).  Under
 * reload_lock, or before the server runs. */
static int
load_exports(struct nfsd_server *s, struct nfsd_exports *out, char **err)
{
	const struct nfsd_exports *cur;
	char *text = NULL;
	int rc;

	if (s->exports_file == NULL) {
		nfsd_exports_default(out);
	} else {
		rc = read_text(s->exports_file, &text, err);
		if (rc == 0)
			rc = nfsd_exports_parse(text, s->exports_file, out,
						err);
		free(text);
		if (rc != 0)
			return rc;
	}
	nfsd_exports_resolve(s->ctx.meta, out);
	cur = nfsd_exports_get(&s->ctx);
	nfsd_exports_resolve_hosts(out, cur);
	nfsd_exports_put(cur);
	return 0;
}

static void
log_exports(const struct nfsd_exports *e, const char *from)
{
	if (e->n == 0)
		tl_warn("nfsd", "no usable export in %s", from);
	/* every option in effect, squash and defaults included: what an
	 * operator meant and what the file says can differ */
	for (size_t i = 0; i < e->n; i++) {
		struct tl_buf b = TL_BUF_INIT;

		for (size_t j = 0; j < e->v[i].nrules; j++) {
			tl_buf_append(&b, " ", 1);
			nfsd_rule_format(&e->v[i].rules[j], &b);
		}
		tl_buf_append(&b, "", 1);
		tl_notice("nfsd", "export %s (fsid=%u):%s", e->v[i].path,
			  e->v[i].id, (char *)b.data);
		tl_buf_free(&b);
	}
}

/* Load, log and publish the exports (under reload_lock). */
static int
reload_locked(struct nfsd_server *s, char **err)
{
	struct nfsd_exports fresh;
	int rc = load_exports(s, &fresh, err);

	if (rc != 0)
		return rc;
	log_exports(&fresh, s->exports_file != NULL ? s->exports_file
						    : "the default exports");
	nfsd_exports_publish(&s->ctx, &fresh);
	return 0;
}

int
nfsd_server_reload(struct nfsd_server *s, char **err)
{
	int rc;

	pthread_mutex_lock(&s->reload_lock);
	rc = reload_locked(s, err);
	pthread_mutex_unlock(&s->reload_lock);
	return rc;
}

int
nfsd_server_set_exports(struct nfsd_server *s, const char *file, char **err)
{
	char *old;
	int rc;

	pthread_mutex_lock(&s->reload_lock);
	old = s->exports_file;
	s->exports_file =
		file != NULL && file[0] != '\0' ? tl_strdup(file) : NULL;
	rc = reload_locked(s, err);
	if (rc != 0) {
		free(s->exports_file);
		s->exports_file = old;
	} else {
		free(old);
	}
	pthread_mutex_unlock(&s->reload_lock);
	return rc;
}

void
nfsd_server_refresh_hosts(struct nfsd_server *s)
{
	const struct nfsd_exports *cur;
	struct nfsd_exports copy;

	pthread_mutex_lock(&s->reload_lock);
	cur = nfsd_exports_get(&s->ctx);
	if (nfsd_exports_have_hosts(cur)) {
		nfsd_exports_copy(cur, &copy);
		if (nfsd_exports_resolve_hosts(&copy, cur) > 0)
			nfsd_exports_publish(&s->ctx, &copy);
		else
			nfsd_exports_free(&copy);
	}
	nfsd_exports_put(cur);
	pthread_mutex_unlock(&s->reload_lock);
}

void
nfsd_server_on_hup(struct nfsd_server *s,
		   void (*fn)(struct nfsd_server *, void *), void *arg)
{
	s->on_hup = fn;
	s->on_hup_arg = arg;
}

/* ---- the server
 * ------------------------------------------------------------------ */

/* SIGHUP, in the control thread. */
static void
hup(struct nfsd_server *s)
{
	char *err = NULL;

	if (s->on_hup != NULL) {
		s->on_hup(s, s->on_hup_arg);
		return;
	}
	if (nfsd_server_reload(s, &err) != 0) {
		tl_err("nfsd", "reload: %s; keeping the old exports", err);
		free(err);
		return;
	}
	tl_notice("nfsd", "exports reloaded");
}

/* The control thread: SIGHUP's reload (which reads files, the metadata
 * and the resolver) and the periodic re-resolution of host names, so
 * neither ever runs on the event loop. */
static void *
ctl_main(void *arg)
{
	struct nfsd_server *s = arg;
	struct timespec next;

	tl_deadline_ms(CLOCK_MONOTONIC, NFSD_HOST_REFRESH_MS, &next);
	pthread_mutex_lock(&s->ctl_lock);
	for (;;) {
		bool do_hup;
		int rc = 0;

		while (!s->ctl_stop && !s->ctl_hup && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&s->ctl_cond, &s->ctl_lock,
						    &next);
		if (s->ctl_stop)
			break;
		do_hup = s->ctl_hup;
		s->ctl_hup = false;
		pthread_mutex_unlock(&s->ctl_lock);
		if (do_hup) {
			hup(s);
		} else {
			nfsd_server_refresh_hosts(s);
			tl_deadline_ms(CLOCK_MONOTONIC, NFSD_HOST_REFRESH_MS,
				       &next);
		}
		pthread_mutex_lock(&s->ctl_lock);
	}
	pthread_mutex_unlock(&s->ctl_lock);
	return NULL;
}

static int
ctl_start(struct nfsd_server *s, char **err)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->ctl_cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&s->ctl, NULL, ctl_main, s);
	if (rc != 0) {
		*err = tl_asprintf("control thread: %s", strerror(rc));
		pthread_cond_destroy(&s->ctl_cond);
		return -rc;
	}
	s->ctl_started = true;
	return 0;
}

static void
ctl_stop(struct nfsd_server *s)
{
	if (!s->ctl_started)
		return;
	pthread_mutex_lock(&s->ctl_lock);
	s->ctl_stop = true;
	pthread_cond_signal(&s->ctl_cond);
	pthread_mutex_unlock(&s->ctl_lock);
	/* waits for a reload or a resolution in progress */
	pthread_join(s->ctl, NULL);
	pthread_cond_destroy(&s->ctl_cond);
	s->ctl_started = false;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct nfsd_server *s = arg;

	if (sig != SIGHUP) {
		tl_notice("nfsd", "signal %d: shutting down", (int)sig);
		event_base_loopbreak(s->base);
		return;
	}
	/* the loop only passes it on: a reload never holds up a client */
	pthread_mutex_lock(&s->ctl_lock);
	s->ctl_hup = true;
	pthread_cond_signal(&s->ctl_cond);
	pthread_mutex_unlock(&s->ctl_lock);
}

/* NLM and NSM: the lock manager, and NSM over UDP too. */
static int
locks_create(struct nfsd_server *s, const struct nfsd_config *cfg, char **err)
{
	struct nfsd_nlm_opts o = {
		.grace_ms = cfg->lock_grace,
		.poll_ms = cfg->lock_poll,
		.max_locks = cfg->max_locks,
		.max_locks_client = cfg->max_locks_per_client,
		.max_waiters = cfg->max_lock_waiters,
		.cb_window_ms = cfg->lock_callback_window,
	};
	int rc = nfsd_nlm_create(s->ctx.meta, &o, &s->ctx.nlm);

	if (rc != 0) {
		*err = tl_asprintf("cannot start the lock manager: %s",
				   strerror(-rc));
		return rc;
	}
	return nfsd_udp_listen(s, cfg->listen, err);
}

int
nfsd_server_locks_start(struct nfsd_server *s, uint64_t session)
{
	if (s->ctx.nlm == NULL)
		return 0;
	return nfsd_nlm_start(s->ctx.nlm, session);
}

int
nfsd_server_create(const struct nfsd_config *cfg, struct meta *m,
		   struct cache *c, struct nfsd_server **out, char **err)
{
	struct nfsd_server *s = tl_calloc(1, sizeof(*s));
	int rc;

	*err = NULL;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->waiters);
	LIST_INIT(&s->delayed);
	s->udp_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	s->ctx.meta = m;
	s->ctx.cache = c;
	s->ctx.vol = m != NULL ? meta_settings(m) : NULL;
	tl_random_bytes(s->ctx.write_verf, sizeof(s->ctx.write_verf));
	s->ctx.start_ns = tl_now_ns();
	nfsd_rpc_init(s, cfg);
	{
		struct nfsd_limit_conf lc;

		nfsd_limit_conf_from(cfg, &lc);
		s->limits = nfsd_limits_create(&lc, cfg->limit_clients);
	}
	if (cfg->drc_entries > 0 && cfg->drc_size > 0)
		s->ctx.drc = nfsd_drc_create(cfg->drc_entries, cfg->drc_size);
	pthread_mutex_init(&s->reload_lock, NULL);
	pthread_mutex_init(&s->ctl_lock, NULL);
	if (cfg->exports != NULL && cfg->exports[0] != '\0')
		s->exports_file = tl_strdup(cfg->exports);
	/* before any client can connect: a slow resolver delays the start,
	 * it stalls nobody */
	rc = reload_locked(s, err);
	if (rc != 0)
		goto fail;
	s->base = event_base_new();
	if (s->base == NULL) {
		*err = tl_strdup("cannot create the event loop");
		rc = -ENOMEM;
		goto fail;
	}
	rc = nfsd_rpc_listen(s, cfg->listen, err);
	if (rc != 0)
		goto fail;
	if (cfg->locking && m != NULL) {
		rc = locks_create(s, cfg, err);
		if (rc != 0)
			goto fail;
	}
	s->pool = tl_pool_create("nfsd", (unsigned)cfg->workers, 0);
	rc = ctl_start(s, err);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	nfsd_server_free(s);
	*out = NULL;
	return rc;
}

void
nfsd_server_drc_stats(struct nfsd_server *s, struct nfsd_drc_stats *out)
{
	if (s->ctx.drc != NULL)
		nfsd_drc_stats(s->ctx.drc, out);
	else
		memset(out, 0, sizeof(*out));
}

bool
nfsd_server_lock_stats(struct nfsd_server *s, struct nfsd_lock_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s->ctx.nlm == NULL)
		return false;
	nfsd_nlm_stats(s->ctx.nlm, out);
	if (meta_lock_total(s->ctx.meta, &out->locks) != 0)
		out->locks = 0;
	return true;
}

char **
nfsd_server_export_paths(struct nfsd_server *s, size_t *n)
{
	const struct nfsd_exports *e = nfsd_exports_get(&s->ctx);
	char **v = tl_calloc(e->n ? e->n : 1, sizeof(*v));

	for (size_t i = 0; i < e->n; i++)
		v[i] = tl_strdup(e->v[i].path);
	*n = e->n;
	nfsd_exports_put(e);
	return v;
}

unsigned
nfsd_server_port(const struct nfsd_server *s)
{
	return s->port;
}

static const struct {
	unsigned long prog, vers;
	int proto;
	bool locks; /* only when locking is on */
} rpc_progs[] = {
	{NFSD_PROG_NFS, 3, IPPROTO_TCP, false},
	{NFSD_PROG_MOUNT, 1, IPPROTO_TCP, false},
	{NFSD_PROG_MOUNT, 2, IPPROTO_TCP, false},
	{NFSD_PROG_MOUNT, 3, IPPROTO_TCP, false},
	{NFSD_PROG_NLM, 4, IPPROTO_TCP, true},
	{NFSD_PROG_NSM, 1, IPPROTO_TCP, true},
	{NFSD_PROG_NSM, 1, IPPROTO_UDP, true},
};

/* IPv6 clients ask rpcbind for netid tcp6 (udp6); pmap_set only knows
 * tcp and udp.  set false: unset. */
static bool
rpcb_v6(unsigned long prog, unsigned long vers, int proto, unsigned port,
	bool set)
{
	struct netconfig *nc =
		getnetconfigent(proto == IPPROTO_UDP ? "udp6" : "tcp6");
	struct sockaddr_in6 sa;
	struct netbuf nb = {sizeof(sa), sizeof(sa), &sa};
	bool ok;

	if (nc == NULL)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_port = htons((uint16_t)port);
	sa.sin6_addr = in6addr_any;
	rpcb_unset(prog, vers, nc);
	ok = !set || rpcb_set(prog, vers, nc, &nb);
	freenetconfigent(nc);
	return ok;
}

static bool
served(const struct nfsd_server *s, size_t i)
{
	return !rpc_progs[i].locks || s->ctx.nlm != NULL;
}

static void
unregister(struct nfsd_server *s)
{
	for (size_t i = 0; i < TL_ARRAY_SIZE(rpc_progs); i++) {
		if (!served(s, i))
			continue;
		pmap_unset(rpc_progs[i].prog, rpc_progs[i].vers);
		if (s->family == AF_INET6)
			rpcb_v6(rpc_progs[i].prog, rpc_progs[i].vers,
				rpc_progs[i].proto, 0, false);
	}
}

void
nfsd_server_register(struct nfsd_server *s)
{
	unregister(s); /* a previous instance's entries */
	for (size_t i = 0; i < TL_ARRAY_SIZE(rpc_progs); i++) {
		unsigned long prog = rpc_progs[i].prog;
		unsigned long vers = rpc_progs[i].vers;
		int proto = rpc_progs[i].proto;

		if (!served(s, i))
			continue;
		if (!pmap_set(prog, vers, proto, (int)s->port) ||
		    (s->family == AF_INET6 &&
		     !rpcb_v6(prog, vers, proto, s->port, true))) {
			tl_warn("nfsd",
				"cannot register with rpcbind (is it "
				"running?); clients must be given port=%u,"
				"mountport=%u%s",
				s->port, s->port,
				s->ctx.nlm != NULL ? " and cannot lock "
						     "(mount with nolock)"
						   : "");
			return;
		}
		s->registered = true;
	}
	tl_info("nfsd", "registered NFS v3, MOUNT v1-3%s with rpcbind",
		s->ctx.nlm != NULL ? ", NLM v4 and NSM v1" : "");
}

void
nfsd_server_catch_signals(struct nfsd_server *s)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};

	for (size_t i = 0; i < TL_ARRAY_SIZE(sigs); i++) {
		if (s->sig[i] != NULL)
			continue;
		s->sig[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
		evsignal_add(s->sig[i], NULL);
	}
}

int
nfsd_server_run(struct nfsd_server *s, bool handle_signals)
{
	int rc;

	if (handle_signals)
		nfsd_server_catch_signals(s);
	rc = event_base_dispatch(s->base);
	return rc < 0 ? -EIO : 0;
}

void
nfsd_server_stop(struct nfsd_server *s)
{
	event_base_loopbreak(s->base);
}

void
nfsd_server_free(struct nfsd_server *s)
{
	if (s == NULL)
		return;
	ctl_stop(s);
	nfsd_rpc_close(s);
	if (s->pool != NULL)
		tl_pool_destroy(s->pool); /* waits for requests in flight */
	nfsd_udp_close(s);
	nfsd_nlm_free(s->ctx.nlm); /* locks stay in the metadata */
	s->ctx.nlm = NULL;
	nfsd_rpc_free(s);
	for (size_t i = 0; i < TL_ARRAY_SIZE(s->sig); i++)
		if (s->sig[i] != NULL)
			event_free(s->sig[i]);
	/* bufferevents freed above finish (deferred callbacks, finalizers)
	 * in the loop: give it one pass so none is left behind */
	if (s->base != NULL)
		event_base_loop(s->base, EVLOOP_NONBLOCK);
	if (s->registered)
		unregister(s);
	if (s->base != NULL)
		event_base_free(s->base);
	nfsd_exports_publish(&s->ctx, NULL);
	nfsd_mnt3_reset();
	if (s->ctx.drc != NULL) {
		struct nfsd_drc_stats st;

		nfsd_drc_stats(s->ctx.drc, &st);
		tl_notice("nfsd",
			  "duplicate request cache: %llu replayed, %llu "
			  "dropped in progress, %llu run, %llu evicted",
			  (unsigned long long)st.hits,
			  (unsigned long long)st.inprogress,
			  (unsigned long long)st.misses,
			  (unsigned long long)st.evictions);
		nfsd_drc_free(s->ctx.drc);
	}
	nfsd_limits_free(s->limits);
	pthread_mutex_destroy(&s->reload_lock);
	pthread_mutex_destroy(&s->ctl_lock);
	free(s->exports_file);
	free(s);
}

void
nfsd_server_get_limits(struct nfsd_server *s, struct nfsd_limit_conf *out)
{
	nfsd_limits_get(s->limits, out);
}

void
nfsd_server_set_limits(struct nfsd_server *s, const struct nfsd_limit_conf *c)
{
	nfsd_limits_set(s->limits, c);
}

void
nfsd_server_limit_stats(struct nfsd_server *s,
			void (*fn)(void *arg,
				   const struct nfsd_limit_stats *st),
			void *arg, size_t *clients, uint64_t *evicted)
{
	const struct nfsd_exports *cur = nfsd_exports_get(&s->ctx);

	nfsd_limits_stats(s->limits, cur, fn, arg);
	nfsd_exports_put(cur);
	*clients = nfsd_limits_clients(s->limits, evicted);
}
