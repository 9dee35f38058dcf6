/* Chat template detection and rendering for the families in roj/chat.h. */
#include "roj/chat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const struct {
    roj_chat_family family;
    const char *name;
} FAMILY_NAMES[] = {
    {ROJ_CHAT_NONE, "none"},     {ROJ_CHAT_CHATML, "chatml"},
    {ROJ_CHAT_LLAMA3, "llama3"}, {ROJ_CHAT_LLAMA2, "llama2"},
    {ROJ_CHAT_ZEPHYR, "zephyr"}, {ROJ_CHAT_PHI3, "phi3"},
    {ROJ_CHAT_GEMMA, "gemma"},
};
#define N_FAMILIES (sizeof FAMILY_NAMES / sizeof FAMILY_NAMES[0])

const char *roj_chat_family_name(roj_chat_family family)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (FAMILY_NAMES[i].family == family)
            return FAMILY_NAMES[i].name;
    return "unknown";
}

roj_status roj_chat_family_from_name(const char *name,
                                     roj_chat_family *family)
{
    for (size_t i = 0; name && i < N_FAMILIES; i++) {
        if (strcmp(name, FAMILY_NAMES[i].name) == 0) {
            *family = FAMILY_NAMES[i].family;
            return ROJ_OK;
        }
    }
    return roj_error(ROJ_ERR_NOT_FOUND,
                     "chat template '%s' not found; valid names: none, "
                     "chatml, llama3, llama2, zephyr, phi3, gemma",
                     name ? name : "(null)");
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

roj_chat_family roj_chat_detect(const char *t)
{
    if (!t || !t[0])
        return ROJ_CHAT_NONE;
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (strcmp(t, FAMILY_NAMES[i].name) == 0)
            return FAMILY_NAMES[i].family;

    /* The order follows llama.cpp's detection, which checks the more
     * specific markers first. */
    if (contains(t, "<|im_start|>"))
        return contains(t, "<|im_sep|>") ? ROJ_CHAT_UNKNOWN
                                         : ROJ_CHAT_CHATML;
    if (contains(t, "[INST]"))
        return ROJ_CHAT_LLAMA2;
    if (contains(t, "<|assistant|>") && contains(t, "<|end|>"))
        return ROJ_CHAT_PHI3;
    if (contains(t, "<|user|>") &&
        (contains(t, "eos_token") || contains(t, "</s>") ||
         contains(t, "<|endoftext|>")))
        return ROJ_CHAT_ZEPHYR;
    if (contains(t, "<start_of_turn>"))
        return ROJ_CHAT_GEMMA;
    if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>"))
        return ROJ_CHAT_LLAMA3;
    return ROJ_CHAT_UNKNOWN;
}

roj_status roj_chat_family_for_model(const roj_model *model,
                                     const char *override_name,
                                     roj_chat_family *family)
{
    const char *t;

    if (override_name)
        return roj_chat_family_from_name(override_name, family);
    t = roj_model_meta_str(model, "tokenizer.chat_template");
    *family = roj_chat_detect(t);
    if (*family == ROJ_CHAT_UNKNOWN)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "%s: tokenizer.chat_template is not a known family; "
                         "choose one by name (chatml, llama3, llama2, "
                         "zephyr, phi3, gemma, none)",
                         roj_model_name(model));
    return ROJ_OK;
}

/* ------------------------------------------------------------------ */
/* Rendering */

typedef struct text_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} text_buf;

static void put_n(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(text_buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

/* Appends s without leading and trailing white space, as the Llama and
 * Gemma templates do (Jinja's trim / Python's strip). */
static void put_trimmed(text_buf *b, const char *s)
{
    size_t start = 0, end = strlen(s);
    while (start < end && isspace((unsigned char)s[start]))
        start++;
    while (end > start && isspace((unsigned char)s[end - 1]))
        end--;
    put_n(b, s + start, end - start);
}

static bool is_role(const roj_chat_message *m, const char *role)
{
    return strcmp(m->role, role) == 0;
}

/* Text of a special token of the vocab, or fallback. */
static const char *special_text(const roj_vocab *vocab, roj_token token,
                                const char *fallback)
{
    const char *t = NULL;
    if (vocab && token != ROJ_TOKEN_NULL)
        t = roj_vocab_token_text(vocab, token);
    return t ? t : fallback;
}

static void render_chatml(text_buf *b, const roj_chat_message *m, size_t n,
                          bool gen)
{
    for (size_t i = 0; i < n; i++) {
        put(b, "<|im_start|>");
        put(b, m[i].role);
        put(b, "\n");
        put(b, m[i].content);
        put(b, "<|im_end|>\n");
    }
    if (gen)
        put(b, "<|im_start|>assistant\n");
}

static void render_llama3(text_buf *b, const roj_chat_message *m, size_t n,
                          bool gen)
{
    for (size_t i = 0; i < n; i++) {
        put(b, "<|start_header_id|>");
        put(b, m[i].role);
        put(b, "<|end_header_id|>\n\n");
        put_trimmed(b, m[i].content);
        put(b, "<|eot_id|>");
    }
    if (gen)
        put(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Meta's Llama-2 chat format: system text goes inside the first [INST]
 * block; each later user turn starts with BOS. */
static void render_llama2(text_buf *b, const roj_chat_message *m, size_t n,
                          const char *bos, const char *eos)
{
    bool first_turn = true, sys_open = false;

    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "system")) {
            if (!sys_open) {
                if (!first_turn)
                    put(b, bos);
                put(b, "[INST] <<SYS>>\n");
                sys_open = true;
            } else {
                put(b, "\n");
            }
            put_trimmed(b, m[i].content);
            continue;
        }
        if (is_role(&m[i], "assistant")) {
            if (sys_open)
                put(b, "\n<</SYS>>\n\n [/INST]");
            sys_open = false;
            put(b, " ");
            put_trimmed(b, m[i].content);
            put(b, " ");
            put(b, eos);
            first_turn = false;
            continue;
        }
        if (sys_open) {
            put(b, "\n<</SYS>>\n\n");
        } else {
            if (!first_turn)
                put(b, bos);
            put(b, "[INST] ");
        }
        sys_open = false;
        put_trimmed(b, m[i].content);
        put(b, " [/INST]");
        first_turn = false;
    }
    if (sys_open)
        put(b, "\n<</SYS>>\n\n [/INST]");
}

/* Zephyr and Phi-3: "<|role|>\ncontent" + end marker + "\n". */
static void render_pipe_roles(text_buf *b, const roj_chat_message *m,
                              size_t n, bool gen, const char *end)
{
    for (size_t i = 0; i < n; i++) {
        put(b, "<|");
        put(b, m[i].role);
        put(b, "|>\n");
        put(b, m[i].content);
        put(b, end);
        put(b, "\n");
    }
    if (gen)
        put(b, "<|assistant|>\n");
}

static void render_gemma(text_buf *b, const roj_chat_message *m, size_t n,
                         bool gen)
{
    const char *system = NULL;

    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "system")) {
            system = m[i].content;
            continue;
        }
        bool model = is_role(&m[i], "assistant");
        put(b, "<start_of_turn>");
        put(b, model ? "model" : m[i].role);
        put(b, "\n");
        if (system && !model) {
            put_trimmed(b, system);
            put(b, "\n\n");
            system = NULL;
        }
        put_trimmed(b, m[i].content);
        put(b, "<end_of_turn>\n");
    }
    if (gen)
        put(b, "<start_of_turn>model\n");
}

static void render_plain(text_buf *b, const roj_chat_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put(b, m[i].content);
        put(b, "\n");
    }
}

/* Removes BOS text from the start when the tokenizer adds BOS itself; only
 * message content can put it there. */
static void strip_leading_bos(text_buf *b, const roj_vocab *vocab)
{
    const char *bos;
    size_t n;

    if (!vocab || !roj_vocab_add_bos(vocab) ||
        roj_vocab_bos(vocab) == ROJ_TOKEN_NULL)
        return;
    bos = special_text(vocab, roj_vocab_bos(vocab), NULL);
    n = bos ? strlen(bos) : 0;
    while (n > 0 && b->len >= n && memcmp(b->data, bos, n) == 0) {
        memmove(b->data, b->data + n, b->len - n + 1);
        b->len -= n;
    }
}

roj_status roj_chat_render(const roj_chat_params *params,
                           const roj_chat_message *messages, size_t n,
                           char **text, size_t *len)
{
    const roj_vocab *vocab = params->vocab;
    const char *bos = "<s>", *eos = "</s>";
    text_buf b = {0};
    bool gen = params->add_generation_prompt;
    bool wants_bos = params->family == ROJ_CHAT_LLAMA2 ||
                     params->family == ROJ_CHAT_LLAMA3 ||
                     params->family == ROJ_CHAT_GEMMA ||
                     params->family == ROJ_CHAT_PHI3;

    *text = NULL;
    for (size_t i = 0; i < n; i++)
        if (!messages[i].role || !messages[i].content)
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "chat: message %zu has no %s", i,
                             messages[i].role ? "content" : "role");
    if (vocab) {
        bos = special_text(vocab, roj_vocab_bos(vocab), bos);
        eos = special_text(vocab, roj_vocab_eos(vocab), eos);
    }

    /* BOS goes into the text only when the tokenizer will not add it. */
    put(&b, "");
    if (wants_bos && vocab && !roj_vocab_add_bos(vocab) &&
        roj_vocab_bos(vocab) != ROJ_TOKEN_NULL)
        put(&b, bos);

    switch (params->family) {
    case ROJ_CHAT_NONE: render_plain(&b, messages, n); break;
    case ROJ_CHAT_CHATML: render_chatml(&b, messages, n, gen); break;
    case ROJ_CHAT_LLAMA3: render_llama3(&b, messages, n, gen); break;
    case ROJ_CHAT_LLAMA2: render_llama2(&b, messages, n, bos, eos); break;
    case ROJ_CHAT_ZEPHYR:
        render_pipe_roles(&b, messages, n, gen, eos);
        break;
    case ROJ_CHAT_PHI3:
        render_pipe_roles(&b, messages, n, gen, "<|end|>");
        break;
    case ROJ_CHAT_GEMMA: render_gemma(&b, messages, n, gen); break;
    default:
        free(b.data);
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "chat: cannot render template family %d",
                         (int)params->family);
    }
    if (b.failed) {
        free(b.data);
        return roj_error(ROJ_ERR_NOMEM, "chat: out of memory");
    }
    strip_leading_bos(&b, vocab);
    *text = b.data;
    if (len)
        *len = b.len;
    return ROJ_OK;
}
