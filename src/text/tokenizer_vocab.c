/* tokenizer_vocab.c — vocabulary storage, maps, finalisation and getters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_impl.h"

/* ---- small containers ---------------------------------------------------------------------- */

al_status al_ivec_push(al_ivec *v, int32_t x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->v, cap * sizeof *p);
        if (!p) return al_err(AL_ERR_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return al_ok();
}

al_status al_buf_put(al_buf *b, const void *p, size_t n) {
    if (n == 0) return al_ok();
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) {
            if (cap > SIZE_MAX / 2) return al_err(AL_ERR_NOMEM, "tokenizer: buffer too large");
            cap *= 2;
        }
        char *q = realloc(b->p, cap);
        if (!q) return al_err(AL_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return al_ok();
}

/* ---- string map -------------------------------------------------------------------------- */

uint64_t al_hash_bytes(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

al_status al_strmap_init(al_strmap *m, size_t expect) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expect * 2 + 2) cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return al_err(AL_ERR_NOMEM, "tokenizer: map of %zu slots", cap);
    m->cap = cap;
    return al_ok();
}

void al_strmap_free(al_strmap *m) {
    if (!m) return;
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static bool slot_eq(const al_strmap *m, const al_strmap_slot *s, uint64_t h, const char *k, size_t n) {
    return s->hash == h && s->len == n && memcmp(m->arena + s->off, k, n) == 0;
}

static al_status strmap_grow(al_strmap *m) {
    size_t cap = m->cap * 2;
    al_strmap_slot *ns = calloc(cap, sizeof *ns);
    if (!ns) return al_err(AL_ERR_NOMEM, "tokenizer: map of %zu slots", cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used) continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (ns[j].used) j = (j + 1) & (cap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = cap;
    return al_ok();
}

al_status al_strmap_put(al_strmap *m, const char *key, size_t len, int32_t val, bool replace) {
    if (len > UINT32_MAX) return al_err(AL_ERR_RANGE, "tokenizer: key of %zu bytes", len);
    if ((m->count + 1) * 2 > m->cap) AL_TRY(strmap_grow(m));
    uint64_t h = al_hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].used) {
        if (slot_eq(m, &m->slots[j], h, key, len)) {
            if (replace) m->slots[j].val = val;
            return al_ok();
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + len) cap *= 2;
        if (cap > UINT32_MAX) return al_err(AL_ERR_RANGE, "tokenizer: map keys exceed 4 GiB");
        char *a = realloc(m->arena, cap);
        if (!a) return al_err(AL_ERR_NOMEM, "tokenizer: map arena of %zu bytes", cap);
        m->arena = a;
        m->arena_cap = cap;
    }
    if (len) memcpy(m->arena + m->arena_len, key, len);
    m->slots[j] = (al_strmap_slot){h, (uint32_t)m->arena_len, (uint32_t)len, val, 1};
    m->arena_len += len;
    m->count++;
    return al_ok();
}

bool al_strmap_get(const al_strmap *m, const char *key, size_t len, int32_t *val) {
    if (!m->cap) return false;
    uint64_t h = al_hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].used) {
        if (slot_eq(m, &m->slots[j], h, key, len)) {
            *val = m->slots[j].val;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

size_t al_merge_key(char *buf, const char *l, size_t ll, const char *r, size_t rl) {
    uint32_t n = (uint32_t)ll;
    memcpy(buf, &n, 4);
    memcpy(buf + 4, l, ll);
    memcpy(buf + 4 + ll, r, rl);
    return 4 + ll + rl;
}

/* ---- builder ----------------------------------------------------------------------------- */

uint32_t al_tok_attr_from_type(int64_t type) {
    /* GGUF token types: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte. */
    static const uint32_t map[7] = {AL_TOK_ATTR_UNDEFINED, AL_TOK_ATTR_NORMAL,  AL_TOK_ATTR_UNKNOWN,
                                    AL_TOK_ATTR_CONTROL,   AL_TOK_ATTR_USER_DEFINED,
                                    AL_TOK_ATTR_UNUSED,    AL_TOK_ATTR_BYTE};
    return (type >= 0 && type < 7) ? map[type] : AL_TOK_ATTR_UNDEFINED;
}

al_status al_tok_alloc(al_tokenizer **out, al_tok_model model, int32_t n_tokens, size_t text_bytes) {
    *out = NULL;
    if (n_tokens <= 0) return al_err(AL_ERR_FORMAT, "tokenizer: empty vocabulary");
    al_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return al_err(AL_ERR_NOMEM, "tokenizer: out of memory");
    t->model = model;
    t->n_tokens = n_tokens;
    t->text_off = calloc((size_t)n_tokens, sizeof *t->text_off);
    t->text_len = calloc((size_t)n_tokens, sizeof *t->text_len);
    t->scores = calloc((size_t)n_tokens, sizeof *t->scores);
    t->attr = calloc((size_t)n_tokens, sizeof *t->attr);
    /* arena: the given text bytes plus a NUL and room for "[EMPTY_n]" per token */
    size_t arena = text_bytes + (size_t)n_tokens * 2 + 64;
    t->text_arena = malloc(arena);
    if (!t->text_off || !t->text_len || !t->scores || !t->attr || !t->text_arena) {
        al_tokenizer_free(t);
        return al_err(AL_ERR_NOMEM, "tokenizer: out of memory for %d tokens", (int)n_tokens);
    }
    t->bos = t->eos = t->eot = t->eom = t->unk = t->pad = t->sep = t->mask = AL_TOKEN_NULL;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = AL_TOKEN_NULL;
    t->text_cap = arena; /* filled in id order by al_tok_set_token */
    *out = t;
    return al_ok();
}

al_status al_tok_set_token(al_tokenizer *t, int32_t i, const char *text, size_t len, float score,
                           uint32_t attr) {
    char tmp[32];
    if (i < 0 || i >= t->n_tokens) return al_err(AL_ERR_RANGE, "tokenizer: token id %d", (int)i);
    if (len == 0) { /* llama.cpp renames empty tokens so the map stays one-to-one */
        len = (size_t)snprintf(tmp, sizeof tmp, "[EMPTY_%d]", (int)i);
        text = tmp;
    }
    if (len > UINT32_MAX / 2) return al_err(AL_ERR_FORMAT, "tokenizer: token %d too long", (int)i);
    size_t off = i == 0 ? 0 : t->text_off[i - 1] + t->text_len[i - 1] + 1;
    size_t cap = t->text_cap;
    if (off + len + 1 > cap) {
        size_t ncap = cap * 2;
        while (ncap < off + len + 1) ncap *= 2;
        char *a = realloc(t->text_arena, ncap);
        if (!a) return al_err(AL_ERR_NOMEM, "tokenizer: token arena of %zu bytes", ncap);
        t->text_arena = a;
        t->text_cap = ncap;
    }
    memcpy(t->text_arena + off, text, len);
    t->text_arena[off + len] = '\0';
    t->text_off[i] = off;
    t->text_len[i] = (uint32_t)len;
    t->scores[i] = score;
    t->attr[i] = attr;
    return al_ok();
}

al_status al_tok_add_merge_pair(al_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl,
                                int32_t rank) {
    char stack[256];
    size_t need = 4 + ll + rl;
    char *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf) return al_err(AL_ERR_NOMEM, "tokenizer: merge key");
    size_t n = al_merge_key(buf, l, ll, r, rl);
    al_status s = al_strmap_put(&t->merges, buf, n, rank, false); /* first rank wins */
    if (buf != stack) free(buf);
    return s;
}

al_status al_tok_add_merge(al_tokenizer *t, const char *merge, size_t len, int32_t rank) {
    /* "left right", split at the first space after position 0 (llama.cpp: find(' ', 1)) */
    const char *sp = len > 1 ? memchr(merge + 1, ' ', len - 1) : NULL;
    if (!sp) return al_tok_add_merge_pair(t, "", 0, "", 0, rank);
    size_t ll = (size_t)(sp - merge);
    return al_tok_add_merge_pair(t, merge, ll, sp + 1, len - ll - 1, rank);
}

/* ---- finalisation ------------------------------------------------------------------------ */

static int32_t find_first(const al_tokenizer *t, const char *const *names) {
    for (int k = 0; names[k]; k++) {
        int32_t id;
        if (al_strmap_get(&t->tok_map, names[k], strlen(names[k]), &id)) return id;
    }
    return AL_TOKEN_NULL;
}

static void mark_control(al_tokenizer *t, int32_t id) {
    if (id >= 0 && !(t->attr[id] & AL_TOK_ATTR_CONTROL)) t->attr[id] = AL_TOK_ATTR_CONTROL;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

typedef struct { uint32_t len; int32_t id; } spec_key;
static int cmp_spec(const void *a, const void *b) {
    const spec_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1; /* longer first */
    return (x->id > y->id) - (x->id < y->id);
}

static al_status build_pieces(al_tokenizer *t) {
    al_buf b = {0};
    size_t nt = (uint32_t)t->n_tokens;
    t->piece_off = calloc(nt, sizeof *t->piece_off);
    t->piece_len = calloc(nt, sizeof *t->piece_len);
    if (!t->piece_off || !t->piece_len) return al_err(AL_ERR_NOMEM, "tokenizer: piece cache");
    for (int32_t id = 0; id < t->n_tokens; id++) {
        const char *s = t->text_arena + t->text_off[id];
        size_t n = t->text_len[id];
        uint32_t a = t->attr[id];
        size_t start = b.n;
        al_status st = al_ok();
        if (a & (AL_TOK_ATTR_UNKNOWN | AL_TOK_ATTR_CONTROL | AL_TOK_ATTR_USER_DEFINED)) {
            st = al_buf_put(&b, s, n);
        } else if (t->model == AL_TOK_MODEL_BPE) {
            if (a & AL_TOK_ATTR_NORMAL) {
                /* byte-level: each code point of the text is one byte (unmapped ones are kept) */
                size_t i = 0;
                while (i < n && !al_failed(&st)) {
                    size_t i0 = i;
                    uint32_t cp = al_utf8_next(s, n, &i);
                    int byte = al_cpt_to_byte(cp);
                    if (byte >= 0) {
                        char c = (char)byte;
                        st = al_buf_put(&b, &c, 1);
                    } else {
                        st = al_buf_put(&b, s + i0, i - i0);
                    }
                }
            }
        } else { /* SPM and tokenizer.json SentencePiece-style BPE */
            if (a & AL_TOK_ATTR_NORMAL) {
                size_t i = 0;
                while (i < n && !al_failed(&st)) {
                    if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                        st = al_buf_put(&b, " ", 1);
                        i += 3;
                    } else {
                        st = al_buf_put(&b, s + i, 1);
                        i++;
                    }
                }
            } else if (a & AL_TOK_ATTR_BYTE) {
                unsigned v;
                char c;
                if (n == 6 && sscanf(s, "<0x%2x>", &v) == 1) {
                    c = (char)v;
                    st = al_buf_put(&b, &c, 1);
                } else {
                    st = al_buf_put(&b, s, n);
                }
            }
        }
        if (al_failed(&st)) {
            free(b.p);
            return st;
        }
        t->piece_off[id] = start;
        t->piece_len[id] = (uint32_t)(b.n - start);
    }
    if (!b.p) b.p = calloc(1, 1);
    if (!b.p) return al_err(AL_ERR_NOMEM, "tokenizer: piece cache");
    t->piece_arena = b.p;
    return al_ok();
}

al_status al_tok_build_map(al_tokenizer *t) {
    if (t->tok_map.cap) return al_ok();
    AL_TRY(al_strmap_init(&t->tok_map, (size_t)t->n_tokens));
    for (int32_t i = 0; i < t->n_tokens; i++) {
        AL_TRY(al_strmap_put(&t->tok_map, t->text_arena + t->text_off[i], t->text_len[i], i, true));
        if ((int32_t)t->text_len[i] > t->max_token_len) t->max_token_len = (int32_t)t->text_len[i];
    }
    return al_ok();
}

al_status al_tok_finalize(al_tokenizer *t, const char *model_name) {
    AL_TRY(al_tok_build_map(t));

    int32_t *ids[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &t->pad, &t->sep, &t->mask,
                      &t->fim_pre, &t->fim_suf, &t->fim_mid, &t->fim_pad, &t->fim_rep, &t->fim_sep};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (*ids[k] >= t->n_tokens || *ids[k] < AL_TOKEN_NULL) *ids[k] = AL_TOKEN_NULL;

    /* Special tokens found by their text (llama.cpp does the same; the ones it finds become
     * control tokens). The first name listed wins where several exist. */
    static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<EOT>",
                                            "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                            NULL};
    static const char *const eom_names[] = {"<|eom_id|>", NULL};
    static const char *const pre_names[] = {"<|fim_prefix|>", "<fim-prefix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", NULL};
    static const char *const suf_names[] = {"<|fim_suffix|>", "<fim-suffix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", NULL};
    static const char *const mid_names[] = {"<|fim_middle|>", "<fim-middle>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", NULL};
    static const char *const pad_names[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const rep_names[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const sep_names[] = {"<|file_sep|>", NULL};
    struct { int32_t *id; const char *const *names; } autod[] = {
        {&t->eot, eot_names},     {&t->eom, eom_names},     {&t->fim_pre, pre_names},
        {&t->fim_suf, suf_names}, {&t->fim_mid, mid_names}, {&t->fim_pad, pad_names},
        {&t->fim_rep, rep_names}, {&t->fim_sep, sep_names},
    };
    for (size_t k = 0; k < sizeof autod / sizeof autod[0]; k++) {
        if (*autod[k].id != AL_TOKEN_NULL) continue;
        *autod[k].id = find_first(t, autod[k].names);
        mark_control(t, *autod[k].id);
    }

    /* end-of-generation set */
    static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|eom_id|>", "<EOT>"};
    al_ivec eog = {0};
    al_status st = al_ok();
    int32_t extra[] = {t->fim_pad, t->fim_rep, t->fim_sep, t->eos, t->eot, t->eom};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0] && !al_failed(&st); k++)
        if (extra[k] != AL_TOKEN_NULL) st = al_ivec_push(&eog, extra[k]);
    for (size_t k = 0; k < sizeof eog_names / sizeof eog_names[0] && !al_failed(&st); k++) {
        int32_t id;
        if (al_strmap_get(&t->tok_map, eog_names[k], strlen(eog_names[k]), &id)) {
            mark_control(t, id);
            st = al_ivec_push(&eog, id);
        }
    }
    if (al_failed(&st)) {
        free(eog.v);
        return st;
    }
    if (eog.n) qsort(eog.v, eog.n, sizeof *eog.v, cmp_i32);
    size_t u = 0;
    for (size_t k = 0; k < eog.n; k++)
        if (u == 0 || eog.v[u - 1] != eog.v[k]) eog.v[u++] = eog.v[k];
    t->eog = eog.v;
    t->n_eog = u;

    /* special-token cache: longest text first (ties by id, so the order is deterministic) */
    size_t ns = 0;
    for (int32_t i = 0; i < t->n_tokens; i++)
        if (t->attr[i] & (AL_TOK_ATTR_CONTROL | AL_TOK_ATTR_USER_DEFINED | AL_TOK_ATTR_UNKNOWN)) ns++;
    if (ns) {
        spec_key *keys = malloc(ns * sizeof *keys);
        t->special = malloc(ns * sizeof *t->special);
        if (!keys || !t->special) {
            free(keys);
            return al_err(AL_ERR_NOMEM, "tokenizer: special token cache");
        }
        size_t k = 0;
        for (int32_t i = 0; i < t->n_tokens; i++)
            if (t->attr[i] & (AL_TOK_ATTR_CONTROL | AL_TOK_ATTR_USER_DEFINED | AL_TOK_ATTR_UNKNOWN))
                keys[k++] = (spec_key){t->text_len[i], i};
        qsort(keys, ns, sizeof *keys, cmp_spec);
        for (k = 0; k < ns; k++) t->special[k] = keys[k].id;
        free(keys);
        t->n_special = ns;
    }

    AL_TRY(build_pieces(t));

    /* Phi-3: special tokens swallow the whitespace after them (llama.cpp sets these by name). */
    if (model_name) {
        char low[128];
        size_t n = strlen(model_name);
        if (n >= sizeof low) n = sizeof low - 1;
        for (size_t i = 0; i < n; i++) {
            char c = model_name[i];
            low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        low[n] = '\0';
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (size_t k = 0; k < t->n_special; k++) t->attr[t->special[k]] |= AL_TOK_ATTR_RSTRIP;
            int32_t id;
            if (al_strmap_get(&t->tok_map, "</s>", 4, &id)) t->attr[id] |= AL_TOK_ATTR_RSTRIP;
            static const char *const off[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int k = 0; k < 3; k++)
                if (al_strmap_get(&t->tok_map, off[k], strlen(off[k]), &id)) t->attr[id] &= ~(uint32_t)AL_TOK_ATTR_RSTRIP;
        }
    }
    return al_ok();
}

void al_tokenizer_free(al_tokenizer *t) {
    if (!t) return;
    free(t->text_arena);
    free(t->text_off);
    free(t->text_len);
    free(t->scores);
    free(t->attr);
    al_strmap_free(&t->tok_map);
    al_strmap_free(&t->merges);
    free(t->piece_arena);
    free(t->piece_off);
    free(t->piece_len);
    free(t->eog);
    free(t->special);
    al_pretok_free(&t->pretok);
    free(t->chat_template);
    free(t->pre_name);
    free(t);
}

/* ---- getters ----------------------------------------------------------------------------- */

int32_t al_tokenizer_vocab_size(const al_tokenizer *t) { return t->n_tokens; }
al_tok_model al_tokenizer_model(const al_tokenizer *t) { return t->model; }
const char *al_tokenizer_pre_name(const al_tokenizer *t) {
    return t->pre_name ? t->pre_name : al_pre_table[t->pre].name;
}
const char *al_tokenizer_token_text(const al_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_tokens) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->text_len[id];
    return t->text_arena + t->text_off[id];
}
int32_t al_tokenizer_find(const al_tokenizer *t, const char *text, size_t len) {
    int32_t id;
    return al_strmap_get(&t->tok_map, text, len, &id) ? id : AL_TOKEN_NULL;
}
uint32_t al_tokenizer_token_attr(const al_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_tokens) ? t->attr[id] : 0;
}
float al_tokenizer_token_score(const al_tokenizer *t, int32_t id) {
    return (id >= 0 && id < t->n_tokens) ? t->scores[id] : 0.0f;
}
int32_t al_tokenizer_bos(const al_tokenizer *t) { return t->bos; }
int32_t al_tokenizer_eos(const al_tokenizer *t) { return t->eos; }
int32_t al_tokenizer_eot(const al_tokenizer *t) { return t->eot; }
int32_t al_tokenizer_unk(const al_tokenizer *t) { return t->unk; }
int32_t al_tokenizer_pad(const al_tokenizer *t) { return t->pad; }
bool al_tokenizer_add_bos(const al_tokenizer *t) { return t->add_bos; }
bool al_tokenizer_add_eos(const al_tokenizer *t) { return t->add_eos; }
bool al_tokenizer_is_eog(const al_tokenizer *t, int32_t id) {
    if (id == AL_TOKEN_NULL || !t->n_eog) return false;
    return bsearch(&id, t->eog, t->n_eog, sizeof id, cmp_i32) != NULL;
}
bool al_tokenizer_is_control(const al_tokenizer *t, int32_t id) {
    return (al_tokenizer_token_attr(t, id) & AL_TOK_ATTR_CONTROL) != 0;
}
const char *al_tokenizer_chat_template(const al_tokenizer *t) { return t->chat_template; }
