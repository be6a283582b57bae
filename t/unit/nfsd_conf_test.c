/*
 * nfsd_conf_test - the configuration table is the single source: every
 * option, with its default, is documented in tessera.conf(5) and listed
 * by `tesserad --help`; the man page documents no option the table lacks;
 * every command-line option is in tesserad(8); the defaults parse.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfsd.h"
#include "t/unit/tap.h"

static char *
slurp(FILE *f)
{
	struct tl_buf b = TL_BUF_INIT;
	char chunk[4096];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tl_buf_append(&b, chunk, n);
	tl_buf_append(&b, "", 1);
	return (char *)b.data;
}

int
main(void)
{
	const char *src = getenv("top_srcdir"), *bld = getenv("top_builddir");
	struct nfsd_config cfg;
	char *path, *man, *help, *cmd;
	FILE *f;

	nfsd_config_defaults(&cfg);
	CHECK(cfg.workers == 32 && cfg.buffer_limit == 256ULL << 20 &&
		      cfg.max_record_size > (1u << 20) + 4096 && cfg.rpcbind &&
		      strcmp(cfg.listen, "0.0.0.0:2049") == 0,
	      "defaults");
	nfsd_config_free(&cfg);
	if (src == NULL || bld == NULL) {
		printf("# top_srcdir/top_builddir unset: skipped\n");
		return 77;
	}
	path = tl_asprintf("%s/man/tessera.conf.5", src);
	f = fopen(path, "r");
	CHECK_FATAL(f != NULL, "%s readable", path);
	man = slurp(f);
	fclose(f);
	cmd = tl_asprintf("%s/tesserad --help", bld);
	f = popen(cmd, "r");
	CHECK_FATAL(f != NULL, "run tesserad --help");
	help = slurp(f);
	pclose(f);
	for (size_t i = 0; i < nfsd_conf_nopts; i++) {
		const struct tl_conf_opt *o = &nfsd_conf_opts[i];
		char *item = tl_asprintf(".B %s\n", o->name);
		char *def = tl_asprintf("Default: %s.",
					o->def[0] ? o->def : "empty");
		char *at = strstr(man, item);
		char *next = at ? strstr(at + 1, ".TP") : NULL;

		CHECK(at != NULL, "%s documented in tessera.conf(5)", o->name);
		CHECK(at != NULL && strstr(at, def) != NULL &&
			      (next == NULL || strstr(at, def) < next),
		      "%s: man page states \"%s\"", o->name, def);
		CHECK(strstr(help, o->name) != NULL, "%s in --help", o->name);
		free(item);
		free(def);
	}
	/* every ".TP\n.B name" in OPTIONS names a table option */
	for (char *p = strstr(man, ".TP\n.B "); p;
	     p = strstr(p + 1, ".TP\n.B ")) {
		char name[64];
		bool known = false;

		if (sscanf(p + 7, "%63[a-z_]", name) != 1)
			continue;
		for (size_t i = 0; i < nfsd_conf_nopts; i++)
			known |= strcmp(nfsd_conf_opts[i].name, name) == 0;
		CHECK(known, "man page option %s is in the table", name);
	}
	/* every long command-line option of --help is in tesserad(8) */
	free(path);
	path = tl_asprintf("%s/man/tesserad.8", src);
	f = fopen(path, "r");
	CHECK_FATAL(f != NULL, "%s readable", path);
	free(man);
	man = slurp(f);
	fclose(f);
	for (char *p = strstr(help, "--"); p; p = strstr(p + 2, "--")) {
		char name[64], *want;

		if (sscanf(p + 2, "%63[a-z-]", name) != 1)
			continue;
		/* roff spells each '-' of an option as "\\-" */
		want = tl_malloc(2 * strlen(name) + 5);
		strcpy(want, "\\-\\-");
		for (size_t k = 0, o = 4; name[k] != '\0'; k++) {
			if (name[k] == '-')
				want[o++] = '\\';
			want[o++] = name[k];
			want[o] = '\0';
		}
		CHECK(strstr(man, want) != NULL, "--%s in tesserad(8)", name);
		free(want);
	}
	free(man);
	free(help);
	free(path);
	free(cmd);
	return tap_done();
}
