/*
 * fuzz_target.h - the entry points every fuzz target defines, as
 * libFuzzer calls them (and t/fuzz/fuzz_main.c, the replay without
 * libFuzzer).  Declared here so that their definitions have a
 * prototype (-Wmissing-prototypes).  LLVMFuzzerInitialize is optional:
 * targets without set-up leave it out.
 */
#ifndef T_FUZZ_FUZZ_TARGET_H
#define T_FUZZ_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* T_FUZZ_FUZZ_TARGET_H */
