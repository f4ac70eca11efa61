/* tokenizer_bpe.c — the merge loop shared by BPE (merge ranks) and SentencePiece (token scores).
 *
 * A word is split into UTF-8 characters (symbols, contiguous in the word). Adjacent pairs that
 * may merge are kept in a min-heap keyed by (priority, left index): BPE priority is the merge
 * rank, SPM priority is minus the score of the merged token. The best pair is merged repeatedly;
 * stale heap entries (one side already merged elsewhere) are recognised by their byte size.
 */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_impl.h"

typedef struct sym {
    int prev, next;
    size_t off, n; /* bytes of the word; n == 0: merged away */
} sym;

typedef struct bigram {
    double key;
    int left, right;
    size_t size;
} bigram;

typedef struct engine {
    const al_tokenizer *t;
    const char *w;
    sym *s;
    int ns;
    bigram *h;
    size_t nh, caph;
    bool spm;
    char *kbuf; /* merge-key scratch */
    size_t kcap;
} engine;

static bool bg_less(const bigram *a, const bigram *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static al_status heap_push(engine *e, bigram b) {
    if (e->nh == e->caph) {
        size_t cap = e->caph ? e->caph * 2 : 64;
        bigram *p = realloc(e->h, cap * sizeof *p);
        if (!p) return al_err(AL_ERR_NOMEM, "tokenizer: merge queue");
        e->h = p;
        e->caph = cap;
    }
    size_t i = e->nh++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!bg_less(&b, &e->h[par])) break;
        e->h[i] = e->h[par];
        i = par;
    }
    e->h[i] = b;
    return al_ok();
}

static bigram heap_pop(engine *e) {
    bigram top = e->h[0], last = e->h[--e->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->nh) break;
        if (c + 1 < e->nh && bg_less(&e->h[c + 1], &e->h[c])) c++;
        if (!bg_less(&e->h[c], &last)) break;
        e->h[i] = e->h[c];
        i = c;
    }
    if (e->nh) e->h[i] = last;
    return top;
}

static al_status try_pair(engine *e, int l, int r) {
    if (l < 0 || r < 0) return al_ok();
    const sym *a = &e->s[l], *b = &e->s[r];
    double key;
    if (e->spm) {
        int32_t id;
        if (!al_strmap_get(&e->t->tok_map, e->w + a->off, a->n + b->n, &id)) return al_ok();
        key = -(double)e->t->scores[id];
    } else {
        size_t need = 4 + a->n + b->n;
        if (need > e->kcap) {
            char *k = realloc(e->kbuf, need * 2);
            if (!k) return al_err(AL_ERR_NOMEM, "tokenizer: merge key");
            e->kbuf = k;
            e->kcap = need * 2;
        }
        size_t kl = al_merge_key(e->kbuf, e->w + a->off, a->n, e->w + b->off, b->n);
        int32_t rank;
        if (!al_strmap_get(&e->t->merges, e->kbuf, kl, &rank)) return al_ok();
        key = (double)rank;
    }
    return heap_push(e, (bigram){key, l, r, a->n + b->n});
}

int32_t al_tok_byte_token(const al_tokenizer *t, uint8_t byte) {
    static const char hex[] = "0123456789ABCDEF";
    char buf[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    int32_t id;
    if (al_strmap_get(&t->tok_map, buf, 6, &id)) return id;
    char c = (char)byte;
    if (al_strmap_get(&t->tok_map, &c, 1, &id)) return id;
    return t->unk;
}

/* Emits the final symbols of the word. */
static al_status emit(engine *e, al_ivec *out) {
    const al_tokenizer *t = e->t;
    for (int i = 0; i != -1; i = e->s[i].next) {
        const sym *s = &e->s[i];
        if (s->n == 0) continue;
        const char *p = e->w + s->off;
        int32_t id;
        if (al_strmap_get(&t->tok_map, p, s->n, &id)) {
            AL_TRY(al_ivec_push(out, id));
            continue;
        }
        if (t->model == AL_TOK_MODEL_BPE) {
            /* byte-level BPE: whatever single-byte tokens exist (llama.cpp) */
            for (size_t k = 0; k < s->n; k++)
                if (al_strmap_get(&t->tok_map, p + k, 1, &id)) AL_TRY(al_ivec_push(out, id));
        } else if (t->model == AL_TOK_MODEL_SPM || t->byte_fallback) {
            for (size_t k = 0; k < s->n; k++) {
                id = al_tok_byte_token(t, (uint8_t)p[k]);
                if (id != AL_TOKEN_NULL) AL_TRY(al_ivec_push(out, id));
            }
        } else if (t->unk != AL_TOKEN_NULL) {
            AL_TRY(al_ivec_push(out, t->unk));
        }
    }
    return al_ok();
}

static al_status run(const al_tokenizer *t, const char *w, size_t len, bool spm, al_ivec *out) {
    if (len == 0) return al_ok();
    if (len > (size_t)INT32_MAX) return al_err(AL_ERR_RANGE, "tokenizer: word of %zu bytes", len);
    engine e = {.t = t, .w = w, .spm = spm};
    al_status st = al_ok();
    e.s = malloc(len * sizeof *e.s);
    if (!e.s) return al_err(AL_ERR_NOMEM, "tokenizer: %zu symbols", len);
    for (size_t off = 0; off < len;) {
        size_t n = al_utf8_len_lead((unsigned char)w[off]);
        if (n > len - off) n = len - off;
        e.s[e.ns] = (sym){e.ns - 1, off + n == len ? -1 : e.ns + 1, off, n};
        e.ns++;
        off += n;
    }
    for (int i = 1; i < e.ns && !al_failed(&st); i++) st = try_pair(&e, i - 1, i);
    while (e.nh && !al_failed(&st)) {
        bigram b = heap_pop(&e);
        sym *l = &e.s[b.left], *r = &e.s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) e.s[r->next].prev = b.left;
        st = try_pair(&e, l->prev, b.left);
        if (!al_failed(&st)) st = try_pair(&e, b.left, l->next);
    }
    if (!al_failed(&st)) st = emit(&e, out);
    free(e.s);
    free(e.h);
    free(e.kbuf);
    return st;
}

al_status al_bpe_word(const al_tokenizer *t, const char *word, size_t len, al_ivec *out) {
    int32_t id;
    if (t->ignore_merges && al_strmap_get(&t->tok_map, word, len, &id)) return al_ivec_push(out, id);
    return run(t, word, len, false, out);
}

al_status al_spm_text(const al_tokenizer *t, const char *text, size_t len, al_ivec *out) {
    return run(t, text, len, true, out);
}
