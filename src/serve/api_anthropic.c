/* api_anthropic.c — the Anthropic Messages dialect: /v1/messages (and count_tokens) request
 * parsing (messages, tools and tool_choice through alloy/chat.h; thinking), the message
 * response, the SSE event sequence (message_start, content_block_start/delta/stop with text,
 * thinking and tool_use blocks, ping, message_delta, message_stop) and errors
 * ({"type": "error", "error": {type, message}}). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define BAD "invalid_request_error"

/* Client tools: those with an input_schema (or of type "custom"). Server tools (web_search,
 * bash, ...) carry a type and no input_schema; they are not offered to the model. */
static json_t *client_tools(json_t *tools) {
    if (!json_is_array(tools)) return json_incref(tools);
    json_t *res = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (json_is_object(t) && !json_object_get(t, "input_schema") && type && strcmp(type, "custom")) continue;
        json_array_append(res, t);
    }
    return res;
}

static bool parse_tools(json_t *b, srv_request *r, srv_error *e) {
    json_t *tools = client_tools(json_object_get(b, "tools"));
    bool ok = srv_chat_ok(al_chat_tools_from_anthropic(tools, &r->tools), "tools", e);
    json_decref(tools);
    json_t *tc = json_object_get(b, "tool_choice");
    ok = ok && srv_chat_ok(al_tool_choice_from_anthropic(tc, r->tools, &r->tool_choice), "tool_choice", e);
    if (ok && json_is_object(tc)) {
        bool dis = false;
        ok = srv_get_bool(tc, "disable_parallel_tool_use", &dis, e);
        r->parallel_tool_calls = !dis;
    }
    return ok;
}

static bool parse_messages(const char *body, size_t len, srv_request *r, srv_error *e, bool count_only) {
    json_t *b = srv_parse_body(body, len, e);
    if (!b) return false;
    r->count_only = count_only;
    r->max_tokens = 0;
    bool ok = srv_get_str(b, "model", &r->model, e) && srv_get_bool(b, "stream", &r->stream, e) &&
              srv_get_int(b, "max_tokens", &r->max_tokens, 1, 1 << 30, e) &&
              srv_get_float(b, "temperature", &r->sp.temp, 0, 1, e) && srv_get_float(b, "top_p", &r->sp.top_p, 0, 1, e) &&
              srv_get_int(b, "top_k", &r->sp.top_k, 0, 1 << 20, e) && srv_get_stop(b, "stop_sequences", r, e) &&
              parse_tools(b, r, e);
    if (ok && !count_only && !json_object_get(b, "max_tokens")) ok = srv_fail(e, 400, BAD, "max_tokens", "max_tokens: Field required");
    if (ok && !r->model) ok = srv_fail(e, 400, BAD, "model", "model: Field required");
    json_t *th = json_object_get(b, "thinking");
    if (ok && th && !json_is_null(th)) {
        json_t *tt = json_is_object(th) ? json_object_get(th, "type") : NULL;
        if (!json_is_string(tt)) ok = srv_fail(e, 400, BAD, "thinking", "thinking.type: Field required");
        else if (!strcmp(json_string_value(tt), "enabled")) {
            r->think = 1;
            ok = srv_get_int(th, "budget_tokens", &r->think_budget, 0, 1 << 30, e);
        } else if (!strcmp(json_string_value(tt), "disabled"))
            r->think = 0;
        else
            ok = srv_fail(e, 400, BAD, "thinking", "thinking.type must be \"enabled\" or \"disabled\"");
    }
    json_t *msgs = json_object_get(b, "messages");
    if (ok && !json_is_array(msgs)) ok = srv_fail(e, 400, BAD, "messages", "messages: Field required (an array)");
    if (ok && json_array_size(msgs) == 0) ok = srv_fail(e, 400, BAD, "messages", "messages: at least one message is required");
    if (ok) ok = srv_chat_ok(al_chat_messages_from_anthropic(json_object_get(b, "system"), msgs, &r->messages), "messages", e);
    json_decref(b);
    return ok;
}

static bool parse_create(const char *body, size_t len, srv_request *r, srv_error *e) {
    return parse_messages(body, len, r, e, false);
}
static bool parse_count(const char *body, size_t len, srv_request *r, srv_error *e) {
    return parse_messages(body, len, r, e, true);
}

/* ---- responses ---- */

static const char *stop_reason(srv_job *j) {
    if (j->msg.n_calls) return "tool_use";
    if (j->finish == AL_FINISH_LENGTH) return "max_tokens";
    if (j->stop_string) return "stop_sequence";
    return "end_turn";
}

static void full(srv_job *j, sbuf *out) {
    const al_chat_msg *m = &j->msg;
    json_t *content = json_array();
    if (j->req.think == 1 && m->reasoning_len)
        json_array_append_new(content, json_pack("{s:s,s:s%,s:s}", "type", "thinking", "thinking", m->reasoning,
                                                 m->reasoning_len, "signature", ""));
    if (m->content_len || !m->n_calls)
        json_array_append_new(content, json_pack("{s:s,s:s%}", "type", "text", "text", m->content, m->content_len));
    for (size_t i = 0; i < m->n_calls; i++)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id", m->calls[i].id, "name",
                                                 m->calls[i].name, "input", m->calls[i].arguments));
    /* Anthropic counts prompt tokens read from a cache apart from input_tokens */
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:{s:i,s:i,s:i}}", "id", j->id, "type", "message", "role", "assistant",
                          "model", j->req.model ? j->req.model : srv_model_name(j->srv), "content", content, "stop_reason",
                          stop_reason(j), "stop_sequence", j->stop_string ? json_string(j->stop_string) : json_null(),
                          "usage", "input_tokens", j->n_prompt_tokens - j->n_cached, "cache_read_input_tokens", j->n_cached,
                          "output_tokens", j->n_gen);
    sbuf_add_json_steal(out, o);
}

static void event(srv_job *j, const char *name, json_t *data) {
    sbuf_printf(&j->out, "event: %s\ndata: ", name);
    sbuf_add_json_steal(&j->out, data);
    sbuf_adds(&j->out, "\n\n");
}

static void block_stop(srv_job *j) {
    if (j->block < 0 || !j->started) return;
    if (j->block_kind == SRV_CH_REASONING)
        event(j, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", j->block,
                                                  "delta", "type", "signature_delta", "signature", ""));
    event(j, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", j->block));
    j->started = false;
}

static void open_stream(srv_job *j) {
    j->block = -1;
    event(j, "message_start",
          json_pack("{s:s,s:{s:s,s:s,s:s,s:[],s:s,s:n,s:n,s:{s:i,s:i}}}", "type", "message_start", "message", "id", j->id,
                    "type", "message", "role", "assistant", "content", "model", j->req.model ? j->req.model : srv_model_name(j->srv),
                    "stop_reason", "stop_sequence", "usage", "input_tokens", j->n_prompt_tokens, "output_tokens", 0));
    event(j, "ping", json_pack("{s:s}", "type", "ping"));
}

static void delta(srv_job *j, srv_channel ch, const char *t, size_t n) {
    if (ch == SRV_CH_REASONING && j->req.think != 1) return;
    if (!j->started || j->block_kind != (int)ch) {
        block_stop(j);
        j->block++;
        j->block_kind = ch;
        j->started = true;
        event(j, "content_block_start",
              ch == SRV_CH_REASONING
                  ? json_pack("{s:s,s:i,s:{s:s,s:s,s:s}}", "type", "content_block_start", "index", j->block,
                              "content_block", "type", "thinking", "thinking", "", "signature", "")
                  : json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", j->block, "content_block",
                              "type", "text", "text", ""));
    }
    event(j, "content_block_delta",
          json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", j->block, "delta", "type",
                    ch == SRV_CH_REASONING ? "thinking_delta" : "text_delta", ch == SRV_CH_REASONING ? "thinking" : "text", t, n));
}

/* tool_use blocks: start (id, name, empty input), input_json_delta pieces, stop. */
static void tool(srv_job *j, const al_chat_event *ev) {
    if (ev->kind == AL_CHAT_EV_TOOL_START) {
        block_stop(j);
        j->block++;
        j->block_kind = SRV_CH_TOOL;
        j->started = true;
        event(j, "content_block_start",
              json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index", j->block, "content_block",
                        "type", "tool_use", "id", ev->id, "name", ev->name, "input"));
    } else if (ev->kind == AL_CHAT_EV_TOOL_ARGS && ev->len && j->started) {
        event(j, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", j->block,
                                                  "delta", "type", "input_json_delta", "partial_json", ev->text, ev->len));
    } else if (ev->kind == AL_CHAT_EV_TOOL_END) {
        block_stop(j);
    }
}

static void close_stream(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        event(j, "error", json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", "api_error", "message", j->errmsg));
        return;
    }
    if (j->block < 0) delta(j, SRV_CH_CONTENT, "", 0); /* always one block */
    block_stop(j);
    event(j, "message_delta",
          json_pack("{s:s,s:{s:s,s:o},s:{s:i,s:i,s:i}}", "type", "message_delta", "delta", "stop_reason", stop_reason(j),
                    "stop_sequence", j->stop_string ? json_string(j->stop_string) : json_null(), "usage", "input_tokens",
                    j->n_prompt_tokens - j->n_cached, "cache_read_input_tokens", j->n_cached, "output_tokens", j->n_gen));
    event(j, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void srv_error_anthropic(const srv_error *e, sbuf *out) {
    sbuf_add_json_steal(out, json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", error_type(e->status),
                                       "message", e->msg));
}

const srv_api_ops srv_ops_anthropic = {
    .name = "/v1/messages",
    .parse = parse_create,
    .error_body = srv_error_anthropic,
    .stream_type = "text/event-stream",
    .stream_open = open_stream,
    .stream_delta = delta,
    .stream_tool = tool,
    .stream_close = close_stream,
    .full = full,
};

const srv_api_ops srv_ops_anthropic_count = {
    .name = "/v1/messages/count_tokens",
    .parse = parse_count,
    .error_body = srv_error_anthropic,
};
