/* api_anthropic.c — the Anthropic Messages dialect: /v1/messages (and count_tokens) request
 * parsing (text, tool_use / tool_result, thinking blocks, system, tool_choice), the message
 * response, the SSE event sequence (message_start, content_block_start/delta/stop, ping,
 * message_delta, message_stop) and errors ({"type": "error", "error": {type, message}}). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define BAD "invalid_request_error"

/* Text of a tool_result content (string or text blocks). */
static bool result_text(json_t *c, char **out, srv_error *e) { return srv_content_text(c, "tool_result.content", out, e); }

static bool convert_message(json_t *m, size_t idx, json_t *res, srv_error *e) {
    json_t *role = json_is_object(m) ? json_object_get(m, "role") : NULL;
    if (!json_is_string(role) || (strcmp(json_string_value(role), "user") && strcmp(json_string_value(role), "assistant")))
        return srv_fail(e, 400, BAD, "messages", "messages.%zu.role must be \"user\" or \"assistant\"", idx);
    const char *r = json_string_value(role);
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        json_array_append_new(res, json_pack("{s:s,s:O}", "role", r, "content", content));
        return true;
    }
    if (!json_is_array(content))
        return srv_fail(e, 400, BAD, "messages", "messages.%zu.content must be a string or an array of blocks", idx);
    sbuf text = {0}, thinking = {0};
    sbuf_adds(&text, "");
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    bool ok = true;
    json_array_foreach(content, i, b) {
        json_t *type = json_is_object(b) ? json_object_get(b, "type") : NULL;
        if (!json_is_string(type)) {
            ok = srv_fail(e, 400, BAD, "messages", "messages.%zu.content.%zu: blocks need a string 'type'", idx, i);
            break;
        }
        const char *t = json_string_value(type);
        if (!strcmp(t, "text")) {
            json_t *tx = json_object_get(b, "text");
            if (!json_is_string(tx)) {
                ok = srv_fail(e, 400, BAD, "messages", "messages.%zu.content.%zu.text must be a string", idx, i);
                break;
            }
            sbuf_add(&text, json_string_value(tx), json_string_length(tx));
        } else if (!strcmp(t, "thinking")) {
            json_t *tx = json_object_get(b, "thinking");
            if (json_is_string(tx)) sbuf_add(&thinking, json_string_value(tx), json_string_length(tx));
        } else if (!strcmp(t, "tool_use")) {
            json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name"), *input = json_object_get(b, "input");
            if (!json_is_string(id) || !json_is_string(name) || (input && !json_is_object(input))) {
                ok = srv_fail(e, 400, BAD, "messages", "messages.%zu.content.%zu: tool_use needs id, name and an object input", idx, i);
                break;
            }
            json_array_append_new(calls, json_pack("{s:s,s:O,s:{s:O,s:o}}", "type", "function", "id", id, "function", "name",
                                                   name, "arguments", input ? json_incref(input) : json_object()));
        } else if (!strcmp(t, "tool_result")) {
            json_t *id = json_object_get(b, "tool_use_id");
            char *rt = NULL;
            if (!json_is_string(id)) {
                ok = srv_fail(e, 400, BAD, "messages", "messages.%zu.content.%zu: tool_result needs tool_use_id", idx, i);
                break;
            }
            if (!result_text(json_object_get(b, "content"), &rt, e)) {
                ok = false;
                break;
            }
            /* text before the results stays a user turn of its own */
            if (text.len) {
                json_array_append_new(res, json_pack("{s:s,s:s}", "role", r, "content", text.p));
                text.len = 0;
                text.p[0] = 0;
            }
            json_array_append_new(res, json_pack("{s:s,s:O,s:s}", "role", "tool", "tool_call_id", id, "content", rt));
            free(rt);
        }
        /* image, document, redacted_thinking...: not rendered */
    }
    if (ok && (text.len || json_array_size(calls) || thinking.len || json_array_size(content) == 0)) {
        json_t *o = json_pack("{s:s,s:s}", "role", r, "content", text.p ? text.p : "");
        if (json_array_size(calls)) json_object_set(o, "tool_calls", calls);
        if (thinking.len) json_object_set_new(o, "reasoning_content", json_string(thinking.p));
        json_array_append_new(res, o);
    }
    json_decref(calls);
    sbuf_free(&text);
    sbuf_free(&thinking);
    return ok;
}

static bool convert_tools(json_t *tools, srv_request *r, srv_error *e) {
    if (!tools || json_is_null(tools)) return true;
    if (!json_is_array(tools)) return srv_fail(e, 400, BAD, "tools", "tools must be an array");
    json_t *res = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *name = json_is_object(t) ? json_object_get(t, "name") : NULL;
        json_t *schema = json_is_object(t) ? json_object_get(t, "input_schema") : NULL;
        if (!json_is_string(name)) {
            json_decref(res);
            return srv_fail(e, 400, BAD, "tools", "tools.%zu.name: Field required", i);
        }
        if (schema && !json_is_object(schema)) {
            json_decref(res);
            return srv_fail(e, 400, BAD, "tools", "tools.%zu.input_schema must be an object", i);
        }
        /* server tools (web_search, ...) carry a type and no input_schema; they are not offered */
        if (!schema) continue;
        json_t *f = json_pack("{s:O,s:O}", "name", name, "parameters", schema);
        json_t *d = json_object_get(t, "description");
        if (json_is_string(d)) json_object_set(f, "description", d);
        json_array_append_new(res, json_pack("{s:s,s:o}", "type", "function", "function", f));
    }
    r->tools = res;
    return true;
}

static bool parse_tool_choice(json_t *tc, srv_request *r, srv_error *e) {
    if (!tc || json_is_null(tc)) return true;
    json_t *type = json_is_object(tc) ? json_object_get(tc, "type") : NULL;
    if (!json_is_string(type)) return srv_fail(e, 400, BAD, "tool_choice", "tool_choice must be an object with a 'type'");
    const char *t = json_string_value(type);
    if (!strcmp(t, "auto")) r->tool_choice = SRV_TOOLS_AUTO;
    else if (!strcmp(t, "any")) r->tool_choice = SRV_TOOLS_REQUIRED;
    else if (!strcmp(t, "none")) r->tool_choice = SRV_TOOLS_NONE;
    else if (!strcmp(t, "tool")) {
        json_t *name = json_object_get(tc, "name");
        if (!json_is_string(name)) return srv_fail(e, 400, BAD, "tool_choice", "tool_choice.name: Field required");
        r->tool_choice = SRV_TOOLS_NAMED;
        r->tool_name = strdup(json_string_value(name));
    } else
        return srv_fail(e, 400, BAD, "tool_choice", "tool_choice.type must be auto, any, tool or none");
    bool dis = false;
    if (!srv_get_bool(tc, "disable_parallel_tool_use", &dis, e)) return false;
    r->parallel_tool_calls = !dis;
    return true;
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
              convert_tools(json_object_get(b, "tools"), r, e) && parse_tool_choice(json_object_get(b, "tool_choice"), r, e);
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
    if (ok) {
        r->messages = json_array();
        json_t *sys = json_object_get(b, "system");
        if (sys && !json_is_null(sys)) {
            char *s = NULL;
            ok = srv_content_text(sys, "system", &s, e);
            if (ok) json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "system", "content", s));
            free(s);
        }
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) if (ok) ok = convert_message(m, i, r->messages, e);
        if (ok && json_array_size(msgs) == 0) ok = srv_fail(e, 400, BAD, "messages", "messages: at least one message is required");
    }
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
    if (j->n_calls) return "tool_use";
    if (j->finish == AL_FINISH_LENGTH) return "max_tokens";
    if (j->stop_string) return "stop_sequence";
    return "end_turn";
}

static json_t *tool_input(const char *args) {
    json_t *v = json_loads(args, 0, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_object();
    }
    return v;
}

static void full(srv_job *j, sbuf *out) {
    json_t *content = json_array();
    bool thinking = j->req.think == 1 && j->reasoning.len;
    if (thinking)
        json_array_append_new(content, json_pack("{s:s,s:s%,s:s}", "type", "thinking", "thinking", j->reasoning.p,
                                                 j->reasoning.len, "signature", ""));
    if (j->content.len || !j->n_calls)
        json_array_append_new(content, json_pack("{s:s,s:s%}", "type", "text", "text", j->content.p ? j->content.p : "", j->content.len));
    for (int i = 0; i < j->n_calls; i++)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", j->calls[i].id, "name",
                                                 j->calls[i].name, "input", tool_input(j->calls[i].args)));
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o,s:{s:i,s:i}}", "id", j->id, "type", "message", "role", "assistant",
                          "model", j->req.model ? j->req.model : srv_model_name(j->srv), "content", content, "stop_reason",
                          stop_reason(j), "stop_sequence", j->stop_string ? json_string(j->stop_string) : json_null(),
                          "usage", "input_tokens", j->n_prompt_tokens, "output_tokens", j->n_gen);
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

static void close_stream(srv_job *j) {
    if (j->finish == AL_FINISH_ERROR) {
        event(j, "error", json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", "api_error", "message", j->errmsg));
        return;
    }
    if (j->buffer_content && j->content.len) delta(j, SRV_CH_CONTENT, j->content.p, j->content.len);
    if (!j->started && j->block < 0 && !j->n_calls) delta(j, SRV_CH_CONTENT, "", 0); /* always one text block */
    block_stop(j);
    for (int i = 0; i < j->n_calls; i++) {
        j->block++;
        event(j, "content_block_start",
              json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index", j->block, "content_block",
                        "type", "tool_use", "id", j->calls[i].id, "name", j->calls[i].name, "input"));
        event(j, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", j->block,
                                                  "delta", "type", "input_json_delta", "partial_json", j->calls[i].args));
        event(j, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", j->block));
    }
    event(j, "message_delta",
          json_pack("{s:s,s:{s:s,s:o},s:{s:i,s:i}}", "type", "message_delta", "delta", "stop_reason", stop_reason(j),
                    "stop_sequence", j->stop_string ? json_string(j->stop_string) : json_null(), "usage", "input_tokens",
                    j->n_prompt_tokens, "output_tokens", j->n_gen));
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
    .stream_close = close_stream,
    .full = full,
};

const srv_api_ops srv_ops_anthropic_count = {
    .name = "/v1/messages/count_tokens",
    .parse = parse_count,
    .error_body = srv_error_anthropic,
};
