/* chat_schema.c — grammars: JSON-Schema subset -> jnode trees, tool-call wrappers per format,
 * response_format / Ollama format. */
#include <stdio.h>

#include "serve/chat_grammar.h"

#define MAX_SCHEMA_NODES 100000

void *gram_alloc(al_grammar *g, size_t size) {
    if (g->n_owned == g->cap_owned) {
        size_t cap = g->cap_owned ? g->cap_owned * 2 : 64;
        void **p = realloc(g->owned, cap * sizeof *p);
        if (!p) return NULL;
        g->owned = p;
        g->cap_owned = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (m) g->owned[g->n_owned++] = m;
    return m;
}

static char *gram_strndup(al_grammar *g, const char *s, size_t n) {
    char *d = gram_alloc(g, n + 1);
    if (d) memcpy(d, s, n);
    return d;
}

void al_grammar_free(al_grammar *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    free(g->alts);
    free(g);
}

/* ---- literal sets ---- */

typedef struct lit_sort { const char *s; uint32_t len; uint32_t idx; } lit_sort;

static int lit_cmp(const void *a, const void *b) {
    const lit_sort *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Builds a sorted set from n texts; perm (optional, n entries) receives the source index of each
 * sorted entry. Duplicates are kept (harmless). */
static bool litset_build(al_grammar *g, litset *ls, const char *const *s, const size_t *len, uint32_t n, uint32_t *perm) {
    ls->n = n;
    ls->s = gram_alloc(g, n * sizeof *ls->s);
    ls->len = gram_alloc(g, n * sizeof *ls->len);
    lit_sort *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!ls->s || !ls->len || !tmp) { free(tmp); return false; }
    for (uint32_t i = 0; i < n; i++) {
        tmp[i].s = gram_strndup(g, s[i], len[i]);
        tmp[i].len = (uint32_t)len[i];
        tmp[i].idx = i;
        if (!tmp[i].s) { free(tmp); return false; }
    }
    qsort(tmp, n, sizeof *tmp, lit_cmp);
    for (uint32_t i = 0; i < n; i++) {
        ls->s[i] = tmp[i].s;
        ls->len[i] = tmp[i].len;
        if (perm) perm[i] = tmp[i].idx;
    }
    free(tmp);
    return true;
}

static bool litset_of_values(al_grammar *g, litset *ls, json_t *const *vals, uint32_t n) {
    char **texts = calloc(n ? n : 1, sizeof *texts);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    bool ok = texts && lens;
    for (uint32_t i = 0; ok && i < n; i++) {
        texts[i] = json_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
        if (!texts[i]) ok = false;
        else lens[i] = strlen(texts[i]);
    }
    if (ok) ok = litset_build(g, ls, (const char *const *)texts, lens, n, NULL);
    for (uint32_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    return ok;
}

al_status gram_new(al_grammar **out) {
    al_grammar *g = calloc(1, sizeof *g);
    if (!g) return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    g->any = gram_alloc(g, sizeof *g->any);
    static const char *const bools[2] = {"true", "false"};
    static const size_t blen[2] = {4, 5};
    static const char *const nul[1] = {"null"};
    static const size_t nlen[1] = {4};
    if (!g->any || !litset_build(g, &g->lit_bool, bools, blen, 2, NULL) || !litset_build(g, &g->lit_null, nul, nlen, 1, NULL)) {
        al_grammar_free(g);
        return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    }
    g->any->types = JT_ALL;
    g->any->addl = true;
    *out = g;
    return al_ok();
}

al_status gram_add_alt(al_grammar *g, const char *prefix, jnode *root, const char *suffix) {
    galt *a = realloc(g->alts, (g->n_alts + 1) * sizeof *a);
    if (!a) return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    g->alts = a;
    galt *x = &a[g->n_alts];
    x->plen = prefix ? strlen(prefix) : 0;
    x->slen = suffix ? strlen(suffix) : 0;
    x->prefix = gram_strndup(g, prefix ? prefix : "", x->plen);
    x->suffix = gram_strndup(g, suffix ? suffix : "", x->slen);
    x->root = root;
    if (!x->prefix || !x->suffix) return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    g->n_alts++;
    return al_ok();
}

/* ---- schema compiler ---- */

typedef struct memo_ent { const json_t *schema; jnode *node; } memo_ent;

typedef struct compiler {
    al_grammar *g;
    const json_t *root;
    memo_ent *memo;
    size_t n_memo, cap_memo;
    int depth;
} compiler;

static const json_t *resolve_ref(const json_t *root, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_t *cur = root;
    const char *p = ref + 1;
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~' && *p == '0') c = '~', p++;
            else if (c == '~' && *p == '1') c = '/', p++;
            if (n + 1 >= sizeof tok) return NULL;
            tok[n++] = c;
        }
        tok[n] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, tok);
        else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            if (*end || end == tok) return NULL;
            cur = json_array_get(cur, i);
        } else return NULL;
        if (!cur) return NULL;
    }
    return cur;
}

static al_status compile(compiler *c, const json_t *s, jnode **out);

static uint32_t type_bit(const char *t) {
    if (!strcmp(t, "object")) return JT_OBJ;
    if (!strcmp(t, "array")) return JT_ARR;
    if (!strcmp(t, "string")) return JT_STR;
    if (!strcmp(t, "number")) return JT_NUM | JT_INT;
    if (!strcmp(t, "integer")) return JT_INT;
    if (!strcmp(t, "boolean")) return JT_BOOL;
    if (!strcmp(t, "null")) return JT_NULL;
    return 0;
}

static al_status compile_object(compiler *c, const json_t *s, jnode *n) {
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return al_err(AL_ERR_INVALID, "schema: properties must be an object");
    if (req && !json_is_array(req)) return al_err(AL_ERR_INVALID, "schema: required must be an array");
    n->addl = !(json_is_false(addl));
    if (json_is_object(addl)) AL_TRY(compile(c, addl, &n->addl_schema));
    /* keys: the declared properties plus required names that are not declared */
    size_t np = json_object_size(props), nr = json_array_size(req);
    size_t cap = np + nr;
    if (cap > 4096) return al_err(AL_ERR_UNSUPPORTED, "schema: more than 4096 properties");
    const char **names = calloc(cap ? cap : 1, sizeof *names);
    const json_t **schemas = calloc(cap ? cap : 1, sizeof *schemas);
    char **enc = calloc(cap ? cap : 1, sizeof *enc);
    size_t *lens = calloc(cap ? cap : 1, sizeof *lens);
    uint32_t *perm = calloc(cap ? cap : 1, sizeof *perm);
    al_status st = al_ok();
    size_t k = 0;
    if (!names || !schemas || !enc || !lens || !perm) { st = al_err(AL_ERR_NOMEM, "schema: out of memory"); goto done; }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)props, key, v) { names[k] = key; schemas[k] = v; k++; }
    for (size_t i = 0; i < nr; i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (!r) { st = al_err(AL_ERR_INVALID, "schema: required[%zu] must be a string", i); goto done; }
        bool found = false;
        for (size_t j = 0; j < k && !found; j++) found = !strcmp(names[j], r);
        if (found) continue;
        if (!n->addl) { st = al_err(AL_ERR_INVALID, "schema: required \"%s\" is not in properties and additionalProperties is false", r); goto done; }
        names[k] = r;
        schemas[k] = NULL; /* the additionalProperties schema */
        k++;
    }
    for (size_t i = 0; i < k; i++) {
        json_t *js = json_string(names[i]);
        char *d = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        json_decref(js);
        if (!d) { st = al_err(AL_ERR_INVALID, "schema: property name is not valid UTF-8"); goto done; }
        size_t L = strlen(d);
        memmove(d, d + 1, L - 2); /* strip the quotes */
        d[L - 2] = 0;
        enc[i] = d;
        lens[i] = L - 2;
    }
    if (!litset_build(c->g, &n->keys, (const char *const *)enc, lens, (uint32_t)k, perm)) { st = al_err(AL_ERR_NOMEM, "schema: out of memory"); goto done; }
    n->key_schema = gram_alloc(c->g, (k ? k : 1) * sizeof *n->key_schema);
    if (!n->key_schema) { st = al_err(AL_ERR_NOMEM, "schema: out of memory"); goto done; }
    for (uint32_t i = 0; i < k; i++) {
        const json_t *ps = schemas[perm[i]];
        if (ps) { st = compile(c, ps, &n->key_schema[i]); if (al_failed(&st)) goto done; }
        else n->key_schema[i] = n->addl_schema ? n->addl_schema : c->g->any;
        for (size_t j = 0; j < nr; j++) {
            const char *r = json_string_value(json_array_get(req, j));
            if (r && !strcmp(r, names[perm[i]]) && i < 64) n->req |= 1ull << i;
        }
    }
    if (!n->addl_schema) n->addl_schema = c->g->any;
done:
    for (size_t i = 0; enc && i < cap; i++) free(enc[i]);
    free(names); free(schemas); free(enc); free(lens); free(perm);
    return st;
}

static al_status compile(compiler *c, const json_t *s, jnode **out) {
    if (json_is_true(s)) { *out = c->g->any; return al_ok(); }
    if (json_is_false(s)) return al_err(AL_ERR_UNSUPPORTED, "schema: false (nothing is valid)");
    if (!json_is_object(s)) return al_err(AL_ERR_INVALID, "schema must be an object or a boolean");
    for (size_t i = 0; i < c->n_memo; i++)
        if (c->memo[i].schema == s) { *out = c->memo[i].node; return al_ok(); }
    if (c->n_memo >= MAX_SCHEMA_NODES) return al_err(AL_ERR_RANGE, "schema: too many nodes");
    if (++c->depth > 64) return al_err(AL_ERR_RANGE, "schema: nested too deeply");
    const json_t *ref = json_object_get(s, "$ref");
    if (json_is_string(ref)) {
        const json_t *t = resolve_ref(c->root, json_string_value(ref));
        if (!t) { c->depth--; return al_err(AL_ERR_UNSUPPORTED, "schema: cannot resolve $ref \"%s\"", json_string_value(ref)); }
        /* the referenced schema may be the one we are in (recursion): memoize before recursing */
        al_status st = compile(c, t, out);
        c->depth--;
        return st;
    }
    jnode *n = gram_alloc(c->g, sizeof *n);
    if (!n) return al_err(AL_ERR_NOMEM, "schema: out of memory");
    if (c->n_memo == c->cap_memo) {
        size_t cap = c->cap_memo ? c->cap_memo * 2 : 32;
        memo_ent *m = realloc(c->memo, cap * sizeof *m);
        if (!m) return al_err(AL_ERR_NOMEM, "schema: out of memory");
        c->memo = m;
        c->cap_memo = cap;
    }
    c->memo[c->n_memo++] = (memo_ent){s, n};
    *out = n;
    al_status st = al_ok();
    const json_t *any = json_object_get(s, "anyOf");
    if (!any) any = json_object_get(s, "oneOf");
    const json_t *all = json_object_get(s, "allOf");
    if (json_is_array(all) && json_array_size(all) == 1 && !any) {
        /* allOf with one member (as pydantic writes references): that member */
        jnode *m;
        st = compile(c, json_array_get(all, 0), &m);
        if (!al_failed(&st)) *n = *m;
        c->depth--;
        return st;
    }
    if (all) { c->depth--; return al_err(AL_ERR_UNSUPPORTED, "schema: allOf with several members"); }
    if (any) {
        if (!json_is_array(any) || json_array_size(any) == 0) { c->depth--; return al_err(AL_ERR_INVALID, "schema: anyOf must be a non-empty array"); }
        n->n_any = (uint32_t)json_array_size(any);
        n->any = gram_alloc(c->g, n->n_any * sizeof *n->any);
        if (!n->any) { c->depth--; return al_err(AL_ERR_NOMEM, "schema: out of memory"); }
        for (uint32_t i = 0; i < n->n_any && !al_failed(&st); i++) st = compile(c, json_array_get(any, i), &n->any[i]);
        c->depth--;
        return st;
    }
    const json_t *cnst = json_object_get(s, "const");
    const json_t *en = json_object_get(s, "enum");
    if (cnst) {
        json_t *v = (json_t *)cnst;
        if (!litset_of_values(c->g, &n->lits, &v, 1)) st = al_err(AL_ERR_NOMEM, "schema: out of memory");
        c->depth--;
        return st;
    }
    if (en) {
        if (!json_is_array(en) || json_array_size(en) == 0) { c->depth--; return al_err(AL_ERR_INVALID, "schema: enum must be a non-empty array"); }
        size_t ne = json_array_size(en);
        json_t **vals = malloc(ne * sizeof *vals);
        if (!vals) { c->depth--; return al_err(AL_ERR_NOMEM, "schema: out of memory"); }
        for (size_t i = 0; i < ne; i++) vals[i] = json_array_get(en, i);
        if (!litset_of_values(c->g, &n->lits, vals, (uint32_t)ne)) st = al_err(AL_ERR_NOMEM, "schema: out of memory");
        free(vals);
        c->depth--;
        return st;
    }
    const json_t *type = json_object_get(s, "type");
    if (json_is_string(type)) {
        n->types = type_bit(json_string_value(type));
        if (!n->types) st = al_err(AL_ERR_UNSUPPORTED, "schema: unknown type \"%s\"", json_string_value(type));
    } else if (json_is_array(type)) {
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) {
            uint32_t b = json_is_string(t) ? type_bit(json_string_value(t)) : 0;
            if (!b) { st = al_err(AL_ERR_UNSUPPORTED, "schema: bad entry in type list"); break; }
            n->types |= b;
        }
        if (!n->types && !al_failed(&st)) st = al_err(AL_ERR_INVALID, "schema: empty type list");
    } else if (type) {
        st = al_err(AL_ERR_INVALID, "schema: type must be a string or a list");
    } else if (json_object_get(s, "properties") || json_object_get(s, "required") || json_object_get(s, "additionalProperties")) {
        n->types = JT_OBJ;
    } else if (json_object_get(s, "items")) {
        n->types = JT_ARR;
    } else {
        n->types = JT_ALL;
    }
    if (!al_failed(&st) && (n->types & JT_OBJ)) st = compile_object(c, s, n);
    if (!al_failed(&st) && (n->types & JT_ARR)) {
        const json_t *items = json_object_get(s, "items");
        if (items && (json_is_object(items) || json_is_boolean(items))) st = compile(c, items, &n->items);
    }
    if (!n->addl_schema) n->addl_schema = c->g->any;
    c->depth--;
    return st;
}

al_status gram_compile(al_grammar *g, const json_t *schema, jnode **out) {
    compiler c = {.g = g, .root = schema};
    al_status st = compile(&c, schema, out);
    free(c.memo);
    return st;
}

/* ---- public constructors ---- */

al_status al_grammar_json_object(al_grammar **out) {
    if (!out) return al_err(AL_ERR_INVALID, "al_grammar_json_object: out is NULL");
    *out = NULL;
    al_grammar *g;
    AL_TRY(gram_new(&g));
    jnode *n = gram_alloc(g, sizeof *n);
    al_status st = n ? al_ok() : al_err(AL_ERR_NOMEM, "grammar: out of memory");
    if (n) {
        n->types = JT_OBJ;
        n->addl = true;
        n->addl_schema = g->any;
        st = gram_add_alt(g, NULL, n, NULL);
    }
    if (al_failed(&st)) { al_grammar_free(g); return st; }
    *out = g;
    return al_ok();
}

al_status al_grammar_json_schema(al_grammar **out, const json_t *schema) {
    if (!out || !schema) return al_err(AL_ERR_INVALID, "al_grammar_json_schema: NULL argument");
    *out = NULL;
    al_grammar *g;
    AL_TRY(gram_new(&g));
    jnode *root;
    al_status st = gram_compile(g, schema, &root);
    if (!al_failed(&st)) st = gram_add_alt(g, NULL, root, NULL);
    if (al_failed(&st)) { al_grammar_free(g); return al_err_wrap(st, "json schema"); }
    *out = g;
    return al_ok();
}

/* {"name": <const name>, "<args_key>": <params>} with both keys required, nothing else. */
static al_status call_object(al_grammar *g, const char *name, jnode *params, const char *args_key, jnode **out) {
    jnode *n = gram_alloc(g, sizeof *n), *nm = gram_alloc(g, sizeof *nm);
    if (!n || !nm) return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    json_t *js = json_string(name);
    if (!js) return al_err(AL_ERR_INVALID, "tool name is not valid UTF-8");
    bool ok = litset_of_values(g, &nm->lits, &js, 1);
    json_decref(js);
    const char *keys[2] = {args_key, "name"};
    size_t lens[2] = {strlen(args_key), 4};
    uint32_t perm[2];
    ok = ok && litset_build(g, &n->keys, keys, lens, 2, perm);
    n->key_schema = gram_alloc(g, 2 * sizeof *n->key_schema);
    if (!ok || !n->key_schema) return al_err(AL_ERR_NOMEM, "grammar: out of memory");
    for (int i = 0; i < 2; i++) n->key_schema[i] = perm[i] == 0 ? params : nm;
    n->types = JT_OBJ;
    n->req = 3;
    n->addl = false;
    n->addl_schema = g->any;
    *out = n;
    return al_ok();
}

al_status al_grammar_tool_call(al_grammar **out, al_chat_format fmt, const json_t *tools, const char *name) {
    if (!out) return al_err(AL_ERR_INVALID, "al_grammar_tool_call: out is NULL");
    *out = NULL;
    if ((unsigned)fmt >= AL_CHAT_FMT_COUNT) return al_err(AL_ERR_INVALID, "al_grammar_tool_call: bad format");
    if (!json_is_array(tools) || json_array_size(tools) == 0) return al_err(AL_ERR_INVALID, "tool call grammar: no tools");
    al_grammar *g;
    AL_TRY(gram_new(&g));
    size_t nt = json_array_size(tools), used = 0;
    jnode **calls = gram_alloc(g, nt * sizeof *calls);
    al_status st = calls ? al_ok() : al_err(AL_ERR_NOMEM, "grammar: out of memory");
    const char *args_key = fmt == AL_CHAT_FMT_LLAMA3 ? "parameters" : "arguments";
    for (size_t i = 0; i < nt && !al_failed(&st); i++) {
        const json_t *f = json_object_get(json_array_get(tools, i), "function");
        const char *tn = json_string_value(json_object_get(f, "name"));
        if (!tn) { st = al_err(AL_ERR_INVALID, "tools[%zu]: function.name is missing", i); break; }
        if (name && strcmp(name, tn)) continue;
        const json_t *ps = json_object_get(f, "parameters");
        jnode *params;
        if (ps && !json_is_null(ps)) st = gram_compile(g, ps, &params);
        else {
            params = gram_alloc(g, sizeof *params);
            if (params) { params->types = JT_OBJ; params->addl = true; params->addl_schema = g->any; }
            else st = al_err(AL_ERR_NOMEM, "grammar: out of memory");
        }
        if (al_failed(&st)) { st = al_err_wrap(st, "tool \"%s\" parameters", tn); break; }
        if (fmt == AL_CHAT_FMT_MISTRAL_V11) {
            size_t L = strlen(tn);
            char *pre = malloc(L + 32);
            if (!pre) { st = al_err(AL_ERR_NOMEM, "grammar: out of memory"); break; }
            snprintf(pre, L + 32, "[TOOL_CALLS]%s[ARGS]", tn);
            st = gram_add_alt(g, pre, params, NULL);
            free(pre);
            used++;
            continue;
        }
        st = call_object(g, tn, params, args_key, &calls[used++]);
    }
    if (!al_failed(&st) && used == 0) st = al_err(AL_ERR_INVALID, "tool call grammar: no tool named \"%s\"", name ? name : "");
    if (!al_failed(&st) && fmt != AL_CHAT_FMT_MISTRAL_V11) {
        jnode *root = calls[0];
        if (used > 1) {
            root = gram_alloc(g, sizeof *root);
            if (root) { root->n_any = (uint32_t)used; root->any = calls; }
        }
        if (!root) st = al_err(AL_ERR_NOMEM, "grammar: out of memory");
        static const char *const pre[AL_CHAT_FMT_COUNT] = {
            [AL_CHAT_FMT_HERMES] = "<tool_call>\n", [AL_CHAT_FMT_MISTRAL] = "[TOOL_CALLS][", [AL_CHAT_FMT_NEMOTRON] = "<TOOLCALL>[",
        };
        static const char *const suf[AL_CHAT_FMT_COUNT] = {
            [AL_CHAT_FMT_HERMES] = "\n</tool_call>", [AL_CHAT_FMT_MISTRAL] = "]", [AL_CHAT_FMT_NEMOTRON] = "]</TOOLCALL>",
        };
        if (!al_failed(&st)) st = gram_add_alt(g, pre[fmt], root, suf[fmt]);
    }
    if (al_failed(&st)) { al_grammar_free(g); return st; }
    *out = g;
    return al_ok();
}

al_status al_grammar_from_tool_choice(const al_tool_choice *choice, al_chat_format fmt, const json_t *tools, al_grammar **out) {
    if (!out) return al_err(AL_ERR_INVALID, "al_grammar_from_tool_choice: out is NULL");
    *out = NULL;
    if (!choice || choice->kind == AL_TOOL_CHOICE_AUTO || choice->kind == AL_TOOL_CHOICE_NONE) return al_ok();
    if (choice->kind == AL_TOOL_CHOICE_REQUIRED) return al_grammar_tool_call(out, fmt, tools, NULL);
    if (choice->kind == AL_TOOL_CHOICE_NAMED) return al_grammar_tool_call(out, fmt, tools, choice->name);
    return al_err(AL_ERR_INVALID, "tool_choice: unknown kind %d", (int)choice->kind);
}

al_status al_grammar_from_response_format(const json_t *rf, al_grammar **out) {
    if (!out) return al_err(AL_ERR_INVALID, "al_grammar_from_response_format: out is NULL");
    *out = NULL;
    if (!rf || json_is_null(rf)) return al_ok();
    if (json_is_string(rf)) {
        const char *v = json_string_value(rf);
        if (!strcmp(v, "json")) return al_grammar_json_object(out);
        if (!*v || !strcmp(v, "text")) return al_ok();
        return al_err(AL_ERR_INVALID, "format: unknown value \"%s\"", v);
    }
    if (!json_is_object(rf)) return al_err(AL_ERR_INVALID, "response_format must be an object");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (type && !strcmp(type, "text")) return al_ok();
    if (type && !strcmp(type, "json_object")) return al_grammar_json_object(out);
    if (type && !strcmp(type, "json_schema")) {
        const json_t *js = json_object_get(rf, "json_schema");
        const json_t *schema = json_object_get(js, "schema");
        if (!schema) schema = json_object_get(rf, "schema");
        if (!schema) return al_grammar_json_object(out);
        return al_grammar_json_schema(out, schema);
    }
    /* Ollama: the object is the schema itself */
    return al_grammar_json_schema(out, rf);
}

bool al_grammar_accepts(const al_grammar *g, const char *text, size_t len, bool *complete) {
    if (complete) *complete = false;
    if (!g || (!text && len)) return false;
    arena a = {0};
    rset *x = malloc(2 * sizeof *x);
    if (!x) return false;
    rec_init(g, 0, &x[0]);
    int cur = 0;
    for (size_t i = 0; i < len && x[cur].n; i++) {
        rec_step(&x[cur], (unsigned char)text[i], &a, &x[cur ^ 1]);
        cur ^= 1;
    }
    bool ok = x[cur].n > 0;
    if (ok && complete) *complete = rec_can_finish(&x[cur]);
    free(x);
    arena_free(&a);
    return ok;
}
