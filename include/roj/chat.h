/*
 * Chat templates: render a conversation as the prompt text a chat model was
 * trained on.
 *
 * roj does not run the Jinja template stored in tokenizer.chat_template.
 * It recognises the family of that template by looking for marker
 * substrings, as llama.cpp's llm_chat_detect_template() does, and renders
 * the family's format with built-in code:
 *
 *   chatml  <|im_start|>role\ncontent<|im_end|>\n   (Qwen, SmolLM2)
 *   llama3  <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
 *   llama2  [INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer </s>
 *   zephyr  <|role|>\ncontent</s>\n  (the vocab's EOS text)
 *   phi3    <|role|>\ncontent<|end|>\n
 *   gemma   <start_of_turn>role\ncontent<end_of_turn>\n  (assistant is
 *           "model"; the system message is merged into the first user turn)
 *   none    plain completion: the contents, each followed by "\n"
 *
 * BOS: the renderer writes no BOS text of its own at the start when the
 * tokenizer adds BOS (roj_vocab_add_bos() is true, or no vocab is given).
 * With a vocab that adds BOS, a BOS text at the start of the first message
 * is removed too, so the text never begins with it and tokenizing with
 * ROJ_TOKENIZE_ADD_SPECIAL yields exactly one BOS. For llama2, llama3,
 * phi3 and gemma with a vocab that does not add BOS, the BOS text is
 * written first instead. Tokenize the text with ROJ_TOKENIZE_PARSE_SPECIAL
 * so the markers become control tokens.
 *
 * Ownership: rendered text is a new NUL-terminated buffer the caller frees
 * with free(). Threading: every function here is thread-safe.
 */
#ifndef ROJ_CHAT_H
#define ROJ_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "roj/model.h"
#include "roj/roj.h"
#include "roj/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum roj_chat_family {
    ROJ_CHAT_UNKNOWN = -1, /* a template roj cannot render */
    ROJ_CHAT_NONE = 0,     /* no template: plain completion */
    ROJ_CHAT_CHATML,
    ROJ_CHAT_LLAMA3,
    ROJ_CHAT_LLAMA2,
    ROJ_CHAT_ZEPHYR,
    ROJ_CHAT_PHI3,
    ROJ_CHAT_GEMMA
} roj_chat_family;

/* One turn. role is "system", "user" or "assistant" (other roles are
 * written as given where the format has a role name). */
typedef struct roj_chat_message {
    const char *role;
    const char *content;
} roj_chat_message;

/* Returns "none", "chatml", "llama3", "llama2", "zephyr", "phi3", "gemma"
 * or "unknown". */
const char *roj_chat_family_name(roj_chat_family family);

/* Parses one of the names above (except "unknown"); fails with
 * ROJ_ERR_NOT_FOUND and lists the valid names. */
roj_status roj_chat_family_from_name(const char *name,
                                     roj_chat_family *family);

/* Detects the family of a Jinja chat template by marker substrings; an
 * exact family name also works. NULL or "" gives ROJ_CHAT_NONE. */
roj_chat_family roj_chat_detect(const char *chat_template);

/*
 * Chooses the family for a model: the override name when not NULL, else
 * the detected family of its tokenizer.chat_template, else ROJ_CHAT_NONE
 * when the file has no template. Fails with ROJ_ERR_UNSUPPORTED when the
 * template is not recognised (pass an override name then) and with
 * ROJ_ERR_NOT_FOUND for a bad override name.
 */
roj_status roj_chat_family_for_model(const roj_model *model,
                                     const char *override_name,
                                     roj_chat_family *family);

typedef struct roj_chat_params {
    roj_chat_family family;
    bool add_generation_prompt; /* end with the assistant's turn header */
    const roj_vocab *vocab;     /* BOS/EOS texts and add_bos; may be NULL */
} roj_chat_params;

/*
 * Renders n messages. *text is new (the caller frees it) and *len (may be
 * NULL) excludes the NUL. Fails with ROJ_ERR_INVALID_ARG for a NULL role
 * or content and for ROJ_CHAT_UNKNOWN.
 */
roj_status roj_chat_render(const roj_chat_params *params,
                           const roj_chat_message *messages, size_t n,
                           char **text, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
