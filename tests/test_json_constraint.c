/* test_json_constraint.c — the JSON / JSON-Schema / tool-call recognizer and the token masks built
 * from real vocabularies (tests/data/tokenizers). The recognizer is checked against jansson (an
 * independent JSON parser) and against a small schema validator written here; walks of random
 * allowed tokens must always end in text that parses and validates. Also reports the time per
 * mask for a 32k, a 50k and a ~150k vocabulary. */
#include <stdlib.h>

#include "alloy/chat.h"
#include "alloy/engine.h"
#include "alloy/gguf.h"
#include "alloy/tokenizer.h"
#include "harness.h"
#include "schema_check.h"

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- recognizer vs jansson ---- */

static void test_any_json_vs_jansson(void) {
    al_grammar *g;
    REQUIRE_OK(al_grammar_json_schema(&g, json_true()));
    static const char *fixed[] = {
        "{}", "[]", "0", "-0", "1.5e-3", "\"a\\n\\u00e9\"", "true", "null", "{\"a\": [1, {\"b\": null}], \"c\": \"\"}",
        " [ 1 , 2 ] ", "\"\xe6\x97\xa5\"", "01", "1.", ".5", "-", "1e", "[1,]", "{\"a\" 1}", "{,}", "\"\\x\"", "\"\x01\"",
        "tru", "nul", "[1 2]", "{\"a\":1,}", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\\u0000\"", "}", "\"abc", "[\"\\u00zz\"]",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        bool complete;
        bool ok = al_grammar_accepts(g, fixed[i], strlen(fixed[i]), &complete) && complete;
        json_t *j = json_loads(fixed[i], JSON_DECODE_ANY, NULL);
        CHECKF(ok == (j != NULL), "\"%s\": recognizer %d, jansson %d", fixed[i], ok, j != NULL);
        json_decref(j);
    }
    static const char *frags[] = {"{", "}", "[", "]", ",", ":", "\"k\"", "\"", "1", "-", "0", ".5", "e3", "true", "null",
                                  "false", " ", "\n", "\\n", "\\u00e9", "x", "\xc3\xa9", "\xe2\x82\xac", "\xc3", "\\"};
    uint64_t rng = 7;
    int agree = 0, valid_seen = 0;
    for (int it = 0; it < 20000; it++) {
        char buf[64];
        size_t n = 0;
        int parts = 1 + (int)(rng_next(&rng) % 8);
        for (int p = 0; p < parts; p++) {
            const char *f = frags[rng_next(&rng) % (sizeof frags / sizeof frags[0])];
            size_t L = strlen(f);
            if (n + L >= sizeof buf) break;
            memcpy(buf + n, f, L);
            n += L;
        }
        buf[n] = 0;
        bool complete = false;
        bool prefix = al_grammar_accepts(g, buf, n, &complete);
        json_error_t e;
        json_t *j = json_loadb(buf, n, JSON_DECODE_ANY, &e);
        if (j) valid_seen++;
        CHECKF((prefix && complete) == (j != NULL), "\"%s\": recognizer %d, jansson %d (%s)", buf, prefix && complete, j != NULL, e.text);
        /* every prefix of a valid document is a valid prefix */
        for (size_t k = 0; j && k < n; k++) CHECKF(al_grammar_accepts(g, buf, k, NULL), "prefix %zu of \"%s\" rejected", k, buf);
        agree += (prefix && complete) == (j != NULL);
        json_decref(j);
    }
    CHECK(valid_seen > 500);
    CHECK(agree == 20000);
    al_grammar_free(g);
}

static const char *person_schema =
    "{\"type\": \"object\", \"properties\": {"
    "  \"name\": {\"type\": \"string\"},"
    "  \"age\": {\"type\": \"integer\"},"
    "  \"height\": {\"type\": \"number\"},"
    "  \"role\": {\"enum\": [\"admin\", \"user\", \"guest\", 7, null]},"
    "  \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
    "  \"ok\": {\"type\": \"boolean\"},"
    "  \"kind\": {\"const\": \"person\"},"
    "  \"pet\": {\"anyOf\": [{\"type\": \"null\"}, {\"$ref\": \"#/$defs/pet\"}]}"
    "}, \"required\": [\"name\", \"kind\"], \"additionalProperties\": false,"
    " \"$defs\": {\"pet\": {\"type\": \"object\", \"properties\": {\"species\": {\"type\": \"string\", \"enum\": [\"cat\", \"dog\"]},"
    "   \"legs\": {\"type\": \"integer\"}}, \"required\": [\"species\"], \"additionalProperties\": false}}}";

static void test_schema_cases(void) {
    json_t *schema = json_loads(person_schema, 0, NULL);
    REQUIRE(schema);
    al_grammar *g;
    REQUIRE_OK(al_grammar_json_schema(&g, schema));
    static const struct { const char *doc; bool ok; } t[] = {
        {"{\"name\": \"Ann\", \"kind\": \"person\"}", true},
        {"{\"kind\":\"person\",\"name\":\"B\",\"age\":-3,\"height\":1.8e0,\"role\":7,\"tags\":[\"a\",\"b\"],\"ok\":false,\"pet\":{\"species\":\"cat\",\"legs\":4}}", true},
        {"{\"name\": \"Ann\", \"kind\": \"person\", \"pet\": null}", true},
        {"{\"name\": \"Ann\", \"kind\": \"person\", \"role\": null}", true},
        {"{\"name\": \"Ann\"}", false},                                       /* kind required */
        {"{\"name\": \"Ann\", \"kind\": \"robot\"}", false},                  /* const */
        {"{\"name\": \"Ann\", \"kind\": \"person\", \"age\": 1.5}", false},   /* integer */
        {"{\"name\": \"Ann\", \"kind\": \"person\", \"x\": 1}", false},       /* additionalProperties */
        {"{\"name\": \"Ann\", \"kind\": \"person\", \"role\": \"root\"}", false},
        {"{\"name\": \"Ann\", \"name\": \"Bo\", \"kind\": \"person\"}", false}, /* repeated key */
        {"{\"name\": 5, \"kind\": \"person\"}", false},
        {"{\"name\": \"A\", \"kind\": \"person\", \"pet\": {\"legs\": 4}}", false},
        {"{\"name\": \"A\", \"kind\": \"person\", \"tags\": [1]}", false},
        {"[]", false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bool complete;
        bool ok = al_grammar_accepts(g, t[i].doc, strlen(t[i].doc), &complete) && complete;
        CHECKF(ok == t[i].ok, "%s: got %d", t[i].doc, ok);
        json_t *d = json_loads(t[i].doc, 0, NULL);
        /* the validator agrees (repeated keys collapse in jansson, so skip that one) */
        if (d && i != 9) CHECKF(al_test_schema_valid(d, schema) == t[i].ok, "validator disagrees on %s", t[i].doc);
        json_decref(d);
    }
    /* a prefix that can only go on with declared, unused keys */
    CHECK(al_grammar_accepts(g, "{\"na", 4, NULL));
    CHECK(!al_grammar_accepts(g, "{\"nx", 4, NULL));
    CHECK(!al_grammar_accepts(g, "{\"name\": \"a\", \"na", 16, NULL));
    al_grammar_free(g);
    json_decref(schema);

    /* schema errors, never crashes */
    static const char *bad[] = {"{\"type\": 5}", "{\"type\": \"thing\"}", "{\"anyOf\": []}", "{\"$ref\": \"#/nope\"}",
                                "{\"enum\": []}", "false", "{\"properties\": 3}",
                                "{\"required\": [\"a\"], \"additionalProperties\": false}", "{\"allOf\": [{}, {}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        al_grammar *x = (al_grammar *)1;
        al_status st = al_grammar_json_schema(&x, s);
        CHECKF(st.code != AL_OK && x == NULL, "schema %s accepted", bad[i]);
        json_decref(s);
    }
    /* recursion through $ref */
    json_t *tree = json_loads("{\"$ref\": \"#/$defs/n\", \"$defs\": {\"n\": {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"},"
                              " \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/n\"}}}, \"additionalProperties\": false}}}", 0, NULL);
    REQUIRE_OK(al_grammar_json_schema(&g, tree));
    const char *doc = "{\"v\": 1, \"kids\": [{\"kids\": [{\"v\": 3}]}, {}]}";
    bool complete;
    CHECK(al_grammar_accepts(g, doc, strlen(doc), &complete) && complete);
    CHECK(!al_grammar_accepts(g, "{\"kids\": [{\"w\"", 14, NULL));
    al_grammar_free(g);
    json_decref(tree);
    /* nesting past the cap is refused, not a crash */
    char deep[300];
    memset(deep, '[', sizeof deep);
    REQUIRE_OK(al_grammar_json_schema(&g, json_true()));
    CHECK(!al_grammar_accepts(g, deep, sizeof deep, NULL));
    al_grammar_free(g);
}

static void test_response_format(void) {
    al_grammar *g;
    json_t *v = json_loads("{\"type\": \"text\"}", 0, NULL);
    REQUIRE_OK(al_grammar_from_response_format(v, &g));
    CHECK(g == NULL);
    json_decref(v);
    v = json_loads("{\"type\": \"json_object\"}", 0, NULL);
    REQUIRE_OK(al_grammar_from_response_format(v, &g));
    REQUIRE(g);
    CHECK(al_grammar_accepts(g, "{\"x\": [1]}", 10, NULL));
    CHECK(!al_grammar_accepts(g, "[", 1, NULL)); /* an object, not any value */
    al_grammar_free(g);
    json_decref(v);
    v = json_loads("{\"type\": \"json_schema\", \"json_schema\": {\"name\": \"n\", \"strict\": true, \"schema\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}}}", 0, NULL);
    REQUIRE_OK(al_grammar_from_response_format(v, &g));
    bool complete;
    CHECK(al_grammar_accepts(g, "[1, 2]", 6, &complete) && complete);
    CHECK(!al_grammar_accepts(g, "[1.", 3, NULL));
    al_grammar_free(g);
    json_decref(v);
    v = json_string("json"); /* Ollama format: "json" */
    REQUIRE_OK(al_grammar_from_response_format(v, &g));
    CHECK(g && al_grammar_accepts(g, "{}", 2, NULL));
    al_grammar_free(g);
    json_decref(v);
    v = json_loads("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}, \"required\": [\"a\"]}", 0, NULL); /* Ollama schema */
    REQUIRE_OK(al_grammar_from_response_format(v, &g));
    CHECK(g && al_grammar_accepts(g, "{\"a\": true}", 11, &complete) && complete);
    CHECK(!al_grammar_accepts(g, "{\"a\": 1", 7, NULL));
    al_grammar_free(g);
    json_decref(v);
}

/* ---- token masks over real vocabularies ---- */

static al_tokenizer *load_tok(const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "tokenizers/ggml-vocab-%s.gguf", name);
    al_gguf *gg;
    al_status st = al_gguf_open(&gg, al_test_path(rel));
    if (st.code) { al_test_fail(__FILE__, __LINE__, "%s: %s", rel, st.msg); return NULL; }
    al_tokenizer *t = NULL;
    st = al_tokenizer_from_gguf(&t, gg);
    al_gguf_free(gg);
    if (st.code) { al_test_fail(__FILE__, __LINE__, "%s: %s", rel, st.msg); return NULL; }
    return t;
}

typedef struct vocab_view {
    const char **pieces;
    size_t *lens;
    uint8_t *flags;
    int32_t n;
} vocab_view;

static void view_from_tok(vocab_view *v, const al_tokenizer *t) {
    v->n = al_tokenizer_vocab_size(t);
    v->pieces = malloc(v->n * sizeof *v->pieces);
    v->lens = malloc(v->n * sizeof *v->lens);
    v->flags = calloc(v->n, 1);
    for (int32_t i = 0; i < v->n; i++) {
        v->lens[i] = al_tokenizer_token_to_piece(t, i, true, &v->pieces[i]);
        if (al_tokenizer_is_eog(t, i)) v->flags[i] = AL_CVOCAB_EOG;
        else if (al_tokenizer_is_control(t, i)) v->flags[i] = AL_CVOCAB_CONTROL;
    }
}

static void view_free(vocab_view *v) {
    free(v->pieces);
    free(v->lens);
    free(v->flags);
}

/* In "finish" mode the walk prefers, among allowed tokens: end of generation, closing brackets,
 * quotes, scalars, then any single-byte token, so that it ends. */
static int finish_rank(const char *p, size_t n, bool eog) {
    if (eog) return 0;
    if (n != 1) return 9;
    switch (p[0]) {
    case '"': return 1;
    case '}': case ']': return 2;
    case '0': case '1': case 'n': case 't': case 'f': return 3;
    case ':': return 4;
    case '{': case '[': return 8;
    case ',': return 7;
    default: return 5;
    }
}

typedef struct walk_stats { double ms_total, ms_max; int steps; } walk_stats;

/* Walks random allowed tokens from `start` until an end-of-generation token; returns the text. */
static char *walk(al_constraint *c, const vocab_view *v, uint64_t *rng, int max_steps, walk_stats *ws, const char *start) {
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    uint8_t *allowed = malloc(v->n);
    int32_t *cand = malloc(v->n * sizeof *cand);
    if (start) { n = strlen(start); memcpy(text, start, n); }
    for (int step = 0; step < max_steps + 2000; step++) {
        memset(allowed, 1, v->n);
        double t0 = al_time_sec();
        al_status st = al_constraint_mask(c, text, n, allowed, v->n);
        double ms = (al_time_sec() - t0) * 1e3;
        if (ws) { ws->ms_total += ms; ws->steps++; if (ms > ws->ms_max) ws->ms_max = ms; }
        if (st.code) { al_test_fail(__FILE__, __LINE__, "mask: %s", st.msg); break; }
        int nc = 0;
        bool finishing = step >= max_steps;
        int best = 100;
        for (int32_t i = 0; i < v->n; i++) {
            if (!allowed[i]) continue;
            if (finishing) {
                int r = finish_rank(v->pieces[i], v->lens[i], v->flags[i] & AL_CVOCAB_EOG);
                if (r < best) { best = r; nc = 0; }
                if (r > best) continue;
            }
            cand[nc++] = i;
        }
        if (nc == 0) { al_test_fail(__FILE__, __LINE__, "no token allowed after \"%.*s\"", (int)n, text); break; }
        int32_t pick = cand[rng_next(rng) % nc];
        /* end as soon as allowed, half of the time */
        if (!finishing) {
            for (int k = 0; k < nc; k++)
                if ((v->flags[cand[k]] & AL_CVOCAB_EOG) && rng_next(rng) % 2) { pick = cand[k]; break; }
        }
        if (v->flags[pick] & AL_CVOCAB_EOG) break;
        if (n + v->lens[pick] + 1 > cap) break;
        memcpy(text + n, v->pieces[pick], v->lens[pick]);
        n += v->lens[pick];
    }
    text[n] = 0;
    free(allowed);
    free(cand);
    return text;
}

static void walk_schema(const vocab_view *v, const al_cvocab *cv, const char *schema_text, int walks, walk_stats *ws) {
    json_t *schema = schema_text ? json_loads(schema_text, 0, NULL) : NULL;
    al_grammar *g;
    if (schema) REQUIRE_OK(al_grammar_json_schema(&g, schema));
    else REQUIRE_OK(al_grammar_json_object(&g));
    uint64_t rng = 12345;
    for (int w = 0; w < walks; w++) {
        al_constraint *c;
        REQUIRE_OK(al_constraint_init(&c, g, cv, 0));
        char *text = walk(c, v, &rng, 60, ws, NULL);
        json_error_t e;
        json_t *doc = json_loads(text, 0, &e);
        CHECKF(doc != NULL, "walk produced invalid JSON (%s): %s", e.text, text);
        if (doc && schema) CHECKF(al_test_schema_valid(doc, schema), "walk produced a document the schema rejects: %s", text);
        if (doc && !schema) CHECK(json_is_object(doc));
        json_decref(doc);
        free(text);
        al_constraint_free(c);
    }
    al_grammar_free(g);
    json_decref(schema);
}

static void run_vocab(const char *name, int walks) {
    al_tokenizer *t = load_tok(name);
    REQUIRE(t);
    vocab_view v;
    view_from_tok(&v, t);
    double t0 = al_time_sec();
    al_cvocab *cv;
    REQUIRE_OK(al_cvocab_from_tokenizer(&cv, t));
    double prep = (al_time_sec() - t0) * 1e3;
    walk_stats a = {0}, b = {0};
    walk_schema(&v, cv, NULL, walks, &a);
    walk_schema(&v, cv, person_schema, walks, &b);
    printf("    %s (%d tokens): prepare %.1f ms; mask json_object %.3f ms/step (max %.3f), schema %.3f ms/step (max %.3f)\n",
           name, v.n, prep, a.ms_total / a.steps, a.ms_max, b.ms_total / b.steps, b.ms_max);
    al_cvocab_free(cv);
    view_free(&v);
    al_tokenizer_free(t);
}

static void test_walk_llama_spm(void) { run_vocab("llama-spm", 12); }
static void test_walk_gpt2(void) { run_vocab("gpt-2", 12); }

/* A ~150k vocabulary: the pieces of gpt-2 (50k) and deepseek-llm (102k) together. */
static void test_walk_150k(void) {
    al_tokenizer *a = load_tok("gpt-2"), *b = load_tok("deepseek-llm");
    REQUIRE(a && b);
    vocab_view va, vb, v;
    view_from_tok(&va, a);
    view_from_tok(&vb, b);
    v.n = va.n + vb.n;
    v.pieces = malloc(v.n * sizeof *v.pieces);
    v.lens = malloc(v.n * sizeof *v.lens);
    v.flags = malloc(v.n);
    memcpy(v.pieces, va.pieces, va.n * sizeof *v.pieces);
    memcpy(v.pieces + va.n, vb.pieces, vb.n * sizeof *v.pieces);
    memcpy(v.lens, va.lens, va.n * sizeof *v.lens);
    memcpy(v.lens + va.n, vb.lens, vb.n * sizeof *v.lens);
    memcpy(v.flags, va.flags, va.n);
    memcpy(v.flags + va.n, vb.flags, vb.n);
    double t0 = al_time_sec();
    al_cvocab *cv;
    REQUIRE_OK(al_cvocab_from_pieces(&cv, v.pieces, v.lens, v.flags, v.n));
    double prep = (al_time_sec() - t0) * 1e3;
    CHECK(al_cvocab_size(cv) == v.n);
    walk_stats x = {0}, y = {0};
    walk_schema(&v, cv, NULL, 6, &x);
    walk_schema(&v, cv, person_schema, 6, &y);
    printf("    gpt-2+deepseek-llm (%d tokens): prepare %.1f ms; mask json_object %.3f ms/step (max %.3f), schema %.3f ms/step (max %.3f)\n",
           v.n, prep, x.ms_total / x.steps, x.ms_max, y.ms_total / y.steps, y.ms_max);
    al_cvocab_free(cv);
    view_free(&v);
    free(va.flags); free(va.pieces); free(va.lens);
    free(vb.flags); free(vb.pieces); free(vb.lens);
    al_tokenizer_free(a);
    al_tokenizer_free(b);
}

/* End of generation exactly when the value is complete; the engine callback signature matches. */
static void test_eog_and_callback(void) {
    al_tokenizer *t = load_tok("gpt-2");
    REQUIRE(t);
    al_cvocab *cv;
    REQUIRE_OK(al_cvocab_from_tokenizer(&cv, t));
    int32_t n = al_tokenizer_vocab_size(t), eos = al_tokenizer_eos(t);
    REQUIRE(eos >= 0 && al_tokenizer_is_eog(t, eos));
    json_t *schema = json_loads("{\"type\": \"integer\"}", 0, NULL);
    al_grammar *g;
    REQUIRE_OK(al_grammar_json_schema(&g, schema));
    al_constraint *c;
    REQUIRE_OK(al_constraint_init(&c, g, cv, 0));
    al_constraint_fn fn = al_constraint_apply; /* the engine's type */
    uint8_t *allowed = malloc(n);
    memset(allowed, 1, n);
    CHECK(fn(c, "", 0, allowed, n));
    CHECK(!allowed[eos]);
    int32_t t12 = al_tokenizer_find(t, "12", 2), tq = al_tokenizer_find(t, "\"", 1), tm = al_tokenizer_find(t, "-", 1);
    REQUIRE(t12 >= 0 && tq >= 0 && tm >= 0);
    CHECK(allowed[t12] && !allowed[tq] && allowed[tm]);
    memset(allowed, 1, n);
    CHECK(fn(c, "-", 1, allowed, n));
    CHECK(!allowed[eos] && allowed[t12] && !allowed[tm]);
    memset(allowed, 1, n);
    CHECK(fn(c, "-12", 3, allowed, n));
    CHECK(allowed[eos] && allowed[t12]);
    /* a text that is not a valid prefix leaves only end of generation */
    memset(allowed, 1, n);
    CHECK(fn(c, "x", 1, allowed, n));
    int count = 0;
    for (int32_t i = 0; i < n; i++) count += allowed[i];
    CHECK(allowed[eos] && count >= 1 && count < 5);
    /* going back to a shorter text recomputes */
    memset(allowed, 1, n);
    CHECK(fn(c, "-1", 2, allowed, n));
    CHECK(allowed[eos] && allowed[t12]);
    al_constraint_free(c);
    al_grammar_free(g);
    json_decref(schema);

    /* a think block is free when allowed, then the JSON starts */
    REQUIRE_OK(al_grammar_json_object(&g));
    REQUIRE_OK(al_constraint_init(&c, g, cv, AL_CONSTRAINT_ALLOW_THINK));
    int32_t tb = al_tokenizer_find(t, "{", 1), tlt = al_tokenizer_find(t, "<", 1), thello = al_tokenizer_find(t, "Hello", 5);
    REQUIRE(tb >= 0 && tlt >= 0 && thello >= 0);
    memset(allowed, 1, n);
    CHECK(fn(c, "", 0, allowed, n));
    CHECK(allowed[tb] && allowed[tlt] && !allowed[thello]);
    memset(allowed, 1, n);
    const char *th = "<think>\nHello there {[\n";
    CHECK(fn(c, th, strlen(th), allowed, n));
    CHECK(allowed[thello] && !allowed[eos]);
    memset(allowed, 1, n);
    th = "<think>\nok\n</think>\n\n";
    CHECK(fn(c, th, strlen(th), allowed, n));
    CHECK(allowed[tb] && !allowed[thello] && !allowed[eos]);
    al_constraint_free(c);
    al_grammar_free(g);
    free(allowed);
    al_cvocab_free(cv);
    al_tokenizer_free(t);
}

/* tool_choice required / named: walks give exactly one call that the family's parser reads back,
 * with arguments valid for the tool's parameters. */
static void test_tool_call_walks(void) {
    al_tokenizer *t = load_tok("gpt-2");
    REQUIRE(t);
    vocab_view v;
    view_from_tok(&v, t);
    al_cvocab *cv;
    REQUIRE_OK(al_cvocab_from_tokenizer(&cv, t));
    json_t *tools = json_loads(
        "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", \"properties\": {"
        "  \"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}},"
        "  \"required\": [\"city\"], \"additionalProperties\": false}}},"
        " {\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {\"type\": \"object\", \"properties\": {"
        "  \"tz\": {\"type\": \"string\"}}, \"required\": [\"tz\"], \"additionalProperties\": false}}}]", 0, NULL);
    REQUIRE(tools);
    uint64_t rng = 99;
    for (int f = 0; f < AL_CHAT_FMT_COUNT; f++) {
        for (int named = 0; named < 2; named++) {
            const char *want = named ? "get_time" : NULL;
            al_grammar *g;
            REQUIRE_OK(al_grammar_tool_call(&g, (al_chat_format)f, tools, want));
            for (int w = 0; w < 4; w++) {
                al_constraint *c;
                REQUIRE_OK(al_constraint_init(&c, g, cv, 0));
                char *text = walk(c, &v, &rng, 40, NULL, NULL);
                bool complete;
                CHECKF(al_grammar_accepts(g, text, strlen(text), &complete) && complete, "%s: incomplete %s", al_chat_format_name(f), text);
                al_chat_parse_opts o = al_chat_parse_opts_default((al_chat_format)f);
                al_chat_msg m;
                REQUIRE_OK(al_chat_parse(text, strlen(text), &o, &m));
                CHECKF(m.n_calls == 1, "%s: %zu calls from %s", al_chat_format_name(f), m.n_calls, text);
                if (m.n_calls == 1) {
                    CHECK(!want || !strcmp(m.calls[0].name, want));
                    size_t i;
                    json_t *tool;
                    bool ok = false;
                    json_array_foreach(tools, i, tool) {
                        json_t *fn = json_object_get(tool, "function");
                        if (!strcmp(json_string_value(json_object_get(fn, "name")), m.calls[0].name)) {
                            json_t *ps = json_object_get(fn, "parameters");
                            ok = al_test_schema_valid(m.calls[0].arguments, ps);
                        }
                    }
                    CHECKF(ok, "%s: arguments invalid in %s", al_chat_format_name(f), text);
                }
                al_chat_msg_free(&m);
                free(text);
                al_constraint_free(c);
            }
            al_grammar_free(g);
        }
    }
    al_grammar *g;
    CHECK_ERR(al_grammar_tool_call(&g, AL_CHAT_FMT_HERMES, tools, "nope"), AL_ERR_INVALID);
    al_tool_choice tc = {.kind = AL_TOOL_CHOICE_AUTO};
    CHECK_OK(al_grammar_from_tool_choice(&tc, AL_CHAT_FMT_HERMES, tools, &g));
    CHECK(g == NULL);
    tc.kind = AL_TOOL_CHOICE_NAMED;
    snprintf(tc.name, sizeof tc.name, "get_time");
    CHECK_OK(al_grammar_from_tool_choice(&tc, AL_CHAT_FMT_HERMES, tools, &g));
    const char *call = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>";
    bool complete;
    CHECK(g && al_grammar_accepts(g, call, strlen(call), &complete) && complete);
    CHECK(g && !al_grammar_accepts(g, "<tool_call>\n{\"name\": \"get_w", 27, NULL));
    al_grammar_free(g);
    json_decref(tools);
    al_cvocab_free(cv);
    view_free(&v);
    al_tokenizer_free(t);
}

/* Odd vocabularies: empty pieces, huge pieces, byte pieces with partial UTF-8. */
static void test_odd_vocab(void) {
    const char *pieces[] = {"", "{", "}", "\"", "\xe2", "\x82\xac", "a\"", "\"a\":1}", "x", "</s>"};
    size_t lens[10];
    for (int i = 0; i < 10; i++) lens[i] = strlen(pieces[i]);
    uint8_t flags[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, AL_CVOCAB_EOG};
    al_cvocab *cv;
    REQUIRE_OK(al_cvocab_from_pieces(&cv, pieces, lens, flags, 10));
    al_grammar *g;
    REQUIRE_OK(al_grammar_json_object(&g));
    al_constraint *c;
    REQUIRE_OK(al_constraint_init(&c, g, cv, 0));
    uint8_t allowed[10];
    memset(allowed, 1, 10);
    CHECK_OK(al_constraint_mask(c, "{\"", 2, allowed, 10));
    CHECK(!allowed[0] && allowed[1] && allowed[2] && allowed[3] && allowed[4] && !allowed[5] && allowed[6] && !allowed[7] && allowed[8] && !allowed[9]);
    memset(allowed, 1, 10);
    CHECK_OK(al_constraint_mask(c, "{\"\xe2", 3, allowed, 10));
    CHECK(allowed[5] && !allowed[8] && !allowed[3]);
    memset(allowed, 1, 10);
    CHECK_OK(al_constraint_mask(c, "{}", 2, allowed, 10));
    CHECK(allowed[9] && !allowed[1]);
    al_constraint_free(c);
    al_grammar_free(g);
    al_cvocab_free(cv);
    CHECK_ERR(al_cvocab_from_pieces(&cv, NULL, NULL, NULL, 5), AL_ERR_INVALID);
}

int main(void) {
    AL_RUN(test_any_json_vs_jansson);
    AL_RUN(test_schema_cases);
    AL_RUN(test_response_format);
    AL_RUN(test_eog_and_callback);
    AL_RUN(test_odd_vocab);
    AL_RUN(test_tool_call_walks);
    AL_RUN(test_walk_llama_spm);
    AL_RUN(test_walk_gpt2);
    AL_RUN(test_walk_150k);
    return al_test_finish();
}
