/* tokenizer_detok.c — token pieces, whole-sequence decode and the streaming detokenizer. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_impl.h"

size_t al_tokenizer_token_to_piece(const al_tokenizer *t, int32_t id, bool special, const char **piece) {
    *piece = "";
    if (!t || id < 0 || id >= t->n_tokens) return 0;
    if (!special && (t->attr[id] & (AL_TOK_ATTR_UNKNOWN | AL_TOK_ATTR_CONTROL))) return 0;
    *piece = t->piece_arena + t->piece_off[id];
    return t->piece_len[id];
}

al_status al_tokenizer_decode(const al_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                              char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!t || (!ids && n)) return al_err(AL_ERR_INVALID, "al_tokenizer_decode: NULL argument");
    bool strip = (flags & AL_DETOK_STRIP_SPACE) && t->add_space_prefix;
    if ((flags & AL_DETOK_SKIP_BOS_EOS) && t->add_bos && n && ids[0] == t->bos) {
        ids++, n--;
    }
    if ((flags & AL_DETOK_SKIP_BOS_EOS) && t->add_eos && n && ids[n - 1] == t->eos) n--;
    al_buf b = {0};
    al_status st = al_ok();
    for (size_t i = 0; i < n && !al_failed(&st); i++) {
        if (ids[i] < 0 || ids[i] >= t->n_tokens) {
            st = al_err(AL_ERR_RANGE, "tokenizer: token id %d at %zu outside [0, %d)", (int)ids[i], i,
                        (int)t->n_tokens);
            break;
        }
        const char *p;
        size_t pl = al_tokenizer_token_to_piece(t, ids[i], (flags & AL_DETOK_SPECIAL) != 0, &p);
        if (strip && pl && p[0] == ' ') p++, pl--;
        strip = false;
        st = al_buf_put(&b, p, pl);
    }
    if (!b.p && !al_failed(&st)) {
        b.p = calloc(1, 1);
        if (!b.p) st = al_err(AL_ERR_NOMEM, "tokenizer: decode buffer");
    }
    if (al_failed(&st)) {
        free(b.p);
        return st;
    }
    *text = b.p;
    if (len) *len = b.n;
    return st;
}

/* ---- streaming ---------------------------------------------------------------------------- */

struct al_detok {
    const al_tokenizer *t;
    unsigned flags;
    bool started;
    unsigned char pend[8]; /* an incomplete UTF-8 sequence: at most 3 bytes stay pending */
    size_t npend;
    al_buf out;
};

al_status al_detok_init(al_detok **out, const al_tokenizer *t, unsigned flags) {
    *out = NULL;
    if (!t) return al_err(AL_ERR_INVALID, "al_detok_init: NULL tokenizer");
    al_detok *d = calloc(1, sizeof *d);
    if (!d) return al_err(AL_ERR_NOMEM, "al_detok_init: out of memory");
    d->t = t;
    d->flags = flags;
    *out = d;
    return al_ok();
}

void al_detok_free(al_detok *d) {
    if (!d) return;
    free(d->out.p);
    free(d);
}

void al_detok_reset(al_detok *d) {
    d->started = false;
    d->npend = 0;
    d->out.n = 0;
}

static const char k_repl[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Moves complete characters of pend+src to out; keeps a valid incomplete tail pending. */
static al_status feed(al_detok *d, const unsigned char *src, size_t n) {
    size_t i = 0;
    while (d->npend && i < n) { /* complete the pending sequence byte by byte */
        d->pend[d->npend++] = src[i++];
        int r = al_utf8_check(d->pend, d->npend);
        if (r == 0) continue;
        if (r > 0) {
            AL_TRY(al_buf_put(&d->out, d->pend, (size_t)r));
            d->npend = 0;
        } else { /* invalid: replace the maximal bad subpart, re-scan the rest */
            unsigned char rest[8];
            size_t nr = d->npend - (size_t)(-r);
            memcpy(rest, d->pend + (-r), nr);
            AL_TRY(al_buf_put(&d->out, k_repl, 3));
            d->npend = 0;
            /* the leftover bytes (at most 3) are fed again ahead of src */
            AL_TRY(feed(d, rest, nr));
        }
    }
    while (i < n) {
        int r = al_utf8_check(src + i, n - i);
        if (r > 0) {
            /* copy a run of complete characters at once */
            size_t j = i;
            while (j < n && (r = al_utf8_check(src + j, n - j)) > 0) j += (size_t)r;
            AL_TRY(al_buf_put(&d->out, src + i, j - i));
            i = j;
            continue;
        }
        if (r == 0) {
            memcpy(d->pend, src + i, n - i);
            d->npend = n - i;
            return al_ok();
        }
        AL_TRY(al_buf_put(&d->out, k_repl, 3));
        i += (size_t)(-r);
    }
    return al_ok();
}

al_status al_detok_push(al_detok *d, int32_t id, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    const al_tokenizer *t = d->t;
    if (id < 0 || id >= t->n_tokens)
        return al_err(AL_ERR_RANGE, "al_detok_push: token id %d outside [0, %d)", (int)id, (int)t->n_tokens);
    d->out.n = 0;
    const char *p;
    size_t pl = al_tokenizer_token_to_piece(t, id, (d->flags & AL_DETOK_SPECIAL) != 0, &p);
    if (!d->started) {
        d->started = true;
        if ((d->flags & AL_DETOK_SKIP_BOS_EOS) && t->add_bos && id == t->bos) return al_ok();
        if ((d->flags & AL_DETOK_STRIP_SPACE) && t->add_space_prefix && pl && p[0] == ' ') p++, pl--;
    }
    AL_TRY(feed(d, (const unsigned char *)p, pl));
    *text = d->out.p ? d->out.p : "";
    *len = d->out.n;
    return al_ok();
}

al_status al_detok_flush(al_detok *d, const char **text, size_t *len) {
    d->out.n = 0;
    if (d->npend) {
        AL_TRY(al_buf_put(&d->out, k_repl, 3));
        d->npend = 0;
    }
    *text = d->out.p ? d->out.p : "";
    *len = d->out.n;
    return al_ok();
}
