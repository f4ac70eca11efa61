/* tokenizer_encode.c — special-token partition and the encode driver. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/tokenizer_impl.h"

/* A piece of the input: raw text [off, off+len) or a token already decided. */
typedef struct frag {
    int32_t token; /* AL_TOKEN_NULL for raw text */
    size_t off, len;
} frag;

typedef struct fragvec {
    frag *v;
    size_t n, cap;
} fragvec;

static al_status frag_push(fragvec *f, frag x) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *p = realloc(f->v, cap * sizeof *p);
        if (!p) return al_err(AL_ERR_NOMEM, "tokenizer: fragment list");
        f->v = p;
        f->cap = cap;
    }
    f->v[f->n++] = x;
    return al_ok();
}

static bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end; p++) {
        p = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!p) return NULL;
        if (memcmp(p, nd, nn) == 0) return p;
    }
    return NULL;
}

/* Cuts special tokens out of the raw fragments, longest token text first (llama.cpp's
 * tokenizer_st_partition). Control/unknown tokens only when parse_special. */
static al_status partition(const al_tokenizer *t, const char *text, size_t len, bool parse_special,
                           fragvec *cur) {
    fragvec nxt = {0};
    al_status st = al_ok();
    /* which byte pairs occur in the text: most special tokens can be ruled out without a scan */
    uint8_t *pairs = NULL;
    if (t->n_special > 8 && len > 64) {
        pairs = calloc(65536 / 8, 1);
        if (!pairs) return al_err(AL_ERR_NOMEM, "tokenizer: pair bitmap");
        for (size_t i = 0; i + 1 < len; i++) {
            unsigned v = (unsigned)(unsigned char)text[i] << 8 | (unsigned char)text[i + 1];
            pairs[v >> 3] |= (uint8_t)(1u << (v & 7));
        }
    }
    for (size_t k = 0; k < t->n_special && !al_failed(&st); k++) {
        int32_t id = t->special[k];
        uint32_t a = t->attr[id];
        if (!parse_special && (a & (AL_TOK_ATTR_CONTROL | AL_TOK_ATTR_UNKNOWN))) continue;
        const char *s = t->text_arena + t->text_off[id];
        size_t sl = t->text_len[id];
        if (pairs && sl >= 2) {
            bool absent = false;
            for (size_t i = 0; i + 1 < sl && !absent; i++) {
                unsigned v = (unsigned)(unsigned char)s[i] << 8 | (unsigned char)s[i + 1];
                absent = !(pairs[v >> 3] & (1u << (v & 7)));
            }
            if (absent) continue;
        }
        if (!find_bytes(text, len, s, sl)) continue; /* cheap skip for absent tokens */
        nxt.n = 0;
        for (size_t f = 0; f < cur->n && !al_failed(&st); f++) {
            frag fr = cur->v[f];
            if (fr.token != AL_TOKEN_NULL) {
                st = frag_push(&nxt, fr);
                continue;
            }
            size_t base = fr.off, blen = fr.len;
            for (;;) {
                const char *m = find_bytes(text + base, blen, s, sl);
                if (!m) {
                    if (blen) st = frag_push(&nxt, (frag){AL_TOKEN_NULL, base, blen});
                    break;
                }
                size_t mo = (size_t)(m - text);
                size_t ll = mo - base;
                if (a & AL_TOK_ATTR_LSTRIP)
                    while (ll > 0 && c_isspace(text[base + ll - 1])) ll--;
                if (ll) st = frag_push(&nxt, (frag){AL_TOKEN_NULL, base, ll});
                if (!al_failed(&st)) st = frag_push(&nxt, (frag){id, 0, 0});
                if (al_failed(&st)) break;
                size_t ro = mo + sl, rl = base + blen - ro;
                if (a & AL_TOK_ATTR_RSTRIP)
                    while (rl > 0 && c_isspace(text[ro])) ro++, rl--;
                base = ro;
                blen = rl;
                if (!blen) break;
            }
        }
        fragvec tmp = *cur;
        *cur = nxt;
        nxt = tmp;
    }
    free(pairs);
    free(nxt.v);
    return st;
}

typedef struct bpe_ctx {
    const al_tokenizer *t;
    al_ivec *out;
} bpe_ctx;

static al_status on_word(void *ud, const char *w, size_t n) {
    bpe_ctx *c = ud;
    return al_bpe_word(c->t, w, n, c->out);
}

/* tokenizer.json normalizers: NFC/NFKC/... via utf8proc on (sanitised) UTF-8. */
static al_status normalize(const al_tokenizer *t, const char *s, size_t n, al_buf *o) {
    o->n = 0;
    if (!t->hf_normalize) return al_buf_put(o, s, n);
    al_buf clean = {0};
    al_status st = al_ok();
    for (size_t i = 0; i < n && !al_failed(&st);) {
        char u[4];
        uint32_t cp = al_utf8_next(s, n, &i);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        st = al_buf_put(&clean, u, al_utf8_put(cp, u));
    }
    if (al_failed(&st) || !clean.n) {
        free(clean.p);
        return st;
    }
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t rn = utf8proc_map((const utf8proc_uint8_t *)clean.p, (utf8proc_ssize_t)clean.n, &res,
                                       (utf8proc_option_t)t->hf_normalize);
    free(clean.p);
    if (rn < 0) return al_err(AL_ERR_INVALID, "tokenizer: normalisation failed: %s", utf8proc_errmsg(rn));
    st = al_buf_put(o, res, (size_t)rn);
    free(res);
    return st;
}

al_status al_tokenizer_encode(const al_tokenizer *t, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len)) return al_err(AL_ERR_INVALID, "al_tokenizer_encode: NULL argument");
    fragvec fr = {0};
    al_ivec out = {0};
    al_buf tmp = {0}, norm = {0};
    al_status st = al_ok();
    if (len) {
        st = frag_push(&fr, (frag){AL_TOKEN_NULL, 0, len});
        if (!al_failed(&st)) st = partition(t, text, len, parse_special, &fr);
    }
    if (!al_failed(&st) && add_special && t->add_bos) {
        if (t->bos == AL_TOKEN_NULL) st = al_err(AL_ERR_INVALID, "tokenizer: add_bos set but no BOS token");
        else st = al_ivec_push(&out, t->bos);
    }
    bool prev_special = true; /* SPM: a space is prefixed to text at the start / after a token */
    for (size_t f = 0; f < fr.n && !al_failed(&st); f++) {
        const frag *p = &fr.v[f];
        if (p->token != AL_TOKEN_NULL) {
            st = al_ivec_push(&out, p->token);
            prev_special = true;
            continue;
        }
        const char *s = text + p->off;
        size_t sl = p->len;
        switch (t->model) {
        case AL_TOK_MODEL_BPE: {
            bpe_ctx c = {t, &out};
            st = normalize(t, s, sl, &norm);
            if (al_failed(&st)) break;
            tmp.n = 0;
            if (t->hf_prepend_space && norm.n && norm.p[0] != ' ') st = al_buf_put(&tmp, " ", 1);
            if (!al_failed(&st)) st = al_buf_put(&tmp, norm.p, norm.n);
            if (!al_failed(&st) && tmp.n) st = al_pretok_split(t, tmp.p, tmp.n, t->byte_level, on_word, &c);
            break;
        }
        case AL_TOK_MODEL_SPM:
        case AL_TOK_MODEL_BPE_SPM: {
            bool prefix;
            if (t->model == AL_TOK_MODEL_SPM) {
                prefix = t->add_space_prefix && prev_special;
                norm.n = 0;
                st = al_buf_put(&norm, s, sl);
            } else {
                prefix = t->hf_prepend_space && (t->hf_prepend_always || p->off == 0);
                st = normalize(t, s, sl, &norm);
                if (t->hf_prepend_dedup && norm.n && norm.p[0] == ' ') prefix = false;
            }
            if (al_failed(&st)) break;
            tmp.n = 0;
            if (prefix) st = al_buf_put(&tmp, "\xe2\x96\x81", 3);
            for (size_t i = 0; i < norm.n && !al_failed(&st); i++)
                st = norm.p[i] == ' ' ? al_buf_put(&tmp, "\xe2\x96\x81", 3) : al_buf_put(&tmp, norm.p + i, 1);
            if (al_failed(&st)) break;
            if (!tmp.n) break;
            if (t->model == AL_TOK_MODEL_SPM) {
                st = al_spm_text(t, tmp.p, tmp.n, &out);
            } else if (t->pretok.n_re) { /* Metaspace split: a word starts at each "▁" */
                bpe_ctx c = {t, &out};
                st = al_pretok_split(t, tmp.p, tmp.n, false, on_word, &c);
            } else {
                st = al_bpe_word(t, tmp.p, tmp.n, &out);
            }
            break;
        }
        default:
            st = al_err(AL_ERR_UNSUPPORTED, "tokenizer: model %d", (int)t->model);
        }
        prev_special = false;
    }
    if (!al_failed(&st) && add_special && t->add_eos) {
        if (t->eos == AL_TOKEN_NULL) st = al_err(AL_ERR_INVALID, "tokenizer: add_eos set but no EOS token");
        else st = al_ivec_push(&out, t->eos);
    }
    free(fr.v);
    free(tmp.p);
    free(norm.p);
    if (al_failed(&st)) {
        free(out.v);
        return st;
    }
    *ids = out.v;
    *n = out.n;
    return st;
}
