/*
 * A hash map from byte strings to uint32 values: open addressing with
 * linear probing, at most half full. Keys are not copied, so they must
 * outlive the map.
 */
#ifndef ROJ_CORE_STRMAP_H
#define ROJ_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

typedef struct strmap_entry {
    const char *key; /* NULL: empty entry */
    size_t len;
    uint64_t hash;
    uint32_t value;
} strmap_entry;

typedef struct strmap {
    strmap_entry *entries; /* (cap), cap a power of two or 0 */
    size_t cap;
    size_t n;
} strmap;

#define STRMAP_MISSING UINT32_MAX

/* Returns the value stored for key, or STRMAP_MISSING. */
uint32_t strmap_get(const strmap *m, const char *key, size_t len);

/* Stores value for key, replacing any earlier value. Returns
 * ROJ_ERR_NOMEM when the table cannot grow. */
roj_status strmap_put(strmap *m, const char *key, size_t len,
                      uint32_t value);

void strmap_free(strmap *m);

#endif
