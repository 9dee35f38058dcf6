/* Read-only accessors of roj_vocab (see roj/tokenizer.h). */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

roj_vocab_kind roj_vocab_kind_of(const roj_vocab *v) { return v->kind; }
const char *roj_vocab_pre(const roj_vocab *v) { return v->pre; }
int32_t roj_vocab_n_tokens(const roj_vocab *v) { return v->n_tokens; }
roj_token roj_vocab_bos(const roj_vocab *v) { return v->bos; }
roj_token roj_vocab_eos(const roj_vocab *v) { return v->eos; }
roj_token roj_vocab_eot(const roj_vocab *v) { return v->eot; }
roj_token roj_vocab_pad(const roj_vocab *v) { return v->pad; }
roj_token roj_vocab_unk(const roj_vocab *v) { return v->unk; }
bool roj_vocab_add_bos(const roj_vocab *v) { return v->add_bos; }
bool roj_vocab_add_eos(const roj_vocab *v) { return v->add_eos; }

static bool valid_id(const roj_vocab *v, roj_token id)
{
    return id >= 0 && id < v->n_tokens;
}

static int compare_ids(const void *a, const void *b)
{
    roj_token x = *(const roj_token *)a;
    roj_token y = *(const roj_token *)b;
    return (x > y) - (x < y);
}

bool roj_vocab_is_eog(const roj_vocab *v, roj_token token)
{
    if (!valid_id(v, token) || v->n_eog == 0)
        return false;
    return bsearch(&token, v->eog, v->n_eog, sizeof *v->eog,
                   compare_ids) != NULL;
}

bool roj_vocab_is_control(const roj_vocab *v, roj_token token)
{
    return valid_id(v, token) &&
           v->tokens[token].type == ROJ_TOKEN_TYPE_CONTROL;
}

roj_token_type roj_vocab_token_type(const roj_vocab *v, roj_token token)
{
    if (!valid_id(v, token))
        return ROJ_TOKEN_TYPE_UNDEFINED;
    return (roj_token_type)v->tokens[token].type;
}

const char *roj_vocab_token_text(const roj_vocab *v, roj_token token)
{
    return valid_id(v, token) ? vocab_text(v, token) : NULL;
}

roj_token roj_vocab_find(const roj_vocab *v, const char *text, size_t len)
{
    if (!text)
        return ROJ_TOKEN_NULL;
    return vocab_lookup(v, text, len);
}
