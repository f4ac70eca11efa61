/* api_ollama.c — the Ollama dialect: /api/chat and /api/generate request parsing (options,
 * format json / JSON schema as a grammar, messages and tools through alloy/chat.h, think,
 * keep_alive), NDJSON streaming (tool calls with object arguments in the chunk that completes
 * them), final statistics in nanoseconds, and errors ({"error": "message"}). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define BAD "invalid_request_error"

/* Ollama's defaults (api/types.go DefaultOptions). */
static void ollama_defaults(srv_request *r) {
    r->sp.temp = 0.8f;
    r->sp.top_k = 40;
    r->sp.top_p = 0.9f;
    r->sp.min_p = 0.0f;
    r->sp.repeat_penalty = 1.1f;
    r->sp.penalty_last_n = 64;
    r->max_tokens = -1;
    r->stream = true;
}

static bool parse_options(json_t *o, srv_request *r, srv_error *e) {
    if (!o || json_is_null(o)) return true;
    if (!json_is_object(o)) return srv_fail(e, 400, BAD, "options", "options must be an object");
    int n_ctx = 0, last_n = r->sp.penalty_last_n, seed = -1;
    bool ok = srv_get_float(o, "temperature", &r->sp.temp, 0, 100, e) && srv_get_float(o, "top_p", &r->sp.top_p, 0, 1, e) &&
              srv_get_int(o, "top_k", &r->sp.top_k, -1, 1 << 20, e) && srv_get_float(o, "min_p", &r->sp.min_p, 0, 1, e) &&
              srv_get_int(o, "seed", &seed, -1 - (1 << 30), 0x7fffffff, e) &&
              srv_get_int(o, "num_predict", &r->max_tokens, -2, 1 << 30, e) &&
              srv_get_int(o, "num_ctx", &n_ctx, 0, 1 << 24, e) &&
              srv_get_float(o, "repeat_penalty", &r->sp.repeat_penalty, 0.01f, 100, e) &&
              srv_get_int(o, "repeat_last_n", &last_n, -1, 1 << 20, e) &&
              srv_get_float(o, "presence_penalty", &r->sp.presence_penalty, -100, 100, e) &&
              srv_get_float(o, "frequency_penalty", &r->sp.frequency_penalty, -100, 100, e) && srv_get_stop(o, "stop", r, e);
    if (!ok) return false;
    if (seed >= 0) r->sp.seed = (uint64_t)seed;
    r->sp.penalty_last_n = last_n < 0 ? 256 : last_n;
    if (r->sp.top_k < 0) r->sp.top_k = 0;
    return true;
}

static bool parse_format(json_t *f, srv_request *r, srv_error *e) {
    if (!f || json_is_null(f)) return true;
    if (json_is_string(f) && json_string_length(f) && strcmp(json_string_value(f), "json"))
        return srv_fail(e, 400, BAD, "format", "invalid format: \"%s\"", json_string_value(f));
    if (!json_is_string(f) && !json_is_object(f))
        return srv_fail(e, 400, BAD, "format", "format must be \"json\" or a JSON schema object");
    return srv_chat_ok(al_grammar_from_response_format(f, &r->format), "format", e);
}

static bool parse_think(json_t *t, srv_request *r, srv_error *e) {
    if (!t || json_is_null(t)) return true;
    if (json_is_boolean(t)) r->think = json_is_true(t);
    else if (json_is_string(t)) r->think = 1; /* "low" / "medium" / "high" */
    else return srv_fail(e, 400, BAD, "think", "think must be a boolean or \"low\", \"medium\", \"high\"");
    return true;
}

static bool parse_keep_alive(json_t *k, srv_error *e) {
    if (!k || json_is_null(k) || json_is_string(k) || json_is_number(k)) return true;
    return srv_fail(e, 400, BAD, "keep_alive", "keep_alive must be a duration string or a number of seconds");
}

static bool parse_head(json_t *b, srv_request *r, srv_error *e) {
    ollama_defaults(r);
    bool ok = srv_get_str(b, "model", &r->model, e) && srv_get_bool(b, "stream", &r->stream, e) &&
              parse_options(json_object_get(b, "options"), r, e) && parse_format(json_object_get(b, "format"), r, e) &&
              parse_think(json_object_get(b, "think"), r, e) && parse_keep_alive(json_object_get(b, "keep_alive"), e);
    if (ok && (!r->model || !*r->model)) ok = srv_fail(e, 400, BAD, "model", "model is required");
    return ok;
}

static bool parse_chat(const char *body, size_t len, srv_request *r, srv_error *e) {
    json_t *b = srv_parse_body(body, len, e);
    if (!b) return false;
    json_t *msgs = json_object_get(b, "messages");
    bool ok = parse_head(b, r, e);
    if (ok && (!msgs || json_is_null(msgs))) r->messages = json_array();
    else ok = ok && srv_chat_ok(al_chat_messages_from_ollama(msgs, &r->messages), "messages", e);
    ok = ok && srv_chat_ok(al_chat_tools_from_openai(json_object_get(b, "tools"), &r->tools), "tools", e);
    /* not in Ollama's API: OpenAI's tool_choice, accepted as an extension */
    ok = ok && srv_chat_ok(al_tool_choice_from_openai(json_object_get(b, "tool_choice"), r->tools, &r->tool_choice), "tool_choice", e);
    json_decref(b);
    return ok;
}

static bool parse_generate(const char *body, size_t len, srv_request *r, srv_error *e) {
    json_t *b = srv_parse_body(body, len, e);
    if (!b) return false;
    bool ok = parse_head(b, r, e) && srv_get_str(b, "prompt", &r->prompt, e) && srv_get_str(b, "system", &r->system, e) &&
              srv_get_str(b, "suffix", &r->suffix, e) && srv_get_bool(b, "raw", &r->raw, e);
    if (ok && !r->prompt) r->prompt = strdup("");
    json_decref(b);
    return ok;
}

/* ---- responses ---- */

static json_t *head(srv_job *j) {
    char t[64];
    srv_time_rfc3339(t, sizeof t);
    return json_pack("{s:s,s:s}", "model", j->req.model ? j->req.model : srv_model_name(j->srv), "created_at", t);
}

static json_t *tool_call(const char *name, json_t *args /* stolen */, size_t index) {
    return json_pack("{s:{s:i,s:s,s:o}}", "function", "index", (int)index, "name", name, "arguments", args ? args : json_object());
}

static json_t *tool_calls(srv_job *j) {
    json_t *a = json_array();
    for (size_t i = 0; i < j->msg.n_calls; i++)
        json_array_append_new(a, tool_call(j->msg.calls[i].name, json_incref(j->msg.calls[i].arguments), i));
    return a;
}

static void add_stats(srv_job *j, json_t *o) {
    double total = al_time_sec() - j->t_begin;
    json_object_set_new(o, "done", json_true());
    json_object_set_new(o, "done_reason", json_string(j->finish == AL_FINISH_LENGTH ? "length" : "stop"));
    json_object_set_new(o, "total_duration", json_integer((json_int_t)(total * 1e9)));
    json_object_set_new(o, "load_duration", json_integer((json_int_t)(j->t_queue * 1e9)));
    json_object_set_new(o, "prompt_eval_count", json_integer(j->n_prompt_tokens));
    json_object_set_new(o, "prompt_eval_duration", json_integer((json_int_t)(j->t_prompt * 1e9)));
    json_object_set_new(o, "eval_count", json_integer(j->n_gen));
    json_object_set_new(o, "eval_duration", json_integer((json_int_t)(j->t_gen * 1e9)));
}

static json_t *chat_message(srv_job *j, const char *content, size_t n, const char *thinking, size_t tn, bool calls) {
    json_t *m = json_pack("{s:s,s:s%}", "role", "assistant", "content", content, n);
    if (thinking && tn) json_object_set_new(m, "thinking", json_stringn(thinking, tn));
    if (calls && j->msg.n_calls) json_object_set_new(m, "tool_calls", tool_calls(j));
    return m;
}

static void chat_full(srv_job *j, sbuf *out) {
    json_t *o = head(j);
    json_object_set_new(o, "message", chat_message(j, j->msg.content, j->msg.content_len, j->msg.reasoning,
                                                   j->msg.reasoning_len, true));
    add_stats(j, o);
    sbuf_add_json_steal(out, o);
}

static void line(srv_job *j, json_t *o) {
    sbuf_add_json_steal(&j->out, o);
    sbuf_adds(&j->out, "\n");
}

static void nop_open(srv_job *j) { (void)j; }

static void chat_delta(srv_job *j, srv_channel ch, const char *t, size_t n) {
    json_t *o = head(j);
    json_object_set_new(o, "message", ch == SRV_CH_REASONING ? chat_message(j, "", 0, t, n, false) : chat_message(j, t, n, NULL, 0, false));
    json_object_set_new(o, "done", json_false());
    line(j, o);
}

/* A call is sent whole, in a chunk of its own, once its arguments are complete. */
static void chat_tool(srv_job *j, const al_chat_event *ev) {
    if (ev->kind != AL_CHAT_EV_TOOL_END || !j->tool_name) return;
    json_t *args = json_loadb(ev->text, ev->len, 0, NULL);
    json_t *o = head(j);
    json_t *m = chat_message(j, "", 0, NULL, 0, false);
    json_object_set_new(m, "tool_calls", json_pack("[o]", tool_call(j->tool_name, args, (size_t)ev->index)));
    json_object_set_new(o, "message", m);
    json_object_set_new(o, "done", json_false());
    line(j, o);
}

static void stream_error(srv_job *j) { line(j, json_pack("{s:s}", "error", j->errmsg)); }

static void chat_close(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        stream_error(j);
        return;
    }
    json_t *o = head(j);
    json_object_set_new(o, "message", chat_message(j, "", 0, NULL, 0, false));
    add_stats(j, o);
    line(j, o);
}

static json_t *context_ids(srv_job *j) {
    json_t *a = json_array();
    for (size_t i = 0; i < j->n_prompt; i++) json_array_append_new(a, json_integer(j->prompt[i]));
    for (size_t i = 0; i < j->n_lp; i++) json_array_append_new(a, json_integer(j->lp[i].token));
    return a;
}

static void gen_full(srv_job *j, sbuf *out) {
    json_t *o = head(j);
    json_object_set_new(o, "response", json_stringn(j->msg.content, j->msg.content_len));
    if (j->msg.reasoning_len) json_object_set_new(o, "thinking", json_stringn(j->msg.reasoning, j->msg.reasoning_len));
    add_stats(j, o);
    json_object_set_new(o, "context", context_ids(j));
    sbuf_add_json_steal(out, o);
}

static void gen_delta(srv_job *j, srv_channel ch, const char *t, size_t n) {
    json_t *o = head(j);
    json_object_set_new(o, "response", ch == SRV_CH_REASONING ? json_string("") : json_stringn(t, n));
    if (ch == SRV_CH_REASONING) json_object_set_new(o, "thinking", json_stringn(t, n));
    json_object_set_new(o, "done", json_false());
    line(j, o);
}

static void gen_close(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        stream_error(j);
        return;
    }
    json_t *o = head(j);
    json_object_set_new(o, "response", json_string(""));
    add_stats(j, o);
    json_object_set_new(o, "context", context_ids(j));
    line(j, o);
}

void srv_error_ollama(const srv_error *e, sbuf *out) { sbuf_add_json_steal(out, json_pack("{s:s}", "error", e->msg)); }

const srv_api_ops srv_ops_ollama_chat = {
    .name = "/api/chat",
    .parse = parse_chat,
    .error_body = srv_error_ollama,
    .stream_type = "application/x-ndjson",
    .stream_open = nop_open,
    .stream_delta = chat_delta,
    .stream_tool = chat_tool,
    .stream_close = chat_close,
    .full = chat_full,
};

const srv_api_ops srv_ops_ollama_generate = {
    .name = "/api/generate",
    .parse = parse_generate,
    .error_body = srv_error_ollama,
    .stream_type = "application/x-ndjson",
    .stream_open = nop_open,
    .stream_delta = gen_delta,
    .stream_close = gen_close,
    .full = gen_full,
};
