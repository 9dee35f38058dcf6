/*
 * Storage for loaded data: a chunked arena for strings and example arrays,
 * and an open-addressing hash map from byte strings to ids.
 */
#include <stdlib.h>
#include <string.h>

#include "train/data_internal.h"

#define ARENA_CHUNK_MIN ((size_t)64 * 1024)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} arena_chunk;

struct data_arena {
    arena_chunk *head; /* newest chunk first */
};

data_arena *data_arena_create(void)
{
    return calloc(1, sizeof(data_arena));
}

void data_arena_destroy(data_arena *a)
{
    if (!a)
        return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* The header size rounded up to 8 keeps every allocation 8-aligned. */
#define CHUNK_HEADER ((sizeof(arena_chunk) + 7) & ~(size_t)7)

void *data_arena_alloc(data_arena *a, size_t size)
{
    size_t need = (size + 7) & ~(size_t)7;
    if (need < size)
        return NULL;
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t chunk = need > ARENA_CHUNK_MIN ? need : ARENA_CHUNK_MIN;
        if (chunk > SIZE_MAX - CHUNK_HEADER)
            return NULL;
        c = malloc(CHUNK_HEADER + chunk);
        if (!c)
            return NULL;
        c->size = chunk;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c + CHUNK_HEADER + c->used;
    c->used += need;
    return p;
}

char *data_arena_strndup(data_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *copy = data_arena_alloc(a, len + 1);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

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

static const data_strmap_entry *strmap_find(const data_strmap *m,
                                            const char *key, size_t len,
                                            uint64_t hash)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const data_strmap_entry *e = &m->entries[i];
        if (!e->key)
            return e;
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

uint32_t data_strmap_get(const data_strmap *m, const char *key, size_t len)
{
    if (m->cap == 0)
        return DATA_STRMAP_MISSING;
    const data_strmap_entry *e = strmap_find(m, key, len, hash_bytes(key, len));
    return e->key ? e->value : DATA_STRMAP_MISSING;
}

/* Doubles the table (or makes the first one) and reinserts every entry. */
static roj_status strmap_grow(data_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(data_strmap_entry))
        return ROJ_ERR_NOMEM;
    data_strmap_entry *entries = calloc(cap, sizeof *entries);
    if (!entries)
        return ROJ_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        const data_strmap_entry *e = &m->entries[i];
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

roj_status data_strmap_put(data_strmap *m, const char *key, size_t len,
                           uint32_t value)
{
    /* Keep the load factor at or below one half. */
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != ROJ_OK)
        return ROJ_ERR_NOMEM;
    uint64_t hash = hash_bytes(key, len);
    data_strmap_entry *e =
        (data_strmap_entry *)strmap_find(m, key, len, hash);
    if (!e->key)
        m->n++;
    e->key = key;
    e->len = len;
    e->hash = hash;
    e->value = value;
    return ROJ_OK;
}

void data_strmap_free(data_strmap *m)
{
    free(m->entries);
    memset(m, 0, sizeof *m);
}
