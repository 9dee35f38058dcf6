/* Word lists and templates of the ticket generator, written for roj's
 * demo (see tickets_words.h for the placeholders). */
#include "demo/tickets_words.h"

#define PHRASES(a) {a, sizeof a / sizeof a[0]}

/* Made-up product names: two to four words, some with a model number. */
static const char *const products[] = {
    "Aurora Desk Lamp",        "Nimbus Wireless Earbuds",
    "Trailhead Hiking Backpack", "Kettle Pro 2",
    "Orbit Smart Watch",       "Cascade Water Filter",
    "Ember Electric Kettle",   "Summit Standing Desk",
    "Pebblestone Speaker",     "Drift Noise Cancelling Headphones",
    "Vector Gaming Mouse",     "Lumen Smart Bulb",
    "Harbor Coffee Grinder",   "Atlas Road Bike",
    "Comet Robot Vacuum",      "Willow Yoga Mat",
    "Falcon 4K Webcam",        "Breeze Tower Fan",
    "Glacier Mini Fridge",     "Sparrow Kids Tablet",
    "Mosaic Photo Printer",    "Quill Mechanical Keyboard",
    "Terra Plant Pot Set",     "Vireo X5 Phone",
    "Beacon Home Router",      "Canyon Camping Tent",
    "Lullaby Baby Monitor",    "Zenith Air Purifier",
    "Ripple Shower Head",      "Maple Cutting Board",
    "Stratus Portable Charger", "Cobalt Cast Iron Pan",
    "Jetstream Hair Dryer",    "Meadow Bed Sheets",
    "Polar Winter Jacket",     "Tundra Snow Boots",
    "Prism Tablet Stand",      "Halo Ring Light",
    "Granite Blender 900",     "Pulse Fitness Tracker",
};

static const char *const order_core[] = {
    "I received the wrong item in my package.",
    "The box arrived but one item was missing.",
    "My {P} arrived broken.",
    "The {P} I ordered came in the wrong color.",
    "I ordered the {P} but got something completely different.",
    "{O} showed up with only half of the items.",
    "There is a problem with {O}: the parcel was opened and things are "
    "missing.",
    "The {P} in {O} is damaged, the box was crushed.",
    "Got my package today and the {P} is not what I ordered.",
    "Instead of the {P} I got someone else's order.",
    "Part of {O} never made it into the box.",
    "The {P} came without the charger and the manual.",
    "Can you send a replacement? The {P} was dented on arrival.",
    "I was sent two of the same thing and no {P}.",
    "Something is wrong with {O}, the contents don't match the packing "
    "slip.",
    "The {P} from {O} has a big scratch on it.",
};

static const char *const order_details[] = {
    "I paid {$} for it.",
    "The box looked like it had been opened.",
    "I have photos if you need them.",
    "It was meant as a gift for my sister.",
    "I ordered {D} of them.",
    "The packing slip lists a different customer.",
};

static const char *const refund_core[] = {
    "I would like a refund for my {P}.",
    "Please refund {O}, I no longer need it.",
    "I want my money back for the {P}.",
    "How do I return the {P} and get a refund?",
    "I returned {O} two weeks ago and still have no refund.",
    "Can I get a refund? The {P} is not as described.",
    "I'd like to cancel {O} and be refunded.",
    "Requesting a full refund for {O}.",
    "The {P} doesn't suit me, so I'd like to send it back for a refund.",
    "Still waiting for the refund on my returned {P}.",
    "Please give me my money back, I changed my mind.",
    "I sent back the {P} and want the refund on my card.",
    "You promised a refund for {O} but nothing has arrived.",
    "I want to return the {P} from {O} for a full refund.",
};

static const char *const refund_details[] = {
    "I paid {$}.",
    "It is still in the original packaging.",
    "I already printed the return label.",
    "The item was never used.",
    "The refund should go back to the card ending in {D}{D}{D}{D}.",
};

static const char *const shipping_core[] = {
    "My package still hasn't arrived.",
    "Where is {O}? It was supposed to be here last week.",
    "The tracking for {O} hasn't updated in days.",
    "My {P} was due on {DAY} and there is still no sign of it.",
    "It's been ten days and the {P} has not shipped yet.",
    "{O} is stuck in transit.",
    "Delivery of {O} is late, what is going on?",
    "The courier keeps postponing delivery of my {P}.",
    "When will {O} actually ship?",
    "I was promised 2-day shipping but my {P} is still not here.",
    "The parcel has been sitting at the depot for a week.",
    "Tracking says delivered, but the {P} never reached my door.",
    "Is {O} lost? It has not moved since {DAY}.",
};

static const char *const shipping_details[] = {
    "The tracking number is {T}.",
    "I paid for express delivery.",
    "The status just says label created.",
    "I checked with my neighbours already.",
    "The estimated date keeps moving.",
};

static const char *const technical_core[] = {
    "My {P} won't turn on.",
    "The {P} keeps disconnecting from the wifi.",
    "The {P} stopped working after the latest update.",
    "My {P} makes a loud buzzing noise.",
    "The app crashes whenever I try to pair my {P}.",
    "The {P} overheats after a few minutes of use.",
    "My {P} shows a red error light and then shuts off.",
    "I can't get the {P} to connect to my phone.",
    "The battery of my {P} drains in an hour.",
    "The website gives me an error when I try to check out.",
    "Your app freezes on the loading screen.",
    "The {P} resets itself every night.",
    "Bluetooth pairing fails on my {P} every time.",
    "The display of the {P} flickers constantly.",
};

static const char *const technical_details[] = {
    "I already tried restarting it.",
    "I'm on firmware {V}.",
    "I bought it {D} weeks ago.",
    "A factory reset did not help.",
    "The manual doesn't mention this error.",
};

static const char *const account_core[] = {
    "I can't log in to my account.",
    "I forgot my password and the reset email never arrives.",
    "My account got locked after too many attempts.",
    "The verification code is never sent to my phone.",
    "I think someone else changed my password.",
    ("Login says my email is not registered, but I've had an account for "
     "years."),
    "I can't access my account since I changed my phone number.",
    "Two-factor authentication keeps rejecting my code.",
    "The password reset link says it has expired.",
    "I'm stuck in a loop on the sign-in page.",
    "Please help me get back into my account.",
    "My profile page says access denied when I sign in.",
};

static const char *const account_details[] = {
    "My username is {NAME}{D}{D}.",
    "I tried on both my laptop and my phone.",
    "I've cleared the browser cache already.",
    "My customer number is {C}.",
    "I signed up with my work email.",
};

static const char *const billing_core[] = {
    "I was charged twice for {O}.",
    "Why is there an extra fee on my last invoice?",
    "My card was billed but {O} was cancelled.",
    "Can you send me an invoice for {O}?",
    "I don't recognize a charge from you on my statement.",
    "How do I change the card on file?",
    "The amount charged for {O} is higher than the price at checkout.",
    "My discount code wasn't applied to {O}.",
    "Is VAT included in the price I paid?",
    "I need a receipt with my company name on it.",
    "I was billed for a subscription I cancelled.",
    "Why was I charged a second time this month?",
};

static const char *const billing_details[] = {
    "The charge was {$} on {DAY}.",
    "I pay with a card ending in {D}{D}{D}{D}.",
    "My customer number is {C}.",
    "The price on the website was {$}.",
    "My bank shows two identical payments.",
};

/* Urgency priors lean a little by category: locked-out users and double
 * charges are more often urgent than a question about an invoice. */
const ticket_category_words tickets_category_words[TICKET_N_CATEGORIES] = {
    [TICKET_ORDER_PROBLEM] = {PHRASES(order_core), PHRASES(order_details),
                              0.85, 0.75, {0.30, 0.35, 0.35}},
    [TICKET_REFUND_REQUEST] = {PHRASES(refund_core), PHRASES(refund_details),
                               0.80, 0.65, {0.35, 0.35, 0.30}},
    [TICKET_SHIPPING_DELAY] = {PHRASES(shipping_core),
                               PHRASES(shipping_details), 0.90, 0.45,
                               {0.25, 0.40, 0.35}},
    [TICKET_TECHNICAL_ISSUE] = {PHRASES(technical_core),
                                PHRASES(technical_details), 0.0, 0.85,
                                {0.30, 0.35, 0.35}},
    [TICKET_ACCOUNT_ACCESS] = {PHRASES(account_core),
                               PHRASES(account_details), 0.0, 0.0,
                               {0.20, 0.35, 0.45}},
    [TICKET_BILLING_QUESTION] = {PHRASES(billing_core),
                                 PHRASES(billing_details), 0.60, 0.0,
                                 {0.40, 0.35, 0.25}},
};

static const char *const low_sentences[] = {
    "No rush.",
    "There's no hurry on this.",
    "Whenever you get a chance is fine.",
    "This is not urgent.",
    "Low priority, just letting you know.",
    "Take your time with this one.",
    "It can wait until next week.",
};

static const char *const low_subtle[] = {
    "Just curious.",
    "It's not a big deal, really.",
    "Just wanted to mention it for the future.",
    "I can live with it for now.",
    "Only asking out of interest.",
};

static const char *const low_prefixes[] = {
    "Not urgent: ", "Low priority - ", "No rush: ",
};

static const char *const low_suffixes[] = {
    ", no rush.", ", but it's not urgent.", ", whenever you have time.",
};

static const char *const medium_sentences[] = {
    "Please get back to me this week.",
    "A reply in the next few days would be appreciated.",
    "Could someone look at it soon?",
    "I'd like this resolved before the end of the week.",
    "Please let me know what the next steps are.",
};

static const char *const medium_suffixes[] = {
    ", please look into it soon.", ", I'd appreciate a reply this week.",
};

static const char *const high_sentences[] = {
    "This is urgent.",
    "Please fix this as soon as possible.",
    "I need this sorted today.",
    "Please treat this as urgent!",
    "I need an answer right away.",
    "This needs attention immediately.",
    "Please escalate this now.",
};

static const char *const high_subtle[] = {
    "This is the third time I'm contacting you about this.",
    "I'm leaving for a trip tomorrow morning and need it.",
    ("My small business depends on this and it's costing me money every "
     "hour."),
    "I have a presentation in two hours.",
    "It is a birthday present for tomorrow.",
    "I've been waiting for weeks and I'm running out of patience.",
};

static const char *const high_prefixes[] = {
    "URGENT: ", "Urgent! ", "ASAP - ", "Help! ", "Emergency: ",
};

static const char *const high_suffixes[] = {
    "!!", ", please hurry!", " and I need it fixed right now!",
};

const ticket_urgency_words tickets_urgency_words[TICKET_N_URGENCIES] = {
    [TICKET_LOW] = {PHRASES(low_sentences), PHRASES(low_subtle),
                    PHRASES(low_prefixes), PHRASES(low_suffixes), 0.0},
    [TICKET_MEDIUM] = {PHRASES(medium_sentences), {NULL, 0}, {NULL, 0},
                       PHRASES(medium_suffixes), 0.5},
    [TICKET_HIGH] = {PHRASES(high_sentences), PHRASES(high_subtle),
                     PHRASES(high_prefixes), PHRASES(high_suffixes), 0.0},
};

static const char *const order_sentences[] = {
    "My {O}.",
    "It's about {O}.",
    "This is regarding {O}.",
    "You can find it under {O}.",
    "The reference is {O}.",
    "For reference, {O}.",
};

static const char *const order_prefixes[] = {
    "Re {O}: ", "{O} - ", "About {O}: ",
};

static const char *const order_intros[] = {
    "order ", "order #", "order number ", "order no. ", "order nr ",
};

static const char *const product_sentences[] = {
    "It's about the {P}.",
    "The item is the {P}.",
    "Product: {P}.",
    "This concerns my {P}.",
};

static const char *const greetings[] = {
    "Hi,", "Hello,", "Hi there,", "Hey,", "Dear support,", "Good morning,",
    "Hello team,",
};

static const char *const signoffs[] = {
    "Thanks.", "Thank you!", "Thanks in advance.", "Cheers, {NAME}.",
    "Regards, {NAME}.", "Best, {NAME}.",
};

static const char *const names[] = {
    "Maria", "Tom", "Aisha", "Ken", "Lucia", "Omar", "Priya", "Jonas", "Mei",
    "Sam", "Grace", "Diego",
};

static const char *const days[] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
    "Sunday",
};

const ticket_phrases tickets_products = PHRASES(products);
const ticket_phrases tickets_order_sentences = PHRASES(order_sentences);
const ticket_phrases tickets_order_prefixes = PHRASES(order_prefixes);
const ticket_phrases tickets_order_intros = PHRASES(order_intros);
const ticket_phrases tickets_product_sentences = PHRASES(product_sentences);
const ticket_phrases tickets_greetings = PHRASES(greetings);
const ticket_phrases tickets_signoffs = PHRASES(signoffs);
const ticket_phrases tickets_names = PHRASES(names);
const ticket_phrases tickets_days = PHRASES(days);
