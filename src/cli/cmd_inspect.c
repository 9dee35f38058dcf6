/*
 * roj inspect FILE: prints a GGUF file's header, metadata and tensors, and
 * whether roj can run it. Exit status 0 means runnable, 1 means the file
 * cannot be opened or is not runnable (the reason goes to stderr), and 2
 * is a usage error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "quant/fp16.h"
#include "quant/qtypes.h"
#include "roj/model.h"

#define TEXT_ARRAY_SHOWN 8     /* array elements printed in text mode */
#define JSON_ARRAY_SHOWN 16    /* array elements listed in JSON */
#define TEXT_STRING_SHOWN 60   /* bytes of a string printed in text mode */
#define REASON_MAX 1024

typedef unsigned long long ull;

struct inspect_options {
    const char *path;
    bool json;
    bool tensors;
};

/* Tensor totals: parameters and bytes per tensor type. */
struct totals {
    uint64_t parameters;
    uint64_t bytes;
    uint64_t type_bytes[ROJ_TYPE_COUNT];
    uint64_t type_tensors[ROJ_TYPE_COUNT];
};

static uint64_t load_le(const uint8_t *p, uint64_t n)
{
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Formats one fixed-size value of type at p (little-endian, possibly
 * unaligned) into buf. */
static void format_fixed(uint32_t type, const uint8_t *p, char *buf,
                         size_t n)
{
    uint64_t v = load_le(p, gguf_type_size(type));
    double d;
    switch (type) {
    case GGUF_TYPE_INT8: snprintf(buf, n, "%d", (int8_t)v); break;
    case GGUF_TYPE_INT16: snprintf(buf, n, "%d", (int16_t)v); break;
    case GGUF_TYPE_INT32: snprintf(buf, n, "%d", (int32_t)v); break;
    case GGUF_TYPE_INT64: snprintf(buf, n, "%lld", (long long)v); break;
    case GGUF_TYPE_FLOAT32:
        snprintf(buf, n, "%.9g", fp32_from_bits((uint32_t)v));
        break;
    case GGUF_TYPE_FLOAT64:
        memcpy(&d, &v, sizeof d);
        snprintf(buf, n, "%.17g", d);
        break;
    case GGUF_TYPE_BOOL: snprintf(buf, n, "%s", v ? "true" : "false"); break;
    default: snprintf(buf, n, "%llu", (ull)v); break;
    }
}

/* Prints a string quoted with C escapes, cut after TEXT_STRING_SHOWN
 * bytes with its full length. */
static void print_string(const char *s, uint64_t len)
{
    uint64_t shown = len < TEXT_STRING_SHOWN ? len : TEXT_STRING_SHOWN;
    /* Cut before a UTF-8 continuation byte, not inside a character. */
    while (shown < len && shown > 0 &&
           ((unsigned char)s[shown] & 0xc0) == 0x80)
        shown--;
    putchar('"');
    for (uint64_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (shown < len)
        printf("... (%llu bytes)", (ull)len);
}

static void print_array(const gguf_file *f, int64_t i)
{
    const char *key = gguf_kv_key(f, i);
    enum gguf_type type = gguf_kv_array_type(f, i);
    uint64_t n = gguf_kv_array_len(f, i);
    uint64_t shown = n < TEXT_ARRAY_SHOWN ? n : TEXT_ARRAY_SHOWN;
    uint64_t size = gguf_type_size(type);
    const void *raw = NULL;
    uint64_t count = 0;
    char buf[64];

    printf("array[%s; %llu] [", gguf_type_name(type), (ull)n);
    gguf_kv_array_data(f, i, &raw, &count);
    for (uint64_t k = 0; k < shown; k++) {
        const char *s = NULL;
        uint64_t len = 0;
        if (k > 0)
            fputs(", ", stdout);
        if (type == GGUF_TYPE_STRING &&
            gguf_get_arr_str(f, key, k, &s, &len) == ROJ_OK) {
            print_string(s, len);
        } else if (size > 0) {
            format_fixed(type, (const uint8_t *)raw + k * size, buf,
                         sizeof buf);
            fputs(buf, stdout);
        } else {
            fputs("[...]", stdout);
        }
    }
    printf("%s]", shown < n ? ", ..." : "");
}

/* Formats a scalar that is not a string into buf. */
static void format_scalar(const gguf_file *f, int64_t i, char *buf, size_t n)
{
    uint64_t u = 0;
    int64_t v = 0;
    double d = 0;
    bool b = false;

    if (gguf_kv_u64(f, i, &u) == ROJ_OK)
        snprintf(buf, n, "%llu", (ull)u);
    else if (gguf_kv_i64(f, i, &v) == ROJ_OK)
        snprintf(buf, n, "%lld", (long long)v);
    else if (gguf_kv_f64(f, i, &d) == ROJ_OK)
        snprintf(buf, n, gguf_kv_type(f, i) == GGUF_TYPE_FLOAT32 ? "%.9g"
                                                                 : "%.17g",
                 d);
    else if (gguf_get_bool(f, gguf_kv_key(f, i), &b) == ROJ_OK)
        snprintf(buf, n, "%s", b ? "true" : "false");
    else
        snprintf(buf, n, "?");
}

static void print_kv(const gguf_file *f, int64_t i)
{
    enum gguf_type type = gguf_kv_type(f, i);
    const char *s = NULL;
    size_t len = 0;
    char buf[64];

    printf("  %-40s ", gguf_kv_key(f, i));
    if (type == GGUF_TYPE_ARRAY) {
        print_array(f, i);
    } else if (type == GGUF_TYPE_STRING) {
        printf("%-8s ", "string");
        gguf_kv_str(f, i, &s, &len);
        print_string(s, len);
    } else {
        printf("%-8s ", gguf_type_name(type));
        format_scalar(f, i, buf, sizeof buf);
        fputs(buf, stdout);
    }
    putchar('\n');
}

static void compute_totals(const gguf_file *f, struct totals *t)
{
    memset(t, 0, sizeof *t);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        t->parameters += x->n_elements;
        t->bytes += x->n_bytes;
        if (x->type < ROJ_TYPE_COUNT) {
            t->type_bytes[x->type] += x->n_bytes;
            t->type_tensors[x->type]++;
        }
    }
}

static void print_tensors(const gguf_file *f)
{
    printf("\ntensors (%lld):\n", (long long)gguf_n_tensors(f));
    printf("  %-40s %-8s %-24s %12s %12s\n", "name", "type", "dims",
           "bytes", "offset");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char dims[96];
        int len = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            len += snprintf(dims + len, sizeof dims - (size_t)len, "%s%lld",
                            d ? " x " : "", (long long)t->ne[d]);
        printf("  %-40s %-8s %-24s %12llu %12llu\n", t->name,
               qtype_name(t->type), dims, (ull)t->n_bytes, (ull)t->offset);
    }
}

static void print_text(const gguf_file *f, const struct inspect_options *o,
                       const struct totals *t)
{
    printf("file:         %s\n", gguf_path(f));
    printf("GGUF version: %u\n", gguf_version(f));
    printf("file size:    %llu bytes\n", (ull)gguf_file_size(f));
    printf("alignment:    %llu bytes\n", (ull)gguf_alignment(f));
    printf("data offset:  %llu bytes\n", (ull)gguf_data_offset(f));
    printf("\nmetadata (%lld keys):\n", (long long)gguf_n_kv(f));
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        print_kv(f, i);
    if (o->tensors)
        print_tensors(f);
    printf("\ntotals:\n");
    printf("  tensors:    %lld\n", (long long)gguf_n_tensors(f));
    printf("  parameters: %llu\n", (ull)t->parameters);
    printf("  bytes:      %llu\n", (ull)t->bytes);
    for (uint32_t k = 0; k < ROJ_TYPE_COUNT; k++)
        if (t->type_tensors[k])
            printf("  %-10s  %llu bytes in %llu tensors\n", qtype_name(k),
                   (ull)t->type_bytes[k], (ull)t->type_tensors[k]);
}

/* Appends a "; "-separated reason to buf. */
static void add_reason(char *buf, const char *fmt, const char *a,
                       const char *b)
{
    size_t len = strlen(buf);
    if (len + 3 >= REASON_MAX)
        return;
    if (len > 0) {
        strcpy(buf + len, "; ");
        len += 2;
    }
    snprintf(buf + len, REASON_MAX - len, fmt, a, b);
}

/*
 * Checks what roj needs to run the model: a llama or qwen2 architecture,
 * at least one tensor and only tensor types with kernels. Returns true
 * when runnable; otherwise reason receives every problem found.
 */
static bool check_runnable(const gguf_file *f, char *reason)
{
    const char *arch = NULL;
    reason[0] = '\0';
    if (gguf_n_tensors(f) == 0)
        add_reason(reason, "no tensors (a vocabulary-only file)%s%s", "", "");
    if (gguf_get_str(f, "general.architecture", &arch, NULL) != ROJ_OK)
        add_reason(reason, "general.architecture is missing or not a "
                   "string%s%s", "", "");
    else if (strcmp(arch, "llama") != 0 && strcmp(arch, "qwen2") != 0)
        add_reason(reason, "architecture '%s' is not supported (roj runs "
                   "llama and qwen2)%s", arch, "");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (!qtype_info(t->type)->supported) {
            add_reason(reason, "tensor '%s' has type %s, which roj cannot "
                       "compute with", t->name, qtype_name(t->type));
            break;
        }
    }
    return reason[0] == '\0';
}

/* Loads the file as a model, which checks hyperparameters, tensor names
 * and shapes and the tokenizer; on failure reason gets the loader's
 * message. */
static bool check_loads(const char *path, char *reason)
{
    roj_model *model = NULL;
    if (roj_model_open(path, &model) != ROJ_OK) {
        snprintf(reason, REASON_MAX, "%s", roj_last_error());
        return false;
    }
    roj_model_free(model);
    return true;
}

/* Copies s into a new NUL-terminated string of valid UTF-8, as cJSON
 * needs: invalid bytes and NUL become U+FFFD. Returns NULL when out of
 * memory. */
static char *utf8_sanitize(const char *s, uint64_t len)
{
    char *out = malloc((size_t)len * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (uint64_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)s + i;
        uint64_t left = len - i, n = 0;
        if (p[0] >= 0x01 && p[0] < 0x80)
            n = 1;
        else if (p[0] >= 0xc2 && p[0] < 0xe0 && left >= 2 &&
                 (p[1] & 0xc0) == 0x80)
            n = 2;
        else if (p[0] >= 0xe0 && p[0] < 0xf0 && left >= 3 &&
                 (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                 !(p[0] == 0xe0 && p[1] < 0xa0) &&
                 !(p[0] == 0xed && p[1] >= 0xa0))
            n = 3;
        else if (p[0] >= 0xf0 && p[0] < 0xf5 && left >= 4 &&
                 (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                 (p[3] & 0xc0) == 0x80 && !(p[0] == 0xf0 && p[1] < 0x90) &&
                 !(p[0] == 0xf4 && p[1] >= 0x90))
            n = 4;
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, p, (size_t)n);
            o += (size_t)n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

static cJSON *json_string(const char *s, uint64_t len)
{
    char *clean = utf8_sanitize(s, len);
    cJSON *item = clean ? cJSON_CreateString(clean) : NULL;
    free(clean);
    return item;
}

/* JSON numbers are doubles, so integers beyond 2^53 become decimal
 * strings and keep every digit. */
static cJSON *json_u64(uint64_t v)
{
    char buf[32];
    if (v <= ((uint64_t)1 << 53))
        return cJSON_CreateNumber((double)v);
    snprintf(buf, sizeof buf, "%llu", (ull)v);
    return cJSON_CreateString(buf);
}

static cJSON *json_i64(int64_t v)
{
    char buf[32];
    if (v >= -((int64_t)1 << 53) && v <= ((int64_t)1 << 53))
        return cJSON_CreateNumber((double)v);
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateString(buf);
}

/* One fixed-size value of type at p (little-endian, possibly unaligned). */
static cJSON *json_fixed(uint32_t type, const uint8_t *p)
{
    uint64_t v = load_le(p, gguf_type_size(type));
    double d;
    switch (type) {
    case GGUF_TYPE_INT8: return cJSON_CreateNumber((int8_t)v);
    case GGUF_TYPE_INT16: return cJSON_CreateNumber((int16_t)v);
    case GGUF_TYPE_INT32: return cJSON_CreateNumber((int32_t)v);
    case GGUF_TYPE_INT64: return json_i64((int64_t)v);
    case GGUF_TYPE_FLOAT32:
        return cJSON_CreateNumber(fp32_from_bits((uint32_t)v));
    case GGUF_TYPE_FLOAT64:
        memcpy(&d, &v, sizeof d);
        return cJSON_CreateNumber(d);
    case GGUF_TYPE_BOOL: return cJSON_CreateBool(v != 0);
    default: return json_u64(v);
    }
}

static cJSON *json_scalar(const gguf_file *f, int64_t i)
{
    uint64_t u = 0;
    int64_t v = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;
    size_t len = 0;

    if (gguf_kv_str(f, i, &s, &len) == ROJ_OK)
        return json_string(s, len);
    if (gguf_kv_u64(f, i, &u) == ROJ_OK)
        return json_u64(u);
    if (gguf_kv_i64(f, i, &v) == ROJ_OK)
        return json_i64(v);
    if (gguf_kv_f64(f, i, &d) == ROJ_OK)
        return cJSON_CreateNumber(d);
    if (gguf_get_bool(f, gguf_kv_key(f, i), &b) == ROJ_OK)
        return cJSON_CreateBool(b);
    return cJSON_CreateNull();
}

/* The first JSON_ARRAY_SHOWN elements of array i; nested arrays are
 * listed as null. */
static cJSON *json_array_values(const gguf_file *f, int64_t i)
{
    const char *key = gguf_kv_key(f, i);
    enum gguf_type type = gguf_kv_array_type(f, i);
    uint64_t n = gguf_kv_array_len(f, i);
    uint64_t size = gguf_type_size(type);
    const void *raw = NULL;
    uint64_t count = 0;
    cJSON *values = cJSON_CreateArray();

    gguf_kv_array_data(f, i, &raw, &count);
    for (uint64_t k = 0; k < n && k < JSON_ARRAY_SHOWN; k++) {
        const char *s = NULL;
        uint64_t len = 0;
        cJSON *item;
        if (type == GGUF_TYPE_STRING &&
            gguf_get_arr_str(f, key, k, &s, &len) == ROJ_OK)
            item = json_string(s, len);
        else if (size > 0)
            item = json_fixed(type, (const uint8_t *)raw + k * size);
        else
            item = cJSON_CreateNull();
        cJSON_AddItemToArray(values, item);
    }
    return values;
}

static cJSON *json_kv(const gguf_file *f, int64_t i)
{
    cJSON *o = cJSON_CreateObject();
    enum gguf_type type = gguf_kv_type(f, i);
    const char *key = gguf_kv_key(f, i);

    cJSON_AddItemToObject(o, "key", json_string(key, strlen(key)));
    cJSON_AddStringToObject(o, "type", gguf_type_name(type));
    if (type != GGUF_TYPE_ARRAY) {
        cJSON_AddItemToObject(o, "value", json_scalar(f, i));
        return o;
    }
    cJSON_AddStringToObject(o, "element_type",
                            gguf_type_name(gguf_kv_array_type(f, i)));
    cJSON_AddItemToObject(o, "count", json_u64(gguf_kv_array_len(f, i)));
    cJSON_AddItemToObject(o, "values", json_array_values(f, i));
    cJSON_AddBoolToObject(o, "truncated",
                          gguf_kv_array_len(f, i) > JSON_ARRAY_SHOWN);
    return o;
}

static cJSON *json_tensor(const gguf_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *dims = cJSON_CreateArray();
    cJSON_AddItemToObject(o, "name", json_string(t->name, strlen(t->name)));
    cJSON_AddStringToObject(o, "type", qtype_name(t->type));
    cJSON_AddNumberToObject(o, "type_id", t->type);
    for (uint32_t d = 0; d < t->n_dims; d++)
        cJSON_AddItemToArray(dims, json_i64(t->ne[d]));
    cJSON_AddItemToObject(o, "dims", dims);
    cJSON_AddItemToObject(o, "n_elements", json_u64(t->n_elements));
    cJSON_AddItemToObject(o, "n_bytes", json_u64(t->n_bytes));
    cJSON_AddItemToObject(o, "offset", json_u64(t->offset));
    return o;
}

static cJSON *json_totals(const gguf_file *f, const struct totals *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *by_type = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "tensors", (double)gguf_n_tensors(f));
    cJSON_AddItemToObject(o, "parameters", json_u64(t->parameters));
    cJSON_AddItemToObject(o, "bytes", json_u64(t->bytes));
    for (uint32_t k = 0; k < ROJ_TYPE_COUNT; k++) {
        if (!t->type_tensors[k])
            continue;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "tensors", (double)t->type_tensors[k]);
        cJSON_AddItemToObject(entry, "bytes", json_u64(t->type_bytes[k]));
        cJSON_AddItemToObject(by_type, qtype_name(k), entry);
    }
    cJSON_AddItemToObject(o, "bytes_by_type", by_type);
    return o;
}

/* Builds the --json output. Returns a string the caller frees, or NULL
 * when out of memory. */
static char *inspect_json(const gguf_file *f, bool tensors,
                          const struct totals *t, bool runnable,
                          const char *reason)
{
    cJSON *root = cJSON_CreateObject();
    const char *path = gguf_path(f);
    cJSON_AddItemToObject(root, "file", json_string(path, strlen(path)));
    cJSON_AddNumberToObject(root, "version", gguf_version(f));
    cJSON_AddItemToObject(root, "file_size", json_u64(gguf_file_size(f)));
    cJSON_AddItemToObject(root, "alignment", json_u64(gguf_alignment(f)));
    cJSON_AddItemToObject(root, "data_offset",
                          json_u64(gguf_data_offset(f)));

    cJSON *metadata = cJSON_AddArrayToObject(root, "metadata");
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        cJSON_AddItemToArray(metadata, json_kv(f, i));
    if (tensors) {
        cJSON *list = cJSON_AddArrayToObject(root, "tensors");
        for (int64_t i = 0; i < gguf_n_tensors(f); i++)
            cJSON_AddItemToArray(list, json_tensor(gguf_tensor_at(f, i)));
    }
    cJSON_AddItemToObject(root, "totals", json_totals(f, t));
    cJSON_AddBoolToObject(root, "runnable", runnable);
    if (runnable)
        cJSON_AddNullToObject(root, "reason");
    else
        cJSON_AddStringToObject(root, "reason", reason);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* Returns -1 to run, or the exit status after --help or a usage error. */
static int parse_options(int argc, char **argv, struct inspect_options *o)
{
    cli_strings files = {0};
    const cli_option opts[] = {
        {NULL, "--json", CLI_FLAG, &o->json, NULL,
         "print one JSON object instead of text (default: text)"},
        {NULL, "--no-tensors", CLI_FLAG_OFF, &o->tensors, NULL,
         "leave out the tensor list; the totals remain (default: list "
         "every tensor)"},
    };
    const cli_command cmd = {
        .name = "inspect",
        .usage = "[options] FILE.gguf",
        .summary = "Print the GGUF version, alignment and data offset, "
                   "every metadata key with its\ntype and value (long "
                   "arrays and strings abbreviated), every tensor, and\n"
                   "totals. Exits 0 when roj can run the model, 1 when it "
                   "cannot (the reason\ngoes to stderr).",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .positional = &files,
    };
    int rc;

    memset(o, 0, sizeof *o);
    o->tensors = true;
    rc = cli_parse(&cmd, argc, argv);
    if (rc < 0 && files.n == 0)
        rc = cli_usage_error("inspect", "missing FILE");
    else if (rc < 0 && files.n > 1)
        rc = cli_usage_error("inspect", "only one FILE is accepted, got "
                             "'%s' and '%s'", files.items[0],
                             files.items[1]);
    else if (rc < 0)
        o->path = files.items[0];
    cli_free_lists(&cmd);
    return rc;
}

int cmd_inspect(int argc, char **argv)
{
    struct inspect_options o;
    struct totals totals;
    char reason[REASON_MAX];
    gguf_file *f = NULL;

    int status = parse_options(argc, argv, &o);
    if (status >= 0)
        return status;
    if (gguf_open(o.path, &f) != ROJ_OK) {
        fprintf(stderr, "roj inspect: %s\n", roj_last_error());
        return 1;
    }
    bool runnable = check_runnable(f, reason) && check_loads(o.path, reason);
    compute_totals(f, &totals);
    if (o.json) {
        char *text = inspect_json(f, o.tensors, &totals, runnable, reason);
        if (!text) {
            fprintf(stderr, "roj inspect: out of memory for the JSON "
                    "output\n");
            gguf_close(f);
            return 1;
        }
        puts(text);
        free(text);
    } else {
        print_text(f, &o, &totals);
        printf("\nrunnable:     %s\n", runnable ? "yes" : "no");
    }
    if (!runnable)
        fprintf(stderr, "roj inspect: %s is not runnable: %s\n", o.path,
                reason);
    gguf_close(f);
    return cli_finish_stdout("inspect", runnable ? 0 : 1);
}
