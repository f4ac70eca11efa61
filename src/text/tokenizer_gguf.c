/* tokenizer_gguf.c — al_tokenizer from GGUF metadata (tokenizer.ggml.*), as llama.cpp loads it. */
#include <stdlib.h>
#include <string.h>

#include "alloy/gguf.h"
#include "text/tokenizer_impl.h"

static bool str_is(al_str s, const char *z) { return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0; }

/* Calls fn(i, ptr, len) for each element of a string array (through the reader's API). */
typedef al_status (*str_fn)(void *ud, uint64_t i, const char *p, size_t n);
static al_status each_str(const al_gguf_value *arr, str_fn fn, void *ud) {
    for (uint64_t i = 0; i < arr->count; i++) {
        al_gguf_value v = al_gguf_arr_at(arr, i);
        if (v.type != AL_GGUF_STRING || !v.raw) return al_err(AL_ERR_FORMAT, "string array element %llu", (unsigned long long)i);
        al_str s = al_gguf_value_str(&v);
        AL_TRY(fn(ud, i, s.ptr, (size_t)s.len));
    }
    return al_ok();
}

static al_status sum_len(void *ud, uint64_t i, const char *p, size_t n) {
    (void)i, (void)p;
    *(size_t *)ud += n + 1;
    return al_ok();
}

typedef struct load_ctx {
    al_tokenizer *t;
    const al_gguf_value *scores, *types;
} load_ctx;

static al_status set_tok(void *ud, uint64_t i, const char *p, size_t n) {
    load_ctx *c = ud;
    float score = 0.0f;
    uint32_t attr = AL_TOK_ATTR_NORMAL;
    if (c->scores) {
        al_gguf_value v = al_gguf_arr_at(c->scores, i);
        score = (float)al_gguf_value_f64(&v);
    }
    if (c->types) {
        al_gguf_value v = al_gguf_arr_at(c->types, i);
        attr = al_tok_attr_from_type(al_gguf_value_i64(&v));
    }
    return al_tok_set_token(c->t, (int32_t)i, p, n, score, attr);
}

static al_status add_merge(void *ud, uint64_t i, const char *p, size_t n) {
    return al_tok_add_merge(ud, p, n, (int32_t)i);
}

static bool is_numeric(al_gguf_vtype t) {
    return t <= AL_GGUF_FLOAT32 || t == AL_GGUF_UINT64 || t == AL_GGUF_INT64 || t == AL_GGUF_FLOAT64;
}

static al_status load(al_tokenizer **out, const al_gguf *g) {
    al_str model, pre = {0}, s;
    if (!al_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return al_err(AL_ERR_NOT_FOUND, "no tokenizer.ggml.model");
    bool has_pre = al_gguf_get_str(g, "tokenizer.ggml.pre", &pre);

    al_tok_model m;
    if (str_is(model, "gpt2")) m = AL_TOK_MODEL_BPE;
    else if (str_is(model, "llama")) m = AL_TOK_MODEL_SPM;
    else
        return al_err(AL_ERR_UNSUPPORTED, "tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)",
                      (int)(model.len > 64 ? 64 : model.len), model.ptr);

    al_gguf_value toks, scores, types, merges;
    if (!al_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks)) return al_err(AL_ERR_NOT_FOUND, "no tokenizer.ggml.tokens");
    if (toks.elem_type != AL_GGUF_STRING) return al_err(AL_ERR_FORMAT, "tokenizer.ggml.tokens is not a string array");
    if (toks.count == 0 || toks.count > INT32_MAX)
        return al_err(AL_ERR_FORMAT, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)toks.count);
    bool has_scores = al_gguf_get_arr(g, "tokenizer.ggml.scores", &scores);
    bool has_types = al_gguf_get_arr(g, "tokenizer.ggml.token_type", &types);
    if (has_scores && (scores.count != toks.count || !is_numeric(scores.elem_type)))
        return al_err(AL_ERR_FORMAT, "tokenizer.ggml.scores: %llu numbers expected", (unsigned long long)toks.count);
    if (has_types && (types.count != toks.count || !is_numeric(types.elem_type)))
        return al_err(AL_ERR_FORMAT, "tokenizer.ggml.token_type: %llu integers expected", (unsigned long long)toks.count);

    size_t bytes = 0;
    AL_TRY(each_str(&toks, sum_len, &bytes));
    al_tokenizer *t;
    AL_TRY(al_tok_alloc(&t, m, (int32_t)toks.count, bytes));
    *out = t;
    load_ctx c = {t, has_scores ? &scores : NULL, has_types ? &types : NULL};
    AL_TRY(each_str(&toks, set_tok, &c));

    if (m == AL_TOK_MODEL_BPE) {
        if (!al_gguf_get_arr(g, "tokenizer.ggml.merges", &merges)) return al_err(AL_ERR_NOT_FOUND, "no tokenizer.ggml.merges");
        if (merges.elem_type != AL_GGUF_STRING || merges.count > INT32_MAX)
            return al_err(AL_ERR_FORMAT, "tokenizer.ggml.merges is not a string array");
        AL_TRY(al_strmap_init(&t->merges, (size_t)merges.count));
        AL_TRY(each_str(&merges, add_merge, t));
        t->bos = t->eos = 11; /* llama.cpp's defaults for gpt2 */
        t->byte_level = true;
        t->pre = AL_PRE_DEFAULT;
        if (has_pre && !al_pre_from_name(pre.ptr, (size_t)pre.len, &t->pre))
            return al_err(AL_ERR_UNSUPPORTED, "unknown pre-tokenizer type '%.*s'", (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
        const al_pre_traits *tr = &al_pre_table[t->pre];
        t->ignore_merges = tr->ignore_merges;
        t->add_bos = tr->add_bos;
        t->clean_spaces = tr->clean_spaces;
        if (t->pre == AL_PRE_CHATGLM4) t->bos = AL_TOKEN_NULL;
        int nre = 0;
        while (nre < AL_TOK_MAX_REGEX && tr->regex[nre]) nre++;
        AL_TRY(al_pretok_compile(&t->pretok, tr->regex, nre));
    } else {
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->pre = AL_PRE_DEFAULT;
        t->add_space_prefix = true;
        t->add_bos = true;
    }
    bool b;
    if (al_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b)) t->add_space_prefix = b;
    if (m == AL_TOK_MODEL_BPE) t->add_space_prefix = false; /* llama.cpp ignores it for BPE */

    static const struct { const char *key; size_t field; } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(al_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(al_tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(al_tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(al_tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(al_tokenizer, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(al_tokenizer, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(al_tokenizer, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(al_tokenizer, mask)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(al_tokenizer, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(al_tokenizer, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(al_tokenizer, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(al_tokenizer, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(al_tokenizer, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(al_tokenizer, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(al_tokenizer, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(al_tokenizer, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(al_tokenizer, fim_mid)},
    };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        uint32_t v;
        if (!al_gguf_get_u32(g, ids[k].key, &v)) continue;
        if (v < (uint32_t)t->n_tokens) *(int32_t *)((char *)t + ids[k].field) = (int32_t)v; /* else keep default */
    }
    if (al_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    if (al_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;

    if (al_gguf_get_str(g, "tokenizer.chat_template", &s)) {
        t->chat_template = malloc((size_t)s.len + 1);
        if (!t->chat_template) return al_err(AL_ERR_NOMEM, "chat template");
        memcpy(t->chat_template, s.ptr, (size_t)s.len);
        t->chat_template[s.len] = '\0';
    }
    if (has_pre) {
        t->pre_name = malloc((size_t)pre.len + 1);
        if (!t->pre_name) return al_err(AL_ERR_NOMEM, "pre name");
        memcpy(t->pre_name, pre.ptr, (size_t)pre.len);
        t->pre_name[pre.len] = '\0';
    }
    char name[128] = "";
    if (al_gguf_get_str(g, "general.name", &s)) {
        size_t n = s.len < sizeof name - 1 ? (size_t)s.len : sizeof name - 1;
        memcpy(name, s.ptr, n);
        name[n] = '\0';
    }
    return al_tok_finalize(t, name);
}

al_status al_tokenizer_from_gguf(al_tokenizer **out, const al_gguf *g) {
    *out = NULL;
    if (!g) return al_err(AL_ERR_INVALID, "al_tokenizer_from_gguf: NULL gguf");
    al_tokenizer *t = NULL;
    al_status st = load(&t, g);
    if (al_failed(&st)) {
        al_tokenizer_free(t);
        return al_err_wrap(st, "tokenizer from GGUF");
    }
    *out = t;
    return st;
}
