/* json_constraint.c — fallback JSON-mode decoding for `alloy serve`: a character-level
 * pushdown automaton for one JSON value (no insignificant whitespace) used as an engine token
 * filter. Each step allows exactly the tokens whose text keeps the output a valid JSON prefix;
 * end-of-generation only once the value is complete. After `budget` steps it only allows tokens
 * that spell a prefix of the shortest completion, so even a random-weight model finishes with
 * valid JSON. (Schema-aware constraints come from the chat formatting layer when present.) */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define JC_DEPTH 48

typedef enum jmode {
    J_VALUE,  /* expecting a value */
    J_AFTER,  /* after a value: ',' or a closer (or the end at depth 0) */
    J_KEY,    /* in an object, expecting '"' of a key (or '}' right after '{') */
    J_COLON,  /* after a key */
    J_STR, J_ESC, J_HEX,
    J_NUM,    /* sub-state in num */
    J_LIT,
    J_DONE,
    J_FAIL
} jmode;

enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

typedef struct jstate {
    uint8_t mode, num, hex_left, key, just_open, depth, object_only_hint;
    const char *lit; /* remaining literal text */
    char stack[JC_DEPTH]; /* 'o' / 'a' */
} jstate;

typedef struct jc {
    const al_tokenizer *tok;
    bool object_only;
    int budget, steps;
    jstate st;
    size_t fed;
} jc;

static void value_done(jstate *s) {
    s->mode = s->depth ? J_AFTER : J_DONE;
    s->just_open = 0;
}

static bool num_terminal(int n) { return n == N_ZERO || n == N_INT || n == N_FRAC || n == N_EXP; }

static void feed(jstate *s, unsigned char c, bool object_only) {
again:
    switch (s->mode) {
    case J_VALUE:
        if (object_only && s->depth == 0 && c != '{') goto fail;
        if (c == '{' || c == '[') {
            if (s->depth >= JC_DEPTH) goto fail;
            s->stack[s->depth++] = c == '{' ? 'o' : 'a';
            s->mode = c == '{' ? J_KEY : J_VALUE;
            s->just_open = 1;
        } else if (c == ']' && s->just_open && s->depth && s->stack[s->depth - 1] == 'a') {
            s->depth--;
            value_done(s);
        } else if (c == '"') {
            s->mode = J_STR;
            s->key = 0;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            s->mode = J_NUM;
            s->num = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
        } else if (c == 't') s->mode = J_LIT, s->lit = "rue";
        else if (c == 'f') s->mode = J_LIT, s->lit = "alse";
        else if (c == 'n') s->mode = J_LIT, s->lit = "ull";
        else goto fail;
        if (s->mode != J_VALUE && s->mode != J_KEY) s->just_open = 0;
        return;
    case J_AFTER:
        if (c == ',') {
            s->mode = s->stack[s->depth - 1] == 'o' ? J_KEY : J_VALUE;
            s->just_open = 0;
        } else if ((c == '}' && s->stack[s->depth - 1] == 'o') || (c == ']' && s->stack[s->depth - 1] == 'a')) {
            s->depth--;
            value_done(s);
        } else goto fail;
        return;
    case J_KEY:
        if (c == '"') s->mode = J_STR, s->key = 1;
        else if (c == '}' && s->just_open) s->depth--, value_done(s);
        else goto fail;
        s->just_open = 0;
        return;
    case J_COLON:
        if (c != ':') goto fail;
        s->mode = J_VALUE;
        return;
    case J_STR:
        if (c == '"') {
            if (s->key) s->mode = J_COLON;
            else value_done(s);
        } else if (c == '\\') s->mode = J_ESC;
        else if (c < 0x20) goto fail;
        return;
    case J_ESC:
        if (c == 'u') s->mode = J_HEX, s->hex_left = 4;
        else if (strchr("\"\\/bfnrt", c) && c) s->mode = J_STR;
        else goto fail;
        return;
    case J_HEX:
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) goto fail;
        if (--s->hex_left == 0) s->mode = J_STR;
        return;
    case J_NUM: {
        bool digit = c >= '0' && c <= '9';
        switch (s->num) {
        case N_MINUS: if (!digit) goto fail; s->num = c == '0' ? N_ZERO : N_INT; return;
        case N_ZERO:
        case N_INT:
            if (digit && s->num == N_INT) return;
            if (c == '.') { s->num = N_DOT; return; }
            if (c == 'e' || c == 'E') { s->num = N_E; return; }
            break;
        case N_DOT: if (!digit) goto fail; s->num = N_FRAC; return;
        case N_FRAC:
            if (digit) return;
            if (c == 'e' || c == 'E') { s->num = N_E; return; }
            break;
        case N_E: if (c == '+' || c == '-') { s->num = N_ESIGN; return; } /* fall through */
        case N_ESIGN: if (!digit) goto fail; s->num = N_EXP; return;
        case N_EXP: if (digit) return; break;
        }
        if (!num_terminal(s->num) || s->depth == 0) goto fail;
        value_done(s);
        goto again;
    }
    case J_LIT:
        if (c != (unsigned char)*s->lit) goto fail;
        if (!*++s->lit) value_done(s);
        return;
    default: goto fail;
    }
fail:
    s->mode = J_FAIL;
}

static bool complete(const jstate *s) {
    return s->mode == J_DONE || (s->mode == J_NUM && s->depth == 0 && num_terminal(s->num));
}

/* The shortest text that completes the value from state s. */
static void completion(const jstate *s, char *out, size_t size) {
    size_t n = 0;
#define PUT(str) do { for (const char *q_ = (str); *q_ && n + 1 < size; q_++) out[n++] = *q_; } while (0)
    int mode = s->mode;
    if (mode == J_ESC) {
        PUT("n");
        mode = J_STR;
    }
    if (mode == J_HEX) {
        for (int i = 0; i < s->hex_left; i++) PUT("0");
        mode = J_STR;
    }
    if (mode == J_STR) {
        PUT("\"");
        mode = s->key ? J_COLON : J_AFTER;
    }
    if (mode == J_KEY) {
        if (s->just_open) PUT("}");
        else PUT("\"\":0}");
        for (int d = s->depth - 2; d >= 0; d--) PUT(s->stack[d] == 'o' ? "}" : "]");
        out[n] = 0;
        return;
    }
    if (mode == J_COLON) {
        PUT(":0");
        mode = J_AFTER;
    }
    if (mode == J_VALUE) {
        if (s->just_open && s->depth && s->stack[s->depth - 1] == 'a') {
            for (int d = s->depth - 1; d >= 0; d--) PUT(s->stack[d] == 'o' ? "}" : "]");
            out[n] = 0;
            return;
        }
        PUT(s->object_only_hint ? "{}" : "0");
        mode = J_AFTER;
    }
    if (mode == J_NUM) {
        if (!num_terminal(s->num)) PUT("0");
        mode = J_AFTER;
    }
    if (mode == J_LIT) {
        PUT(s->lit);
        mode = J_AFTER;
    }
    if (mode == J_AFTER)
        for (int d = s->depth - 1; d >= 0; d--) PUT(s->stack[d] == 'o' ? "}" : "]");
    out[n] = 0;
#undef PUT
}

void *srv_json_constraint_new(const al_tokenizer *tok, bool object_only, int budget) {
    jc *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->tok = tok;
    c->object_only = object_only;
    c->budget = budget > 0 ? budget : 64;
    c->st.mode = J_VALUE;
    return c;
}

void srv_json_constraint_free(void *ud) { free(ud); }

bool srv_json_constraint(void *ud, const char *text, size_t len, uint8_t *allowed, int n_vocab) {
    jc *c = ud;
    if (len < c->fed) {
        memset(&c->st, 0, sizeof c->st);
        c->st.mode = J_VALUE;
        c->fed = 0;
    }
    for (; c->fed < len; c->fed++) feed(&c->st, (unsigned char)text[c->fed], c->object_only);
    c->steps++;
    if (c->st.mode == J_FAIL) return false; /* the text left JSON (should not happen): stop constraining */
    bool closing = c->steps > c->budget;
    char comp[2 * JC_DEPTH + 16];
    if (closing) {
        jstate tmp = c->st;
        tmp.object_only_hint = c->object_only && tmp.depth == 0;
        completion(&tmp, comp, sizeof comp);
    }
    bool done = complete(&c->st);
    for (int id = 0; id < n_vocab; id++) {
        if (al_tokenizer_is_eog(c->tok, id)) {
            allowed[id] = done;
            continue;
        }
        const char *piece;
        size_t n = al_tokenizer_token_to_piece(c->tok, id, false, &piece);
        if (n == 0 || c->st.mode == J_DONE) {
            allowed[id] = 0;
            continue;
        }
        if (closing) {
            allowed[id] = n <= strlen(comp) && !memcmp(piece, comp, n);
            continue;
        }
        jstate s = c->st;
        for (size_t i = 0; i < n && s.mode != J_FAIL; i++) feed(&s, (unsigned char)piece[i], c->object_only);
        allowed[id] = s.mode != J_FAIL;
    }
    return true;
}

bool srv_json_complete(const char *text, size_t len) {
    jstate s;
    memset(&s, 0, sizeof s);
    s.mode = J_VALUE;
    size_t end = len;
    while (end && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\t' || text[end - 1] == '\r')) end--;
    for (size_t i = 0; i < end && s.mode != J_FAIL; i++) feed(&s, (unsigned char)text[i], false);
    return complete(&s);
}
