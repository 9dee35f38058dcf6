/*
 * qwen2 architecture: NeoX RoPE and Q/K/V biases. A qwen2 model built from
 * the tiny llama weights plus random biases must give the same logits as a
 * llama model whose Q and K rows are permuted per head so that llama's
 * adjacent-pair RoPE rotates the same pairs as NeoX's half-split one. The
 * attention scores are invariant under a permutation applied to both Q
 * and K, so any difference is a RoPE or bias bug.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "roj/context.h"
#include "roj/model.h"
#include "train/tgraph.h"
#include "train/tmodel.h"

#define HEAD_DIM 16
#define N_EMBD 64
#define N_LAYER 2
#define Q_DIM 64
#define KV_DIM 32

typedef struct buffers {
    float *bias[N_LAYER][3]; /* q, k, v biases */
    float *permuted[N_LAYER][2];
    float *permuted_bias[N_LAYER][2];
} buffers;

/* Row r of a NeoX-ordered head goes to row neox_to_normal(r) of the
 * llama-ordered head: dims (i, i + half) become (2i, 2i + 1). */
static int neox_to_normal(int r)
{
    const int half = HEAD_DIM / 2;
    int head = r / HEAD_DIM, d = r % HEAD_DIM;
    int to = d < half ? 2 * d : 2 * (d - half) + 1;
    return head * HEAD_DIM + to;
}

static float *permute_rows(const float *w, int rows, int cols)
{
    float *out = malloc((size_t)rows * cols * sizeof *out);
    for (int r = 0; r < rows; r++)
        memcpy(out + (size_t)neox_to_normal(r) * cols, w + (size_t)r * cols,
               (size_t)cols * sizeof *out);
    return out;
}

static void add_vector(gguf_writer *w, const char *name, const float *v,
                       int64_t n)
{
    int64_t ne[1] = {n};
    assert_int_equal(gguf_writer_add_tensor(w, name, ROJ_TYPE_F32, 1, ne, v,
                                            (uint64_t)n * 4),
                     ROJ_OK);
}

/* Writes the tiny model as arch ("llama" with permuted Q/K, or "qwen2")
 * with the random biases, or with zero biases unless with_bias. */
static const char *write_model(const char *arch, int with_bias, buffers *b)
{
    static char path[4200];
    gguf_file *src = NULL;
    gguf_writer *w = NULL;
    const int permute = !strcmp(arch, "llama");
    assert_int_equal(
        gguf_open(test_shared_path("fixtures/logits/tiny-f32.gguf"), &src),
        ROJ_OK);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_kv_key(src, i);
        if (strncmp(key, "llama.", 6) != 0) {
            assert_int_equal(gguf_writer_copy_kv(w, src, i), ROJ_OK);
            continue;
        }
        /* Re-key llama.* as <arch>.*, keeping the value. */
        char renamed[256];
        snprintf(renamed, sizeof renamed, "%s.%s", arch, key + 6);
        if (gguf_kv_type(src, i) == GGUF_TYPE_FLOAT32) {
            double value;
            assert_int_equal(gguf_kv_f64(src, i, &value), ROJ_OK);
            gguf_writer_set_f32(w, renamed, (float)value);
        } else {
            uint64_t value;
            assert_int_equal(gguf_kv_u64(src, i, &value), ROJ_OK);
            gguf_writer_set_u32(w, renamed, (uint32_t)value);
        }
    }
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", arch),
                     ROJ_OK);

    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        const void *data = t->data;
        int il;
        char which;
        if (permute && sscanf(t->name, "blk.%d.attn_%c.weight", &il,
                              &which) == 2 && (which == 'q' || which == 'k')) {
            int k = which == 'k';
            free(b->permuted[il][k]);
            b->permuted[il][k] = permute_rows(t->data, (int)t->ne[1],
                                              (int)t->ne[0]);
            data = b->permuted[il][k];
        }
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->type,
                                                t->n_dims, t->ne, data,
                                                t->n_bytes),
                         ROJ_OK);
    }
    static const float zeros[Q_DIM];
    for (int il = 0; il < N_LAYER; il++) {
        const char *names[3] = {"attn_q", "attn_k", "attn_v"};
        const int sizes[3] = {Q_DIM, KV_DIM, KV_DIM};
        for (int j = 0; j < 3; j++) {
            char name[64];
            const float *v = with_bias ? b->bias[il][j] : zeros;
            snprintf(name, sizeof name, "blk.%d.%s.bias", il, names[j]);
            if (permute && j < 2) {
                free(b->permuted_bias[il][j]);
                b->permuted_bias[il][j] = permute_rows(v, sizes[j], 1);
                v = b->permuted_bias[il][j];
            }
            add_vector(w, name, v, sizes[j]);
        }
    }
    snprintf(path, sizeof path, "%s/%s-%d.gguf", test_tmpdir(), arch,
             with_bias);
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);
    gguf_close(src);
    return path;
}

static float *run_prompt(const char *path)
{
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    if (roj_model_open(path, &model) != ROJ_OK)
        fail_msg("open %s: %s", path, roj_last_error());
    roj_context_params p = roj_context_default_params();
    p.n_ctx = 64;
    assert_int_equal(roj_context_create(model, &p, &ctx), ROJ_OK);
    roj_token tokens[13] = {1, 450, 4996, 17354, 1701, 29916, 432,
                            17204, 975, 278, 17366, 11203, 29889};
    roj_batch batch = {13, tokens, NULL, NULL};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    float *out = malloc(32000 * sizeof *out);
    memcpy(out, roj_get_logits(ctx, -1), 32000 * sizeof *out);
    roj_context_free(ctx);
    roj_model_free(model);
    return out;
}

/* The same prompt through the training forward pass, on the weights the
 * trainer loads from the file (fine-tuning starts there). */
static float *train_prompt(const char *path)
{
    roj_model *model = NULL;
    if (roj_model_open(path, &model) != ROJ_OK)
        fail_msg("open %s: %s", path, roj_last_error());
    tmodel *m = NULL;
    assert_int_equal(tmodel_from_model(model, 0, 0.0f, 0, 1, &m), ROJ_OK);
    tgraph *g = NULL;
    assert_int_equal(tgraph_create(m, NULL, 13, 1, 13, &g), ROJ_OK);
    const int32_t tokens[13] = {1, 450, 4996, 17354, 1701, 29916, 432,
                                17204, 975, 278, 17366, 11203, 29889};
    int32_t pos[13], start[2] = {0, 13}, row = 12, id = 0;
    for (int i = 0; i < 13; i++)
        pos[i] = i;
    tbatch b = {.n_tok = 13, .tokens = tokens, .pos = pos, .n_seq = 1,
                .seq_start = start, .n_tgt = 1, .tgt_row = &row,
                .tgt_id = &id};
    float *out = malloc(32000 * sizeof *out);
    double loss;
    assert_int_equal(tgraph_run(g, &b, 0.0f, &loss, out), ROJ_OK);
    tgraph_free(g);
    tmodel_free(m);
    roj_model_free(model);
    return out;
}

static float max_diff(const float *a, const float *b)
{
    float worst = 0.0f;
    for (int i = 0; i < 32000; i++)
        if (fabsf(a[i] - b[i]) > worst)
            worst = fabsf(a[i] - b[i]);
    return worst;
}

static void qwen2_matches_permuted_llama(void **state)
{
    (void)state;
    buffers b;
    uint64_t seed = 42;
    memset(&b, 0, sizeof b);
    for (int il = 0; il < N_LAYER; il++)
        for (int j = 0; j < 3; j++) {
            int n = j == 0 ? Q_DIM : KV_DIM;
            b.bias[il][j] = malloc((size_t)n * sizeof(float));
            for (int i = 0; i < n; i++)
                b.bias[il][j][i] = test_rand_float(&seed, -0.5f, 0.5f);
        }

    float *qwen = run_prompt(write_model("qwen2", 1, &b));
    float *llama = run_prompt(write_model("llama", 1, &b));
    float *qwen_no_bias = run_prompt(write_model("qwen2", 0, &b));
    float *llama_plain = run_prompt(
        test_shared_path("fixtures/logits/tiny-f32.gguf"));

    float same = max_diff(qwen, llama);
    float bias_effect = max_diff(qwen, qwen_no_bias);
    float rope_effect = max_diff(qwen_no_bias, llama_plain);
    printf("  qwen2 vs permuted llama %.3g, bias effect %.3g, "
           "rope order effect %.3g\n", same, bias_effect, rope_effect);
    assert_true(same < 1e-4f);
    assert_true(bias_effect > 1e-2f);
    assert_true(rope_effect > 1e-3f);

    /* The trainer reads qwen2 (biases, NeoX RoPE) as the engine runs it;
     * the engine's F16 KV cache is the only difference. */
    float *trained = train_prompt(write_model("qwen2", 1, &b));
    const float train_diff = max_diff(trained, qwen);
    printf("  training forward vs engine on qwen2 %.3g\n", train_diff);
    assert_true(train_diff < 5e-3f);
    free(trained);

    free(qwen);
    free(llama);
    free(qwen_no_bias);
    free(llama_plain);
    for (int il = 0; il < N_LAYER; il++)
        for (int j = 0; j < 3; j++) {
            free(b.bias[il][j]);
            if (j < 2) {
                free(b.permuted[il][j]);
                free(b.permuted_bias[il][j]);
            }
        }
}

int main(void)
{
    test_require_shared("fixtures/logits/tiny-f32.gguf");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qwen2_matches_permuted_llama),
    };
    return test_run_group(tests, NULL, NULL);
}
