/* test_template.c — the Jinja interpreter against Python jinja2.
 *
 * Reference data (tests/data/templates/, see gen_expected.py there):
 *  - <name>.jinja: real chat templates copied from tokenizer_config.json files via llama.cpp's
 *    models/templates/ (Llama 3.1 (= 3.3 text), Llama 3.2, Qwen3, Mistral Nemo, Gemma 2, Phi-3.5,
 *    NVIDIA Nemotron Nano v2 = Nemotron-H), a GGUF-embedded Qwen2.5 template, the Gemma 3 template
 *    and the generic ChatML template;
 *  - cases.json + <case>.expected: conversations rendered by jinja2 3.1.6 in the environment
 *    transformers' apply_chat_template uses (trim/lstrip_blocks, tojson, raise_exception,
 *    strftime_now pinned to 2024-09-26T00:00Z);
 *  - unit_cases.json: small templates covering syntax, filters, tests and error cases, with
 *    jinja2's output or the fact that jinja2 raised.
 * Plus checks transcribed from published expected strings (llama.cpp tests/test-chat-template.cpp
 * style outputs for ChatML / Gemma / Phi-3) and hostile templates that must fail within limits. */
#include <stdlib.h>

#include "alloy/template.h"
#include "harness.h"

static char *read_text(const char *rel, size_t *n) {
    char *p = al_test_read_file(al_test_path(rel), n);
    return p;
}

static void show_diff(const char *name, const char *got, size_t gn, const char *want, size_t wn) {
    size_t i = 0;
    while (i < gn && i < wn && got[i] == want[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    al_test_fail(__FILE__, __LINE__, "%s: output differs at byte %zu (got %zu bytes, want %zu)\n  got:  ...%.*s\n  want: ...%.*s",
                 name, i, gn, wn, (int)((gn - from) < 140 ? gn - from : 140), got + from,
                 (int)((wn - from) < 140 ? wn - from : 140), want + from);
}

static void test_chat_cases(void) {
    size_t n;
    char *txt = read_text("templates/cases.json", &n);
    REQUIRE(txt);
    json_error_t jerr;
    json_t *cases = json_loadb(txt, n, 0, &jerr);
    free(txt);
    REQUIRE(cases && json_is_array(cases));
    REQUIRE(json_array_size(cases) >= 20);
    size_t idx;
    json_t *c;
    json_array_foreach(cases, idx, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        char path[256];
        snprintf(path, sizeof path, "templates/%s.jinja", tmpl);
        size_t sn;
        char *src = read_text(path, &sn);
        CHECKF(src != NULL, "%s: missing %s", name, path);
        if (!src) continue;
        al_template *t = NULL;
        al_status st = al_template_init(&t, src, sn);
        free(src);
        CHECKF(st.code == AL_OK, "%s: parse failed: %s", name, st.msg);
        if (st.code) continue;
        json_t *tools = json_object_get(c, "tools");
        al_template_opts o = {.fixed_now = true, .now = (int64_t)json_integer_value(json_object_get(c, "now"))};
        char *out = NULL;
        size_t on = 0;
        st = al_chat_render(t, json_object_get(c, "messages"), json_is_null(tools) ? NULL : tools,
                            json_is_true(json_object_get(c, "add_generation_prompt")), json_object_get(c, "extra"),
                            json_string_value(json_object_get(c, "bos")), json_string_value(json_object_get(c, "eos")),
                            &o, &out, &on);
        if (json_is_true(json_object_get(c, "error"))) {
            CHECKF(st.code != AL_OK, "%s: expected an error (jinja2 raised), got output", name);
            CHECKF(strstr(st.msg, "raised an exception") != NULL, "%s: error should come from raise_exception: %s", name, st.msg);
        } else {
            CHECKF(st.code == AL_OK, "%s: render failed: %s", name, st.msg);
            snprintf(path, sizeof path, "templates/%s.expected", name);
            size_t wn;
            char *want = read_text(path, &wn);
            CHECKF(want != NULL, "%s: missing %s", name, path);
            if (want && out && (on != wn || memcmp(out, want, wn) != 0)) show_diff(name, out, on, want, wn);
            free(want);
        }
        free(out);
        al_template_free(t);
    }
    json_decref(cases);
}

static void test_unit_cases(void) {
    size_t n;
    char *txt = read_text("templates/unit_cases.json", &n);
    REQUIRE(txt);
    json_error_t jerr;
    json_t *root = json_loadb(txt, n, 0, &jerr);
    free(txt);
    REQUIRE(root);
    json_t *cases = json_object_get(root, "cases");
    REQUIRE(json_is_array(cases) && json_array_size(cases) > 50);
    al_template_opts o = {.fixed_now = true, .now = (int64_t)json_integer_value(json_object_get(root, "now"))};
    size_t idx;
    json_t *c;
    json_array_foreach(cases, idx, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *src = json_string_value(json_object_get(c, "template"));
        bool want_err = json_is_true(json_object_get(c, "error"));
        al_template *t = NULL;
        char *out = NULL;
        size_t on = 0;
        al_status st = al_template_init(&t, src, strlen(src));
        if (st.code == AL_OK) st = al_template_render_opts(t, json_object_get(c, "context"), &o, &out, &on);
        if (want_err) {
            CHECKF(st.code != AL_OK, "%s: jinja2 raised (%s) but we rendered '%s'", name,
                   json_string_value(json_object_get(c, "python_error")), out ? out : "");
        } else {
            CHECKF(st.code == AL_OK, "%s: %s", name, st.msg);
            const char *want = json_string_value(json_object_get(c, "expected"));
            size_t wn = json_string_length(json_object_get(c, "expected"));
            if (st.code == AL_OK && (on != wn || memcmp(out, want, wn) != 0)) show_diff(name, out, on, want, wn);
        }
        free(out);
        al_template_free(t);
    }
    json_decref(root);
}

/* Published outputs (llama.cpp tests/test-chat-template.cpp conversation: system "You are a helpful
 * assistant", user "Hello", assistant "Hi there", user "Who are you", assistant "   I am an
 * assistant   ", user "Another question", add_generation_prompt); the gemma string is the one
 * published for google/gemma-7b-it (same template text as gemma-2), also mirrored in mistral.rs. */
static json_t *llamacpp_conversation(bool with_system) {
    json_t *m = json_array();
    if (with_system) json_array_append_new(m, json_pack("{s:s,s:s}", "role", "system", "content", "You are a helpful assistant"));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", "Hello"));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "assistant", "content", "Hi there"));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", "Who are you"));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "assistant", "content", "   I am an assistant   "));
    json_array_append_new(m, json_pack("{s:s,s:s}", "role", "user", "content", "Another question"));
    return m;
}

static void check_published(const char *tmpl, bool with_system, const char *bos, const char *eos, const char *want) {
    char path[128];
    snprintf(path, sizeof path, "templates/%s.jinja", tmpl);
    size_t sn;
    char *src = read_text(path, &sn);
    REQUIRE(src);
    al_template *t;
    al_status st = al_template_init(&t, src, sn);
    free(src);
    REQUIRE_OK(st);
    json_t *m = llamacpp_conversation(with_system);
    char *out = NULL;
    size_t on;
    CHECK_OK(al_chat_render(t, m, NULL, true, NULL, bos, eos, NULL, &out, &on));
    if (out && strcmp(out, want) != 0) show_diff(tmpl, out, on, want, strlen(want));
    free(out);
    json_decref(m);
    al_template_free(t);
}

static void test_published_outputs(void) {
    check_published("chatml", true, "<s>", "</s>",
                    "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                    "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
                    "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
                    "<|im_start|>assistant\n");
    check_published("gemma-2", false, "<bos>", "",
                    "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
                    "<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
                    "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
    check_published("phi-3.5", true, "", "<|endoftext|>",
                    "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
                    "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n"
                    "<|assistant|>\n");
}

static al_status render_src(const char *src, const char *ctx_json, const al_template_opts *o, char **out) {
    al_template *t;
    al_status st = al_template_init(&t, src, strlen(src));
    if (st.code) return st;
    json_t *ctx = ctx_json ? json_loads(ctx_json, 0, NULL) : NULL;
    size_t n;
    st = al_template_render_opts(t, ctx, o, out, &n);
    json_decref(ctx);
    al_template_free(t);
    return st;
}

static void test_syntax_error_position(void) {
    al_template *t = NULL;
    const char *src = "line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}";
    al_status st = al_template_init(&t, src, strlen(src));
    CHECK(st.code == AL_ERR_FORMAT);
    CHECKF(strstr(st.msg, "line 3") != NULL, "message should name line 3: %s", st.msg);
    CHECK(t == NULL);
    st = al_template_init(&t, "{{ 'abc }}", 10);
    CHECK(st.code == AL_ERR_FORMAT);
    st = al_template_init(&t, "{% for %}", 9);
    CHECK(st.code == AL_ERR_FORMAT);
    al_template_free(NULL);
}

static void test_limits(void) {
    char *out = NULL;
    al_template_opts o = {.max_steps = 100000, .max_output = 1 << 20, .max_memory = 16 << 20};
    /* runaway loops */
    al_status st = render_src("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", NULL, &o, &out);
    CHECKF(st.code == AL_ERR_RANGE || st.code == AL_ERR_NOMEM, "runaway loop: %s", st.msg);
    CHECK(out == NULL);
    /* output explosion */
    CHECK_ERR(render_src("{% set s = 'xxxxxxxxxxxxxxxx' * 100000 %}{{ s }}", NULL, &o, &out), AL_ERR_RANGE);
    /* memory explosion through repeated concatenation */
    al_template_opts o2 = {.max_memory = 4 << 20};
    CHECK(render_src("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", NULL, &o2, &out).code != AL_OK);
    /* unbounded recursion */
    CHECK_ERR(render_src("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, &out), AL_ERR_RANGE);
    /* deep nesting is a syntax error, not a stack overflow */
    char deep[5000];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 1500; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1500; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    CHECK(render_src(deep, NULL, NULL, &out).code == AL_ERR_FORMAT);
    /* a normal render within the same limits works */
    CHECK_OK(render_src("{% for i in range(3) %}{{ i }}{% endfor %}", NULL, &o, &out));
    CHECK(out && strcmp(out, "012") == 0);
    free(out);
}

static void test_api(void) {
    al_template *t;
    const char *src = "{{ messages|length }}{{ tools }}{{ bos_token }}{{ add_generation_prompt }}{{ enable_thinking }}";
    REQUIRE_OK(al_template_init(&t, src, strlen(src)));
    json_t *m = json_loads("[{\"role\":\"user\",\"content\":\"x\"}]", 0, NULL);
    json_t *extra = json_loads("{\"enable_thinking\": false, \"bos_token\": \"override\"}", 0, NULL);
    char *out = NULL;
    size_t n;
    CHECK_OK(al_chat_render(t, m, NULL, true, extra, "<s>", "</s>", NULL, &out, &n));
    CHECK(out && strcmp(out, "1NoneoverrideTrueFalse") == 0);
    free(out);
    CHECK_ERR(al_chat_render(t, extra, NULL, true, NULL, NULL, NULL, NULL, &out, &n), AL_ERR_INVALID);
    CHECK(out == NULL);
    CHECK_ERR(al_template_render(t, m, &out, &n), AL_ERR_INVALID); /* context must be an object */
    /* rendering is repeatable and independent */
    CHECK_OK(al_template_render(t, NULL, &out, &n));
    CHECK(out && strcmp(out, "0") == 0);
    free(out);
    json_decref(m);
    json_decref(extra);
    al_template_free(t);
}

int main(void) {
    AL_RUN(test_chat_cases);
    AL_RUN(test_unit_cases);
    AL_RUN(test_published_outputs);
    AL_RUN(test_syntax_error_position);
    AL_RUN(test_limits);
    AL_RUN(test_api);
    return al_test_finish();
}
