/*
 * Support tickets for the demo swarm: a seeded generator of short English
 * helpdesk messages with their labels, and writers for the JSON Lines files
 * that `roj train`, `roj eval` and `roj run` read.
 *
 * Each ticket has a category, an urgency and up to two fields to extract:
 * an order number (formats such as "A-482913", "K482913", "ORD-4829137"
 * or "48291374") and a product name from a fixed list of 40 multi-word
 * names. Texts have 1 to 4 sentences plus an optional greeting and
 * sign-off. The generator varies the templates, the order of the facts,
 * how urgency is signalled (explicitly, subtly or not at all for medium),
 * adds distractor numbers (amounts, tracking and customer numbers) and
 * typos in words outside the spans.
 *
 * Texts are ASCII, so the span offsets count bytes and Unicode code
 * points alike, as roj train expects.
 *
 * Determinism: the same seed and count give the same tickets, byte for
 * byte, on every machine. Ticket i depends only on the seed and i, so
 * the first n tickets of a larger set equal a set of n.
 *
 * Ownership: a ticket_set owns its texts (tickets_free). Threading: the
 * functions keep no global state; a ticket_set is read-only once made.
 */
#ifndef ROJ_DEMO_TICKETS_H
#define ROJ_DEMO_TICKETS_H

#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

typedef enum ticket_category {
    TICKET_ORDER_PROBLEM,
    TICKET_REFUND_REQUEST,
    TICKET_SHIPPING_DELAY,
    TICKET_TECHNICAL_ISSUE,
    TICKET_ACCOUNT_ACCESS,
    TICKET_BILLING_QUESTION,
    TICKET_N_CATEGORIES
} ticket_category;

typedef enum ticket_urgency {
    TICKET_LOW,
    TICKET_MEDIUM,
    TICKET_HIGH,
    TICKET_N_URGENCIES
} ticket_urgency;

/* Names of the fields in the labeled JSONL files, for the column options
 * of roj train and roj eval. */
#define TICKETS_TEXT_FIELD "text"
#define TICKETS_CATEGORY_FIELD "category"
#define TICKETS_URGENCY_FIELD "urgency"
#define TICKETS_SPANS_FIELD "spans"
#define TICKETS_SPAN_SLOT_KEY "slot"
#define TICKETS_SPAN_START_KEY "start"
#define TICKETS_SPAN_END_KEY "end"
#define TICKETS_SLOT_ORDER "order_number"
#define TICKETS_SLOT_PRODUCT "product"

/* One ticket. Spans are [start, end) offsets into text, or -1 for both
 * when the ticket does not mention the field. */
typedef struct ticket {
    char id[16];              /* "t00001": 1-based index in its set */
    char *text;               /* ASCII, NUL-terminated */
    size_t text_len;          /* bytes */
    ticket_category category;
    ticket_urgency urgency;
    int32_t order_start, order_end;
    int32_t product_start, product_end;
} ticket;

typedef struct ticket_set {
    ticket *tickets;          /* (n) */
    size_t n;
} ticket_set;

/* Generates n tickets from seed into *out (zeroed first). Categories are
 * close to uniform. Returns ROJ_ERR_NOMEM when memory runs out, with *out
 * left empty; free a filled set with tickets_free. */
roj_status tickets_generate(uint64_t seed, size_t n, ticket_set *out);

/* Frees the texts and the array and zeroes *set; NULL is accepted. */
void tickets_free(ticket_set *set);

/* Returns the label of a category ("order_problem", ...) or urgency
 * ("low", "medium", "high"), or NULL when out of range. The strings are
 * static. */
const char *ticket_category_name(ticket_category category);
const char *ticket_urgency_name(ticket_urgency urgency);

/* All the labels in enum order, for fixed label sets; static arrays of
 * TICKET_N_CATEGORIES and TICKET_N_URGENCIES strings. */
const char *const *ticket_category_names(void);
const char *const *ticket_urgency_names(void);

/* Writes one labeled ticket per line:
 *   {"id": "t00001", "text": "...", "category": "refund_request",
 *    "urgency": "high", "order_number": "A-482913", "product": null,
 *    "spans": [{"slot": "order_number", "start": 31, "end": 39}]}
 * order_number and product are the span texts, null when absent. The
 * same file trains both classifiers (--label-column category or urgency)
 * and the extract model (--spans-field spans --span-slot-key slot
 * --span-start-key start --span-end-key end), and is the gold file for
 * scoring a run. The file is written to a temporary name and renamed,
 * so a reader never sees half of it. Returns ROJ_ERR_IO naming the path
 * on failure. */
roj_status tickets_write_labeled(const ticket_set *set, const char *path);

/* Writes the inputs of a swarm run, {"id": "t00001", "text": "..."} per
 * line, the same way. */
roj_status tickets_write_inputs(const ticket_set *set, const char *path);

#endif
