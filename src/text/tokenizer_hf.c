/* tokenizer_hf.c — al_tokenizer from a Hugging Face tokenizer.json (+ tokenizer_config.json).
 *
 * Supported: model.type "BPE" with
 *  - byte-level pre-tokenization (ByteLevel pre-tokenizer/decoder), optionally preceded by
 *    Split(Regex, "Isolated") / Digits pre-tokenizers (their regexes run in order, like llama.cpp's
 *    regex sets), or
 *  - SentencePiece style: Metaspace pre-tokenizer or Replace(" " -> "▁") / Prepend("▁")
 *    normalizers, with byte_fallback (<0xNN> tokens) or unk_token.
 * Normalizers NFC/NFKC/NFD/NFKD (utf8proc) are applied to each text fragment. added_tokens become
 * control (special: true) or user-defined tokens; their lstrip/rstrip flags are kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <utf8proc.h>

#include "text/tokenizer_impl.h"

#define META "\xe2\x96\x81" /* ▁ */

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jbool(json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const char *token_content(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

typedef struct hf_state {
    const char *regex[AL_TOK_MAX_REGEX];
    int n_re;
    bool byte_level, metaspace, prepend, prepend_always, add_prefix_space, meta_split, meta_pretok;
    int normalize;
} hf_state;

#define RX_GPT2_HF "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

static al_status add_regex(hf_state *h, const char *re) {
    if (h->n_re == AL_TOK_MAX_REGEX) return al_err(AL_ERR_UNSUPPORTED, "too many pre-tokenizer splits");
    h->regex[h->n_re++] = re;
    return al_ok();
}

static al_status parse_pretok(hf_state *h, json_t *p) {
    if (!p || json_is_null(p)) return al_ok();
    const char *type = jstr(p, "type");
    if (!type) return al_err(AL_ERR_FORMAT, "pre_tokenizer without type");
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers"), *e;
        size_t i;
        if (!json_is_array(arr)) return al_err(AL_ERR_FORMAT, "Sequence pre_tokenizer without list");
        json_array_foreach(arr, i, e) AL_TRY(parse_pretok(h, e));
        return al_ok();
    }
    if (!strcmp(type, "ByteLevel")) {
        h->byte_level = true;
        h->add_prefix_space = jbool(p, "add_prefix_space", false);
        if (jbool(p, "use_regex", true)) AL_TRY(add_regex(h, RX_GPT2_HF));
        return al_ok();
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        const char *re = pat ? jstr(pat, "Regex") : NULL;
        const char *beh = jstr(p, "behavior");
        if (!re || !beh || strcmp(beh, "Isolated") != 0 || jbool(p, "invert", false))
            return al_err(AL_ERR_UNSUPPORTED, "Split pre_tokenizer: only Regex patterns with behavior Isolated");
        return add_regex(h, re);
    }
    if (!strcmp(type, "Digits")) return add_regex(h, jbool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+");
    if (!strcmp(type, "Metaspace")) {
        const char *rep = jstr(p, "replacement");
        if (rep && strcmp(rep, META) != 0) return al_err(AL_ERR_UNSUPPORTED, "Metaspace replacement '%s'", rep);
        h->metaspace = h->meta_pretok = true;
        const char *scheme = jstr(p, "prepend_scheme");
        if (scheme) {
            h->prepend = strcmp(scheme, "never") != 0;
            h->prepend_always = !strcmp(scheme, "always");
        } else {
            h->prepend = jbool(p, "add_prefix_space", true);
            h->prepend_always = h->prepend;
        }
        h->meta_split = jbool(p, "split", true);
        return al_ok();
    }
    return al_err(AL_ERR_UNSUPPORTED, "pre_tokenizer type '%s'", type);
}

static al_status parse_norm(hf_state *h, json_t *n) {
    if (!n || json_is_null(n)) return al_ok();
    const char *type = jstr(n, "type");
    if (!type) return al_err(AL_ERR_FORMAT, "normalizer without type");
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers"), *e;
        size_t i;
        if (!json_is_array(arr)) return al_err(AL_ERR_FORMAT, "Sequence normalizer without list");
        json_array_foreach(arr, i, e) AL_TRY(parse_norm(h, e));
        return al_ok();
    }
    static const struct { const char *name; int opts; } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++)
        if (!strcmp(type, forms[k].name)) {
            h->normalize = forms[k].opts;
            return al_ok();
        }
    if (!strcmp(type, "Prepend")) {
        const char *s = jstr(n, "prepend");
        if (!s || strcmp(s, META) != 0) return al_err(AL_ERR_UNSUPPORTED, "Prepend normalizer other than \"" META "\"");
        h->prepend = h->prepend_always = true;
        return al_ok();
    }
    if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(n, "pattern");
        const char *from = pat ? jstr(pat, "String") : NULL, *to = jstr(n, "content");
        if (!from || !to || strcmp(from, " ") != 0 || strcmp(to, META) != 0)
            return al_err(AL_ERR_UNSUPPORTED, "Replace normalizer other than \" \" -> \"" META "\"");
        h->metaspace = true;
        return al_ok();
    }
    return al_err(AL_ERR_UNSUPPORTED, "normalizer type '%s'", type);
}

static int32_t find_id(const al_tokenizer *t, const char *s) {
    return s ? al_tokenizer_find(t, s, strlen(s)) : AL_TOKEN_NULL;
}

static al_status load(al_tokenizer **out, json_t *root, json_t *cfg) {
    json_t *model = json_object_get(root, "model");
    const char *mtype = model ? jstr(model, "type") : NULL;
    if (!mtype) return al_err(AL_ERR_FORMAT, "no model.type");
    if (strcmp(mtype, "BPE") != 0) return al_err(AL_ERR_UNSUPPORTED, "model type '%s' (BPE only)", mtype);
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab)) return al_err(AL_ERR_FORMAT, "model.vocab is not an object");
    if (merges && !json_is_array(merges)) return al_err(AL_ERR_FORMAT, "model.merges is not a list");
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) return al_err(AL_ERR_FORMAT, "added_tokens is not a list");

    hf_state h = {0};
    AL_TRY(parse_norm(&h, json_object_get(root, "normalizer")));
    AL_TRY(parse_pretok(&h, json_object_get(root, "pre_tokenizer")));
    json_t *dec = json_object_get(root, "decoder");
    if (dec && jstr(dec, "type") && !strcmp(jstr(dec, "type"), "ByteLevel")) h.byte_level = true;
    if (h.byte_level && h.metaspace) return al_err(AL_ERR_UNSUPPORTED, "both ByteLevel and Metaspace");

    /* vocabulary size: the largest id + 1 over vocab and added tokens */
    int64_t max_id = -1;
    size_t bytes = 0, i;
    const char *key;
    json_t *v, *e;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX)
            return al_err(AL_ERR_FORMAT, "vocab entry '%.40s' has a bad id", key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
        bytes += strlen(key) + 1;
    }
    json_array_foreach(added, i, e) {
        json_t *id = json_object_get(e, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX || !jstr(e, "content"))
            return al_err(AL_ERR_FORMAT, "added_tokens[%zu]: bad id or content", i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
        bytes += strlen(jstr(e, "content")) + 1;
    }
    if (max_id < 0) return al_err(AL_ERR_FORMAT, "empty vocabulary");
    if (max_id >= (1 << 26)) return al_err(AL_ERR_RANGE, "vocabulary id %lld too large", (long long)max_id);
    int32_t n = (int32_t)max_id + 1;

    /* id -> (text, attr), then set in id order */
    const char **text = calloc((size_t)n, sizeof *text);
    uint32_t *attr = calloc((size_t)n, sizeof *attr);
    if (!text || !attr) {
        free(text), free(attr);
        return al_err(AL_ERR_NOMEM, "vocabulary of %d", (int)n);
    }
    json_object_foreach(vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        text[id] = key;
        unsigned b;
        char tail;
        attr[id] = AL_TOK_ATTR_NORMAL;
        if (h.metaspace && strlen(key) == 6 && sscanf(key, "<0x%2X%c", &b, &tail) == 2 && tail == '>')
            attr[id] = AL_TOK_ATTR_BYTE;
    }
    json_array_foreach(added, i, e) {
        int32_t id = (int32_t)json_integer_value(json_object_get(e, "id"));
        text[id] = jstr(e, "content");
        attr[id] = jbool(e, "special", false) ? AL_TOK_ATTR_CONTROL : AL_TOK_ATTR_USER_DEFINED;
        if (jbool(e, "lstrip", false)) attr[id] |= AL_TOK_ATTR_LSTRIP;
        if (jbool(e, "rstrip", false)) attr[id] |= AL_TOK_ATTR_RSTRIP;
    }
    al_tokenizer *t;
    al_status st = al_tok_alloc(&t, h.metaspace ? AL_TOK_MODEL_BPE_SPM : AL_TOK_MODEL_BPE, n, bytes + 16 * (size_t)n);
    if (al_failed(&st)) {
        free(text), free(attr);
        return st;
    }
    *out = t;
    for (int32_t id = 0; id < n && !al_failed(&st); id++) {
        char pad[32];
        if (text[id]) {
            st = al_tok_set_token(t, id, text[id], strlen(text[id]), 0.0f, attr[id]);
        } else { /* holes, as convert_hf_to_gguf fills them */
            int pl = snprintf(pad, sizeof pad, "[PAD%d]", (int)id);
            st = al_tok_set_token(t, id, pad, (size_t)pl, 0.0f, AL_TOK_ATTR_UNUSED);
        }
    }
    free(text);
    free(attr);
    AL_TRY(st);
    AL_TRY(al_tok_build_map(t));

    /* merges: "a b" strings or ["a", "b"] pairs, rank = position */
    AL_TRY(al_strmap_init(&t->merges, merges ? json_array_size(merges) : 0));
    json_array_foreach(merges, i, e) {
        if (i >= INT32_MAX) return al_err(AL_ERR_RANGE, "too many merges");
        if (json_is_string(e)) {
            AL_TRY(al_tok_add_merge(t, json_string_value(e), json_string_length(e), (int32_t)i));
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            json_t *l = json_array_get(e, 0), *r = json_array_get(e, 1);
            AL_TRY(al_tok_add_merge_pair(t, json_string_value(l), json_string_length(l), json_string_value(r),
                                         json_string_length(r), (int32_t)i));
        } else {
            return al_err(AL_ERR_FORMAT, "merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", i);
        }
    }

    t->pre = AL_PRE_CUSTOM;
    t->byte_level = h.byte_level;
    t->hf_normalize = h.normalize;
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    if (h.metaspace) {
        t->hf_prepend_space = h.prepend;
        t->hf_prepend_always = h.prepend_always;
        t->hf_prepend_dedup = h.meta_pretok;
        t->add_space_prefix = h.prepend; /* decode may strip the prefixed space */
        if (h.meta_split) AL_TRY(al_pretok_compile(&t->pretok, (const char *[]){META "[^" META "]*"}, 1));
    } else {
        t->hf_prepend_space = h.add_prefix_space;
        AL_TRY(al_pretok_compile(&t->pretok, h.regex, h.n_re));
    }

    /* special ids: TemplateProcessing tells whether BOS/EOS are added; the config overrides */
    t->unk = find_id(t, jstr(model, "unk_token"));
    json_t *post = json_object_get(root, "post_processor");
    if (post && jstr(post, "type") && !strcmp(jstr(post, "type"), "TemplateProcessing")) {
        json_t *single = json_object_get(post, "single");
        size_t ns = json_array_size(single);
        json_t *first = ns ? json_object_get(json_array_get(single, 0), "SpecialToken") : NULL;
        json_t *last = ns > 1 ? json_object_get(json_array_get(single, ns - 1), "SpecialToken") : NULL;
        if (first && find_id(t, jstr(first, "id")) != AL_TOKEN_NULL) {
            t->bos = find_id(t, jstr(first, "id"));
            t->add_bos = true;
        }
        if (last && find_id(t, jstr(last, "id")) != AL_TOKEN_NULL) {
            t->eos = find_id(t, jstr(last, "id"));
            t->add_eos = true;
        }
    }
    if (cfg) {
        int32_t id;
        if ((id = find_id(t, token_content(json_object_get(cfg, "bos_token")))) != AL_TOKEN_NULL) t->bos = id;
        if ((id = find_id(t, token_content(json_object_get(cfg, "eos_token")))) != AL_TOKEN_NULL) t->eos = id;
        if ((id = find_id(t, token_content(json_object_get(cfg, "unk_token")))) != AL_TOKEN_NULL) t->unk = id;
        if ((id = find_id(t, token_content(json_object_get(cfg, "pad_token")))) != AL_TOKEN_NULL) t->pad = id;
        t->add_bos = jbool(cfg, "add_bos_token", t->add_bos);
        t->add_eos = jbool(cfg, "add_eos_token", t->add_eos);
        json_t *ct = json_object_get(cfg, "chat_template");
        const char *tmpl = json_is_string(ct) ? json_string_value(ct) : NULL;
        if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
            json_array_foreach(ct, i, e) {
                const char *nm = jstr(e, "name");
                if (!tmpl || (nm && !strcmp(nm, "default"))) tmpl = jstr(e, "template");
            }
        }
        if (tmpl) {
            t->chat_template = strdup(tmpl);
            if (!t->chat_template) return al_err(AL_ERR_NOMEM, "chat template");
        }
    }
    if (t->add_bos && t->bos == AL_TOKEN_NULL) t->add_bos = false;
    if (t->add_eos && t->eos == AL_TOKEN_NULL) t->add_eos = false;
    return al_tok_finalize(t, NULL);
}

al_status al_tokenizer_from_hf_json(al_tokenizer **out, const char *tokenizer_json, size_t len,
                                    const char *config_json, size_t config_len) {
    *out = NULL;
    if (!tokenizer_json) return al_err(AL_ERR_INVALID, "al_tokenizer_from_hf_json: NULL text");
    json_error_t jerr;
    json_t *root = json_loadb(tokenizer_json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return al_err(AL_ERR_FORMAT, "tokenizer.json: line %d: %s", jerr.line, jerr.text);
    }
    json_t *cfg = NULL;
    if (config_json) {
        cfg = json_loadb(config_json, config_len, 0, &jerr);
        if (!cfg || !json_is_object(cfg)) {
            json_decref(root);
            json_decref(cfg);
            return al_err(AL_ERR_FORMAT, "tokenizer_config.json: line %d: %s", jerr.line, jerr.text);
        }
    }
    al_tokenizer *t = NULL;
    al_status st = load(&t, root, cfg);
    json_decref(root);
    json_decref(cfg);
    if (al_failed(&st)) {
        al_tokenizer_free(t);
        return al_err_wrap(st, "tokenizer.json");
    }
    *out = t;
    return st;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    al_buf b = {0};
    char chunk[65536];
    size_t k;
    bool ok = true;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        al_status st = al_buf_put(&b, chunk, k);
        if (al_failed(&st)) {
            ok = false;
            break;
        }
    }
    ok = ok && !ferror(f);
    fclose(f);
    if (!ok) {
        free(b.p);
        return NULL;
    }
    if (!b.p) b.p = calloc(1, 1);
    *n = b.n;
    return b.p;
}

al_status al_tokenizer_from_hf(al_tokenizer **out, const char *dir) {
    *out = NULL;
    if (!dir) return al_err(AL_ERR_INVALID, "al_tokenizer_from_hf: NULL dir");
    char path[4096];
    size_t n, cn = 0;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *tj = read_all(path, &n);
    if (!tj) return al_err(AL_ERR_IO, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *cj = read_all(path, &cn); /* optional */
    al_status st = al_tokenizer_from_hf_json(out, tj, n, cj, cn);
    free(tj);
    free(cj);
    if (al_failed(&st)) return al_err_wrap(st, "%s", dir);
    return st;
}
