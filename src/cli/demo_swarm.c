/*
 * The demo's swarm file (docs/SWARM.md): three specialists as four
 * skills and one pipeline, "triage". The category classifier routes the
 * extraction steps with `when`, so an order number is only looked for in
 * the categories whose tickets carry one, and a product likewise. The
 * urgency classifier runs beside it. Model paths are relative to the
 * swarm file, so the cache folder can move.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/demo.h"
#include "core/error.h"
#include "demo/tickets.h"

/* The swarm file, with the three model file names to fill in. The
 * `when` lists name the categories whose tickets can mention an order
 * number or a product (a rate above zero in tickets_words.c). */
static const char swarm_template[] =
    "# The helpdesk swarm of `roj demo`, written by roj: a classifier\n"
    "# picks the category and routes the extraction steps, a second one\n"
    "# rates the urgency. The models were trained by the demo on\n"
    "# tickets it generated (roj demo --help).\n"
    "version: 1\n"
    "name: helpdesk-demo\n"
    "\n"
    "models:\n"
    "  category: {path: models/%s}\n"
    "  urgency: {path: models/%s}\n"
    "  fields: {path: models/%s}\n"
    "\n"
    "skills:\n"
    "  category:\n"
    "    model: category\n"
    "    timeout: 5s\n"
    "  urgency:\n"
    "    model: urgency\n"
    "    timeout: 5s\n"
    "  order_number:\n"
    "    model: fields\n"
    "    output: {span: {slot: order_number}}\n"
    "    timeout: 5s\n"
    "  product:\n"
    "    model: fields\n"
    "    output: {span: {slot: product}}\n"
    "    timeout: 5s\n"
    "\n"
    "pipelines:\n"
    "  " DEMO_PIPELINE ":\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: category\n"
    "        skill: category\n"
    "      - id: urgency\n"
    "        skill: urgency\n"
    "      # Account problems carry no order number, technical ones\n"
    "      # none either; billing questions name no product.\n"
    "      - id: order\n"
    "        skill: order_number\n"
    "        when: {category: [order_problem, refund_request,\n"
    "                          shipping_delay, billing_question]}\n"
    "      - id: product\n"
    "        skill: product\n"
    "        when: {category: [order_problem, refund_request,\n"
    "                          shipping_delay, technical_issue]}\n"
    "    output:\n"
    "      category: \"{category.label}\"\n"
    "      confidence: \"{category.confidence}\"\n"
    "      urgency: \"{urgency.label}\"\n"
    "      order_number: \"{order.text}\"\n"
    "      product: \"{product.text}\"\n";

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Writes text to path through path.tmp and a rename. */
static roj_status write_file_atomically(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w")))
        return roj_error(ROJ_ERR_IO, "%s: cannot create: %s", tmp,
                         strerror(errno));
    const bool written = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !written) {
        unlink(tmp);
        return roj_error(ROJ_ERR_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        roj_status st = roj_error(ROJ_ERR_IO, "cannot rename %s to %s: %s",
                                  tmp, path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return ROJ_OK;
}

roj_status demo_swarm_write(const demo_config *cfg, demo_paths *p,
                            swarm_file **out)
{
    char text[sizeof swarm_template + 3 * 256];
    char *problems = NULL;
    roj_status st;

    *out = NULL;
    int len = snprintf(p->swarm, sizeof p->swarm, "%s/helpdesk.yaml",
                       cfg->cache_dir);
    if (len < 0 || (size_t)len >= sizeof p->swarm)
        return roj_error(ROJ_ERR_INVALID_ARG, "the cache folder path %s is "
                         "too long", cfg->cache_dir);
    len = snprintf(text, sizeof text, swarm_template, base_name(p->category),
                   base_name(p->urgency), base_name(p->fields));
    if (len < 0 || (size_t)len >= sizeof text)
        return roj_error(ROJ_ERR_INVALID_ARG, "model file names too long");
    if ((st = write_file_atomically(p->swarm, text)))
        return st;

    st = swarm_load(p->swarm, out, &problems);
    if (st) {
        st = roj_error(st, "the demo wrote a swarm file that does not "
                       "load:\n%s", problems ? problems : roj_last_error());
        free(problems);
        return st;
    }
    fprintf(stderr, "roj demo: wrote and checked the swarm file %s\n",
            p->swarm);
    return ROJ_OK;
}
