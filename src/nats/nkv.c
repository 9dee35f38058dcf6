/*
 * Key-value calls with explicit outcomes. nats.c 3.4.1 reports a lost
 * compare-and-set (create on an existing key, update with a stale
 * revision) as a plain NATS_ERR whose text is "wrong last sequence: N"
 * (JetStream error 10071). Its KV calls have no JetStream error code
 * parameter, so the text is the only way to tell a conflict from a
 * failure.
 */
#define _GNU_SOURCE
#include "nats/natsx_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Whether the last failed KV write lost a compare-and-set. */
static bool last_was_conflict(natsStatus s)
{
    return s == NATS_ERR && natsx_last_text_has("wrong last sequence");
}

static roj_status check_len(const natsx_kv *kv, const char *key, size_t len)
{
    if (len > INT_MAX)
        return roj_error(ROJ_ERR_RANGE, "nats: value of %s in bucket %s is "
                         "%zu bytes, more than nats.c takes", key,
                         kv->bucket, len);
    return ROJ_OK;
}

roj_status natsx_kv_get(natsx_kv *kv, const char *key, bool *found,
                        char **value, size_t *len, uint64_t *revision)
{
    kvEntry *e = NULL;

    *found = false;
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (revision)
        *revision = 0;
    natsStatus s = kvStore_Get(&e, kv->kv, key);
    if (s == NATS_NOT_FOUND)
        return ROJ_OK;
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot read %s from "
                          "bucket %s", key, kv->bucket);

    int n = kvEntry_ValueLen(e);
    if (value) {
        char *copy = malloc((size_t)n + 1);
        if (!copy) {
            kvEntry_Destroy(e);
            return roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
        }
        if (n > 0)
            memcpy(copy, kvEntry_Value(e), (size_t)n);
        copy[n] = '\0';
        *value = copy;
    }
    if (len)
        *len = (size_t)n;
    if (revision)
        *revision = kvEntry_Revision(e);
    *found = true;
    kvEntry_Destroy(e);
    return ROJ_OK;
}

roj_status natsx_kv_create(natsx_kv *kv, const char *key, const void *value,
                           size_t len, natsx_kv_outcome *outcome,
                           uint64_t *revision)
{
    uint64_t rev = 0;
    roj_status st = check_len(kv, key, len);

    if (revision)
        *revision = 0;
    if (st != ROJ_OK)
        return st;
    natsStatus s = kvStore_Create(&rev, kv->kv, key, value, (int)len);
    if (s == NATS_OK) {
        *outcome = NATSX_KV_CREATED;
        if (revision)
            *revision = rev;
        return ROJ_OK;
    }
    if (last_was_conflict(s)) {
        *outcome = NATSX_KV_EXISTS;
        return ROJ_OK;
    }
    return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot create %s in bucket "
                      "%s", key, kv->bucket);
}

roj_status natsx_kv_update(natsx_kv *kv, const char *key, const void *value,
                           size_t len, uint64_t last_revision,
                           natsx_kv_outcome *outcome, uint64_t *revision)
{
    uint64_t rev = 0;
    roj_status st = check_len(kv, key, len);

    if (revision)
        *revision = 0;
    if (st != ROJ_OK)
        return st;
    natsStatus s = kvStore_Update(&rev, kv->kv, key, value, (int)len,
                                  last_revision);
    if (s == NATS_OK) {
        *outcome = NATSX_KV_UPDATED;
        if (revision)
            *revision = rev;
        return ROJ_OK;
    }
    if (last_was_conflict(s)) {
        *outcome = NATSX_KV_CONFLICT;
        return ROJ_OK;
    }
    return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot update %s in bucket "
                      "%s at revision %llu", key, kv->bucket,
                      (unsigned long long)last_revision);
}

roj_status natsx_kv_put(natsx_kv *kv, const char *key, const void *value,
                        size_t len, uint64_t *revision)
{
    uint64_t rev = 0;
    roj_status st = check_len(kv, key, len);

    if (revision)
        *revision = 0;
    if (st != ROJ_OK)
        return st;
    natsStatus s = kvStore_Put(&rev, kv->kv, key, value, (int)len);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot write %s to "
                          "bucket %s", key, kv->bucket);
    if (revision)
        *revision = rev;
    return ROJ_OK;
}

roj_status natsx_kv_delete(natsx_kv *kv, const char *key)
{
    natsStatus s = kvStore_Delete(kv->kv, key);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot delete %s from "
                          "bucket %s", key, kv->bucket);
    return ROJ_OK;
}

void natsx_keys_free(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends a copy of key to the growing array. */
static roj_status keys_push(char ***keys, size_t *n, size_t *cap,
                            const char *key)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        char **bigger = realloc(*keys, grown * sizeof *bigger);
        if (!bigger)
            return roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
        *keys = bigger;
        *cap = grown;
    }
    if (!((*keys)[*n] = strdup(key)))
        return roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
    (*n)++;
    return ROJ_OK;
}

/* Lists the live keys that match the subject filter through a watcher on
 * it, so the server sends only those keys (and no values). */
static roj_status keys_by_subject(natsx_kv *kv, const char *filter,
                                  char ***keys, size_t *n, size_t *cap)
{
    kvWatcher *w = NULL;
    kvWatchOptions wo;
    roj_status st = ROJ_OK;

    kvWatchOptions_Init(&wo);
    wo.IgnoreDeletes = true;
    wo.MetaOnly = true;
    natsStatus s = kvStore_Watch(&w, kv->kv, filter, &wo);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot list keys %s in "
                          "bucket %s", filter, kv->bucket);

    /* The initial values end with a NULL entry. */
    for (;;) {
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, NATSX_API_WAIT_MS);
        if (s != NATS_OK) {
            st = natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot list keys %s "
                            "in bucket %s", filter, kv->bucket);
            break;
        }
        if (!e)
            break;
        st = keys_push(keys, n, cap, kvEntry_Key(e));
        kvEntry_Destroy(e);
        if (st != ROJ_OK)
            break;
    }
    kvWatcher_Destroy(w);
    return st;
}

/* Lists every live key and keeps those that start with prefix. */
static roj_status keys_by_scan(natsx_kv *kv, const char *prefix,
                               char ***keys, size_t *n, size_t *cap)
{
    kvKeysList list = {0};
    kvWatchOptions wo;
    roj_status st = ROJ_OK;
    size_t plen = strlen(prefix);

    kvWatchOptions_Init(&wo);
    wo.Timeout = NATSX_API_WAIT_MS;
    natsStatus s = kvStore_Keys(&list, kv->kv, &wo);
    if (s == NATS_NOT_FOUND)
        return ROJ_OK;
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot list the keys of "
                          "bucket %s", kv->bucket);
    for (int i = 0; i < list.Count && st == ROJ_OK; i++)
        if (strncmp(list.Keys[i], prefix, plen) == 0)
            st = keys_push(keys, n, cap, list.Keys[i]);
    kvKeysList_Destroy(&list);
    return st;
}

/* Sorts a listing that succeeded; frees one that failed. Returns st. */
static roj_status keys_finish(roj_status st, char ***keys, size_t *n)
{
    if (st != ROJ_OK) {
        natsx_keys_free(*keys, *n);
        *keys = NULL;
        *n = 0;
        return st;
    }
    if (*n > 1)
        qsort(*keys, *n, sizeof **keys, compare_keys);
    return ROJ_OK;
}

roj_status natsx_kv_keys(natsx_kv *kv, const char *prefix, char ***keys,
                         size_t *n)
{
    size_t cap = 0;
    roj_status st;

    *keys = NULL;
    *n = 0;
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    if (plen > 0 && plen < 1000 && prefix[plen - 1] == '.' &&
        !strpbrk(prefix, "*>")) {
        char filter[1024];
        snprintf(filter, sizeof filter, "%s>", prefix);
        st = keys_by_subject(kv, filter, keys, n, &cap);
    } else {
        st = keys_by_scan(kv, prefix, keys, n, &cap);
    }
    return keys_finish(st, keys, n);
}

roj_status natsx_kv_keys_matching(natsx_kv *kv, const char *filter,
                                  char ***keys, size_t *n)
{
    size_t cap = 0;
    *keys = NULL;
    *n = 0;
    return keys_finish(keys_by_subject(kv, filter, keys, n, &cap), keys, n);
}

/* ---- Watching ---- */

struct natsx_watch {
    kvWatcher *w;
    char *bucket;
};

roj_status natsx_kv_watch(natsx_kv *kv, const char *keys, natsx_watch **out)
{
    *out = NULL;
    natsx_watch *w = calloc(1, sizeof *w);
    if (!w || !(w->bucket = strdup(kv->bucket))) {
        free(w);
        return roj_error(ROJ_ERR_NOMEM, "nats: watching %s", kv->bucket);
    }
    natsStatus s = kvStore_Watch(&w->w, kv->kv, keys, NULL);
    if (s != NATS_OK) {
        free(w->bucket);
        free(w);
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot watch %s in "
                          "bucket %s", keys, kv->bucket);
    }
    *out = w;
    return ROJ_OK;
}

roj_status natsx_watch_next(natsx_watch *w, uint32_t timeout_ms,
                            natsx_change *change)
{
    memset(change, 0, sizeof *change);
    kvEntry *e = NULL;
    natsStatus s = kvWatcher_Next(&e, w->w, (int64_t)timeout_ms);
    if (s == NATS_TIMEOUT)
        return ROJ_OK;
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: watching bucket %s",
                          w->bucket);
    if (!e) {
        change->kind = NATSX_CHANGE_END_OF_INITIAL;
        return ROJ_OK;
    }
    kvOperation op = kvEntry_Operation(e);
    const char *key = kvEntry_Key(e);
    int len = kvEntry_ValueLen(e);
    const void *value = kvEntry_Value(e);
    change->key = strdup(key ? key : "");
    change->value = malloc((size_t)(len > 0 ? len : 0) + 1);
    if (!change->key || !change->value) {
        kvEntry_Destroy(e);
        natsx_change_clear(change);
        return roj_error(ROJ_ERR_NOMEM, "nats: watching bucket %s",
                         w->bucket);
    }
    if (len > 0)
        memcpy(change->value, value, (size_t)len);
    change->value[len > 0 ? len : 0] = '\0';
    change->len = (size_t)(len > 0 ? len : 0);
    change->revision = kvEntry_Revision(e);
    change->kind = op == kvOp_Put ? NATSX_CHANGE_PUT : NATSX_CHANGE_DELETE;
    kvEntry_Destroy(e);
    return ROJ_OK;
}

void natsx_change_clear(natsx_change *change)
{
    free(change->key);
    free(change->value);
    memset(change, 0, sizeof *change);
}

void natsx_watch_close(natsx_watch *w)
{
    if (!w)
        return;
    kvWatcher_Stop(w->w);
    kvWatcher_Destroy(w->w);
    free(w->bucket);
    free(w);
}
