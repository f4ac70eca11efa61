/* chat_recognize.c — the byte-level recognizer of grammar outputs (JSON values per schema node,
 * literal wrappers, an optional leading think block). Each state is a small value; nesting lives
 * in arena-allocated immutable frames shared between states. */
#include "serve/chat_grammar.h"

#define MAX_WS 24       /* longest whitespace run accepted */
#define MAX_DEPTH 64    /* container nesting */
#define MAX_NUM 64      /* characters of one number */
#define MAX_INT_DIGITS 15
#define MAX_FRAC_DIGITS 16
#define MAX_EXP_DIGITS 2
#define MAX_FORK 16     /* nested anyOf expansion at one value */

enum rmode {
    R_PREFIX = 1, R_VALUE, R_LIT, R_STR, R_STR_ESC, R_STR_HEX, R_NUM, R_OBJ_FIRST, R_OBJ_KEY, R_KEY,
    R_COLON, R_AFTER, R_ARR_FIRST, R_SUFFIX, R_END, R_THINK_OPEN, R_THINK, R_THINK_AFTER,
};
enum { N_MINUS = 1, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };
enum { C_TOP = 0, C_OBJ = 1, C_ARR = 2 };

struct rframe {
    const rframe *up;
    const jnode *cnode;
    uint64_t seen;
    uint8_t ckind;
};

/* ---- arena ---- */

struct arena_chunk {
    arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *arena_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = a->head;
    if (!c || c->used + n > c->cap) {
        size_t cap = 64 * 1024;
        if (cap < n) cap = n;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_total += n;
    return p;
}

void arena_reset(arena *a) {
    if (!a->head) return;
    arena_chunk *c = a->head->next;
    while (c) { arena_chunk *n = c->next; free(c); c = n; }
    a->head->next = NULL;
    a->head->used = 0;
    a->used_total = 0;
}

void arena_free(arena *a) {
    arena_chunk *c = a->head;
    while (c) { arena_chunk *n = c->next; free(c); c = n; }
    a->head = NULL;
    a->used_total = 0;
}

/* ---- state set ---- */

typedef struct ctx {
    const al_grammar *g;
    arena *a;
    rset *out;
} ctx;

static bool st_eq(const rstate *x, const rstate *y) {
    return x->mode == y->mode && x->up == y->up && x->cnode == y->cnode && x->vnode == y->vnode && x->alt == y->alt &&
           x->ls == y->ls && x->seen == y->seen && x->pos == y->pos && x->lo == y->lo && x->hi == y->hi &&
           x->depth == y->depth && x->sub == y->sub && x->u8 == y->u8 && x->u8lo == y->u8lo && x->u8hi == y->u8hi &&
           x->ckind == y->ckind && x->ws == y->ws && x->iskey == y->iskey;
}

static void add(ctx *k, const rstate *s) {
    rset *o = k->out;
    for (int i = 0; i < o->n; i++)
        if (st_eq(&o->s[i], s)) return;
    if (o->n < R_MAX_STATES) o->s[o->n++] = *s;
}

static void dispatch(ctx *k, rstate s, unsigned char c, int fork);

static void value_done(rstate *s) {
    s->ws = 0;
    if (s->ckind == C_TOP) {
        s->mode = s->alt->slen ? R_SUFFIX : R_END;
        s->pos = 0;
    } else {
        s->mode = R_AFTER;
    }
}

static bool push(ctx *k, rstate *s, uint8_t kind) {
    if (s->depth >= MAX_DEPTH) return false;
    rframe *f = arena_alloc(k->a, sizeof *f);
    if (!f) return false;
    f->up = s->up;
    f->cnode = s->cnode;
    f->seen = s->seen;
    f->ckind = s->ckind;
    s->up = f;
    s->cnode = s->vnode;
    s->seen = 0;
    s->ckind = kind;
    s->depth++;
    s->mode = kind == C_OBJ ? R_OBJ_FIRST : R_ARR_FIRST;
    s->ws = 0;
    return true;
}

static void pop(rstate *s) {
    const rframe *f = s->up;
    s->cnode = f->cnode;
    s->seen = f->seen;
    s->ckind = f->ckind;
    s->up = f->up;
    s->depth--;
    value_done(s);
}

/* Narrows [lo, hi) of a sorted set to the entries whose byte at pos is c. */
static bool narrow(const litset *ls, uint32_t *lo, uint32_t *hi, uint32_t pos, unsigned char c) {
    uint32_t a = *lo, b = *hi;
    while (a < b && ls->len[a] <= pos) a++;
    uint32_t l = a, r = b;
    while (l < r) {
        uint32_t m = l + (r - l) / 2;
        if ((unsigned char)ls->s[m][pos] < c) l = m + 1; else r = m;
    }
    uint32_t start = l;
    r = b;
    while (l < r) {
        uint32_t m = l + (r - l) / 2;
        if ((unsigned char)ls->s[m][pos] <= c) l = m + 1; else r = m;
    }
    *lo = start;
    *hi = l;
    return start < l;
}

static bool key_unseen(const rstate *s, uint32_t i) { return i >= 64 || !(s->seen & (1ull << i)); }

static bool any_unseen(const rstate *s, uint32_t lo, uint32_t hi) {
    for (uint32_t i = lo; i < hi; i++)
        if (key_unseen(s, i)) return true;
    return false;
}

static bool req_met(const rstate *s) { return (s->cnode->req & ~s->seen) == 0; }

static bool ws_step(rstate *s, unsigned char c, bool *fail) {
    if (!chat_is_ws(c)) { s->ws = 0; return false; }
    *fail = ++s->ws > MAX_WS;
    return true;
}

static void begin_key(ctx *k, rstate *s) {
    const jnode *o = s->cnode;
    s->ws = 0;
    if (o->keys.n == 0) {
        if (!o->addl) return;
        s->mode = R_STR;
        s->iskey = 1;
        s->u8 = 0;
        add(k, s);
        return;
    }
    if (!o->addl && !any_unseen(s, 0, o->keys.n)) return;
    s->mode = R_KEY;
    s->lo = 0;
    s->hi = o->keys.n;
    s->pos = 0;
    add(k, s);
}

static void key_done(rstate *s, const jnode *schema) {
    s->vnode = schema ? schema : NULL;
    s->mode = R_COLON;
    s->iskey = 0;
    s->ws = 0;
}

static bool num_terminal(uint8_t sub) { return sub == N_ZERO || sub == N_INT || sub == N_FRAC || sub == N_EXP; }

static void str_byte(ctx *k, rstate s, unsigned char c) {
    if (s.u8) {
        if (c < s.u8lo || c > s.u8hi) return;
        s.u8--;
        s.u8lo = 0x80;
        s.u8hi = 0xBF;
        add(k, &s);
        return;
    }
    if (c == '"') {
        if (s.iskey) key_done(&s, s.cnode->addl_schema);
        else value_done(&s);
        add(k, &s);
        return;
    }
    if (c == '\\') { s.mode = R_STR_ESC; add(k, &s); return; }
    if (c < 0x20) return;
    if (c < 0x80) { add(k, &s); return; }
    s.u8lo = 0x80;
    s.u8hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) s.u8 = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        s.u8 = 2;
        if (c == 0xE0) s.u8lo = 0xA0;
        if (c == 0xED) s.u8hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        s.u8 = 3;
        if (c == 0xF0) s.u8lo = 0x90;
        if (c == 0xF4) s.u8hi = 0x8F;
    } else return;
    add(k, &s);
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void start_value(ctx *k, rstate s, unsigned char c, int fork) {
    const jnode *n = s.vnode ? s.vnode : k->g->any;
    if (n->n_any) {
        if (fork >= MAX_FORK) return;
        for (uint32_t i = 0; i < n->n_any; i++) {
            rstate b = s;
            b.vnode = n->any[i];
            start_value(k, b, c, fork + 1);
        }
        return;
    }
    s.vnode = n;
    s.ws = 0;
    if (n->lits.n) {
        s.mode = R_LIT;
        s.ls = &n->lits;
        s.lo = 0;
        s.hi = n->lits.n;
        s.pos = 0;
        if (!narrow(s.ls, &s.lo, &s.hi, 0, c)) return;
        s.pos = 1;
        add(k, &s);
        return;
    }
    uint32_t t = n->types;
    switch (c) {
    case '{': if ((t & JT_OBJ) && push(k, &s, C_OBJ)) add(k, &s); return;
    case '[': if ((t & JT_ARR) && push(k, &s, C_ARR)) add(k, &s); return;
    case '"':
        if (!(t & JT_STR)) return;
        s.mode = R_STR; s.iskey = 0; s.u8 = 0;
        add(k, &s);
        return;
    case 't': case 'f': case 'n': {
        if (c == 'n' ? !(t & JT_NULL) : !(t & JT_BOOL)) return;
        s.mode = R_LIT;
        s.ls = c == 'n' ? &k->g->lit_null : &k->g->lit_bool;
        s.lo = 0;
        s.hi = s.ls->n;
        if (!narrow(s.ls, &s.lo, &s.hi, 0, c)) return;
        s.pos = 1;
        add(k, &s);
        return;
    }
    default:
        if (!(t & (JT_NUM | JT_INT))) return;
        if (c == '-') s.sub = N_MINUS;
        else if (c == '0') s.sub = N_ZERO;
        else if (c >= '1' && c <= '9') s.sub = N_INT;
        else return;
        s.mode = R_NUM;
        s.pos = 1;
        s.lo = s.sub == N_INT ? 1 : 0;
        add(k, &s);
        return;
    }
}

static void alt_start(const galt *a, rstate *s) {
    memset(s, 0, sizeof *s);
    s->alt = a;
    s->vnode = a->root;
    s->mode = a->plen ? R_PREFIX : R_VALUE;
}

static void dispatch(ctx *k, rstate s, unsigned char c, int fork) {
    bool fail = false;
    switch (s.mode) {
    case R_PREFIX:
        if (c != (unsigned char)s.alt->prefix[s.pos]) return;
        if (++s.pos == s.alt->plen) { s.mode = R_VALUE; s.pos = 0; s.ws = 0; }
        add(k, &s);
        return;
    case R_SUFFIX:
        if (c != (unsigned char)s.alt->suffix[s.pos]) return;
        if (++s.pos == s.alt->slen) { s.mode = R_END; s.ws = 0; }
        add(k, &s);
        return;
    case R_END:
        if (ws_step(&s, c, &fail) && !fail) add(k, &s);
        return;
    case R_VALUE:
        if (ws_step(&s, c, &fail)) { if (!fail) add(k, &s); return; }
        start_value(k, s, c, fork);
        return;
    case R_LIT: {
        uint32_t lo = s.lo, hi = s.hi;
        if (narrow(s.ls, &lo, &hi, s.pos, c)) { s.lo = lo; s.hi = hi; s.pos++; add(k, &s); return; }
        if (s.lo < s.hi && s.ls->len[s.lo] == s.pos) { value_done(&s); dispatch(k, s, c, fork); }
        return;
    }
    case R_STR:
        str_byte(k, s, c);
        return;
    case R_STR_ESC:
        if (c == 'u') { s.mode = R_STR_HEX; s.sub = 4; s.pos = 0; add(k, &s); return; }
        if (c && strchr("\"\\/bfnrt", c)) { s.mode = R_STR; add(k, &s); }
        return;
    case R_STR_HEX: {
        int h = hexval(c);
        if (h < 0) return;
        s.pos = s.pos * 16 + (uint32_t)h;
        s.sub--;
        if (s.sub == 2 && s.pos >= 0xD8 && s.pos <= 0xDF) return; /* no surrogate escapes */
        if (s.sub == 0) {
            if (s.pos == 0) return; /* \u0000 */
            s.mode = R_STR;
        }
        add(k, &s);
        return;
    }
    case R_NUM: {
        bool flt = (s.vnode->types & JT_NUM) != 0;
        uint8_t nx = 0;
        bool digit = c >= '0' && c <= '9';
        switch (s.sub) {
        case N_MINUS: nx = c == '0' ? N_ZERO : digit ? N_INT : 0; break;
        case N_ZERO: nx = (c == '.' && flt) ? N_DOT : ((c == 'e' || c == 'E') && flt) ? N_E : 0; break;
        case N_INT: nx = digit ? N_INT : (c == '.' && flt) ? N_DOT : ((c == 'e' || c == 'E') && flt) ? N_E : 0; break;
        case N_DOT: nx = digit ? N_FRAC : 0; break;
        case N_FRAC: nx = digit ? N_FRAC : (c == 'e' || c == 'E') ? N_E : 0; break;
        case N_E: nx = (c == '+' || c == '-') ? N_ESIGN : digit ? N_EXP : 0; break;
        case N_ESIGN:
        case N_EXP: nx = digit ? N_EXP : 0; break;
        }
        if (nx) {
            /* digits per part are capped so that every accepted number fits an int64 / double */
            s.lo = nx == s.sub ? s.lo + 1 : (digit ? 1 : 0);
            uint32_t cap = nx == N_INT ? MAX_INT_DIGITS : nx == N_FRAC ? MAX_FRAC_DIGITS : MAX_EXP_DIGITS;
            if (s.lo > cap) nx = 0;
        }
        if (nx && s.pos < MAX_NUM) { s.sub = nx; s.pos++; add(k, &s); return; }
        if (num_terminal(s.sub)) { value_done(&s); dispatch(k, s, c, fork); }
        return;
    }
    case R_OBJ_FIRST:
    case R_OBJ_KEY:
        if (ws_step(&s, c, &fail)) { if (!fail) add(k, &s); return; }
        if (c == '"') { begin_key(k, &s); return; }
        if (c == '}' && s.mode == R_OBJ_FIRST && req_met(&s)) { pop(&s); add(k, &s); }
        return;
    case R_KEY: {
        const jnode *o = s.cnode;
        if (c == '"') {
            if (s.lo < s.hi && o->keys.len[s.lo] == s.pos) {
                if (!key_unseen(&s, s.lo)) return;
                if (s.lo < 64) s.seen |= 1ull << s.lo;
                key_done(&s, o->key_schema[s.lo]);
                add(k, &s);
            } else if (o->addl) {
                key_done(&s, o->addl_schema);
                add(k, &s);
            }
            return;
        }
        uint32_t lo = s.lo, hi = s.hi;
        if (narrow(&o->keys, &lo, &hi, s.pos, c) && (o->addl || any_unseen(&s, lo, hi))) {
            s.lo = lo;
            s.hi = hi;
            s.pos++;
            add(k, &s);
            return;
        }
        if (!o->addl) return;
        /* no declared name starts like this: an additional key */
        s.mode = R_STR;
        s.iskey = 1;
        s.u8 = 0;
        str_byte(k, s, c);
        return;
    }
    case R_COLON:
        if (ws_step(&s, c, &fail)) { if (!fail) add(k, &s); return; }
        if (c == ':') { s.mode = R_VALUE; add(k, &s); }
        return;
    case R_AFTER:
        if (ws_step(&s, c, &fail)) { if (!fail) add(k, &s); return; }
        if (s.ckind == C_OBJ) {
            if (c == ',' && (s.cnode->addl || any_unseen(&s, 0, s.cnode->keys.n))) { s.mode = R_OBJ_KEY; add(k, &s); }
            else if (c == '}' && req_met(&s)) { pop(&s); add(k, &s); }
        } else {
            if (c == ',') { s.mode = R_VALUE; s.vnode = s.cnode->items; add(k, &s); }
            else if (c == ']') { pop(&s); add(k, &s); }
        }
        return;
    case R_ARR_FIRST:
        if (ws_step(&s, c, &fail)) { if (!fail) add(k, &s); return; }
        if (c == ']') { pop(&s); add(k, &s); return; }
        s.mode = R_VALUE;
        s.vnode = s.cnode->items;
        start_value(k, s, c, fork);
        return;
    case R_THINK_OPEN: {
        static const char open[] = "<think>";
        if (c != (unsigned char)open[s.pos]) return;
        if (++s.pos == sizeof open - 1) { s.mode = R_THINK; s.pos = 0; }
        add(k, &s);
        return;
    }
    case R_THINK: {
        static const char close[] = "</think>";
        if (c == (unsigned char)close[s.pos]) {
            if (++s.pos == sizeof close - 1) { s.mode = R_THINK_AFTER; s.pos = 0; s.ws = 0; }
        } else {
            s.pos = c == '<' ? 1 : 0;
        }
        add(k, &s);
        return;
    }
    case R_THINK_AFTER:
        if (chat_is_ws(c)) { if (++s.ws <= MAX_WS) add(k, &s); return; }
        for (size_t i = 0; i < k->g->n_alts; i++) {
            rstate a;
            alt_start(&k->g->alts[i], &a);
            dispatch(k, a, c, fork);
        }
        return;
    default:
        return;
    }
}

void rec_init(const al_grammar *g, unsigned flags, rset *out) {
    out->n = 0;
    out->g = g;
    ctx k = {g, NULL, out};
    if (flags & AL_CONSTRAINT_ALLOW_THINK) {
        rstate t;
        memset(&t, 0, sizeof t);
        t.mode = R_THINK_OPEN;
        t.alt = g->n_alts ? &g->alts[0] : NULL;
        add(&k, &t);
    }
    for (size_t i = 0; i < g->n_alts; i++) {
        rstate a;
        alt_start(&g->alts[i], &a);
        add(&k, &a);
    }
}

void rec_step(const rset *in, unsigned char c, arena *a, rset *out) {
    out->n = 0;
    out->g = in->g;
    ctx k = {in->g, a, out};
    for (int i = 0; i < in->n; i++) dispatch(&k, in->s[i], c, 0);
}

bool rec_can_finish(const rset *x) {
    for (int i = 0; i < x->n; i++) {
        const rstate *s = &x->s[i];
        if (s->mode == R_END) return true;
        if (s->ckind != C_TOP || !s->alt || s->alt->slen) continue;
        if (s->mode == R_NUM && num_terminal(s->sub)) return true;
        if (s->mode == R_LIT && s->lo < s->hi && s->ls->len[s->lo] == s->pos) return true;
    }
    return false;
}

bool rec_free_string(const rset *x) {
    if (!x->n) return false;
    for (int i = 0; i < x->n; i++)
        if (x->s[i].mode != R_STR || x->s[i].u8) return false;
    return true;
}

bool rec_free_think(const rset *x) {
    if (!x->n) return false;
    for (int i = 0; i < x->n; i++)
        if (x->s[i].mode != R_THINK || x->s[i].pos) return false;
    return true;
}

bool rec_in_wrapper(const rset *x) {
    for (int i = 0; i < x->n; i++)
        if (x->s[i].mode == R_PREFIX || x->s[i].mode == R_SUFFIX) return true;
    return false;
}

void rec_keep_wrapper(rset *x) {
    int o = 0;
    for (int i = 0; i < x->n; i++)
        if (x->s[i].mode == R_PREFIX || x->s[i].mode == R_SUFFIX) x->s[o++] = x->s[i];
    x->n = o;
}
