/* chat_constraint.c — token masks for constrained decoding.
 *
 * The vocabulary is prepared once (al_cvocab): pieces sorted bytewise and arranged as a trie whose
 * nodes are ranges of the sorted order, each node knowing whether every token below it continues
 * with "plain" string text (no quote, backslash or control byte; whole UTF-8 characters). A mask
 * is a depth-first walk of the trie that steps the recognizer one byte per edge and cuts a whole
 * subtree as soon as no state survives; inside free string text, plain subtrees are accepted
 * without walking them. */
#include "alloy/tokenizer.h"
#include "serve/chat_grammar.h"

#define MAX_PIECE 1024

typedef struct tnode {
    uint32_t lo, hi;   /* range in sorted[] of the tokens below (tokens ending here first) */
    uint32_t child;    /* index of the first child; children are contiguous, sorted by byte */
    uint32_t n_end;    /* tokens whose piece ends at this node */
    uint16_t n_child;
    uint16_t depth;
    uint8_t byte;      /* edge byte from the parent */
    uint8_t plain;     /* every token below continues with plain string text */
} tnode;

struct al_cvocab {
    int32_t n;
    char *blob;
    uint32_t *off, *len;
    uint8_t *flags;
    int32_t *sorted;
    uint32_t n_sorted;
    tnode *nodes;
    uint32_t n_nodes;
    int32_t *eog, *ctrl;
    uint32_t n_eog, n_ctrl;
    uint32_t max_depth;
};

void al_cvocab_free(al_cvocab *v) {
    if (!v) return;
    free(v->blob);
    free(v->off);
    free(v->len);
    free(v->flags);
    free(v->sorted);
    free(v->nodes);
    free(v->eog);
    free(v->ctrl);
    free(v);
}

int32_t al_cvocab_size(const al_cvocab *v) { return v ? v->n : 0; }

typedef struct sort_ent { const unsigned char *p; uint32_t len; int32_t id; } sort_ent;

static int ent_cmp(const void *a, const void *b) {
    const sort_ent *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* pf[d] = the piece from byte d on is plain string text (pf has len + 1 entries). */
static void plain_from(const unsigned char *p, uint32_t len, uint8_t *pf) {
    pf[len] = 1;
    for (uint32_t d = len; d-- > 0;) {
        unsigned char c = p[d];
        if (c < 0x80) { pf[d] = c >= 0x20 && c != '"' && c != '\\' && pf[d + 1]; continue; }
        uint32_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) k = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        else { pf[d] = 0; continue; }
        bool ok = d + k < len && p[d + 1] >= lo && p[d + 1] <= hi;
        for (uint32_t j = 2; ok && j <= k; j++) ok = (p[d + j] & 0xC0) == 0x80;
        pf[d] = ok && pf[d + k + 1];
    }
}

static al_status build_trie(al_cvocab *v) {
    /* nodes <= 1 + total bytes of the sorted pieces */
    size_t total = 1;
    for (uint32_t i = 0; i < v->n_sorted; i++) total += v->len[v->sorted[i]];
    if (total > UINT32_MAX / 2) return al_err(AL_ERR_RANGE, "vocabulary too large");
    v->nodes = malloc(total * sizeof *v->nodes);
    uint8_t *pf = malloc(MAX_PIECE + 1);
    if (!v->nodes || !pf) { free(pf); return al_err(AL_ERR_NOMEM, "vocabulary trie: out of memory"); }
    uint32_t nn = 1;
    v->nodes[0] = (tnode){.lo = 0, .hi = v->n_sorted, .plain = 1};
    for (uint32_t i = 0; i < nn; i++) { /* breadth first: children are appended contiguously */
        tnode *nd = &v->nodes[i];
        uint32_t d = nd->depth, j = nd->lo;
        while (j < nd->hi && v->len[v->sorted[j]] == d) j++;
        nd->n_end = j - nd->lo;
        nd->child = nn;
        nd->n_child = 0;
        if (d > v->max_depth) v->max_depth = d;
        while (j < nd->hi) {
            unsigned char b = (unsigned char)v->blob[v->off[v->sorted[j]] + d];
            uint32_t e = j;
            while (e < nd->hi && (unsigned char)v->blob[v->off[v->sorted[e]] + d] == b) e++;
            v->nodes[nn++] = (tnode){.lo = j, .hi = e, .depth = (uint16_t)(d + 1), .byte = b, .plain = 1};
            nd = &v->nodes[i];
            nd->n_child++;
            j = e;
        }
    }
    v->n_nodes = nn;
    /* plain flags: AND over the tokens below, along each token's path */
    for (uint32_t t = 0; t < v->n_sorted; t++) {
        int32_t id = v->sorted[t];
        const unsigned char *p = (const unsigned char *)v->blob + v->off[id];
        uint32_t L = v->len[id];
        plain_from(p, L, pf);
        uint32_t node = 0;
        v->nodes[0].plain &= pf[0];
        for (uint32_t d = 0; d < L; d++) {
            const tnode *nd = &v->nodes[node];
            uint32_t lo = nd->child, hi = nd->child + nd->n_child;
            while (lo < hi) {
                uint32_t m = lo + (hi - lo) / 2;
                if (v->nodes[m].byte < p[d]) lo = m + 1; else hi = m;
            }
            node = lo;
            v->nodes[node].plain &= pf[d + 1];
        }
    }
    free(pf);
    return al_ok();
}

al_status al_cvocab_from_pieces(al_cvocab **out, const char *const *pieces, const size_t *lens,
                                const uint8_t *flags, int32_t n) {
    if (!out || (n > 0 && (!pieces || !lens)) || n < 0) return al_err(AL_ERR_INVALID, "al_cvocab_from_pieces: bad arguments");
    *out = NULL;
    al_cvocab *v = calloc(1, sizeof *v);
    if (!v) return al_err(AL_ERR_NOMEM, "out of memory");
    v->n = n;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (lens[i] > UINT32_MAX || !al_add_ok(total, lens[i], &total)) { al_cvocab_free(v); return al_err(AL_ERR_RANGE, "vocabulary too large"); }
    }
    if (total > UINT32_MAX) { al_cvocab_free(v); return al_err(AL_ERR_RANGE, "vocabulary too large"); }
    size_t nn = n ? (size_t)n : 1;
    v->blob = malloc(total ? total : 1);
    v->off = malloc(nn * sizeof *v->off);
    v->len = malloc(nn * sizeof *v->len);
    v->flags = calloc(nn, 1);
    v->sorted = malloc(nn * sizeof *v->sorted);
    v->eog = malloc(nn * sizeof *v->eog);
    v->ctrl = malloc(nn * sizeof *v->ctrl);
    sort_ent *ents = malloc(nn * sizeof *ents);
    if (!v->blob || !v->off || !v->len || !v->flags || !v->sorted || !v->eog || !v->ctrl || !ents) {
        free(ents);
        al_cvocab_free(v);
        return al_err(AL_ERR_NOMEM, "vocabulary: out of memory");
    }
    size_t o = 0;
    uint32_t ns = 0;
    for (int32_t i = 0; i < n; i++) {
        v->off[i] = (uint32_t)o;
        v->len[i] = (uint32_t)lens[i];
        if (lens[i]) memcpy(v->blob + o, pieces[i], lens[i]);
        o += lens[i];
        v->flags[i] = flags ? flags[i] : 0;
        if (v->flags[i] & AL_CVOCAB_EOG) v->eog[v->n_eog++] = i;
        else if (v->flags[i] & AL_CVOCAB_CONTROL) { if (lens[i]) v->ctrl[v->n_ctrl++] = i; }
        else if (lens[i] > 0 && lens[i] <= MAX_PIECE) ents[ns++] = (sort_ent){(const unsigned char *)v->blob + v->off[i], (uint32_t)lens[i], i};
    }
    qsort(ents, ns, sizeof *ents, ent_cmp);
    for (uint32_t i = 0; i < ns; i++) v->sorted[i] = ents[i].id;
    v->n_sorted = ns;
    free(ents);
    al_status st = build_trie(v);
    if (al_failed(&st)) { al_cvocab_free(v); return st; }
    *out = v;
    return al_ok();
}

al_status al_cvocab_from_tokenizer(al_cvocab **out, const al_tokenizer *t) {
    if (!out || !t) return al_err(AL_ERR_INVALID, "al_cvocab_from_tokenizer: NULL argument");
    *out = NULL;
    int32_t n = al_tokenizer_vocab_size(t);
    if (n <= 0) return al_err(AL_ERR_INVALID, "al_cvocab_from_tokenizer: empty vocabulary");
    const char **pieces = malloc((size_t)n * sizeof *pieces);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    uint8_t *flags = calloc((size_t)n, 1);
    if (!pieces || !lens || !flags) {
        free(pieces); free(lens); free(flags);
        return al_err(AL_ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i < n; i++) {
        bool ctrl = al_tokenizer_is_control(t, i) || (al_tokenizer_token_attr(t, i) & (AL_TOK_ATTR_UNKNOWN | AL_TOK_ATTR_UNUSED));
        lens[i] = al_tokenizer_token_to_piece(t, i, true, &pieces[i]);
        if (al_tokenizer_is_eog(t, i)) flags[i] = AL_CVOCAB_EOG;
        else if (ctrl) flags[i] = AL_CVOCAB_CONTROL;
    }
    al_status st = al_cvocab_from_pieces(out, pieces, lens, flags, n);
    free(pieces);
    free(lens);
    free(flags);
    return st;
}

/* ---- constraint ---- */

struct al_constraint {
    const al_grammar *g;
    const al_cvocab *v;
    unsigned flags;
    rset *sets;        /* [2]: the committed states and a spare */
    int cur;
    bool dead;
    chat_buf text;     /* the text the committed states have read */
    arena committed, scratch;
    rset **levels;     /* DFS state sets per depth, allocated on demand */
    uint32_t n_levels;
    uint8_t *ok;       /* per token: allowed */
};

al_status al_constraint_init(al_constraint **out, const al_grammar *g, const al_cvocab *v, unsigned flags) {
    if (!out || !g || !v) return al_err(AL_ERR_INVALID, "al_constraint_init: NULL argument");
    *out = NULL;
    if (!g->n_alts) return al_err(AL_ERR_INVALID, "al_constraint_init: empty grammar");
    al_constraint *c = calloc(1, sizeof *c);
    if (!c) return al_err(AL_ERR_NOMEM, "out of memory");
    c->g = g;
    c->v = v;
    c->flags = flags;
    c->sets = malloc(2 * sizeof *c->sets);
    c->n_levels = v->max_depth + 2;
    c->levels = calloc(c->n_levels, sizeof *c->levels);
    c->ok = malloc(v->n ? (size_t)v->n : 1);
    if (!c->sets || !c->levels || !c->ok) { al_constraint_free(c); return al_err(AL_ERR_NOMEM, "out of memory"); }
    rec_init(g, flags, &c->sets[0]);
    *out = c;
    return al_ok();
}

void al_constraint_free(al_constraint *c) {
    if (!c) return;
    for (uint32_t i = 0; c->levels && i < c->n_levels; i++) free(c->levels[i]);
    free(c->levels);
    free(c->sets);
    free(c->ok);
    chat_buf_free(&c->text);
    arena_free(&c->committed);
    arena_free(&c->scratch);
    free(c);
}

static void accept_range(const al_cvocab *v, uint8_t *ok, uint32_t lo, uint32_t hi) {
    for (uint32_t i = lo; i < hi; i++) ok[v->sorted[i]] = 1;
}

static bool dfs(al_constraint *c, uint32_t node, const rset *S) {
    const al_cvocab *v = c->v;
    const tnode *nd = &v->nodes[node];
    accept_range(v, c->ok, nd->lo, nd->lo + nd->n_end);
    if (nd->plain && rec_free_string(S)) {
        accept_range(v, c->ok, nd->lo, nd->hi);
        return true;
    }
    uint32_t d = nd->depth + 1u;
    if (d >= c->n_levels) return true;
    if (!c->levels[d] && !(c->levels[d] = malloc(sizeof(rset)))) return false;
    rset *next = c->levels[d];
    for (uint32_t i = 0; i < nd->n_child; i++) {
        uint32_t ch = nd->child + i;
        rec_step(S, v->nodes[ch].byte, &c->scratch, next);
        if (next->n && !dfs(c, ch, next)) return false;
    }
    return true;
}

/* Brings the committed states up to `text`. */
static void commit(al_constraint *c, const char *text, size_t len) {
    if (len < c->text.n || (c->text.n && memcmp(text, c->text.p, c->text.n) != 0)) {
        rec_init(c->g, c->flags, &c->sets[0]);
        c->cur = 0;
        c->dead = false;
        chat_buf_clear(&c->text);
        arena_reset(&c->committed);
    }
    for (size_t i = c->text.n; i < len && !c->dead; i++) {
        rec_step(&c->sets[c->cur], (unsigned char)text[i], &c->committed, &c->sets[c->cur ^ 1]);
        c->cur ^= 1;
        if (c->sets[c->cur].n == 0) c->dead = true;
    }
    chat_buf_put(&c->text, text + c->text.n, len - c->text.n);
}

al_status al_constraint_mask(al_constraint *c, const char *text, size_t len, uint8_t *allowed, int n_vocab) {
    if (!c || !allowed || (!text && len)) return al_err(AL_ERR_INVALID, "al_constraint_mask: NULL argument");
    const al_cvocab *v = c->v;
    commit(c, text, len);
    if (c->text.oom) return al_err(AL_ERR_NOMEM, "constraint: out of memory");
    const rset *S = &c->sets[c->cur];
    int n = n_vocab < v->n ? n_vocab : v->n;
    if (c->dead) {
        /* not a valid prefix: nothing can repair it, let it end */
        for (int i = 0; i < n; i++) allowed[i] = (v->flags[i] & AL_CVOCAB_EOG) != 0;
        for (int i = n; i < n_vocab; i++) allowed[i] = 0;
        return al_ok();
    }
    if (rec_free_think(S)) {
        /* inside the think block anything goes except ending the output */
        for (uint32_t i = 0; i < v->n_eog; i++) if (v->eog[i] < n_vocab) allowed[v->eog[i]] = 0;
        return al_ok();
    }
    memset(c->ok, 0, v->n ? (size_t)v->n : 1);
    arena_reset(&c->scratch);
    if (!dfs(c, 0, S)) return al_err(AL_ERR_NOMEM, "constraint: out of memory");
    if (rec_in_wrapper(S) && v->n_ctrl) {
        rset *x = malloc(2 * sizeof *x);
        if (!x) return al_err(AL_ERR_NOMEM, "constraint: out of memory");
        for (uint32_t i = 0; i < v->n_ctrl; i++) {
            int32_t id = v->ctrl[i];
            x[0] = *S;
            rec_keep_wrapper(&x[0]);
            int cur = 0;
            for (uint32_t j = 0; j < v->len[id] && x[cur].n; j++) {
                rec_step(&x[cur], (unsigned char)v->blob[v->off[id] + j], &c->scratch, &x[cur ^ 1]);
                cur ^= 1;
            }
            if (x[cur].n) c->ok[id] = 1;
        }
        free(x);
    }
    if (rec_can_finish(S))
        for (uint32_t i = 0; i < v->n_eog; i++) c->ok[v->eog[i]] = 1;
    for (int i = 0; i < n; i++)
        if (!c->ok[i]) allowed[i] = 0;
    for (int i = n; i < n_vocab; i++) allowed[i] = 0;
    return al_ok();
}

bool al_constraint_apply(void *ud, const char *text_so_far, size_t len, uint8_t *allowed, int n_vocab) {
    al_status st = al_constraint_mask((al_constraint *)ud, text_so_far, len, allowed, n_vocab);
    return !al_failed(&st);
}
