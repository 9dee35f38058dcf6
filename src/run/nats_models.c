/* Model files in chunks in a KV bucket: see nats_models.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/log.h"
#include "run/nats_models.h"
#include "swarm/swarm.h"

roj_status nmodels_open(natsx_conn *c, const nproto_names *names,
                        int replicas, nmodels_bucket *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", names->models);
    natsx_kv_config kc = {names->models, 1, replicas > 0 ? replicas : 1, 0};
    return natsx_kv_open(c, &kc, &out->kv);
}

void nmodels_close(nmodels_bucket *b)
{
    natsx_kv_close(b->kv);
    b->kv = NULL;
}

roj_status nmodels_bind(natsx_conn *c, const nproto_names *names,
                        nmodels_bucket *out)
{
    /* natsx_kv_open checks the replica count of an existing bucket, so
     * read it from the bucket's stream first. */
    char stream[NPROTO_NAME_MAX + 8];
    snprintf(stream, sizeof stream, "KV_%s", names->models);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    memset(out, 0, sizeof *out);
    natsStatus s = js_GetStreamInfo(&si, natsx_jetstream(c), stream, NULL,
                                    &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return roj_error(ROJ_ERR_NOT_FOUND, "bucket %s does not exist: "
                         "run roj models push SWARM.yaml --nats URL on a "
                         "machine that has the model files", names->models);
    if (s != NATS_OK)
        return roj_error(ROJ_ERR_IO, "cannot read bucket %s: %s",
                         names->models, natsStatus_GetText(s));
    int replicas = (int)si->Config->Replicas;
    jsStreamInfo_Destroy(si);
    return nmodels_open(c, names, replicas, out);
}

/* ---- keys and manifests ---- */

static void chunk_key(const char *sha256, uint64_t i, char *buf,
                      size_t size)
{
    snprintf(buf, size, "%s.%" PRIu64, sha256, i);
}

static uint64_t chunk_count(uint64_t size, uint32_t chunk_size)
{
    return size / chunk_size + (size % chunk_size != 0);
}

/* Writes a key, retrying I/O errors (time-outs, leader elections) as
 * start-up calls do. */
static roj_status kv_put_retry(natsx_kv *kv, const char *key,
                               const void *data, size_t len)
{
    const double start = nproto_now_ms();
    unsigned delay = 0;
    roj_status st;
    do
        st = natsx_kv_put(kv, key, data, len, NULL);
    while (nproto_retry(st, start, &delay));
    return st;
}

static roj_status kv_get_retry(natsx_kv *kv, const char *key, bool *found,
                               char **value, size_t *len)
{
    const double start = nproto_now_ms();
    unsigned delay = 0;
    roj_status st;
    do
        st = natsx_kv_get(kv, key, found, value, len, NULL);
    while (nproto_retry(st, start, &delay));
    return st;
}

static bool json_u64(const cJSON *doc, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
        v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return false;
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* Parses and checks a manifest stored under key sha256. */
static roj_status manifest_parse(const char *text, size_t len,
                                 const char *sha256, const char *bucket,
                                 nmodels_manifest *m)
{
    memset(m, 0, sizeof *m);
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(doc, "sha256");
    uint64_t chunk_size = 0;
    bool ok = cJSON_IsObject(doc) && cJSON_IsString(name) &&
              cJSON_IsString(digest) &&
              !strcmp(digest->valuestring, sha256) &&
              json_u64(doc, "size", &m->size) &&
              json_u64(doc, "chunks", &m->chunks) &&
              json_u64(doc, "chunk_size", &chunk_size) &&
              chunk_size >= 1 && chunk_size <= NMODELS_MAX_CHUNK_SIZE;
    if (ok) {
        m->chunk_size = (uint32_t)chunk_size;
        ok = m->chunks == chunk_count(m->size, m->chunk_size);
        snprintf(m->name, sizeof m->name, "%s", name->valuestring);
        memcpy(m->sha256, sha256, SHA256_HEX_SIZE);
    }
    cJSON_Delete(doc);
    if (!ok)
        return roj_error(ROJ_ERR_FORMAT, "manifest %s in bucket %s is "
                         "malformed: expected {\"name\", \"size\", "
                         "\"chunks\", \"chunk_size\", \"sha256\"} with "
                         "chunks = size / chunk_size rounded up; push the "
                         "file again", sha256, bucket);
    return ROJ_OK;
}

roj_status nmodels_manifest_get(const nmodels_bucket *b,
                                const char *sha256, bool *found,
                                nmodels_manifest *m)
{
    char *text = NULL;
    size_t len = 0;
    roj_status st = kv_get_retry(b->kv, sha256, found, &text, &len);
    if (st == ROJ_OK && *found)
        st = manifest_parse(text, len, sha256, b->name, m);
    free(text);
    return st;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static roj_status manifest_put(const nmodels_bucket *b, const char *path,
                               const nmodels_pushed *p)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(doc, "name", base_name(path));
    cJSON_AddNumberToObject(doc, "size", (double)p->size);
    cJSON_AddNumberToObject(doc, "chunks", (double)p->chunks);
    cJSON_AddNumberToObject(doc, "chunk_size", NMODELS_CHUNK_SIZE);
    cJSON_AddStringToObject(doc, "sha256", p->sha256);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = kv_put_retry(b->kv, p->sha256, text, strlen(text));
    free(text);
    return st;
}

/* ---- push ---- */

/* Marks in have[] the chunks of sha256 already in the bucket. */
static roj_status chunks_present(const nmodels_bucket *b, const char *sha256,
                                 uint64_t n_chunks, bool *have,
                                 uint64_t *n_have)
{
    char prefix[NPROTO_NAME_MAX];
    char **keys = NULL;
    size_t n = 0;
    snprintf(prefix, sizeof prefix, "%s.", sha256);
    roj_status st = natsx_kv_keys(b->kv, prefix, &keys, &n);
    if (st)
        return st;
    *n_have = 0;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        errno = 0;
        unsigned long long k = strtoull(keys[i] + strlen(prefix), &end, 10);
        if (errno == 0 && end && *end == '\0' && k < n_chunks && !have[k]) {
            have[k] = true;
            (*n_have)++;
        }
    }
    natsx_keys_free(keys, n);
    return ROJ_OK;
}

/* Writes the chunks of the open file f, of p->size bytes, but those
 * marked in have[]. */
static roj_status chunks_put(const nmodels_bucket *b, FILE *f, const char *path,
                             const nmodels_pushed *p, const bool *have,
                             nmodels_progress_fn progress, void *ctx)
{
    char *buf = malloc(NMODELS_CHUNK_SIZE);
    if (!buf)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = ROJ_OK;
    uint64_t done = 0;
    if (progress)
        progress(ctx, path, 0, p->size);
    for (uint64_t i = 0; i < p->chunks && st == ROJ_OK; i++) {
        size_t want = p->size - done < NMODELS_CHUNK_SIZE
                          ? (size_t)(p->size - done) : NMODELS_CHUNK_SIZE;
        if (have[i]) {
            if (fseeko(f, (off_t)want, SEEK_CUR) != 0) {
                st = roj_error(ROJ_ERR_IO, "%s: seek failed at byte %"
                               PRIu64 ": %s", path, done, strerror(errno));
                break;
            }
            done += want;
            if (progress)
                progress(ctx, path, done, p->size);
            continue;
        }
        if (fread(buf, 1, want, f) != want) {
            st = roj_error(ROJ_ERR_IO, "%s: read failed at byte %" PRIu64
                           " (the file changed while it was pushed?)",
                           path, done);
            break;
        }
        char key[NPROTO_NAME_MAX];
        chunk_key(p->sha256, i, key, sizeof key);
        st = kv_put_retry(b->kv, key, buf, want);
        done += want;
        if (st == ROJ_OK && progress)
            progress(ctx, path, done, p->size);
    }
    free(buf);
    return st;
}

roj_status nmodels_push(const nmodels_bucket *b, const char *path,
                        nmodels_progress_fn progress, void *ctx,
                        nmodels_pushed *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    errno = 0;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return roj_error(ROJ_ERR_IO, "%s: %s", path,
                         errno ? strerror(errno) : "not a regular file");
    roj_status st = sha256_file(path, out->sha256);
    if (st)
        return st;
    out->size = (uint64_t)sb.st_size;
    out->chunks = chunk_count(out->size, NMODELS_CHUNK_SIZE);

    /* Skip: the same digest and size are stored already. */
    bool found = false;
    nmodels_manifest m;
    st = nmodels_manifest_get(b, out->sha256, &found, &m);
    if (st == ROJ_ERR_FORMAT) {
        log_warn("%s; overwriting it", roj_last_error());
        found = false;
    } else if (st) {
        return st;
    }
    if (found && m.size == out->size) {
        out->skipped = true;
        return ROJ_OK;
    }

    bool *have = calloc(out->chunks ? out->chunks : 1, sizeof *have);
    if (!have)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    st = chunks_present(b, out->sha256, out->chunks, have, &out->reused);
    if (st) {
        free(have);
        return st;
    }
    if (out->reused)
        log_info("%s: %" PRIu64 " of %" PRIu64 " chunks are stored from an "
                 "earlier push; sending the rest", path, out->reused,
                 out->chunks);
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(have);
        return roj_error(ROJ_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    }
    st = chunks_put(b, f, path, out, have, progress, ctx);
    fclose(f);
    free(have);
    if (st == ROJ_OK)
        st = manifest_put(b, path, out);
    return st;
}

static int manifest_compare(const void *a, const void *b)
{
    return strcmp(((const nmodels_manifest *)a)->sha256,
                  ((const nmodels_manifest *)b)->sha256);
}

roj_status nmodels_list(const nmodels_bucket *b, nmodels_manifest **out,
                        size_t *n)
{
    *out = NULL;
    *n = 0;
    char **keys = NULL;
    size_t n_keys = 0;
    /* Manifests are the one-token keys; chunks ("SHA256.N") have two. */
    roj_status st = natsx_kv_keys_matching(b->kv, "*", &keys, &n_keys);
    if (st)
        return st;
    nmodels_manifest *list = calloc(n_keys ? n_keys : 1, sizeof *list);
    if (!list) {
        natsx_keys_free(keys, n_keys);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    size_t count = 0;
    for (size_t i = 0; i < n_keys && st == ROJ_OK; i++) {
        if (strchr(keys[i], '.'))
            continue; /* a chunk */
        bool found = false;
        st = nmodels_manifest_get(b, keys[i], &found, &list[count]);
        if (st == ROJ_ERR_FORMAT) {
            log_warn("%s", roj_last_error());
            st = ROJ_OK;
        } else if (st == ROJ_OK && found) {
            count++;
        }
    }
    natsx_keys_free(keys, n_keys);
    if (st) {
        free(list);
        return st;
    }
    qsort(list, count, sizeof *list, manifest_compare);
    *out = list;
    *n = count;
    return ROJ_OK;
}

/* ---- fetch ---- */

/* Creates every missing folder above path, like mkdir -p on its
 * dirname. */
static roj_status folders_make(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = ROJ_OK;
    for (char *p = copy + 1; *p && st == ROJ_OK; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST)
            st = roj_error(ROJ_ERR_IO, "cannot create folder %s: %s", copy,
                           strerror(errno));
        *p = '/';
    }
    free(copy);
    return st;
}

static roj_status write_all(int fd, const char *data, size_t len,
                            const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return roj_error(ROJ_ERR_IO, "%s: write failed: %s", path,
                             n < 0 ? strerror(errno) : "no progress");
        data += n;
        len -= (size_t)n;
    }
    return ROJ_OK;
}

/* Writes every chunk of m to fd, hashing them into digest. */
static roj_status chunks_get(const nmodels_bucket *b,
                             const nmodels_manifest *m,
                             int fd, const char *tmp, const char *what,
                             nmodels_progress_fn progress, void *ctx,
                             const char *path, char digest[SHA256_HEX_SIZE])
{
    sha256_ctx hash;
    sha256_init(&hash);
    uint64_t done = 0;
    if (progress)
        progress(ctx, path, 0, m->size);
    for (uint64_t i = 0; i < m->chunks; i++) {
        char key[NPROTO_NAME_MAX];
        chunk_key(m->sha256, i, key, sizeof key);
        bool found = false;
        char *data = NULL;
        size_t len = 0;
        roj_status st = kv_get_retry(b->kv, key, &found, &data, &len);
        if (st)
            return roj_error_wrap(st, "%s", what);
        uint64_t want = m->size - done < m->chunk_size ? m->size - done
                                                       : m->chunk_size;
        if (!found)
            st = roj_error(ROJ_ERR_NOT_FOUND, "%s: chunk %s is missing from "
                           "bucket %s; push the file again with roj models "
                           "push", what, key, b->name);
        else if (len != want)
            st = roj_error(ROJ_ERR_FORMAT, "%s: chunk %s in bucket %s has "
                           "%zu bytes, expected %" PRIu64 "; push the file "
                           "again with roj models push", what, key,
                           b->name, len, want);
        else
            st = write_all(fd, data, len, tmp);
        if (st == ROJ_OK)
            sha256_update(&hash, data, len);
        free(data);
        if (st)
            return st;
        done += len;
        if (progress)
            progress(ctx, path, done, m->size);
    }
    uint8_t raw[SHA256_DIGEST_SIZE];
    sha256_final(&hash, raw);
    sha256_hex(raw, digest);
    return ROJ_OK;
}

roj_status nmodels_fetch(const nmodels_bucket *b, const char *sha256,
                         const char *path,
                         const char *what, nmodels_progress_fn progress,
                         void *ctx)
{
    bool found = false;
    nmodels_manifest m;
    roj_status st = nmodels_manifest_get(b, sha256, &found, &m);
    if (st)
        return roj_error_wrap(st, "%s", what);
    if (!found)
        return roj_error(ROJ_ERR_NOT_FOUND, "%s: sha256 %s is not in bucket "
                         "%s; run roj models push on a machine that has "
                         "the file, or copy it to %s", what, sha256,
                         b->name, path);
    if ((st = folders_make(path)))
        return roj_error_wrap(st, "%s", what);

    /* A temporary file beside path, so the rename is atomic and a
     * crash leaves no partial file under the model's name.
     * NOTE: a crash leaves PATH.part-XXXXXX behind; nothing removes it. */
    size_t tmp_size = strlen(path) + 16;
    char *tmp = malloc(tmp_size);
    if (!tmp)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    snprintf(tmp, tmp_size, "%s.part-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = roj_error(ROJ_ERR_IO, "%s: cannot create %s: %s", what, tmp,
                       strerror(errno));
        free(tmp);
        return st;
    }
    char digest[SHA256_HEX_SIZE];
    st = chunks_get(b, &m, fd, tmp, what, progress, ctx, path, digest);
    if (st == ROJ_OK && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        st = roj_error(ROJ_ERR_IO, "%s: %s: %s", what, tmp,
                       strerror(errno));
    if (close(fd) != 0 && st == ROJ_OK)
        st = roj_error(ROJ_ERR_IO, "%s: %s: %s", what, tmp,
                       strerror(errno));
    if (st == ROJ_OK && strcmp(digest, sha256) != 0)
        st = roj_error(ROJ_ERR_FORMAT, "%s: digest mismatch: the file "
                       "fetched from bucket %s has sha256 %s, the swarm "
                       "file expects %s. The stored copy is damaged: push "
                       "the file again with roj models push", what,
                       b->name, digest, sha256);
    if (st == ROJ_OK && rename(tmp, path) != 0)
        st = roj_error(ROJ_ERR_IO, "%s: cannot rename %s to %s: %s", what,
                       tmp, path, strerror(errno));
    if (st)
        unlink(tmp);
    free(tmp);
    return st;
}

/* ---- the agent's pre-pass ---- */

/* Checks that every missing file has a digest; counts them. */
static roj_status missing_check(const swarm_file_list *list,
                                const char *swarm_path, bool *missing,
                                size_t *n_missing)
{
    *n_missing = 0;
    for (size_t i = 0; i < list->n_files; i++) {
        const swarm_named_file *f = &list->files[i];
        struct stat sb;
        missing[i] = stat(f->path, &sb) != 0 && errno == ENOENT;
        if (!missing[i])
            continue;
        if (!f->sha256)
            return roj_error(ROJ_ERR_NOT_FOUND, "%s:%u:%u: %s: file \"%s\" "
                             "not found, and the swarm file gives no sha256 "
                             "to fetch it from the cluster with. Write "
                             "{path: ..., sha256: ...} with the digest that "
                             "roj models push prints, or copy the file "
                             "there", swarm_path, f->mark.line,
                             f->mark.column, f->field, f->path);
        (*n_missing)++;
    }
    return ROJ_OK;
}

static roj_status missing_fetch(const swarm_file_list *list,
                                const bool *missing, const char *swarm_path,
                                const natsx_options *opt,
                                nmodels_progress_fn progress, void *ctx,
                                size_t *fetched)
{
    swarm_file stub = {.path = swarm_path, .name = list->name};
    nproto_names names;
    natsx_conn *conn = NULL;
    nmodels_bucket bucket = {0};
    roj_status st = nproto_names_init(&stub, &names);
    if (st == ROJ_OK)
        st = natsx_connect(opt, &conn);
    if (st == ROJ_OK)
        st = nmodels_bind(conn, &names, &bucket);
    for (size_t i = 0; i < list->n_files && st == ROJ_OK; i++) {
        const swarm_named_file *f = &list->files[i];
        if (!missing[i])
            continue;
        log_info("fetching %s (sha256 %.16s...) from bucket %s to %s",
                 f->field, f->sha256, names.models, f->path);
        st = nmodels_fetch(&bucket, f->sha256, f->path, f->field, progress,
                           ctx);
        if (st == ROJ_OK)
            (*fetched)++;
    }
    nmodels_close(&bucket);
    natsx_close(conn);
    return st;
}

roj_status nmodels_fetch_missing(const char *swarm_path,
                                 const natsx_options *opt,
                                 nmodels_progress_fn progress, void *ctx,
                                 size_t *fetched)
{
    size_t count = 0;
    if (fetched)
        *fetched = 0;
    swarm_file_list *list = NULL;
    roj_status st = swarm_files_read(swarm_path, &list);
    if (st)
        return st;
    bool *missing = calloc(list->n_files ? list->n_files : 1,
                           sizeof *missing);
    size_t n_missing = 0;
    if (!missing)
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
    else
        st = missing_check(list, swarm_path, missing, &n_missing);
    if (st == ROJ_OK && n_missing > 0)
        st = missing_fetch(list, missing, swarm_path, opt, progress, ctx,
                           &count);
    free(missing);
    swarm_file_list_free(list);
    if (fetched)
        *fetched = count;
    return st;
}
