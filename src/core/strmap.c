/* The string map of strmap.h. */
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64-bit. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static const strmap_entry *strmap_find(const strmap *m, const char *key,
                                       size_t len, uint64_t hash)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const strmap_entry *e = &m->entries[i];
        if (!e->key)
            return e;
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

uint32_t strmap_get(const strmap *m, const char *key, size_t len)
{
    if (m->cap == 0)
        return STRMAP_MISSING;
    const strmap_entry *e = strmap_find(m, key, len,
                                        hash_bytes(key, len));
    return e->key ? e->value : STRMAP_MISSING;
}

/* Doubles the table (or makes the first one) and reinserts every entry. */
static roj_status strmap_grow(strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(strmap_entry))
        return ROJ_ERR_NOMEM;
    strmap_entry *entries = calloc(cap, sizeof *entries);
    if (!entries)
        return ROJ_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        const strmap_entry *e = &m->entries[i];
        if (!e->key)
            continue;
        size_t j = e->hash & (cap - 1);
        while (entries[j].key)
            j = (j + 1) & (cap - 1);
        entries[j] = *e;
    }
    free(m->entries);
    m->entries = entries;
    m->cap = cap;
    return ROJ_OK;
}

roj_status strmap_put(strmap *m, const char *key, size_t len,
                      uint32_t value)
{
    /* Keep the load factor at or below one half. */
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != ROJ_OK)
        return ROJ_ERR_NOMEM;
    uint64_t hash = hash_bytes(key, len);
    strmap_entry *e = (strmap_entry *)strmap_find(m, key, len, hash);
    if (!e->key)
        m->n++;
    e->key = key;
    e->len = len;
    e->hash = hash;
    e->value = value;
    return ROJ_OK;
}

void strmap_free(strmap *m)
{
    free(m->entries);
    memset(m, 0, sizeof *m);
}
