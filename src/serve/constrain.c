#define _GNU_SOURCE
/* constrain.c — the engine token filter of a request with a grammar (JSON object, JSON schema,
 * tool call): al_constraint does the work; this adds two things a server needs.
 *  - Prompts that open <think>: the recognizer reads "<think>" + the generated text, so its
 *    optional leading think block covers reasoning that began in the prompt.
 *  - Wrapping up: a grammar alone lets a value run on (a long string, more keys) until max_tokens
 *    cuts it, leaving invalid JSON. From step `finish_from` on, among the allowed tokens only those
 *    of the best finishing rank stay: end of generation, then a quote, closing brackets, short
 *    scalars, a colon, other single bytes, commas, openers, longer pieces (the same order the
 *    constraint tests use to end random walks). Each step of that order closes a string, a
 *    container or the value within a few tokens, so the output completes.
 * Ranks are per token, computed once per server (srv_finish_ranks). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

enum { RANK_EOG = 0, RANK_QUOTE, RANK_CLOSE, RANK_SCALAR, RANK_COLON, RANK_BYTE, RANK_WS, RANK_COMMA, RANK_OPEN, RANK_LONG };

struct srv_constraint {
    al_grammar *g;
    al_constraint *c;
    const uint8_t *ranks;
    int n_ranks;
    bool think_open;
    int steps, finish_from;
    sbuf buf; /* "<think>" + text, for prompts that opened the think block */
};

static uint8_t rank_of(const char *p, size_t n) {
    if (n != 1) return RANK_LONG;
    switch (p[0]) {
    case '"': return RANK_QUOTE;
    case '}': case ']': return RANK_CLOSE;
    case '0': case '1': case 'n': case 't': case 'f': return RANK_SCALAR;
    case ':': return RANK_COLON;
    case ',': return RANK_COMMA;
    case '{': case '[': return RANK_OPEN;
    case ' ': case '\n': case '\t': case '\r': return RANK_WS;
    default: return RANK_BYTE;
    }
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
    /* reasoning is left to the model: only the value is wrapped up */
    bool thinking = n >= 7 && !memcmp(t, "<think>", 7) && !memmem(t, n, "</think>", 8);
    if (thinking) return true;
    int m = n_vocab < c->n_ranks ? n_vocab : c->n_ranks;
    uint8_t best = 255;
    for (int i = 0; i < m; i++)
        if (allowed[i] && c->ranks[i] < best) best = c->ranks[i];
    if (best == 255) return true;
    for (int i = 0; i < m; i++)
        if (allowed[i] && c->ranks[i] != best) allowed[i] = 0;
    return true;
}
