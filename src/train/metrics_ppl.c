/* Perplexity of generated targets. */
#include "train/metrics.h"

#include <math.h>
#include <string.h>

void ppl_metrics_init(ppl_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->perplexity = NAN;
}

void ppl_metrics_add(ppl_metrics *m, double nll_sum, uint64_t n_tokens)
{
    m->nll_sum += nll_sum;
    m->n_tokens += n_tokens;
}

void ppl_metrics_finish(ppl_metrics *m)
{
    m->perplexity = m->n_tokens ? exp(m->nll_sum / (double)m->n_tokens)
                                : NAN;
}

void ppl_metrics_print(const ppl_metrics *m, FILE *f)
{
    double mean = m->n_tokens ? m->nll_sum / (double)m->n_tokens : NAN;
    fprintf(f, "tokens      %llu\n", (unsigned long long)m->n_tokens);
    fprintf(f, "mean NLL    %.4f nats\n", mean);
    fprintf(f, "perplexity  %.4f\n", m->perplexity);
}

/* Adds a number, or null when it is NaN or infinite, since JSON has no
 * such numbers. Returns 0 when out of memory. */
static int add_number_or_null(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        return cJSON_AddNumberToObject(o, name, v) != NULL;
    return cJSON_AddNullToObject(o, name) != NULL;
}

cJSON *ppl_metrics_json(const ppl_metrics *m)
{
    double mean = m->n_tokens ? m->nll_sum / (double)m->n_tokens : NAN;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject(o, "task", "generate") ||
        !cJSON_AddNumberToObject(o, "n_tokens", (double)m->n_tokens) ||
        !add_number_or_null(o, "nll_mean", mean) ||
        !add_number_or_null(o, "perplexity", m->perplexity)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
