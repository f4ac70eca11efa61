/* api_openai.c — the OpenAI dialect: /v1/chat/completions and /v1/completions request parsing
 * (messages, tools and tool_choice through alloy/chat.h, response_format as a grammar), JSON and
 * SSE response framing (chat.completion / chat.completion.chunk / text_completion), logprobs,
 * tool calls (streamed as tool_calls deltas) and errors ({"error": {message, type, param, code}}). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve_internal.h"

#define BAD "invalid_request_error"

/* ---- parsing ---- */

/* Fields common to both endpoints. */
static bool parse_common(json_t *b, srv_request *r, srv_error *e) {
    json_t *so;
    if (!srv_get_str(b, "model", &r->model, e) || !srv_get_bool(b, "stream", &r->stream, e)) return false;
    so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return srv_fail(e, 400, BAD, "stream_options", "'stream_options' must be an object");
        if (!srv_get_bool(so, "include_usage", &r->include_usage, e)) return false;
    }
    int n = 1;
    bool seed_set = false;
    if (!srv_get_int(b, "max_tokens", &r->max_tokens, 1, 1 << 30, e) ||
        !srv_get_int(b, "max_completion_tokens", &r->max_tokens, 1, 1 << 30, e) ||
        !srv_get_float(b, "temperature", &r->sp.temp, 0, 2, e) || !srv_get_float(b, "top_p", &r->sp.top_p, 0, 1, e) ||
        !srv_get_int(b, "top_k", &r->sp.top_k, 0, 1 << 20, e) || !srv_get_float(b, "min_p", &r->sp.min_p, 0, 1, e) ||
        !srv_get_float(b, "repeat_penalty", &r->sp.repeat_penalty, 0.01f, 10, e) ||
        !srv_get_float(b, "presence_penalty", &r->sp.presence_penalty, -2, 2, e) ||
        !srv_get_float(b, "frequency_penalty", &r->sp.frequency_penalty, -2, 2, e) ||
        !srv_get_u64(b, "seed", &r->sp.seed, &seed_set, e) || !srv_get_int(b, "n", &n, 1, 128, e) ||
        !srv_get_stop(b, "stop", r, e))
        return false;
    if (n != 1) return srv_fail(e, 400, BAD, "n", "only n = 1 is supported");
    return true;
}

static bool parse_response_format(json_t *b, srv_request *r, srv_error *e) {
    json_t *rf = json_object_get(b, "response_format");
    if (!rf || json_is_null(rf)) return true;
    json_t *type = json_is_object(rf) ? json_object_get(rf, "type") : NULL;
    if (!json_is_string(type))
        return srv_fail(e, 400, BAD, "response_format", "'response_format' must be an object with a string 'type'");
    const char *t = json_string_value(type);
    if (strcmp(t, "text") && strcmp(t, "json_object") && strcmp(t, "json_schema"))
        return srv_fail(e, 400, BAD, "response_format", "unsupported response_format type '%s'", t);
    if (!strcmp(t, "json_schema")) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *schema = json_is_object(js) ? json_object_get(js, "schema") : NULL;
        if (!json_is_object(js) || (schema && !json_is_object(schema) && !json_is_boolean(schema)))
            return srv_fail(e, 400, BAD, "response_format", "'response_format.json_schema' must be {name, schema}");
    }
    return srv_chat_ok(al_grammar_from_response_format(rf, &r->format), "response_format", e);
}

static bool parse_chat(const char *body, size_t len, srv_request *r, srv_error *e) {
    json_t *b = srv_parse_body(body, len, e);
    if (!b) return false;
    json_t *msgs = json_object_get(b, "messages");
    bool ok = parse_common(b, r, e);
    if (ok && !msgs) ok = srv_fail(e, 400, BAD, "messages", "'messages' is required");
    if (ok && json_is_array(msgs) && json_array_size(msgs) == 0) ok = srv_fail(e, 400, BAD, "messages", "'messages' must not be empty");
    ok = ok && srv_chat_ok(al_chat_messages_from_openai(msgs, &r->messages), "messages", e) &&
         srv_get_bool(b, "logprobs", &r->logprobs, e) && srv_get_int(b, "top_logprobs", &r->top_logprobs, 0, 20, e) &&
         parse_response_format(b, r, e) && srv_chat_ok(al_chat_tools_from_openai(json_object_get(b, "tools"), &r->tools), "tools", e) &&
         srv_chat_ok(al_tool_choice_from_openai(json_object_get(b, "tool_choice"), r->tools, &r->tool_choice), "tool_choice", e) &&
         srv_get_bool(b, "parallel_tool_calls", &r->parallel_tool_calls, e);
    if (ok && r->top_logprobs && !r->logprobs) ok = srv_fail(e, 400, BAD, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
    if (ok) {
        json_t *ctk = json_object_get(b, "chat_template_kwargs");
        json_t *et = json_is_object(ctk) ? json_object_get(ctk, "enable_thinking") : NULL;
        if (json_is_boolean(et)) r->think = json_is_true(et);
    }
    json_decref(b);
    return ok;
}

static bool parse_completion(const char *body, size_t len, srv_request *r, srv_error *e) {
    json_t *b = srv_parse_body(body, len, e);
    if (!b) return false;
    r->max_tokens = 16; /* the API's default */
    int lp = 0;
    bool ok = parse_common(b, r, e) && srv_get_bool(b, "echo", &r->echo, e) && srv_get_str(b, "suffix", &r->suffix, e) &&
              srv_get_int(b, "logprobs", &lp, 0, 20, e);
    /* completions: "logprobs": N asks for the N most likely alternatives of each token */
    r->logprobs = json_is_integer(json_object_get(b, "logprobs"));
    r->top_logprobs = lp;
    json_t *p = json_object_get(b, "prompt");
    if (ok) {
        if (json_is_array(p) && json_array_size(p) == 1 && (json_is_string(json_array_get(p, 0)) || json_is_array(json_array_get(p, 0))))
            p = json_array_get(p, 0);
        if (json_is_string(p)) {
            r->prompt = strndup(json_string_value(p), json_string_length(p));
        } else if (json_is_array(p) && json_array_size(p) > 0) {
            r->n_prompt_ids = json_array_size(p);
            r->prompt_ids = malloc(sizeof(int32_t) * r->n_prompt_ids);
            for (size_t i = 0; ok && i < r->n_prompt_ids; i++) {
                json_t *t = json_array_get(p, i);
                if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > INT32_MAX)
                    ok = srv_fail(e, 400, BAD, "prompt", "'prompt' must be a string, an array of token ids, or one of those in an array");
                else
                    r->prompt_ids[i] = (int32_t)json_integer_value(t);
            }
        } else {
            ok = srv_fail(e, 400, BAD, "prompt", "'prompt' must be a string, an array of token ids, or one of those in an array (batches are not supported)");
        }
    }
    json_decref(b);
    return ok;
}

/* ---- responses ---- */

static const char *model_of(srv_job *j) { return j->req.model && *j->req.model ? j->req.model : srv_model_name(j->srv); }

static const char *finish_reason(srv_job *j) {
    if (j->msg.n_calls) return "tool_calls";
    return j->finish == AL_FINISH_LENGTH ? "length" : "stop";
}

static json_t *token_json(srv_job *j, int32_t id, float lp, bool with_top, const srv_logprob *l) {
    const char *piece;
    size_t n = al_tokenizer_token_to_piece(srv_tokenizer(j->srv), id, false, &piece);
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)piece[i]));
    json_t *o = json_pack("{s:s%,s:f,s:o}", "token", piece, n, "logprob", isfinite(lp) ? lp : -9999.0, "bytes", bytes);
    if (!o) o = json_pack("{s:s,s:f,s:o}", "token", "", "logprob", isfinite(lp) ? lp : -9999.0, "bytes", json_array());
    if (with_top) {
        json_t *top = json_array();
        for (int k = 0; k < l->n_top && k < j->req.top_logprobs; k++)
            json_array_append_new(top, token_json(j, l->top_ids[k], l->top_logprobs[k], false, NULL));
        json_object_set_new(o, "top_logprobs", top);
    }
    return o;
}

static json_t *chat_logprobs(srv_job *j, size_t from, size_t to) {
    if (!j->req.logprobs) return json_null();
    json_t *c = json_array();
    for (size_t i = from; i < to; i++) json_array_append_new(c, token_json(j, j->lp[i].token, j->lp[i].logprob, true, &j->lp[i]));
    return json_pack("{s:o,s:n}", "content", c, "refusal");
}

static json_t *usage_json(srv_job *j) {
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", j->n_prompt_tokens, "completion_tokens", j->n_gen,
                     "total_tokens", j->n_prompt_tokens + j->n_gen, "prompt_tokens_details", "cached_tokens", j->n_cached);
}

static json_t *tool_calls_json(srv_job *j) {
    json_t *a = json_array();
    for (size_t i = 0; i < j->msg.n_calls; i++) {
        const al_tool_call *c = &j->msg.calls[i];
        char *args = srv_call_args(c);
        json_array_append_new(a, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", c->id, "type", "function", "function", "name",
                                           c->name, "arguments", args ? args : "{}"));
        free(args);
    }
    return a;
}

static void chat_full(srv_job *j, sbuf *out) {
    const al_chat_msg *m = &j->msg;
    json_t *msg = json_pack("{s:s,s:n}", "role", "assistant", "refusal");
    json_object_set_new(msg, "content", m->content_len || !m->n_calls ? json_stringn(m->content, m->content_len) : json_null());
    if (m->reasoning_len) json_object_set_new(msg, "reasoning_content", json_stringn(m->reasoning, m->reasoning_len));
    if (m->n_calls) json_object_set_new(msg, "tool_calls", tool_calls_json(j));
    json_t *choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", msg, "logprobs", chat_logprobs(j, 0, j->n_lp),
                               "finish_reason", finish_reason(j));
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", j->id, "object", "chat.completion", "created",
                          (json_int_t)j->created, "model", model_of(j), "system_fingerprint", "alloy-" AL_VERSION_STRING,
                          "choices", choice, "usage", usage_json(j));
    sbuf_add_json_steal(out, o);
}

static void sse(srv_job *j, json_t *o) {
    sbuf_adds(&j->out, "data: ");
    sbuf_add_json_steal(&j->out, o);
    sbuf_adds(&j->out, "\n\n");
}

static json_t *chunk(srv_job *j, json_t *choices) {
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:o}", "id", j->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)j->created, "model", model_of(j), "system_fingerprint", "alloy-" AL_VERSION_STRING,
                          "choices", choices);
    if (j->req.include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

static void chat_delta_chunk(srv_job *j, json_t *delta, const char *finish) {
    size_t to = j->n_lp;
    json_t *choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta, "logprobs", chat_logprobs(j, j->lp_sent, to),
                               "finish_reason", finish ? json_string(finish) : json_null());
    j->lp_sent = to;
    sse(j, chunk(j, json_pack("[o]", choice)));
}

static void chat_open(srv_job *j) { chat_delta_chunk(j, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL); }

static void chat_delta(srv_job *j, srv_channel ch, const char *t, size_t n) {
    chat_delta_chunk(j, json_pack("{s:s%}", ch == SRV_CH_REASONING ? "reasoning_content" : "content", t, n), NULL);
}

/* A call opens with its index, id and name; its arguments follow as text pieces. */
static void chat_tool(srv_job *j, const al_chat_event *ev) {
    json_t *tc;
    if (ev->kind == AL_CHAT_EV_TOOL_START)
        tc = json_pack("{s:i,s:s,s:s,s:{s:s,s:s}}", "index", ev->index, "id", ev->id, "type", "function", "function", "name",
                       ev->name, "arguments", "");
    else if (ev->kind == AL_CHAT_EV_TOOL_ARGS && ev->len)
        tc = json_pack("{s:i,s:{s:s%}}", "index", ev->index, "function", "arguments", ev->text, ev->len);
    else
        return;
    chat_delta_chunk(j, json_pack("{s:[o]}", "tool_calls", tc), NULL);
}

static void chat_close(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        srv_error e;
        srv_fail(&e, 500, "server_error", NULL, "%s", j->errmsg);
        sbuf_adds(&j->out, "data: ");
        srv_error_openai(&e, &j->out);
        sbuf_adds(&j->out, "\n\n");
    } else {
        chat_delta_chunk(j, json_object(), finish_reason(j));
        if (j->req.include_usage) {
            json_t *o = chunk(j, json_array());
            json_object_set_new(o, "usage", usage_json(j));
            sse(j, o);
        }
    }
    sbuf_adds(&j->out, "data: [DONE]\n\n");
}

/* completions */

static json_t *completion_logprobs(srv_job *j, size_t from, size_t to, size_t offset0) {
    if (!j->req.logprobs) return json_null();
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = offset0;
    const al_tokenizer *tok = srv_tokenizer(j->srv);
    for (size_t i = from; i < to; i++) {
        const char *piece;
        size_t n = al_tokenizer_token_to_piece(tok, j->lp[i].token, false, &piece);
        json_t *s = json_stringn(piece, n);
        json_array_append_new(toks, s ? s : json_string(""));
        json_array_append_new(lps, json_real(isfinite(j->lp[i].logprob) ? j->lp[i].logprob : -9999.0));
        json_t *top = json_object();
        for (int k = 0; k < j->lp[i].n_top && k < j->req.top_logprobs; k++) {
            const char *tp;
            size_t tn = al_tokenizer_token_to_piece(tok, j->lp[i].top_ids[k], false, &tp);
            char *key = strndup(tp, tn);
            if (key) json_object_set_new(top, key, json_real(j->lp[i].top_logprobs[k]));
            free(key);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += n;
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops, "text_offset", offs);
}

static void completion_full(srv_job *j, sbuf *out) {
    sbuf text = {0};
    if (j->req.echo && j->req.prompt) sbuf_adds(&text, j->req.prompt);
    sbuf_add(&text, j->msg.content, j->msg.content_len);
    json_t *choice = json_pack("{s:s%,s:i,s:o,s:s}", "text", text.p ? text.p : "", text.len, "index", 0, "logprobs",
                               completion_logprobs(j, 0, j->n_lp, 0), "finish_reason",
                               j->finish == AL_FINISH_LENGTH ? "length" : "stop");
    sbuf_free(&text);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", j->id, "object", "text_completion", "created",
                          (json_int_t)j->created, "model", model_of(j), "system_fingerprint", "alloy-" AL_VERSION_STRING,
                          "choices", choice, "usage", usage_json(j));
    sbuf_add_json_steal(out, o);
}

static void completion_chunk(srv_job *j, const char *t, size_t n, const char *finish) {
    size_t to = j->n_lp;
    json_t *choice = json_pack("{s:s%,s:i,s:o,s:o}", "text", t, n, "index", 0, "logprobs",
                               completion_logprobs(j, j->lp_sent, to, 0), "finish_reason",
                               finish ? json_string(finish) : json_null());
    j->lp_sent = to;
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", j->id, "object", "text_completion", "created",
                          (json_int_t)j->created, "model", model_of(j), "system_fingerprint", "alloy-" AL_VERSION_STRING,
                          "choices", choice);
    if (j->req.include_usage) json_object_set_new(o, "usage", json_null());
    sse(j, o);
}

static void completion_open(srv_job *j) {
    if (j->req.echo && j->req.prompt) completion_chunk(j, j->req.prompt, strlen(j->req.prompt), NULL);
}

static void completion_delta(srv_job *j, srv_channel ch, const char *t, size_t n) { completion_chunk(j, t, n, NULL); }

static void completion_close(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        srv_error e;
        srv_fail(&e, 500, "server_error", NULL, "%s", j->errmsg);
        sbuf_adds(&j->out, "data: ");
        srv_error_openai(&e, &j->out);
        sbuf_adds(&j->out, "\n\n");
    } else {
        completion_chunk(j, "", 0, j->finish == AL_FINISH_LENGTH ? "length" : "stop");
        if (j->req.include_usage) {
            json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", j->id, "object", "text_completion", "created",
                                  (json_int_t)j->created, "model", model_of(j), "choices", "usage", usage_json(j));
            sse(j, o);
        }
    }
    sbuf_adds(&j->out, "data: [DONE]\n\n");
}

void srv_error_openai(const srv_error *e, sbuf *out) {
    const char *code = e->status == 404 ? "model_not_found" : e->status == 401 ? "invalid_api_key" : NULL;
    json_t *o = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", e->msg, "type", e->type ? e->type : BAD, "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code", code ? json_string(code) : json_null());
    sbuf_add_json_steal(out, o);
}

const srv_api_ops srv_ops_openai_chat = {
    .name = "/v1/chat/completions",
    .parse = parse_chat,
    .error_body = srv_error_openai,
    .stream_type = "text/event-stream",
    .stream_open = chat_open,
    .stream_delta = chat_delta,
    .stream_tool = chat_tool,
    .stream_close = chat_close,
    .full = chat_full,
};

const srv_api_ops srv_ops_openai_completion = {
    .name = "/v1/completions",
    .parse = parse_completion,
    .error_body = srv_error_openai,
    .stream_type = "text/event-stream",
    .stream_open = completion_open,
    .stream_delta = completion_delta,
    .stream_close = completion_close,
    .full = completion_full,
};
