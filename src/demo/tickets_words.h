/*
 * Word lists and sentence templates of the ticket generator (internal to
 * src/demo). Templates contain placeholders that tickets.c expands:
 *   {P}    a product name (a span)
 *   {O}    "order" with an order number, e.g. "order #A-482913" (the
 *          number is a span)
 *   {$}    an amount such as "$49.99"
 *   {T}    a tracking number, {C} a customer number (distractors)
 *   {D}    a digit 2..9, {V} a version "2.4.1", {NAME} a first name,
 *   {DAY}  a weekday
 * All text is ASCII.
 */
#ifndef ROJ_DEMO_TICKETS_WORDS_H
#define ROJ_DEMO_TICKETS_WORDS_H

#include <stddef.h>

#include "demo/tickets.h"

/* A list of strings and its length. */
typedef struct ticket_phrases {
    const char *const *items;
    size_t n;
} ticket_phrases;

/* What one category's tickets are made of. order_rate and product_rate
 * are the shares of its tickets that mention an order number or a
 * product (0 for fields the category never has). */
typedef struct ticket_category_words {
    ticket_phrases core;      /* the problem itself, one sentence */
    ticket_phrases details;   /* optional extra facts */
    double order_rate, product_rate;
    double urgency_prior[TICKET_N_URGENCIES];
} ticket_category_words;

/* How one urgency level is signalled. */
typedef struct ticket_urgency_words {
    ticket_phrases sentences; /* explicit: "This is urgent." */
    ticket_phrases subtle;    /* implied: "This is my third email." */
    ticket_phrases prefixes;  /* before the first sentence: "URGENT: " */
    ticket_phrases suffixes;  /* replace the final period of a sentence */
    double unmarked;          /* share of tickets with no signal at all */
} ticket_urgency_words;

extern const ticket_category_words tickets_category_words[];
extern const ticket_urgency_words tickets_urgency_words[];
extern const ticket_phrases tickets_products;
extern const ticket_phrases tickets_order_sentences; /* contain {O} */
extern const ticket_phrases tickets_order_prefixes;  /* contain {O} */
extern const ticket_phrases tickets_order_intros;    /* "order #", ... */
extern const ticket_phrases tickets_product_sentences; /* contain {P} */
extern const ticket_phrases tickets_greetings;
extern const ticket_phrases tickets_signoffs;
extern const ticket_phrases tickets_names;
extern const ticket_phrases tickets_days;

#endif
