/* Training checkpoints: one GGUF with the trainable values, both AdamW
 * moments, the loop position and the loss history, written atomically, so
 * a run killed at any moment resumes from the last complete checkpoint
 * and ends with the same weights as an uninterrupted run. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf.h"
#include "train/train_loop.h"

#define CKPT_VERSION 1u

static roj_status add_vec(gguf_writer *w, const char *name, const float *v,
                          int64_t n)
{
    static const float zero = 0.0f;
    const int64_t ne[1] = {n > 0 ? n : 1};
    return gguf_writer_add_tensor(w, name, ROJ_TYPE_F32, 1, ne,
                                  n > 0 ? v : &zero,
                                  (uint64_t)ne[0] * sizeof(float));
}

roj_status tloop_save(tloop *L, const char *path)
{
    gguf_writer *w;
    roj_status st = gguf_writer_create(&w);
    if (st)
        return st;
    const tloop_pos *p = &L->pos;
    if (!(st = gguf_writer_set_str(w, "general.type", "roj-checkpoint")) &&
        !(st = gguf_writer_set_u32(w, "roj.ckpt.version", CKPT_VERSION)) &&
        !(st = gguf_writer_set_str(w, "roj.ckpt.digest", L->digest)) &&
        !(st = gguf_writer_set_str(w, "roj.ckpt.options", L->options)) &&
        !(st = gguf_writer_set_u32(w, "roj.ckpt.threads",
                                   (uint32_t)L->n_threads)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.step", (uint64_t)p->step)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.epoch", (uint64_t)p->epoch)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.cursor",
                                   (uint64_t)p->cursor)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.total_steps",
                                   (uint64_t)p->total_steps)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.n_eval",
                                   (uint64_t)L->n_ev)) &&
        !(st = gguf_writer_set_u64(w, "roj.ckpt.microseconds",
                                   (uint64_t)(p->seconds * 1e6))) &&
        !(st = gguf_writer_set_f32(w, "roj.ckpt.best_valid_acc",
                                   (float)L->best_valid_acc)) &&
        !(st = gguf_writer_set_f32(w, "roj.ckpt.last_valid_acc",
                                   (float)L->last_valid_acc)) &&
        !(st = gguf_writer_set_f32(w, "roj.ckpt.last_valid_loss",
                                   (float)L->last_valid_loss)) &&
        !(st = add_vec(w, "ckpt.params", L->m->params, L->m->n_params)) &&
        !(st = add_vec(w, "ckpt.mom", L->mom, L->m->n_params)) &&
        !(st = add_vec(w, "ckpt.vel", L->vel, L->m->n_params)) &&
        !(L->ema && (st = add_vec(w, "ckpt.ema", L->ema, L->m->n_params))) &&
        !(L->best && L->have_best &&
          ((st = add_vec(w, "ckpt.best", L->best, L->m->n_params)) ||
           (st = gguf_writer_set_f32(w, "roj.ckpt.best_valid_loss",
                                     (float)L->best_valid_loss)))) &&
        !(st = add_vec(w, "ckpt.hist_loss", L->hist_loss, p->step)) &&
        !(st = add_vec(w, "ckpt.ev_step", L->ev_step, L->n_ev)) &&
        !(st = add_vec(w, "ckpt.ev_loss", L->ev_loss, L->n_ev)) &&
        !(st = add_vec(w, "ckpt.ev_acc", L->ev_acc, L->n_ev)) &&
        L->write_meta)
        st = L->write_meta(L->meta_ctx, w);
    if (!st)
        st = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return st;
}

static roj_status get_vec(const gguf_file *f, const char *name, float *dst,
                          int64_t n)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    const int64_t want = n > 0 ? n : 1;
    if (!t || t->type != ROJ_TYPE_F32 || t->n_dims != 1 || t->ne[0] != want)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: checkpoint tensor %s is missing or has the "
                         "wrong size (want %lld floats)", gguf_path(f), name,
                         (long long)want);
    if (n > 0)
        memcpy(dst, t->data, (size_t)n * sizeof(float));
    return ROJ_OK;
}

static roj_status get_u64(const gguf_file *f, const char *key, int64_t *out)
{
    uint64_t v;
    roj_status st = gguf_get_u64(f, key, &v);
    if (!st && v > (uint64_t)INT64_MAX)
        st = roj_error(ROJ_ERR_RANGE, "%s: %s is out of range",
                       gguf_path(f), key);
    if (!st)
        *out = (int64_t)v;
    return st;
}

/* Finds field key (klen bytes, '=' included) in a list of fields
 * separated by OPT_SEP; returns its value and length, or NULL. */
#define OPT_SEP '\037'

static const char *find_field(const char *list, size_t n, const char *key,
                              size_t klen, size_t *vlen)
{
    const char *p = list, *end = list + n;
    while (p < end) {
        const char *sep = memchr(p, OPT_SEP, (size_t)(end - p));
        const char *fe = sep ? sep : end;
        if ((size_t)(fe - p) >= klen && !memcmp(p, key, klen)) {
            *vlen = (size_t)(fe - p) - klen;
            return p + klen;
        }
        p = fe + 1;
    }
    return NULL;
}

/* Names the key=value fields that differ between the option lists of the
 * checkpoint and of this run, e.g. "lr was 0.001, now 0.003". */
static void options_diff(const char *old, size_t olen, const char *now,
                         char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *p = old, *end = old + olen;
    while (p < end && n + 100 < cap) {
        const char *sep = memchr(p, OPT_SEP, (size_t)(end - p));
        const char *fe = sep ? sep : end;
        const char *eq = memchr(p, '=', (size_t)(fe - p));
        if (eq) {
            const size_t klen = (size_t)(eq - p) + 1;
            const size_t ovlen = (size_t)(fe - eq - 1);
            size_t nvlen = 0;
            const char *nv = find_field(now, strlen(now), p, klen, &nvlen);
            if (!nv || nvlen != ovlen || memcmp(nv, eq + 1, ovlen))
                n += (size_t)snprintf(
                    out + n, cap - n, "%s%.*s was %.*s, now %.*s",
                    n ? "; " : "", (int)(klen - 1), p,
                    (int)(ovlen > 24 ? 24 : ovlen), eq + 1,
                    (int)(nvlen > 24 ? 24 : nvlen), nv ? nv : "?");
        }
        p = fe + 1;
    }
}

roj_status tloop_load(tloop *L, const char *path)
{
    gguf_file *f;
    roj_status st = gguf_open(path, &f);
    if (st)
        return st;
    const char *digest = NULL;
    size_t dlen = 0;
    uint32_t version = 0;
    tloop_pos p = {0};
    int64_t us = 0;
    if ((st = gguf_get_u32(f, "roj.ckpt.version", &version)) ||
        (st = gguf_get_str(f, "roj.ckpt.digest", &digest, &dlen)))
        goto done;
    if (version != CKPT_VERSION) {
        st = roj_error(ROJ_ERR_UNSUPPORTED,
                       "%s: checkpoint version %u, this roj reads %u",
                       path, version, CKPT_VERSION);
        goto done;
    }
    if (dlen != strlen(L->digest) || memcmp(digest, L->digest, dlen)) {
        const char *old = NULL;
        size_t olen = 0;
        char diff[512] = "";
        if (!gguf_get_str(f, "roj.ckpt.options", &old, &olen))
            options_diff(old, olen, L->options, diff, sizeof diff);
        st = roj_error(ROJ_ERR_INVALID_ARG,
                       "%s: checkpoint belongs to another run (%s); resume "
                       "with the options it was made with, or delete it to "
                       "start over", path,
                       diff[0] ? diff : "data, model shape or options "
                                        "differ");
        goto done;
    }
    uint32_t threads = 0;
    if (!gguf_get_u32(f, "roj.ckpt.threads", &threads) &&
        (int)threads != L->n_threads)
        roj_log(ROJ_LOG_WARN, "%s was made with %u threads, this run has "
                "%d: the result may differ in the last bits from an "
                "uninterrupted run", path, threads, L->n_threads);
    if ((st = get_u64(f, "roj.ckpt.step", &p.step)) ||
        (st = get_u64(f, "roj.ckpt.epoch", &p.epoch)) ||
        (st = get_u64(f, "roj.ckpt.cursor", &p.cursor)) ||
        (st = get_u64(f, "roj.ckpt.total_steps", &p.total_steps)) ||
        (st = get_u64(f, "roj.ckpt.microseconds", &us)))
        goto done;
    float best = 0, lacc = 0, lloss = 0;
    if ((st = gguf_get_f32(f, "roj.ckpt.best_valid_acc", &best)) ||
        (st = gguf_get_f32(f, "roj.ckpt.last_valid_acc", &lacc)) ||
        (st = gguf_get_f32(f, "roj.ckpt.last_valid_loss", &lloss)))
        goto done;
    p.seconds = (double)us * 1e-6;
    int64_t n_ev = 0;
    if ((st = get_u64(f, "roj.ckpt.n_eval", &n_ev)))
        goto done;
    L->hist_cap = p.step + 1024;
    L->ev_cap = n_ev + 64;
    free(L->hist_loss);
    free(L->ev_step);
    free(L->ev_loss);
    free(L->ev_acc);
    L->hist_loss = malloc((size_t)L->hist_cap * 4);
    L->ev_step = malloc((size_t)L->ev_cap * 4);
    L->ev_loss = malloc((size_t)L->ev_cap * 4);
    L->ev_acc = malloc((size_t)L->ev_cap * 4);
    if (!L->hist_loss || !L->ev_step || !L->ev_loss || !L->ev_acc) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* An empty history is stored as one placeholder value. */
    const bool have_ev = n_ev > 0;
    if ((st = get_vec(f, "ckpt.params", L->m->params, L->m->n_params)) ||
        (st = get_vec(f, "ckpt.mom", L->mom, L->m->n_params)) ||
        (st = get_vec(f, "ckpt.vel", L->vel, L->m->n_params)) ||
        (L->ema && (st = get_vec(f, "ckpt.ema", L->ema, L->m->n_params))) ||
        (st = get_vec(f, "ckpt.hist_loss", L->hist_loss, p.step)))
        goto done;
    if (have_ev &&
        ((st = get_vec(f, "ckpt.ev_step", L->ev_step, n_ev)) ||
         (st = get_vec(f, "ckpt.ev_loss", L->ev_loss, n_ev)) ||
         (st = get_vec(f, "ckpt.ev_acc", L->ev_acc, n_ev))))
        goto done;
    L->n_ev = have_ev ? n_ev : 0;
    L->have_best = have_ev;
    if (L->best && have_ev) {
        float bloss = 0.0f;
        if ((st = get_vec(f, "ckpt.best", L->best, L->m->n_params)) ||
            (st = gguf_get_f32(f, "roj.ckpt.best_valid_loss", &bloss)))
            goto done;
        L->best_valid_loss = bloss;
    }
    L->pos = p;
    L->best_valid_acc = best;
    L->last_valid_acc = lacc;
    L->last_valid_loss = lloss;
done:
    gguf_close(f);
    return st;
}
