/* constrain.c — the engine token filter of a request with a grammar (JSON object, JSON schema,
 * tool call): al_constraint does the work; this adds two things a server needs.
 *  - Prompts that open <think>: the recognizer reads "<think>" + the generated text, so its
 *    optional leading think block covers reasoning that began in the prompt.
 *  - Wrapping up: a grammar alone lets a value run on (a long string, more keys) until max_tokens
 *    cuts it, leaving invalid JSON. From step `finish_from` on, among the allowed tokens only those
 *    of the best finishing class stay. Inside a string: the closing quote. Outside: end of
 *    generation, a closing bracket, a comma (on to a required key rather than a longer number), a
 *    quote, a colon, the first byte of a short scalar, an opener, other text (longest first: where
 *    only text is allowed it spells a literal — a key name, an enum value, a wrapper — so longer
 *    is faster), whitespace last. Each choice closes a string or a container, or spells what must
 *    come, so the output completes within a few tokens per open level and missing required key.
 * Ranks are per token, computed once per server (srv_finish_ranks). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

/* Token classes (srv_finish_ranks); text pieces are RANK_TEXT + (MAX_TEXT - length). */
enum { RANK_EOG = 0, RANK_QUOTE, RANK_CLOSE, RANK_COMMA, RANK_COLON, RANK_SCALAR, RANK_OPEN, RANK_N_PUNCT,
       RANK_TEXT = 16, RANK_WS = 250 };
#define MAX_TEXT 200

/* Preference of the punctuation classes outside / inside a JSON string (lower first). */
static const uint8_t punct_order[2][RANK_N_PUNCT] = {
    [0] = {[RANK_EOG] = 0, [RANK_CLOSE] = 1, [RANK_COMMA] = 2, [RANK_QUOTE] = 3, [RANK_COLON] = 4, [RANK_SCALAR] = 5, [RANK_OPEN] = 6},
    [1] = {[RANK_EOG] = 0, [RANK_QUOTE] = 1, [RANK_CLOSE] = 2, [RANK_COMMA] = 3, [RANK_COLON] = 4, [RANK_SCALAR] = 5, [RANK_OPEN] = 6},
};

struct srv_constraint {
    al_grammar *g;
    al_constraint *c;
    const uint8_t *ranks;
    int n_ranks;
    bool think_open;
    int steps, finish_from;
    sbuf buf; /* "<think>" + text, for prompts that opened the think block */
    /* string state of the text scanned so far (quotes outside a think block) */
    size_t scanned;
    bool in_think, in_str, esc;
};

/* Updates whether the text ends inside a JSON string (wrappers hold no quotes). */
static void scan(srv_constraint *c, const char *t, size_t n) {
    if (n < c->scanned) c->scanned = 0, c->in_think = c->in_str = c->esc = false;
    size_t i = c->scanned;
    if (i == 0 && n >= 7 && !memcmp(t, "<think>", 7)) c->in_think = true, i = 7;
    for (; i < n; i++) {
        if (c->in_think) {
            if (i + 8 <= n && !memcmp(t + i, "</think>", 8)) c->in_think = false, i += 7;
            else if (i + 8 > n) break; /* may be the start of the closing tag: look again later */
            continue;
        }
        char ch = t[i];
        if (c->esc) c->esc = false;
        else if (c->in_str && ch == '\\') c->esc = true;
        else if (ch == '"') c->in_str = !c->in_str;
    }
    c->scanned = i;
}

static uint8_t rank_of(const char *p, size_t n) {
    size_t ws = 0;
    while (ws < n && (p[ws] == ' ' || p[ws] == '\n' || p[ws] == '\t' || p[ws] == '\r')) ws++;
    if (n == 0 || ws == n) return RANK_WS;
    if (n == 1) switch (p[0]) {
        case '"': return RANK_QUOTE;
        case '}': case ']': return RANK_CLOSE;
        case '0': case '1': case 'n': case 't': case 'f': return RANK_SCALAR;
        case ':': return RANK_COLON;
        case ',': return RANK_COMMA;
        case '{': case '[': return RANK_OPEN;
        default: break;
        }
    return (uint8_t)(RANK_TEXT + MAX_TEXT - (n < MAX_TEXT ? n : MAX_TEXT));
}

uint8_t *srv_finish_ranks(const al_tokenizer *tok) {
    int32_t n = al_tokenizer_vocab_size(tok);
    uint8_t *r = malloc(n > 0 ? (size_t)n : 1);
    if (!r) return NULL;
    for (int32_t i = 0; i < n; i++) {
        const char *p;
        size_t len = al_tokenizer_token_to_piece(tok, i, true, &p);
        r[i] = al_tokenizer_is_eog(tok, i) ? RANK_EOG : rank_of(p, len);
    }
    return r;
}

al_status srv_constraint_new(srv_constraint **out, al_grammar *g, const al_cvocab *v, const uint8_t *ranks, bool think,
                             bool think_open, int finish_from) {
    *out = NULL;
    srv_constraint *c = calloc(1, sizeof *c);
    if (!c) {
        al_grammar_free(g);
        return al_err(AL_ERR_NOMEM, "out of memory");
    }
    c->g = g;
    c->ranks = ranks;
    c->n_ranks = al_cvocab_size(v);
    c->think_open = think_open;
    c->finish_from = finish_from;
    al_status st = al_constraint_init(&c->c, g, v, think || think_open ? AL_CONSTRAINT_ALLOW_THINK : 0);
    if (al_failed(&st)) {
        srv_constraint_free(c);
        return st;
    }
    *out = c;
    return al_ok();
}

void srv_constraint_free(srv_constraint *c) {
    if (!c) return;
    al_constraint_free(c->c);
    al_grammar_free(c->g);
    sbuf_free(&c->buf);
    free(c);
}

bool srv_constraint_apply(void *ud, const char *text, size_t len, uint8_t *allowed, int n_vocab) {
    srv_constraint *c = ud;
    const char *t = text;
    size_t n = len;
    if (c->think_open) {
        c->buf.len = 0;
        sbuf_adds(&c->buf, "<think>");
        sbuf_add(&c->buf, text, len);
        if (c->buf.oom) return false;
        t = c->buf.p;
        n = c->buf.len;
    }
    if (!al_constraint_apply(c->c, t, n, allowed, n_vocab)) return false;
    if (++c->steps <= c->finish_from || !c->ranks) return true;
    scan(c, t, n);
    if (c->in_think) return true; /* reasoning is left to the model: only the value is wrapped up */
    const uint8_t *order = punct_order[c->in_str];
    int m = n_vocab < c->n_ranks ? n_vocab : c->n_ranks;
    unsigned best = 256;
    for (int i = 0; i < m; i++) {
        if (!allowed[i]) continue;
        unsigned r = c->ranks[i] < RANK_N_PUNCT ? order[c->ranks[i]] : c->ranks[i];
        if (r < best) best = r;
    }
    if (best == 256) return true;
    for (int i = 0; i < m; i++) {
        if (!allowed[i]) continue;
        unsigned r = c->ranks[i] < RANK_N_PUNCT ? order[c->ranks[i]] : c->ranks[i];
        if (r != best) allowed[i] = 0;
    }
    return true;
}
