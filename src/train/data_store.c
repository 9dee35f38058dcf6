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

