/*
 * fuzz_main - replay a fuzz target's inputs without libFuzzer: the
 * regression test of the normal (gcc) build, one program per target
 * (t/fuzz/replay_TARGET, FUZZ_TARGET set at compile time).  Every file
 * in the directories named on the command line, or by default in
 * $top_srcdir/t/fuzz/corpus/TARGET and $top_srcdir/t/fuzz/regressions/
 * TARGET (which may not exist), goes through LLVMFuzzerTestOneInput
 * once; the test passes when none crashes (under the sanitizer build:
 * none trips ASan or UBSan).
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/tl.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET names the target: rpc, transport, mount, ..."
#endif

/* Targets without set-up leave it out (a weak symbol, NULL then). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		printf("# %s: cannot open\n", dir);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		char *path;
		FILE *f;
		struct tl_buf b = TL_BUF_INIT;
		char chunk[4096];
		size_t got;

		if (e->d_name[0] == '.')
			continue;
		path = tl_asprintf("%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (f != NULL) {
			while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
				tl_buf_append(&b, chunk, got);
			fclose(f);
			LLVMFuzzerTestOneInput(b.data, b.len);
			n++;
		}
		tl_buf_free(&b);
		free(path);
	}
	closedir(d);
	printf("ok - %d inputs of %s replayed\n", n, dir);
	return n;
}

int
main(int argc, char **argv)
{
	const char *top = getenv("top_srcdir");
	int total = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			total += replay_dir(argv[i]) > 0;
	} else {
		char *c, *r;

		if (top == NULL) {
			printf("# top_srcdir unset: skipped\n");
			return 77;
		}
		c = tl_asprintf("%s/t/fuzz/corpus/%s", top, FUZZ_TARGET);
		r = tl_asprintf("%s/t/fuzz/regressions/%s", top, FUZZ_TARGET);
		total += replay_dir(c) > 0;
		if (access(r, F_OK) == 0)
			replay_dir(r);
		free(c);
		free(r);
	}
	if (total == 0) {
		printf("not ok - no input replayed\n");
		return 1;
	}
	printf("1..1\n");
	return 0;
}
