/*
 * Pre-tokenizers of byte-level BPE vocabs, by tokenizer.ggml.pre.
 *
 * Each family splits the text with a list of regexes applied one after the
 * other: every regex splits each piece left by the previous one into its
 * matches and the text between them, which stays as pieces of its own.
 * That is what a Hugging Face "Sequence" of "Split" pre-tokenizers with
 * behaviour "Isolated" does, and what llama.cpp (commit c392e5094) does in
 * unicode_regex_split(). The regexes are the ones of the families'
 * tokenizer.json files, in PCRE2 syntax. Two deviations, both from
 * llama.cpp: case-insensitive contractions are spelled out ('[sS]) so that
 * Unicode case folding cannot match "'\u017F" (long s), and some families
 * run extra regexes before the main one (digit splitting, punctuation runs)
 * because their Hugging Face pipeline has those steps.
 */
#include <stddef.h>
#include <string.h>

#include "tokenizer/pretok.h"

/* GPT-2: contractions, letters, digits, other symbols, then spaces; a space
 * joins the following word. */
#define RE_GPT2                                                               \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"       \
    "|\\s+(?!\\S)|\\s+"

#define RE_CONTRACTIONS                                                       \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* Llama 3 (tiktoken cl100k style): digits in groups of up to three. */
#define RE_LLAMA3                                                             \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"              \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Qwen 2: as Llama 3 but every digit alone. */
#define RE_QWEN2                                                              \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                   \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Upper-case runs followed by lower case, as in tiktoken o200k. */
#define RE_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"

#define RE_GPT4O                                                              \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTRACTIONS "?"    \
    "|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*" RE_CONTRACTIONS "?"   \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+"              \
    "|\\s+(?!\\S)|\\s+"

#define RE_TEKKEN                                                             \
    "[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+"                        \
    "|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*"                       \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+"                   \
    "|\\s+(?!\\S)|\\s+"

/* CJK ideographs U+4E00..U+9FA5, U+0800..U+4E00 and Hangul U+AC00..U+D7FF,
 * the ranges DeepSeek's tokenizer.json spells as literal characters. */
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

/* DeepSeek LLM's letter class: the cased letters of many scripts. */
#define RE_DEEPSEEK_LETTERS                                                   \
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"             \
    "\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}"                     \
    "\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}"              \
    "\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}"                      \
    "\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}"                     \
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"                 \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"               \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"               \
    "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"               \
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}"                \
    "\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"                         \
    "\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"                         \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}"               \
    "\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"               \
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"                          \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"                          \
    "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"                         \
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}"                \
    "\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"                         \
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"                \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"               \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"               \
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"               \
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"                              \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"                              \
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"                              \
    "\\x{1E900}-\\x{1E943}"

/* ASCII punctuation plus fullwidth forms U+FF01..U+FF0F, U+FF1A..U+FF5E,
 * quotes U+2018..U+201F and U+3000..U+3002 (ideographic space, comma and
 * full stop). */
#define RE_DEEPSEEK_PUNCT                                                     \
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}"    \
    "\\x{3000}-\\x{3002}]+"

/* BLOOM and Poro: runs of anything but spaces and sentence punctuation
 * (U+2026 ellipsis, U+3002, U+FF0C, U+3001, U+0964 danda, U+06D4, U+060C);
 * the parentheses and bar inside the class are literal, as in the
 * original. */
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL};
static const char *const re_digits_gpt2[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_deepseek_llm[] = {
    "[\\r\\n]", "\\s?[" RE_DEEPSEEK_LETTERS "]+", RE_DEEPSEEK_PUNCT,
    "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+", NULL};
static const char *const re_deepseek_coder[] = {
    "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}", NULL};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
    "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_bloom[] = {RE_BLOOM, NULL};
static const char *const re_viking[] = {RE_BLOOM, "\\p{N}", NULL};
static const char *const re_tekken[] = {RE_TEKKEN, NULL};
static const char *const re_gpt4o[] = {RE_GPT4O, NULL};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2, NULL};

/* clang-format off */
static const pretok_config configs[] = {
    /* id              regexes            ignore_merges add_bos no_bos */
    {"default",        re_default,        false, false, false},
    {"gpt2",           re_gpt2,           false, false, false},
    {"llama3",         re_llama3,         true,  true,  false},
    {"llama3-regex",   re_llama3,         false, false, false},
    {"chatglm4",       re_llama3,         false, false, true},
    {"qwen2",          re_qwen2,          false, false, false},
    {"falcon",         re_falcon,         false, false, false},
    {"digits-gpt2",    re_digits_gpt2,    false, false, false},
    {"deepseek-llm",   re_deepseek_llm,   false, false, false},
    {"deepseek-coder", re_deepseek_coder, false, false, false},
    {"deepseek3",      re_deepseek3,      false, false, false},
    {"bloom",          re_bloom,          false, false, false},
    {"viking",         re_viking,         false, false, false},
    {"tekken",         re_tekken,         true,  true,  false},
    {"gpt4o",          re_gpt4o,          false, false, false},
    {"chameleon",      re_chameleon,      false, true,  false},
};

/* tokenizer.ggml.pre values and the pre-tokenizer each one uses, following
 * llama.cpp's llama_vocab::impl::load at commit c392e5094. */
static const struct {
    const char *name;
    const char *config;
} names[] = {
    {"default", "default"},
    {"llama3", "llama3"}, {"llama-v3", "llama3"}, {"llama-bpe", "llama3"},
    {"falcon3", "llama3"}, {"pixtral", "llama3"},
    {"deepseek-llm", "deepseek-llm"},
    {"deepseek-coder", "deepseek-coder"},
    {"deepseek-v3", "deepseek3"},
    {"falcon", "falcon"},
    {"mpt", "gpt2"}, {"olmo", "gpt2"}, {"jais", "gpt2"},
    {"gpt-2", "gpt2"}, {"phi-2", "gpt2"}, {"jina-es", "gpt2"},
    {"jina-de", "gpt2"}, {"gigachat", "gpt2"}, {"jina-v1-en", "gpt2"},
    {"jina-v2-es", "gpt2"}, {"jina-v2-de", "gpt2"}, {"jina-v2-code", "gpt2"},
    {"roberta-bpe", "gpt2"},
    {"starcoder", "digits-gpt2"}, {"refact", "digits-gpt2"},
    {"command-r", "digits-gpt2"}, {"smollm", "digits-gpt2"},
    {"codeshell", "digits-gpt2"}, {"exaone", "digits-gpt2"},
    {"minerva-7b", "digits-gpt2"},
    {"qwen2", "qwen2"}, {"deepseek-r1-qwen", "qwen2"}, {"megrez", "qwen2"},
    {"stablelm2", "qwen2"},
    {"dbrx", "llama3-regex"}, {"smaug-bpe", "llama3-regex"},
    {"chatglm-bpe", "chatglm4"}, {"glm4", "chatglm4"},
    {"poro-chat", "bloom"}, {"bloom", "bloom"}, {"gpt3-finnish", "bloom"},
    {"viking", "viking"},
    {"tekken", "tekken"},
    {"gpt-4o", "gpt4o"}, {"llama4", "gpt4o"},
    {"chameleon", "chameleon"},
};
/* clang-format on */

const pretok_config *pretok_find(const char *name)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i].name, name) != 0)
            continue;
        for (size_t j = 0; j < sizeof configs / sizeof configs[0]; j++)
            if (strcmp(configs[j].id, names[i].config) == 0)
                return &configs[j];
    }
    return NULL;
}
