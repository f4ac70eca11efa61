/* tokenizer_export.c — an al_tokenizer as llama.cpp GGUF metadata (tokenizer.ggml.*), the keys
 * convert_hf_to_gguf.py writes, so that al_tokenizer_from_gguf (and llama.cpp) load it back.
 *
 * Mapping
 *  - Byte-level BPE -> model "gpt2": tokens, token_type, merges in rank order ("left right").
 *    tokenizer.ggml.pre: the loaded family name (GGUF sources), or for tokenizer.json the
 *    llama.cpp family whose regex list is identical to the file's (after llama.cpp's spelling of
 *    the case-insensitive contraction group) and whose ignore_merges agrees.
 *  - SentencePiece (GGUF "llama") -> model "llama" with its scores, as loaded.
 *  - tokenizer.json SentencePiece-style BPE -> model "llama"; scores are made from merge ranks:
 *    a token made by merges scores -(lowest rank that makes it), so that llama.cpp's score-ordered
 *    merging follows the rank order; tokens no merge makes score below all of those.
 *
 * What GGUF cannot carry (the file is what llama.cpp would make; these are dropped):
 *  - tokenizer.json normalizers (NFC, NFKC, ...); lstrip/rstrip of added tokens;
 *  - Metaspace prepend_scheme "first" and its "no ▁ before a leading space": llama.cpp's SPM adds
 *    the space prefix to the text start and after every special token, always;
 *  - Metaspace split=true word boundaries and unk-without-byte-fallback grouping;
 *  - "no BOS/EOS token": the loader then falls back to the model's defaults.
 * Refused (AL_ERR_UNSUPPORTED): ByteLevel add_prefix_space, BPE without byte-level mapping,
 * tokenizer.json regexes of no known llama.cpp family, merges whose left side holds a space.
 */
#include <stdlib.h>
#include <string.h>

#include "alloy/gguf.h"
#include "text/tokenizer_impl.h"

/* llama.cpp's token_type values, by attribute bit; the first bit present decides. */
static const struct {
    uint32_t attr;
    int32_t type;
} k_token_types[] = {
    {AL_TOK_ATTR_UNUSED, 5}, {AL_TOK_ATTR_BYTE, 6},    {AL_TOK_ATTR_CONTROL, 3},
    {AL_TOK_ATTR_USER_DEFINED, 4}, {AL_TOK_ATTR_UNKNOWN, 2}, {AL_TOK_ATTR_NORMAL, 1},
};

static int32_t token_type(uint32_t attr) {
    for (size_t k = 0; k < sizeof k_token_types / sizeof k_token_types[0]; k++)
        if (attr & k_token_types[k].attr) return k_token_types[k].type;
    return 0; /* undefined */
}

/* GGUF names where llama.cpp's converter writes another alias than al_pre_table's. */
static const char *pre_gguf_name(al_tok_pre p) {
    return p == AL_PRE_LLAMA3 ? "llama-bpe" : al_pre_table[p].name;
}

/* ---- string arrays, built as a serialized GGUF ARRAY payload (lengths explicit) ---- */

typedef struct strarr {
    al_buf b;
    uint64_t n;
} strarr;

static al_status put_le(al_buf *b, uint64_t v, int bytes) {
    unsigned char x[8];
    for (int i = 0; i < bytes; i++) x[i] = (unsigned char)(v >> (8 * i));
    return al_buf_put(b, x, (size_t)bytes);
}

static al_status strarr_init(strarr *a) {
    memset(a, 0, sizeof *a);
    AL_TRY(put_le(&a->b, AL_GGUF_STRING, 4));
    return put_le(&a->b, 0, 8); /* count, patched by strarr_set */
}

static al_status strarr_add2(strarr *a, const char *p, size_t n, const char *q, size_t m) {
    AL_TRY(put_le(&a->b, (uint64_t)n + m, 8));
    AL_TRY(al_buf_put(&a->b, p, n));
    AL_TRY(al_buf_put(&a->b, q, m));
    a->n++;
    return al_ok();
}

static al_status strarr_set(al_gguf_writer *w, const char *key, strarr *a) {
    for (int i = 0; i < 8; i++) a->b.p[4 + i] = (char)(unsigned char)(a->n >> (8 * i));
    return al_gguf_writer_set_raw(w, key, AL_GGUF_ARRAY, a->b.p, a->b.n);
}

/* ---- merges in rank order ---- */

typedef struct merge_ref {
    int32_t rank;
    uint32_t off, len; /* key bytes in the merges map's arena (see al_merge_key) */
} merge_ref;

static int cmp_merge(const void *a, const void *b) {
    const merge_ref *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* The merges sorted by rank; *out is malloc'd (NULL when there are none). */
static al_status sorted_merges(const al_tokenizer *t, merge_ref **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!t->merges.count) return al_ok();
    merge_ref *v = malloc(t->merges.count * sizeof *v);
    if (!v) return al_err(AL_ERR_NOMEM, "tokenizer export: %zu merges", t->merges.count);
    size_t k = 0;
    for (size_t i = 0; i < t->merges.cap; i++) {
        const al_strmap_slot *s = &t->merges.slots[i];
        if (s->used && k < t->merges.count) v[k++] = (merge_ref){s->val, s->off, s->len};
    }
    qsort(v, k, sizeof *v, cmp_merge);
    *out = v;
    *n = k;
    return al_ok();
}

/* Splits a merge key into its two sides. */
static void merge_sides(const al_tokenizer *t, const merge_ref *m, const char **l, size_t *ll, const char **r,
                        size_t *rl) {
    const char *key = t->merges.arena + m->off;
    uint32_t n;
    memcpy(&n, key, 4);
    *l = key + 4;
    *ll = n;
    *r = key + 4 + n;
    *rl = m->len - 4 - n;
}

static al_status write_merges(const al_tokenizer *t, al_gguf_writer *w) {
    merge_ref *v;
    size_t n;
    AL_TRY(sorted_merges(t, &v, &n));
    strarr a;
    al_status st = strarr_init(&a);
    for (size_t i = 0; i < n && !al_failed(&st); i++) {
        const char *l, *r;
        size_t ll, rl;
        merge_sides(t, &v[i], &l, &ll, &r, &rl);
        /* the loader splits "left right" at the first space after position 0 */
        if ((ll == 0 && rl > 0) || (ll > 1 && memchr(l + 1, ' ', ll - 1))) {
            st = al_err(AL_ERR_UNSUPPORTED, "merge %zu ('%.*s' + '%.*s') cannot be written as \"left right\"", i,
                        (int)(ll > 40 ? 40 : ll), l, (int)(rl > 40 ? 40 : rl), r);
            break;
        }
        char sp = ' ';
        if (ll == 0) { /* the degenerate ("", "") pair reads back from " " */
            st = strarr_add2(&a, &sp, 1, "", 0);
            continue;
        }
        al_buf one = {0};
        st = al_buf_put(&one, l, ll);
        if (!al_failed(&st)) st = al_buf_put(&one, &sp, 1);
        if (!al_failed(&st)) st = strarr_add2(&a, one.p, one.n, r, rl);
        free(one.p);
    }
    if (!al_failed(&st)) st = strarr_set(w, "tokenizer.ggml.merges", &a);
    free(a.b.p);
    free(v);
    return st;
}

/* ---- pre-tokenizer family of tokenizer.json regexes ---- */

/* tokenizer.json spells the contractions case-insensitively; llama.cpp spells the case out. */
#define HF_CONTRACT "(?i:'s|'t|'re|'ve|'m|'ll|'d)"
#define LL_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

static bool same_regex(const char *hf, const char *ll) {
    const size_t hn = sizeof HF_CONTRACT - 1, ln = sizeof LL_CONTRACT - 1;
    while (*hf) {
        if (!strncmp(hf, HF_CONTRACT, hn)) {
            if (strncmp(ll, LL_CONTRACT, ln) != 0) return false;
            hf += hn, ll += ln;
        } else {
            if (*hf != *ll) return false;
            hf++, ll++;
        }
    }
    return *ll == '\0';
}

static bool family_matches(const al_tokenizer *t, al_tok_pre p) {
    const al_pre_traits *tr = &al_pre_table[p];
    if (tr->ignore_merges != t->ignore_merges) return false;
    int n = 0;
    while (n < AL_TOK_MAX_REGEX && tr->regex[n]) n++;
    if (n != t->pretok.n_re) return false;
    for (int k = 0; k < n; k++)
        if (!t->pretok.src[k] || !same_regex(t->pretok.src[k], tr->regex[k])) return false;
    return true;
}

static al_status custom_family(const al_tokenizer *t, al_tok_pre *out) {
    /* the common names first where several families share a regex list */
    static const al_tok_pre pref[] = {AL_PRE_GPT2, AL_PRE_LLAMA3, AL_PRE_QWEN2};
    for (size_t k = 0; k < sizeof pref / sizeof pref[0]; k++)
        if (family_matches(t, pref[k])) return *out = pref[k], al_ok();
    for (int p = 0; p < AL_PRE_CUSTOM; p++)
        if (family_matches(t, (al_tok_pre)p)) return *out = (al_tok_pre)p, al_ok();
    return al_err(AL_ERR_UNSUPPORTED,
                  "tokenizer export: the %d pre-tokenizer regex(es) of tokenizer.json (first: '%.60s'%s) with "
                  "ignore_merges=%s match no llama.cpp tokenizer.ggml.pre family",
                  t->pretok.n_re, t->pretok.n_re && t->pretok.src[0] ? t->pretok.src[0] : "",
                  t->pretok.n_re && t->pretok.src[0] && strlen(t->pretok.src[0]) > 60 ? "..." : "",
                  t->ignore_merges ? "true" : "false");
}

/* ---- per-model parts ---- */

static al_status write_bpe(const al_tokenizer *t, al_gguf_writer *w) {
    const char *pre;
    if (t->pre != AL_PRE_CUSTOM) {
        pre = t->pre_name ? t->pre_name : pre_gguf_name(t->pre);
    } else {
        if (!t->byte_level)
            return al_err(AL_ERR_UNSUPPORTED, "tokenizer export: BPE without byte-level mapping has no GGUF form");
        if (t->hf_prepend_space)
            return al_err(AL_ERR_UNSUPPORTED, "tokenizer export: ByteLevel add_prefix_space has no GGUF form");
        al_tok_pre p = AL_PRE_DEFAULT;
        AL_TRY(custom_family(t, &p));
        pre = pre_gguf_name(p);
    }
    AL_TRY(al_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
    AL_TRY(al_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre));
    return al_ok();
}

/* tokenizer.json SentencePiece-style BPE: scores from merge ranks (see the file comment). */
static al_status rank_scores(const al_tokenizer *t, float *scores) {
    merge_ref *v;
    size_t n;
    AL_TRY(sorted_merges(t, &v, &n));
    bool *seen = calloc((size_t)t->n_tokens, sizeof *seen);
    if (!seen) {
        free(v);
        return al_err(AL_ERR_NOMEM, "tokenizer export: scores");
    }
    al_buf cat = {0};
    al_status st = al_ok();
    for (size_t i = 0; i < n && !al_failed(&st); i++) { /* rank order: the first rank seen is the lowest */
        const char *l, *r;
        size_t ll, rl;
        merge_sides(t, &v[i], &l, &ll, &r, &rl);
        cat.n = 0;
        st = al_buf_put(&cat, l, ll);
        if (!al_failed(&st)) st = al_buf_put(&cat, r, rl);
        int32_t id;
        if (al_failed(&st) || !cat.n || !al_strmap_get(&t->tok_map, cat.p, cat.n, &id) || seen[id]) continue;
        seen[id] = true;
        scores[id] = -(float)v[i].rank;
    }
    float floor = -(float)(n + 1) - 1e6f; /* below every rank score */
    for (int32_t id = 0; id < t->n_tokens; id++)
        if (!seen[id]) scores[id] = floor;
    free(cat.p);
    free(seen);
    free(v);
    return st;
}

static al_status write_spm(const al_tokenizer *t, al_gguf_writer *w) {
    AL_TRY(al_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    AL_TRY(al_gguf_writer_set_str(w, "tokenizer.ggml.pre", t->pre_name ? t->pre_name : "default"));
    float *scores = malloc((size_t)t->n_tokens * sizeof *scores);
    if (!scores) return al_err(AL_ERR_NOMEM, "tokenizer export: scores");
    al_status st = al_ok();
    if (t->model == AL_TOK_MODEL_SPM) memcpy(scores, t->scores, (size_t)t->n_tokens * sizeof *scores);
    else st = rank_scores(t, scores);
    if (!al_failed(&st))
        st = al_gguf_writer_set_arr(w, "tokenizer.ggml.scores", AL_GGUF_FLOAT32, scores, (uint64_t)t->n_tokens);
    free(scores);
    AL_TRY(st);
    return al_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
}

al_status al_tokenizer_to_gguf(const al_tokenizer *t, al_gguf_writer *w) {
    if (!t || !w) return al_err(AL_ERR_INVALID, "al_tokenizer_to_gguf: NULL argument");
    if (t->model == AL_TOK_MODEL_BPE) AL_TRY(write_bpe(t, w));
    else if (t->model == AL_TOK_MODEL_SPM || t->model == AL_TOK_MODEL_BPE_SPM) AL_TRY(write_spm(t, w));
    else return al_err(AL_ERR_UNSUPPORTED, "tokenizer export: model %d", (int)t->model);

    strarr a;
    al_status st = strarr_init(&a);
    for (int32_t i = 0; i < t->n_tokens && !al_failed(&st); i++)
        st = strarr_add2(&a, t->text_arena + t->text_off[i], t->text_len[i], "", 0);
    if (!al_failed(&st)) st = strarr_set(w, "tokenizer.ggml.tokens", &a);
    free(a.b.p);
    AL_TRY(st);

    int32_t *types = malloc((size_t)t->n_tokens * sizeof *types);
    if (!types) return al_err(AL_ERR_NOMEM, "tokenizer export: token types");
    for (int32_t i = 0; i < t->n_tokens; i++) types[i] = token_type(t->attr[i]);
    st = al_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", AL_GGUF_INT32, types, (uint64_t)t->n_tokens);
    free(types);
    AL_TRY(st);

    if (t->model == AL_TOK_MODEL_BPE) AL_TRY(write_merges(t, w));

    const struct {
        const char *key;
        int32_t id;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", t->bos},          {"tokenizer.ggml.eos_token_id", t->eos},
        {"tokenizer.ggml.eot_token_id", t->eot},          {"tokenizer.ggml.eom_token_id", t->eom},
        {"tokenizer.ggml.unknown_token_id", t->unk},      {"tokenizer.ggml.seperator_token_id", t->sep},
        {"tokenizer.ggml.padding_token_id", t->pad},      {"tokenizer.ggml.mask_token_id", t->mask},
        {"tokenizer.ggml.fim_pre_token_id", t->fim_pre},  {"tokenizer.ggml.fim_suf_token_id", t->fim_suf},
        {"tokenizer.ggml.fim_mid_token_id", t->fim_mid},  {"tokenizer.ggml.fim_pad_token_id", t->fim_pad},
        {"tokenizer.ggml.fim_rep_token_id", t->fim_rep},  {"tokenizer.ggml.fim_sep_token_id", t->fim_sep},
    };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (ids[k].id >= 0 && ids[k].id < t->n_tokens) AL_TRY(al_gguf_writer_set_u32(w, ids[k].key, (uint32_t)ids[k].id));
    AL_TRY(al_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos));
    AL_TRY(al_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos));
    if (t->chat_template) AL_TRY(al_gguf_writer_set_str(w, "tokenizer.chat_template", t->chat_template));
    return al_ok();
}
