/* YAML to a tree of nodes with marks, through libyaml's event parser, and
 * the arena that owns a loaded swarm file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"
#include "swarm/swarm_internal.h"

/* ---- arena ---- */

#define ARENA_CHUNK 65536
#define ARENA_ALIGN 16

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_chunk;

struct swarm_arena {
    arena_chunk *head;
    ynode *tree;
};

void arena_keep_tree(struct swarm_arena *a, ynode *tree)
{
    a->tree = tree;
}

struct swarm_arena *arena_create(void)
{
    return calloc(1, sizeof(struct swarm_arena));
}

void arena_destroy(struct swarm_arena *a)
{
    if (!a)
        return;
    yaml_tree_free(a->tree);
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *arena_alloc(struct swarm_arena *a, size_t size)
{
    if (size > SIZE_MAX - ARENA_ALIGN - sizeof(arena_chunk))
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t chunk = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        arena_chunk *fresh = malloc(sizeof *fresh + chunk);
        if (!fresh)
            return NULL;
        fresh->used = 0;
        fresh->size = chunk;
        /* A large block goes behind the current chunk so that the
         * chunk's free space stays in use. */
        if (c && size > ARENA_CHUNK) {
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = c;
            a->head = fresh;
        }
        c = fresh;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct swarm_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *arena_strdup(struct swarm_arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

/* ---- tree ---- */

static swarm_mark mark_of(yaml_mark_t m)
{
    swarm_mark out = {(uint32_t)m.line + 1, (uint32_t)m.column + 1};
    return out;
}

void yaml_tree_free(ynode *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n_items; i++)
        yaml_tree_free(node->items[i]);
    free(node->items);
    free(node->text);
    free(node);
}

static bool node_append(ynode *parent, ynode *child)
{
    if (parent->n_items == parent->cap) {
        size_t grown = parent->cap ? 2 * parent->cap : 8;
        ynode **items = realloc(parent->items, grown * sizeof *items);
        if (!items)
            return false;
        parent->items = items;
        parent->cap = grown;
    }
    parent->items[parent->n_items++] = child;
    parent->n = parent->kind == YNODE_MAP ? parent->n_items / 2
                                          : parent->n_items;
    return true;
}

int ynode_compare(const void *a, const void *b)
{
    const ynode *x = *(ynode *const *)a;
    const ynode *y = *(ynode *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    /* Equal keys: the earlier one first, so the report names the later. */
    if (x->mark.line != y->mark.line)
        return x->mark.line < y->mark.line ? -1 : 1;
    return x->mark.column < y->mark.column ? -1
           : x->mark.column > y->mark.column;
}

/* Keys are sorted, so the check costs n log n even for huge maps. */
static roj_status check_duplicates(const ynode *map, const char *path)
{
    if (map->n < 2)
        return ROJ_OK;
    ynode **keys = malloc(map->n * sizeof *keys);
    if (!keys)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < map->n; i++)
        keys[i] = map->items[2 * i];
    qsort(keys, map->n, sizeof *keys, ynode_compare);
    roj_status st = ROJ_OK;
    for (size_t i = 1; i < map->n && !st; i++) {
        const ynode *a = keys[i - 1], *b = keys[i];
        if (a->len == b->len && !memcmp(a->text, b->text, a->len)) {
            char quoted[80];
            st = roj_error(ROJ_ERR_FORMAT,
                           "%s:%u:%u: duplicate key %s (first at line %u). "
                           "Remove or rename one of them.",
                           path, b->mark.line, b->mark.column,
                           diag_quote(b->text, b->len, quoted, sizeof quoted),
                           a->mark.line);
        }
    }
    free(keys);
    return st;
}

typedef struct tree_builder {
    const char *path;
    ynode *stack[SWARM_MAX_DEPTH + 1];
    size_t depth;
    size_t n_nodes;
    ynode *root;
} tree_builder;

static roj_status builder_add(tree_builder *b, ynode *node)
{
    if (++b->n_nodes > SWARM_MAX_NODES) {
        yaml_tree_free(node);
        return roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: more than %d YAML "
                         "nodes; a swarm file is far smaller", b->path,
                         node->mark.line, node->mark.column, SWARM_MAX_NODES);
    }
    if (b->depth == 0) {
        b->root = node;
        return ROJ_OK;
    }
    ynode *parent = b->stack[b->depth - 1];
    bool is_key = parent->kind == YNODE_MAP && parent->n_items % 2 == 0;
    if (is_key && node->kind != YNODE_SCALAR) {
        swarm_mark m = node->mark;
        yaml_tree_free(node);
        return roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: a mapping key must be "
                         "a plain string", b->path, m.line, m.column);
    }
    if (!node_append(parent, node)) {
        yaml_tree_free(node);
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
    }
    return ROJ_OK;
}

static ynode *node_new(ynode_kind kind, yaml_mark_t mark)
{
    ynode *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->mark = mark_of(mark);
    }
    return n;
}

static roj_status handle_event(tree_builder *b, const yaml_event_t *ev)
{
    ynode *node = NULL;
    roj_status st;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: YAML aliases (*%s) are "
                         "not supported in swarm files; write the value out",
                         b->path, (unsigned)ev->start_mark.line + 1,
                         (unsigned)ev->start_mark.column + 1,
                         (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (!(node = node_new(YNODE_SCALAR, ev->start_mark)))
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
        node->len = ev->data.scalar.length;
        node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        node->text = malloc(node->len + 1);
        if (!node->text) {
            yaml_tree_free(node);
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
        }
        memcpy(node->text, ev->data.scalar.value, node->len);
        node->text[node->len] = '\0';
        return builder_add(b, node);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth >= SWARM_MAX_DEPTH)
            return roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: nesting deeper than "
                             "%d levels", b->path,
                             (unsigned)ev->start_mark.line + 1,
                             (unsigned)ev->start_mark.column + 1,
                             SWARM_MAX_DEPTH);
        node = node_new(ev->type == YAML_MAPPING_START_EVENT ? YNODE_MAP
                                                             : YNODE_SEQ,
                        ev->start_mark);
        if (!node)
            return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", b->path);
        if ((st = builder_add(b, node)))
            return st;
        b->stack[b->depth++] = node;
        return ROJ_OK;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        node = b->stack[--b->depth];
        return node->kind == YNODE_MAP ? check_duplicates(node, b->path)
                                       : ROJ_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (b->root)
            return roj_error(ROJ_ERR_FORMAT, "%s:%u:%u: a swarm file holds "
                             "one YAML document; remove the second",
                             b->path, (unsigned)ev->start_mark.line + 1,
                             (unsigned)ev->start_mark.column + 1);
        return ROJ_OK;
    default:
        return ROJ_OK;
    }
}

roj_status yaml_tree_parse(const char *text, size_t len, const char *path,
                           ynode **out)
{
    *out = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    tree_builder b = {.path = path};
    roj_status st = ROJ_OK;
    bool done = false;
    while (!st && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            const yaml_mark_t m = parser.problem_mark;
            st = roj_error(ROJ_ERR_FORMAT,
                           "%s:%u:%u: YAML syntax error: %s%s%s",
                           path, (unsigned)m.line + 1, (unsigned)m.column + 1,
                           parser.problem ? parser.problem : "invalid input",
                           parser.context ? " " : "",
                           parser.context ? parser.context : "");
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        st = handle_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);

    if (!st && !b.root)
        st = roj_error(ROJ_ERR_FORMAT, "%s:1:1: the file is empty; a swarm "
                       "file starts with version: 1", path);
    if (st) {
        /* The root owns every node added so far. */
        yaml_tree_free(b.root);
        return st;
    }
    *out = b.root;
    return ROJ_OK;
}

const ynode *ymap_key(const ynode *map, size_t i)
{
    return map->items[2 * i];
}

const ynode *ymap_value(const ynode *map, size_t i)
{
    return map->items[2 * i + 1];
}

const ynode *ymap_get(const ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const ynode *k = ymap_key(map, i);
        if (k->len == n && !memcmp(k->text, key, n))
            return ymap_value(map, i);
    }
    return NULL;
}

bool ynode_is_null(const ynode *node)
{
    if (!node)
        return true;
    if (node->kind != YNODE_SCALAR || !node->plain)
        return false;
    return node->len == 0 || !strcmp(node->text, "~") ||
           !strcmp(node->text, "null") || !strcmp(node->text, "Null") ||
           !strcmp(node->text, "NULL");
}

const char *ynode_kind_name(const ynode *node)
{
    if (ynode_is_null(node))
        return "nothing";
    switch (node->kind) {
    case YNODE_MAP: return "a mapping";
    case YNODE_SEQ: return "a list";
    default: return "a string";
    }
}
