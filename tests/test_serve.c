/* test_serve.c — `alloy serve` in-process on 127.0.0.1 (ephemeral port) with a random-weight
 * alloy-tiny model: every endpoint of the three APIs through libcurl (plain and streaming), stop
 * sequences, logprobs, JSON mode, tools plumbing, auth, and hostile clients (malformed JSON,
 * wrong types, huge bodies, half-sent requests, abrupt disconnects, a full queue) while other
 * clients keep being served. Content is gibberish; structure, token counts and framing are
 * checked, and token counts against the tokenizer itself. Constrained output (json_schema,
 * Ollama format schemas, tool_choice required / named) must validate against its schema, checked
 * by an independent validator (schema_check.h), and streamed tool calls must reassemble to the
 * non-streaming answer. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "alloy/serve.h"
#include "alloy/tokenizer.h"
#include "harness.h"
#include "schema_check.h"

static al_model *g_model;
static al_server *g_srv;
static int g_port;

/* ---- HTTP helpers ---- */

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char ctype[128];
} resp;

static size_t on_write(char *p, size_t s, size_t n, void *ud) {
    resp *r = ud;
    char *b = realloc(r->body, r->len + s * n + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, s * n);
    r->body = b;
    r->len += s * n;
    b[r->len] = 0;
    return s * n;
}

static resp http_port(int port, const char *method, const char *path, const char *body, const char *hdr) {
    resp r = {0};
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdr) h = curl_slist_append(h, hdr);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ct) snprintf(r.ctype, sizeof r.ctype, "%s", ct);
    } else {
        r.status = -(long)rc;
    }
    if (!r.body) r.body = calloc(1, 1);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static resp http(const char *method, const char *path, const char *body) { return http_port(g_port, method, path, body, NULL); }

static json_t *as_json(const resp *r) { return json_loads(r->body, 0, NULL); }

static const char *jstr(json_t *o, const char *path) {
    /* dotted path with numeric indexes: "choices.0.message.content" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = (*tok >= '0' && *tok <= '9') ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}

static json_t *jget(json_t *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = (*tok >= '0' && *tok <= '9') ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return cur;
}

static long long jint(json_t *o, const char *path) {
    json_t *v = jget(o, path);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* SSE "data:" payloads, in order; returns the count. */
static int sse_data(const char *body, json_t **out, int max, bool *saw_done) {
    int n = 0;
    *saw_done = false;
    for (const char *p = body; (p = strstr(p, "data: ")); p += 6) {
        const char *e = strstr(p, "\n\n");
        if (!e) break;
        if (!strncmp(p + 6, "[DONE]", 6)) {
            *saw_done = true;
            continue;
        }
        if (n < max) out[n++] = json_loadb(p + 6, (size_t)(e - p - 6), 0, NULL);
    }
    return n;
}

static void free_all(json_t **v, int n) {
    for (int i = 0; i < n; i++) json_decref(v[i]);
}

static int count_tokens(const char *text, bool add_special) {
    const al_tokenizer *tok = NULL;
    al_status ts = al_model_tokenizer(g_model, &tok);
    if (al_failed(&ts)) return -1;
    int32_t *ids = NULL;
    size_t n = 0;
    al_status st = al_tokenizer_encode(tok, text, strlen(text), add_special, false, &ids, &n);
    free(ids);
    return al_failed(&st) ? -1 : (int)n;
}

/* ---- tests ---- */

static void test_info_endpoints(void) {
    resp r = http("GET", "/health", NULL);
    CHECK(r.status == 200 && strstr(r.body, "ok"));
    free(r.body);
    r = http("GET", "/v1/models", NULL);
    json_t *j = as_json(&r);
    CHECK(r.status == 200 && jstr(j, "object") && !strcmp(jstr(j, "object"), "list"));
    CHECK(jstr(j, "data.0.id") && !strcmp(jstr(j, "data.0.id"), "tiny"));
    json_decref(j);
    free(r.body);
    r = http("GET", "/v1/models/tiny", NULL);
    CHECK(r.status == 200);
    free(r.body);
    r = http("GET", "/v1/models/gpt-9", NULL);
    j = as_json(&r);
    CHECK(r.status == 404 && jstr(j, "error.message"));
    json_decref(j);
    free(r.body);
    r = http("GET", "/api/tags", NULL);
    j = as_json(&r);
    CHECK(r.status == 200 && jstr(j, "models.0.name") && jstr(j, "models.0.details.family"));
    /* alloy-tiny: 32000 x 128 embeddings + 4 layers = 5.00M weights, written as F32 by this test */
    CHECK(jstr(j, "models.0.details.parameter_size") && !strcmp(jstr(j, "models.0.details.parameter_size"), "5.00M"));
    CHECK(jstr(j, "models.0.details.quantization_level") && !strcmp(jstr(j, "models.0.details.quantization_level"), "F32"));
    json_decref(j);
    free(r.body);
    r = http("GET", "/api/ps", NULL);
    j = as_json(&r);
    CHECK(r.status == 200 && jint(j, "models.0.context_length") == 512);
    json_decref(j);
    free(r.body);
    r = http("GET", "/api/version", NULL);
    j = as_json(&r);
    CHECK(r.status == 200 && jstr(j, "version"));
    json_decref(j);
    free(r.body);
    r = http("POST", "/api/show", "{\"model\":\"tiny:latest\"}");
    j = as_json(&r);
    CHECK(r.status == 200 && jstr(j, "model_info.general.architecture") == NULL); /* dotted key: check below */
    CHECK(json_is_object(json_object_get(j, "model_info")) &&
          json_object_get(json_object_get(j, "model_info"), "general.architecture"));
    json_decref(j);
    free(r.body);
    r = http("POST", "/api/show", "{\"model\":\"llama9\"}");
    j = as_json(&r);
    CHECK(r.status == 404 && jstr(j, "error"));
    json_decref(j);
    free(r.body);
}

static void test_openai_chat(void) {
    const char *body = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}]}],"
                       "\"max_tokens\":12,\"temperature\":0,\"unknown_field\":{\"x\":1}}";
    resp r = http("POST", "/v1/chat/completions", body);
    json_t *j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    CHECK(!strcmp(jstr(j, "object"), "chat.completion"));
    CHECK(!strncmp(jstr(j, "id"), "chatcmpl-", 9));
    CHECK(!strcmp(jstr(j, "choices.0.message.role"), "assistant"));
    const char *content = jstr(j, "choices.0.message.content");
    CHECK(content != NULL);
    long long ct = jint(j, "usage.completion_tokens"), pt = jint(j, "usage.prompt_tokens");
    const char *fr = jstr(j, "choices.0.finish_reason");
    CHECK(ct >= 1 && ct <= 12 && pt > 3 && jint(j, "usage.total_tokens") == ct + pt);
    CHECK(fr && (!strcmp(fr, "stop") || (!strcmp(fr, "length") && ct == 12)));
    char *want = strdup(content ? content : "");
    json_decref(j);
    free(r.body);

    /* streaming gives the same greedy text, framed as chunks, usage last, then [DONE] */
    char sb[1024];
    snprintf(sb, sizeof sb, "%.*s,\"stream\":true,\"stream_options\":{\"include_usage\":true}}", (int)strlen(body) - 1, body);
    r = http("POST", "/v1/chat/completions", sb);
    CHECK(r.status == 200 && strstr(r.ctype, "text/event-stream"));
    json_t *ev[256];
    bool done;
    int n = sse_data(r.body, ev, 256, &done);
    CHECK(done && n >= 3);
    char got[4096] = "";
    int finishes = 0;
    for (int i = 0; i < n; i++) {
        REQUIRE(ev[i]);
        CHECK(!strcmp(jstr(ev[i], "object"), "chat.completion.chunk"));
        const char *d = jstr(ev[i], "choices.0.delta.content");
        if (d) strncat(got, d, sizeof got - strlen(got) - 1);
        if (jstr(ev[i], "choices.0.finish_reason")) finishes++;
    }
    CHECK(!strcmp(jstr(ev[0], "choices.0.delta.role"), "assistant"));
    CHECK(finishes == 1);
    CHECKF(!strcmp(got, want), "stream '%s' vs plain '%s'", got, want);
    CHECK(json_array_size(jget(ev[n - 1], "choices")) == 0 && jint(ev[n - 1], "usage.completion_tokens") == ct);
    free_all(ev, n);
    free(r.body);
    free(want);
}

static void test_stop_sequences(void) {
    /* greedy text without stops, then a stop string taken from its middle: output ends before it */
    const char *base = "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0";
    char b[512];
    snprintf(b, sizeof b, "%s}", base);
    resp r = http("POST", "/v1/completions", b);
    json_t *j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    CHECK(!strcmp(jstr(j, "object"), "text_completion"));
    CHECKF(jint(j, "usage.prompt_tokens") == count_tokens("Once upon a time", true), "prompt_tokens %lld vs tokenizer %d",
           jint(j, "usage.prompt_tokens"), count_tokens("Once upon a time", true));
    const char *text = jstr(j, "choices.0.text");
    REQUIRE(text && strlen(text) > 8);
    size_t cut = strlen(text) / 2;
    char stop[8];
    snprintf(stop, sizeof stop, "%.3s", text + cut);
    const char *first = strstr(text, stop);
    size_t keep = (size_t)(first - text);
    char *prefix = strndup(text, keep);
    json_decref(j);
    free(r.body);
    json_t *sj = json_string(stop);
    char *stop_json = json_dumps(sj, JSON_ENCODE_ANY);
    json_decref(sj);

    snprintf(b, sizeof b, "%s,\"stop\":[%s]}", base, stop_json);
    r = http("POST", "/v1/completions", b);
    j = as_json(&r);
    CHECKF(j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), prefix), "stop: '%s' want '%s'",
           j ? jstr(j, "choices.0.text") : "?", prefix);
    CHECK(j && !strcmp(jstr(j, "choices.0.finish_reason"), "stop"));
    json_decref(j);
    free(r.body);

    /* the same through Ollama generate (raw) and Anthropic (stop_reason stop_sequence) */
    snprintf(b, sizeof b,
             "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"raw\":true,\"stream\":false,"
             "\"options\":{\"temperature\":0,\"num_predict\":24,\"stop\":[%s],\"repeat_penalty\":1.0}}",
             stop_json);
    r = http("POST", "/api/generate", b);
    j = as_json(&r);
    CHECKF(j && jstr(j, "response") && !strcmp(jstr(j, "response"), prefix), "ollama stop: '%s'", j ? jstr(j, "response") : "?");
    CHECK(j && json_is_true(jget(j, "done")) && jint(j, "eval_duration") > 0 && jint(j, "total_duration") > 0);
    json_decref(j);
    free(r.body);
    free(prefix);
    free(stop_json);
}

static void test_logprobs(void) {
    resp r = http("POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":5,\"temperature\":0,"
                  "\"logprobs\":true,\"top_logprobs\":3}");
    json_t *j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    json_t *c = jget(j, "choices.0.logprobs.content");
    CHECK(json_array_size(c) == (size_t)jint(j, "usage.completion_tokens"));
    size_t i;
    json_t *e;
    json_array_foreach(c, i, e) {
        json_t *top = json_object_get(e, "top_logprobs");
        CHECK(json_array_size(top) == 3);
        double lp = json_number_value(json_object_get(e, "logprob"));
        double t0 = json_number_value(jget(top, "0.logprob")), t1 = json_number_value(jget(top, "1.logprob"));
        CHECK(lp <= 0 && t0 >= t1);
        CHECK(fabs(lp - t0) < 1e-4); /* greedy picks the most likely token */
        CHECK(json_is_array(json_object_get(e, "bytes")));
    }
    json_decref(j);
    free(r.body);
    r = http("POST", "/v1/completions", "{\"prompt\":\"a b c\",\"max_tokens\":4,\"logprobs\":2,\"temperature\":0}");
    j = as_json(&r);
    CHECK(r.status == 200 && json_array_size(jget(j, "choices.0.logprobs.tokens")) == 4 &&
          json_array_size(jget(j, "choices.0.logprobs.top_logprobs")) == 4);
    json_decref(j);
    free(r.body);
}

static void check_json_text(const char *what, const char *text) {
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    CHECKF(json_is_object(v), "%s: not a JSON object: '%s'", what, text ? text : "(null)");
    json_decref(v);
}

static void test_json_mode(void) {
    for (int seed = 1; seed <= 3; seed++) {
        char b[512];
        snprintf(b, sizeof b,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"give json\"}],\"max_tokens\":40,\"seed\":%d,"
                 "\"response_format\":{\"type\":\"json_object\"}}",
                 seed);
        resp r = http("POST", "/v1/chat/completions", b);
        json_t *j = as_json(&r);
        CHECK(r.status == 200);
        check_json_text("json_object", j ? jstr(j, "choices.0.message.content") : NULL);
        json_decref(j);
        free(r.body);
    }
    resp r = http("POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":30,"
                  "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":"
                  "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}}}");
    json_t *j = as_json(&r);
    CHECK(r.status == 200);
    check_json_text("json_schema", j ? jstr(j, "choices.0.message.content") : NULL);
    json_decref(j);
    free(r.body);
    r = http("POST", "/api/chat", "{\"model\":\"tiny\",\"stream\":false,\"format\":\"json\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                  "\"options\":{\"num_predict\":30}}");
    j = as_json(&r);
    CHECK(r.status == 200);
    check_json_text("ollama format json", j ? jstr(j, "message.content") : NULL);
    json_decref(j);
    free(r.body);
    r = http("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}}");
    CHECK(r.status == 400);
    free(r.body);
}

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";

static void test_tools(void) {
    char b[2048];
    snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],\"max_tokens\":6,\"tools\":%s}", tools_json);
    resp r = http("POST", "/v1/chat/completions", b);
    json_t *j = as_json(&r);
    CHECK(r.status == 200 && j && jget(j, "choices.0.message"));
    long long pt_tools = jint(j, "usage.prompt_tokens");
    json_decref(j);
    free(r.body);
    r = http("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],\"max_tokens\":6}");
    j = as_json(&r);
    CHECK(jint(j, "usage.prompt_tokens") < pt_tools); /* the tools are rendered into the prompt */
    json_decref(j);
    free(r.body);
    /* a conversation with a call and its result renders and runs (streaming too) */
    snprintf(b, sizeof b,
             "{\"stream\":true,\"max_tokens\":4,\"tools\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
             "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"}]}",
             tools_json);
    r = http("POST", "/v1/chat/completions", b);
    json_t *ev[64];
    bool done;
    int n = sse_data(r.body, ev, 64, &done);
    CHECK(r.status == 200 && done && n >= 2);
    free_all(ev, n);
    free(r.body);
    /* tool_choice naming an unknown function */
    snprintf(b, sizeof b,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":%s,\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"nope\"}}}",
             tools_json);
    r = http("POST", "/v1/chat/completions", b);
    CHECK(r.status == 400);
    free(r.body);
    /* Anthropic tool_use / tool_result history and Ollama object arguments */
    r = http("POST", "/v1/messages",
             "{\"model\":\"claude-x\",\"max_tokens\":4,\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\"}}],"
             "\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
             "\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},{\"role\":\"user\",\"content\":"
             "[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"rain\"}]}]}");
    j = as_json(&r);
    CHECK(r.status == 200 && j && !strcmp(jstr(j, "type"), "message") && !strcmp(jstr(j, "model"), "claude-x"));
    json_decref(j);
    free(r.body);
    snprintf(b, sizeof b,
             "{\"model\":\"tiny\",\"stream\":false,\"tools\":%s,\"options\":{\"num_predict\":4},\"messages\":[{\"role\":\"user\","
             "\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\","
             "\"arguments\":{\"city\":\"Rome\"}}}]},{\"role\":\"tool\",\"content\":\"hot\",\"tool_name\":\"get_weather\"}]}",
             tools_json);
    r = http("POST", "/api/chat", b);
    CHECK(r.status == 200);
    free(r.body);
}

/* ---- constrained output: JSON schemas and tool_choice ---- */

static const char person_schema[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"red\",\"blue\"]}},\"pet\":{\"anyOf\":[{\"type\":\"null\"},"
    "{\"type\":\"boolean\"}]}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";

/* text must be JSON that validates against schema_text */
static void check_schema_text(const char *what, const char *text, const char *schema_text) {
    json_t *schema = json_loads(schema_text, 0, NULL);
    json_error_t err;
    memset(&err, 0, sizeof err);
    json_t *v = text ? json_loads(text, 0, &err) : NULL;
    CHECKF(v != NULL, "%s: not JSON (%s): '%s'", what, err.text, text ? text : "(null)");
    if (v) CHECKF(al_test_schema_valid(v, schema), "%s: does not validate against the schema: %s", what, text);
    json_decref(v);
    json_decref(schema);
}

/* Concatenated delta.content of an OpenAI chat stream; *finish: the one finish_reason (strdup'd). */
static char *openai_stream_text(const char *body, char **finish) {
    json_t *ev[512];
    bool done;
    int n = sse_data(body, ev, 512, &done);
    CHECK(done && n >= 2);
    char *text = calloc(1, 1);
    size_t len = 0;
    *finish = NULL;
    for (int i = 0; i < n; i++) {
        const char *d = ev[i] ? jstr(ev[i], "choices.0.delta.content") : NULL;
        if (d) {
            text = realloc(text, len + strlen(d) + 1);
            memcpy(text + len, d, strlen(d) + 1);
            len += strlen(d);
        }
        const char *f = ev[i] ? jstr(ev[i], "choices.0.finish_reason") : NULL;
        if (f) {
            CHECK(*finish == NULL);
            free(*finish);
            *finish = strdup(f);
        }
    }
    free_all(ev, n);
    return text;
}

/* Concatenated message.content of an Ollama NDJSON stream (body is modified). */
static char *ollama_stream_text(char *body, const char *field) {
    char *text = calloc(1, 1);
    size_t len = 0;
    int done = 0;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        CHECKF(j != NULL, "bad NDJSON line: %s", line);
        const char *d = j ? jstr(j, field) : NULL;
        if (d) {
            text = realloc(text, len + strlen(d) + 1);
            memcpy(text + len, d, strlen(d) + 1);
            len += strlen(d);
        }
        if (j && json_is_true(jget(j, "done"))) done++;
        json_decref(j);
    }
    CHECK(done == 1);
    return text;
}

static void test_json_schema(void) {
    for (int seed = 1; seed <= 3; seed++) {
        char b[2048], sb[2100];
        snprintf(b, sizeof b,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"a person\"}],\"max_tokens\":128,\"seed\":%d,"
                 "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"person\",\"strict\":true,\"schema\":%s}}}",
                 seed, person_schema);
        resp r = http("POST", "/v1/chat/completions", b);
        json_t *j = as_json(&r);
        REQUIRE(r.status == 200 && j);
        const char *content = jstr(j, "choices.0.message.content");
        check_schema_text("openai json_schema", content, person_schema);
        CHECKF(!strcmp(jstr(j, "choices.0.finish_reason"), "stop"), "finish %s", jstr(j, "choices.0.finish_reason"));
        char *want = strdup(content ? content : "");
        json_decref(j);
        free(r.body);
        /* the same seed streamed: the same text, deltas as they come */
        snprintf(sb, sizeof sb, "%.*s,\"stream\":true}", (int)strlen(b) - 1, b);
        r = http("POST", "/v1/chat/completions", sb);
        CHECK(r.status == 200);
        char *finish = NULL;
        char *got = openai_stream_text(r.body, &finish);
        CHECKF(!strcmp(got, want), "stream '%s' vs plain '%s'", got, want);
        CHECK(finish && !strcmp(finish, "stop"));
        free(finish);
        free(got);
        free(want);
        free(r.body);

        /* Ollama: format is the schema itself, chat (plain and streamed) and generate */
        snprintf(b, sizeof b,
                 "{\"model\":\"tiny\",\"stream\":false,\"format\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"a person\"}],"
                 "\"options\":{\"num_predict\":128,\"seed\":%d}}",
                 person_schema, seed);
        r = http("POST", "/api/chat", b);
        j = as_json(&r);
        REQUIRE(r.status == 200 && j);
        content = jstr(j, "message.content");
        check_schema_text("ollama format schema", content, person_schema);
        CHECK(!strcmp(jstr(j, "done_reason"), "stop"));
        want = strdup(content ? content : "");
        json_decref(j);
        free(r.body);
        snprintf(b, sizeof b,
                 "{\"model\":\"tiny\",\"format\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"a person\"}],"
                 "\"options\":{\"num_predict\":128,\"seed\":%d}}",
                 person_schema, seed);
        r = http("POST", "/api/chat", b);
        CHECK(r.status == 200);
        got = ollama_stream_text(r.body, "message.content");
        CHECKF(!strcmp(got, want), "ollama stream '%s' vs plain '%s'", got, want);
        free(got);
        free(want);
        free(r.body);
        snprintf(b, sizeof b,
                 "{\"model\":\"tiny\",\"stream\":false,\"format\":%s,\"prompt\":\"a person\",\"options\":{\"num_predict\":128,\"seed\":%d}}",
                 person_schema, seed);
        r = http("POST", "/api/generate", b);
        j = as_json(&r);
        CHECK(r.status == 200);
        check_schema_text("ollama generate format schema", j ? jstr(j, "response") : NULL, person_schema);
        json_decref(j);
        free(r.body);
    }
    /* a schema outside the supported subset, or not a schema: 400 */
    resp r = http("POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
                  "\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"thing\"}}}}");
    CHECKF(r.status == 400 && strstr(r.body, "response_format"), "bad schema: %ld %s", r.status, r.body);
    free(r.body);
    r = http("POST", "/api/chat", "{\"model\":\"tiny\",\"format\":\"yaml\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    CHECK(r.status == 400);
    free(r.body);
}

static const char tools2_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"enum\":[\"Paris\",\"Oslo\",\"Rome\"]},"
    "\"days\":{\"type\":\"integer\"}},\"required\":[\"city\"],\"additionalProperties\":false}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"description\":\"Local time\",\"parameters\":"
    "{\"type\":\"object\",\"properties\":{\"tz\":{\"type\":\"string\"},\"utc\":{\"type\":\"boolean\"}},"
    "\"required\":[\"tz\",\"utc\"],\"additionalProperties\":false}}}]";

/* The parameters schema of tool `name` in tools2_json (new reference), NULL if no such tool. */
static json_t *tool_params(const char *name) {
    json_t *tools = json_loads(tools2_json, 0, NULL);
    json_t *res = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) if (name && !strcmp(jstr(t, "function.name"), name)) res = json_incref(jget(t, "function.parameters"));
    json_decref(tools);
    return res;
}

/* One call of the right tool whose arguments validate. */
static void check_call(const char *what, const char *name, json_t *args, const char *want) {
    CHECKF(name && (want ? !strcmp(name, want) : (!strcmp(name, "get_weather") || !strcmp(name, "get_time"))),
           "%s: tool '%s', want '%s'", what, name ? name : "(null)", want ? want : "any");
    json_t *ps = tool_params(name);
    CHECKF(ps && json_is_object(args) && al_test_schema_valid(args, ps), "%s: arguments do not validate", what);
    json_decref(ps);
}

/* Anthropic's tools: {name, description, input_schema} */
static char *anthropic_tools(void) {
    json_t *tools = json_loads(tools2_json, 0, NULL), *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
        json_array_append_new(out, json_pack("{s:O,s:O,s:O}", "name", jget(t, "function.name"), "description",
                                             jget(t, "function.description"), "input_schema", jget(t, "function.parameters")));
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    json_decref(tools);
    return s;
}

static void test_tool_choice_openai(void) {
    static const struct { const char *choice, *want; } cases[] = {
        {"\"required\"", NULL},
        {"{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}", "get_time"},
        {"{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", "get_weather"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int seed = 1; seed <= 2; seed++) {
            char b[4096], sb[4200];
            snprintf(b, sizeof b,
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"call a tool\"}],\"max_tokens\":128,\"seed\":%d,"
                     "\"tools\":%s,\"tool_choice\":%s}",
                     seed, tools2_json, cases[k].choice);
            resp r = http("POST", "/v1/chat/completions", b);
            json_t *j = as_json(&r);
            REQUIRE(r.status == 200 && j);
            json_t *calls = jget(j, "choices.0.message.tool_calls");
            CHECKF(json_array_size(calls) == 1, "openai %s: %zu calls: %s", cases[k].choice, json_array_size(calls), r.body);
            CHECK(!strcmp(jstr(j, "choices.0.finish_reason"), "tool_calls"));
            CHECK(json_is_null(jget(j, "choices.0.message.content")));
            const char *name = jstr(calls, "0.function.name"), *args = jstr(calls, "0.function.arguments");
            const char *id = jstr(calls, "0.id");
            CHECK(id && !strncmp(id, "call_", 5) && !strcmp(jstr(calls, "0.type"), "function"));
            json_t *av = args ? json_loads(args, 0, NULL) : NULL;
            check_call("openai", name, av, cases[k].want);
            json_decref(av);
            char *want_name = strdup(name ? name : ""), *want_args = strdup(args ? args : "");
            json_decref(j);
            free(r.body);

            /* streamed: one call at index 0, id and name first, then argument pieces that add up */
            snprintf(sb, sizeof sb, "%.*s,\"stream\":true}", (int)strlen(b) - 1, b);
            r = http("POST", "/v1/chat/completions", sb);
            json_t *ev[512];
            bool done;
            int n = sse_data(r.body, ev, 512, &done);
            CHECK(r.status == 200 && done);
            char sargs[4096] = "", sname[128] = "";
            int starts = 0, pieces = 0;
            const char *finish = NULL;
            for (int i = 0; i < n; i++) {
                REQUIRE(ev[i]);
                json_t *tcs = jget(ev[i], "choices.0.delta.tool_calls");
                size_t q;
                json_t *tc;
                json_array_foreach(tcs, q, tc) {
                    CHECK(jint(tc, "index") == 0);
                    if (jstr(tc, "id")) {
                        starts++;
                        CHECK(!strcmp(jstr(tc, "type"), "function"));
                        snprintf(sname, sizeof sname, "%s", jstr(tc, "function.name") ? jstr(tc, "function.name") : "");
                    }
                    const char *a = jstr(tc, "function.arguments");
                    if (a && *a) pieces++;
                    if (a) strncat(sargs, a, sizeof sargs - strlen(sargs) - 1);
                }
                const char *c = jstr(ev[i], "choices.0.delta.content");
                CHECK(!c || !*c);
                if (jstr(ev[i], "choices.0.finish_reason")) finish = jstr(ev[i], "choices.0.finish_reason");
            }
            CHECK(starts == 1 && pieces >= 1);
            CHECK(finish && !strcmp(finish, "tool_calls"));
            CHECKF(!strcmp(sname, want_name) && !strcmp(sargs, want_args), "openai stream %s(%s) vs plain %s(%s)", sname, sargs,
                   want_name, want_args);
            free_all(ev, n);
            free(r.body);
            free(want_name);
            free(want_args);
        }
}

static void test_tool_choice_anthropic(void) {
    char *tools = anthropic_tools();
    static const struct { const char *choice, *want; } cases[] = {
        {"{\"type\":\"any\"}", NULL},
        {"{\"type\":\"tool\",\"name\":\"get_time\"}", "get_time"},
        {"{\"type\":\"tool\",\"name\":\"get_weather\",\"disable_parallel_tool_use\":true}", "get_weather"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char b[4096], sb[4200];
        snprintf(b, sizeof b,
                 "{\"model\":\"claude-x\",\"max_tokens\":128,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"call\"}],"
                 "\"tools\":%s,\"tool_choice\":%s}",
                 tools, cases[k].choice);
        resp r = http("POST", "/v1/messages", b);
        json_t *j = as_json(&r);
        REQUIRE(r.status == 200 && j);
        CHECK(!strcmp(jstr(j, "stop_reason"), "tool_use"));
        json_t *content = jget(j, "content"), *use = NULL;
        size_t i, n_use = 0;
        json_t *blk;
        json_array_foreach(content, i, blk) if (!strcmp(jstr(blk, "type"), "tool_use")) use = blk, n_use++;
        CHECKF(n_use == 1, "anthropic %s: %zu tool_use blocks: %s", cases[k].choice, n_use, r.body);
        if (!use) {
            json_decref(j);
            free(r.body);
            continue;
        }
        check_call("anthropic", jstr(use, "name"), jget(use, "input"), cases[k].want);
        CHECK(jstr(use, "id") && *jstr(use, "id"));
        char *want_name = strdup(jstr(use, "name"));
        json_t *want_input = json_incref(jget(use, "input"));
        json_decref(j);
        free(r.body);

        /* streamed: a tool_use block start (id, name), input_json_delta pieces, its stop */
        snprintf(sb, sizeof sb, "%.*s,\"stream\":true}", (int)strlen(b) - 1, b);
        r = http("POST", "/v1/messages", sb);
        CHECK(r.status == 200);
        char partial[4096] = "", sname[128] = "";
        int starts = 0, stops_after = 0;
        long tool_index = -1;
        const char *stop_reason = NULL;
        json_t *md = NULL;
        for (const char *p = r.body; (p = strstr(p, "\ndata: ")); p += 7) {
            json_t *d = json_loadb(p + 7, strcspn(p + 7, "\n"), 0, NULL);
            REQUIRE(d);
            const char *type = jstr(d, "type");
            if (!strcmp(type, "content_block_start") && !strcmp(jstr(d, "content_block.type"), "tool_use")) {
                starts++;
                tool_index = (long)jint(d, "index");
                snprintf(sname, sizeof sname, "%s", jstr(d, "content_block.name"));
                CHECK(jstr(d, "content_block.id") && json_is_object(jget(d, "content_block.input")));
            } else if (!strcmp(type, "content_block_delta") && !strcmp(jstr(d, "delta.type"), "input_json_delta")) {
                CHECK(jint(d, "index") == tool_index);
                strncat(partial, jstr(d, "delta.partial_json"), sizeof partial - strlen(partial) - 1);
            } else if (!strcmp(type, "content_block_stop") && jint(d, "index") == tool_index) {
                stops_after++;
            } else if (!strcmp(type, "message_delta")) {
                json_decref(md);
                md = json_incref(d);
            }
            json_decref(d);
        }
        stop_reason = md ? jstr(md, "delta.stop_reason") : NULL;
        CHECK(starts == 1 && stops_after == 1);
        CHECK(stop_reason && !strcmp(stop_reason, "tool_use"));
        json_t *got = json_loads(partial, 0, NULL);
        CHECKF(!strcmp(sname, want_name) && got && json_equal(got, want_input), "anthropic stream %s(%s) vs plain %s", sname,
               partial, want_name);
        json_decref(got);
        json_decref(md);
        json_decref(want_input);
        free(want_name);
        free(r.body);
    }
    free(tools);
}

static void test_tool_choice_ollama(void) {
    /* Ollama has no tool_choice; alloy accepts OpenAI's as an extension */
    static const struct { const char *choice, *want; } cases[] = {
        {"\"required\"", NULL},
        {"{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}", "get_weather"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char b[4096], sb[4200];
        snprintf(b, sizeof b,
                 "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"call\"}],\"tools\":%s,\"tool_choice\":%s,"
                 "\"options\":{\"num_predict\":128,\"seed\":5}",
                 tools2_json, cases[k].choice);
        snprintf(sb, sizeof sb, "%s,\"stream\":false}", b);
        resp r = http("POST", "/api/chat", sb);
        json_t *j = as_json(&r);
        REQUIRE(r.status == 200 && j);
        json_t *calls = jget(j, "message.tool_calls");
        CHECKF(json_array_size(calls) == 1, "ollama %s: %s", cases[k].choice, r.body);
        check_call("ollama", jstr(calls, "0.function.name"), jget(calls, "0.function.arguments"), cases[k].want);
        char *want_name = strdup(jstr(calls, "0.function.name") ? jstr(calls, "0.function.name") : "");
        json_t *want_args = json_incref(jget(calls, "0.function.arguments"));
        json_decref(j);
        free(r.body);

        snprintf(sb, sizeof sb, "%s}", b);
        r = http("POST", "/api/chat", sb);
        CHECK(r.status == 200);
        int n_calls = 0, done = 0;
        for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *l = json_loads(line, 0, NULL);
            REQUIRE(l);
            json_t *c = jget(l, "message.tool_calls");
            size_t i;
            json_t *tc;
            json_array_foreach(c, i, tc) {
                n_calls++;
                CHECK(!strcmp(jstr(tc, "function.name"), want_name) && json_equal(jget(tc, "function.arguments"), want_args));
            }
            if (json_is_true(jget(l, "done"))) done++;
            json_decref(l);
        }
        CHECK(n_calls == 1 && done == 1);
        json_decref(want_args);
        free(want_name);
        free(r.body);
    }
}

static void test_tool_choice_misc(void) {
    /* "none": the tools are not offered (same prompt as without them) */
    char b[4096];
    snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2,\"tools\":%s,\"tool_choice\":\"none\"}",
             tools2_json);
    resp r = http("POST", "/v1/chat/completions", b);
    json_t *j = as_json(&r);
    long long pt_none = jint(j, "usage.prompt_tokens");
    CHECK(r.status == 200 && !jget(j, "choices.0.message.tool_calls"));
    json_decref(j);
    free(r.body);
    r = http("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}");
    j = as_json(&r);
    CHECK(jint(j, "usage.prompt_tokens") == pt_none);
    json_decref(j);
    free(r.body);
    /* required without tools; a named tool that is not offered (Anthropic) */
    r = http("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}");
    CHECK(r.status == 400 && strstr(r.body, "tool_choice"));
    free(r.body);
    char *tools = anthropic_tools();
    snprintf(b, sizeof b,
             "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":%s,"
             "\"tool_choice\":{\"type\":\"tool\",\"name\":\"nope\"}}",
             tools);
    r = http("POST", "/v1/messages", b);
    j = as_json(&r);
    CHECK(r.status == 400 && !strcmp(jstr(j, "error.type"), "invalid_request_error"));
    json_decref(j);
    free(r.body);
    free(tools);
}

static long metric(const char *name);

/* Multi-turn chat: the next turn's prompt extends the last one (its reply of one token was never
 * fed), so its tokens are served from the slot's state — reported as OpenAI's cached_tokens and
 * Anthropic's cache_read_input_tokens, and counted in /metrics. */
static void test_prefix_reuse(void) {
    const char *t1 = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about foxes\"}],\"max_tokens\":1,\"temperature\":0}";
    resp r = http("POST", "/v1/chat/completions", t1);
    json_t *j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    const long long p1 = jint(j, "usage.prompt_tokens");
    CHECK(p1 > 5 && jint(j, "usage.prompt_tokens_details.cached_tokens") == 0); /* no earlier prompt is its prefix */
    json_decref(j);
    free(r.body);
    const long m0 = metric("alloy_prompt_tokens_cached_total");
    const char *t2 = "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about foxes\"},{\"role\":\"assistant\","
                     "\"content\":\"Foxes are small\"},{\"role\":\"user\",\"content\":\"And wolves?\"}],\"max_tokens\":1,"
                     "\"temperature\":0}";
    r = http("POST", "/v1/chat/completions", t2);
    j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    CHECKF(jint(j, "usage.prompt_tokens_details.cached_tokens") == p1 && jint(j, "usage.prompt_tokens") > p1,
           "second turn: %lld of %lld prompt tokens cached, %lld expected", jint(j, "usage.prompt_tokens_details.cached_tokens"),
           jint(j, "usage.prompt_tokens"), p1);
    const long long p2 = jint(j, "usage.prompt_tokens");
    json_decref(j);
    free(r.body);
    CHECK(metric("alloy_prompt_tokens_cached_total") == m0 + p1);
    /* the third turn through the Anthropic API: its prompt extends the second (same template) */
    const char *t3 = "{\"model\":\"m\",\"max_tokens\":1,\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"Tell me about foxes\"},{\"role\":\"assistant\",\"content\":\"Foxes are small\"},{\"role\":\"user\","
                     "\"content\":\"And wolves?\"},{\"role\":\"assistant\",\"content\":\"Bigger\"},{\"role\":\"user\","
                     "\"content\":\"Thanks\"}]}";
    r = http("POST", "/v1/messages", t3);
    j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    CHECKF(jint(j, "usage.cache_read_input_tokens") == p2 && jint(j, "usage.input_tokens") > 0,
           "third turn: %lld cached + %lld, %lld expected cached", jint(j, "usage.cache_read_input_tokens"),
           jint(j, "usage.input_tokens"), p2);
    json_decref(j);
    free(r.body);
}

static void test_anthropic(void) {
    const char *msgs = "\"system\":\"Be terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]";
    char b[1024];
    snprintf(b, sizeof b, "{\"model\":\"claude-sonnet-4-5\",%s}", msgs);
    resp r = http("POST", "/v1/messages/count_tokens", b);
    json_t *j = as_json(&r);
    long long n_in = jint(j, "input_tokens");
    CHECK(r.status == 200 && n_in > 3);
    json_decref(j);
    free(r.body);
    snprintf(b, sizeof b, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":7,\"temperature\":0,%s}", msgs);
    r = http("POST", "/v1/messages", b);
    j = as_json(&r);
    REQUIRE(r.status == 200 && j);
    CHECK(!strcmp(jstr(j, "type"), "message") && !strcmp(jstr(j, "role"), "assistant"));
    CHECK(!strncmp(jstr(j, "id"), "msg_", 4));
    CHECK(!strcmp(jstr(j, "content.0.type"), "text") && jstr(j, "content.0.text"));
    CHECK(jint(j, "usage.input_tokens") + jint(j, "usage.cache_read_input_tokens") == n_in);
    const char *sr = jstr(j, "stop_reason");
    CHECK(sr && (!strcmp(sr, "end_turn") || (!strcmp(sr, "max_tokens") && jint(j, "usage.output_tokens") == 7)));
    json_decref(j);
    free(r.body);

    snprintf(b, sizeof b, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":7,\"stream\":true,%s}", msgs);
    r = http("POST", "/v1/messages", b);
    CHECK(r.status == 200);
    /* event names in order: message_start, (ping), content_block_start, deltas, content_block_stop, message_delta, message_stop */
    const char *order[] = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                           "message_delta", "message_stop"};
    int stage = 0, deltas = 0;
    bool bad = false;
    for (const char *p = r.body; (p = strstr(p, "event: ")); p += 7) {
        char name[64];
        sscanf(p + 7, "%63s", name);
        if (!strcmp(name, "ping")) continue;
        int k = -1;
        for (int i = 0; i < 6; i++)
            if (!strcmp(order[i], name)) k = i;
        if (k == 2) deltas++;
        if (k < stage || k < 0 || (k > stage + 1 && !(stage == 1 && k == 3))) bad = true;
        if (k > stage) stage = k;
        const char *d = strstr(p, "\ndata: ");
        json_t *dj = d ? json_loadb(d + 7, strcspn(d + 7, "\n"), 0, NULL) : NULL;
        CHECKF(dj && !strcmp(jstr(dj, "type"), name), "event %s data type mismatch", name);
        json_decref(dj);
    }
    CHECK(!bad && stage == 5);
    CHECK(strstr(r.body, "\"output_tokens\":7") || strstr(r.body, "end_turn"));
    free(r.body);

    /* any model name; errors in Anthropic's shape */
    r = http("POST", "/v1/messages", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    j = as_json(&r);
    CHECK(r.status == 400 && !strcmp(jstr(j, "type"), "error") && !strcmp(jstr(j, "error.type"), "invalid_request_error"));
    json_decref(j);
    free(r.body);
    r = http("POST", "/v1/messages", "{\"model\":\"x\",\"max_tokens\":5,\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}");
    CHECK(r.status == 400);
    free(r.body);
}

static void test_ollama(void) {
    resp r = http("POST", "/api/chat",
                  "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hey\"}],\"keep_alive\":\"5m\","
                  "\"options\":{\"num_predict\":6,\"temperature\":0.7,\"top_k\":20,\"top_p\":0.9,\"min_p\":0.05,\"seed\":42,"
                  "\"num_ctx\":256,\"repeat_penalty\":1.1,\"mirostat\":0}}");
    CHECK(r.status == 200 && strstr(r.ctype, "application/x-ndjson"));
    int lines = 0, done = 0;
    long long eval = -1;
    for (char *line = strtok(r.body, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        CHECKF(j != NULL, "bad NDJSON line: %s", line);
        if (!j) continue;
        lines++;
        CHECK(jstr(j, "model") && jstr(j, "created_at") && jstr(j, "message.role"));
        if (json_is_true(jget(j, "done"))) {
            done++;
            eval = jint(j, "eval_count");
            CHECK(jint(j, "prompt_eval_count") > 0 && jint(j, "total_duration") > 0 && jstr(j, "done_reason"));
        }
        json_decref(j);
    }
    CHECK(done == 1 && lines >= 2 && eval >= 1 && eval <= 6);
    free(r.body);
    /* same seed, same output */
    const char *b = "{\"model\":\"tiny\",\"prompt\":\"Why\",\"stream\":false,\"options\":{\"num_predict\":8,\"seed\":7}}";
    resp a1 = http("POST", "/api/generate", b), a2 = http("POST", "/api/generate", b);
    json_t *j1 = as_json(&a1), *j2 = as_json(&a2);
    CHECK(j1 && j2 && jstr(j1, "response") && !strcmp(jstr(j1, "response"), jstr(j2, "response")));
    CHECK(j1 && json_array_size(jget(j1, "context")) == (size_t)(jint(j1, "prompt_eval_count") + jint(j1, "eval_count")));
    json_decref(j1);
    json_decref(j2);
    free(a1.body);
    free(a2.body);
    /* empty conversation: the model is "loaded" */
    r = http("POST", "/api/chat", "{\"model\":\"tiny\",\"messages\":[]}");
    json_t *j = as_json(&r);
    CHECK(r.status == 200 && jstr(j, "done_reason") && !strcmp(jstr(j, "done_reason"), "load"));
    json_decref(j);
    free(r.body);
    /* errors: unknown model 404, wrong option type 400, missing model 400 */
    r = http("POST", "/api/chat", "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    j = as_json(&r);
    CHECK(r.status == 404 && jstr(j, "error"));
    json_decref(j);
    free(r.body);
    r = http("POST", "/api/generate", "{\"model\":\"tiny\",\"prompt\":\"x\",\"options\":{\"temperature\":\"hot\"}}");
    CHECK(r.status == 400 && strstr(r.body, "temperature"));
    free(r.body);
    r = http("POST", "/api/generate", "{\"prompt\":\"x\"}");
    CHECK(r.status == 400);
    free(r.body);
}

static void test_bad_requests(void) {
    struct {
        const char *path, *body;
        int status;
        const char *needle;
    } cases[] = {
        {"/v1/chat/completions", "{\"messages\": [", 400, "\"error\""},
        {"/v1/chat/completions", "[1,2]", 400, "JSON object"},
        {"/v1/chat/completions", "{\"messages\":\"hi\"}", 400, "messages"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", 400, "temperature"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":7}", 400, "temperature"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":1}", 400, "stream"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}", 400, "n"},
        {"/v1/chat/completions", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404, "model_not_found"},
        {"/v1/completions", "{\"prompt\":{\"a\":1}}", 400, "prompt"},
        {"/v1/completions", "{\"prompt\":[999999999]}", 400, "vocabulary"},
        {"/v1/messages", "{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[]}", 400, "invalid_request_error"},
        {"/api/chat", "not json at all", 400, "\"error\""},
        {"/nope", "{}", 404, "error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = http("POST", cases[i].path, cases[i].body);
        CHECKF(r.status == cases[i].status && strstr(r.body, cases[i].needle), "case %zu (%s %s): %ld %s", i, cases[i].path,
               cases[i].body, r.status, r.body);
        free(r.body);
    }
    resp r = http("GET", "/v1/chat/completions", NULL);
    CHECK(r.status == 405);
    free(r.body);
    /* a body over the limit (8 MiB by default; this server: 1 MiB) */
    size_t big = 2u << 20;
    char *huge = malloc(big + 64);
    strcpy(huge, "{\"prompt\":\"");
    memset(huge + 11, 'a', big);
    strcpy(huge + 11 + big, "\"}");
    r = http("POST", "/v1/completions", huge);
    CHECKF(r.status == 413 && strstr(r.body, "limit"), "huge body: %ld", r.status);
    free(r.body);
    free(huge);
    /* a prompt longer than the context: 400 with a clear message */
    char *lng = malloc(20000);
    strcpy(lng, "{\"prompt\":\"");
    for (int i = 0; i < 1500; i++) strcat(lng, "word ");
    strcat(lng, "\"}");
    r = http("POST", "/v1/completions", lng);
    CHECKF(r.status == 400 && strstr(r.body, "context"), "long prompt: %ld %s", r.status, r.body);
    free(r.body);
    free(lng);
}

/* ---- raw sockets: half-sent requests and abrupt disconnects ---- */

static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void raw_send(int fd, const char *s) {
    ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL);
    (void)n;
}

static long metric_port(int port, const char *name) {
    resp r = http_port(port, "GET", "/metrics", NULL, NULL);
    long v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    char *p = strstr(r.body, key);
    if (p) v = atol(p + strlen(key));
    free(r.body);
    return v;
}

static long metric(const char *name) { return metric_port(g_port, name); }

static void *busy_client(void *arg) {
    int *ok = arg;
    for (int i = 0; i < 3; i++) {
        resp r = http("POST", "/v1/chat/completions",
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8,\"stream\":true}");
        json_t *ev[64];
        bool done;
        int n = sse_data(r.body, ev, 64, &done);
        if (r.status == 200 && done && n >= 2) (*ok)++;
        free_all(ev, n);
        free(r.body);
    }
    return NULL;
}

static void test_hostile_clients(void) {
    long gen0 = metric("alloy_generated_tokens_total");
    /* half-sent request: headers promise 100 bytes, 10 arrive; the server times it out (2 s) */
    int half = raw_connect(g_port);
    REQUIRE(half >= 0);
    raw_send(half, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":");
    /* abrupt disconnects mid-stream, three times */
    for (int k = 0; k < 3; k++) {
        int fd = raw_connect(g_port);
        REQUIRE(fd >= 0);
        const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"max_tokens\":400,\"stream\":true}";
        char req[512];
        snprintf(req, sizeof req, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
        raw_send(fd, req);
        char buf[600];
        ssize_t got = recv(fd, buf, sizeof buf, 0); /* some of the stream */
        CHECK(got > 0);
        close(fd);
    }
    /* meanwhile other clients are served */
    pthread_t th[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, busy_client, &ok[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECKF(ok[i] == 3, "client %d: %d of 3 complete", i, ok[i]);
    /* the disconnected generations were cancelled: nothing is left generating */
    long active = -1;
    for (int i = 0; i < 100 && active != 0; i++) {
        active = metric("alloy_active_slots");
        if (active) usleep(50000);
    }
    CHECK(active == 0);
    CHECK(metric("alloy_generated_tokens_total") - gen0 < 4 * 3 * 8 + 3 * 400);
    /* the half-sent request was closed by the server */
    char buf[256];
    double t0 = al_time_sec();
    ssize_t n;
    while ((n = recv(half, buf, sizeof buf, 0)) > 0) {
    }
    CHECKF(n == 0 || al_time_sec() - t0 < 9, "half-sent connection not closed (%zd)", n);
    close(half);
    resp r = http("GET", "/health", NULL);
    CHECK(r.status == 200);
    free(r.body);
}

static void test_metrics(void) {
    resp r = http("GET", "/metrics", NULL);
    CHECK(r.status == 200 && strstr(r.ctype, "text/plain"));
    CHECK(strstr(r.body, "alloy_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}"));
    CHECK(strstr(r.body, "alloy_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"}"));
    CHECK(strstr(r.body, "alloy_request_duration_seconds_bucket{endpoint=\"/api/chat\",le=\"+Inf\"}"));
    CHECK(strstr(r.body, "alloy_queue_depth ") && strstr(r.body, "alloy_active_slots ") && strstr(r.body, "alloy_prompt_tokens_total "));
    free(r.body);
}

/* A second server: one slot, no queue, an API key. */
static void test_auth_and_capacity(void) {
    al_server_params p = al_server_default_params();
    p.port = 0;
    p.n_parallel = 1;
    p.max_queue = 0;
    p.n_ctx = 1024;
    p.api_key = "sekret";
    p.model_name = "tiny";
    al_server *s = NULL;
    REQUIRE_OK(al_server_start(&s, g_model, &p));
    int port = al_server_port(s);
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}";
    resp r = http_port(port, "POST", "/v1/chat/completions", chat, NULL);
    json_t *j = as_json(&r);
    CHECK(r.status == 401 && jstr(j, "error.message"));
    json_decref(j);
    free(r.body);
    r = http_port(port, "POST", "/v1/messages", "{}", NULL);
    j = as_json(&r);
    CHECK(r.status == 401 && !strcmp(jstr(j, "error.type"), "authentication_error"));
    json_decref(j);
    free(r.body);
    r = http_port(port, "POST", "/v1/chat/completions", chat, "Authorization: Bearer sekret");
    CHECK(r.status == 200);
    free(r.body);
    r = http_port(port, "POST", "/v1/messages",
                  "{\"model\":\"m\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "x-api-key: sekret");
    CHECK(r.status == 200);
    free(r.body);
    r = http_port(port, "GET", "/health", NULL, NULL);
    CHECK(r.status == 200);
    free(r.body);
    /* the slot busy with a long stream: the next generation is refused (503 / 529), then served again */
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"max_tokens\":1000,\"stream\":true}";
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    raw_send(fd, req);
    char buf[400];
    CHECK(recv(fd, buf, sizeof buf, 0) > 0);
    r = http_port(port, "POST", "/v1/chat/completions", chat, "Authorization: Bearer sekret");
    CHECKF(r.status == 503 && strstr(r.body, "busy"), "full: %ld %s", r.status, r.body);
    free(r.body);
    r = http_port(port, "POST", "/v1/messages", "{\"model\":\"m\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  "x-api-key: sekret");
    j = as_json(&r);
    CHECK(r.status == 529 && jstr(j, "error.type") && !strcmp(jstr(j, "error.type"), "overloaded_error"));
    json_decref(j);
    free(r.body);
    close(fd);
    bool served = false;
    for (int i = 0; i < 100 && !served; i++) {
        r = http_port(port, "POST", "/v1/chat/completions", chat, "Authorization: Bearer sekret");
        served = r.status == 200;
        free(r.body);
        if (!served) usleep(50000);
    }
    CHECK(served);
    /* a non-streaming request whose client hangs up is cancelled: the slot frees long before its
     * 1000 tokens (about 6 s on this model) are generated */
    long gen0 = metric_port(port, "alloy_generated_tokens_total");
    fd = raw_connect(port);
    REQUIRE(fd >= 0);
    const char *plain = "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"max_tokens\":1000,\"seed\":1}";
    char preq[512];
    snprintf(preq, sizeof preq,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(plain), plain);
    raw_send(fd, preq);
    long active = 0;
    for (int i = 0; i < 100 && active != 1; i++) {
        active = metric_port(port, "alloy_active_slots");
        if (active != 1) usleep(20000);
    }
    CHECK(active == 1);
    close(fd);
    double t0 = al_time_sec();
    for (int i = 0; i < 200 && active != 0; i++) {
        active = metric_port(port, "alloy_active_slots");
        if (active) usleep(10000);
    }
    long gen = metric_port(port, "alloy_generated_tokens_total") - gen0;
    CHECKF(active == 0 && gen < 1000, "hung-up request: active %ld after %.2f s, %ld tokens", active, al_time_sec() - t0, gen);
    r = http_port(port, "POST", "/v1/chat/completions", chat, "Authorization: Bearer sekret");
    CHECK(r.status == 200);
    free(r.body);
    /* shutting down with a stream in flight answers it and frees everything */
    fd = raw_connect(port);
    raw_send(fd, req);
    CHECK(recv(fd, buf, sizeof buf, 0) > 0);
    al_server_free(s);
    close(fd);
}

/* A server on a slot backend (what `alloy serve --device cuda` hands it): requests run through it,
 * /api/ps reports its device bytes as size_vram, and the server owns it (destroyed once, on every path). */
static void test_server_backend(void) {
    al_test_backend tb = {.m = g_model, .prefill_chunk = 7};
    al_engine_backend b;
    al_test_backend_make(&tb, &b);
    al_server_params p = al_server_default_params();
    p.port = 0;
    p.n_parallel = 2;
    p.n_ctx = 256;
    p.backend = &b;
    al_server *s = NULL;
    REQUIRE_OK(al_server_start(&s, g_model, &p));
    CHECK(!strcmp(al_server_device(s), "serial test device") && tb.slots_live == 2);
    int port = al_server_port(s);
    resp r = http_port(port, "GET", "/api/ps", NULL, NULL);
    json_t *j = as_json(&r);
    CHECK(r.status == 200 && jint(j, "models.0.size_vram") == 12345 && jint(j, "models.0.context_length") == 256);
    json_decref(j);
    free(r.body);
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"tell me a long story please\"}],"
                       "\"max_tokens\":4,\"temperature\":0}";
    r = http_port(port, "POST", "/v1/chat/completions", chat, NULL);
    j = as_json(&r);
    CHECKF(r.status == 200 && jint(j, "usage.completion_tokens") == 4, "status %ld: %s", r.status, r.body);
    json_decref(j);
    free(r.body);
    CHECK(tb.decode_calls >= 3); /* the prompt prefilled in chunks of <= 7 (or the backend fails it) */
    al_server_free(s);
    CHECK(tb.destroyed == 1 && tb.slots_live == 0);

    /* a backend that fails from its second decode on (a lost device): requests fail, /health says so */
    al_test_backend tb3 = {.m = g_model, .prefill_chunk = 7, .fail_after = 1};
    al_test_backend_make(&tb3, &b);
    p.backend = &b;
    REQUIRE_OK(al_server_start(&s, g_model, &p));
    port = al_server_port(s);
    r = http_port(port, "GET", "/health", NULL, NULL);
    CHECK(r.status == 200);
    free(r.body);
    for (int i = 0; i < 4; i++) {
        r = http_port(port, "POST", "/v1/chat/completions", chat, NULL);
        CHECKF(r.status >= 500 || i == 0, "request %d on a lost device: status %ld", i, r.status);
        free(r.body);
    }
    r = http_port(port, "GET", "/health", NULL, NULL);
    j = as_json(&r);
    CHECKF(r.status == 503 && j && !strcmp(jstr(j, "status"), "error") && strstr(jstr(j, "error"), "device lost"),
           "health on a lost device: %ld %s", r.status, r.body);
    json_decref(j);
    free(r.body);
    CHECK(metric_port(port, "alloy_backend_errors_total") >= 3);
    al_server_free(s);
    CHECK(tb3.destroyed == 1);

    al_test_backend tb2 = {.m = g_model, .prefill_chunk = 7};
    al_test_backend_make(&tb2, &b);
    p.host = "no-such-host.invalid";
    al_status st = al_server_start(&s, g_model, &p);
    CHECK(al_failed(&st) && !s);
    CHECK(tb2.destroyed == 1 && tb2.slots_live == 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/alloy_test_serve_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    al_status st = al_model_create_preset("alloy-tiny", al_test_path("tokenizers/ggml-vocab-llama-spm.gguf"), path, "F32", 1);
    if (al_failed(&st)) {
        fprintf(stderr, "create: %s\n", st.msg);
        return 1;
    }
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    st = al_model_load(&g_model, path, &mp);
    if (al_failed(&st)) {
        fprintf(stderr, "load: %s\n", st.msg);
        return 1;
    }
    al_server_params p = al_server_default_params();
    p.port = 0;
    p.n_parallel = 4;
    p.n_ctx = 512;
    p.max_body = 1u << 20;
    p.timeout_s = 2;
    st = al_server_start(&g_srv, g_model, &p);
    if (al_failed(&st)) {
        fprintf(stderr, "start: %s\n", st.msg);
        return 1;
    }
    g_port = al_server_port(g_srv);
    AL_RUN(test_info_endpoints);
    AL_RUN(test_openai_chat);
    AL_RUN(test_stop_sequences);
    AL_RUN(test_logprobs);
    AL_RUN(test_json_mode);
    AL_RUN(test_tools);
    AL_RUN(test_json_schema);
    AL_RUN(test_tool_choice_openai);
    AL_RUN(test_tool_choice_anthropic);
    AL_RUN(test_tool_choice_ollama);
    AL_RUN(test_tool_choice_misc);
    AL_RUN(test_anthropic);
    AL_RUN(test_prefix_reuse);
    AL_RUN(test_ollama);
    AL_RUN(test_bad_requests);
    AL_RUN(test_hostile_clients);
    AL_RUN(test_metrics);
    AL_RUN(test_auth_and_capacity);
    AL_RUN(test_server_backend);
    al_server_free(g_srv);
    al_model_free(g_model);
    unlink(path);
    rmdir(dir);
    curl_global_cleanup();
    return al_test_finish();
}
