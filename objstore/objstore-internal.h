/*
 * objstore-internal.h - pieces shared by the object-store backends.
 */
#ifndef OBJSTORE_INTERNAL_H
#define OBJSTORE_INTERNAL_H

#include <stdbool.h>

/* A key is non-empty, relative, has no empty, "." or ".." component and
 * no control characters, so no backend can be led outside its namespace. */
bool os_key_valid(const char *key);

#endif /* OBJSTORE_INTERNAL_H */
