/* chat_messages.c — request messages of the OpenAI, Anthropic and Ollama APIs into the Hugging Face
 * message list chat templates are written for, tools into the OpenAI function list, tool_choice. */
#include <stdio.h>

#include "serve/chat_internal.h"

#define BAD(...) al_err(AL_ERR_INVALID, __VA_ARGS__)

/* Joins the text of a content value: a string, null, or an array of parts. Parts of type "text"
 * (OpenAI / Anthropic) contribute their "text"; images and other media are dropped. */
static al_status content_text(const json_t *c, const char *where, chat_buf *out) {
    if (!c || json_is_null(c)) return al_ok();
    if (json_is_string(c)) {
        if (!chat_buf_put(out, json_string_value(c), json_string_length(c))) return al_err(AL_ERR_NOMEM, "out of memory");
        return al_ok();
    }
    if (!json_is_array(c)) return BAD("%s: content must be a string or an array of parts", where);
    size_t i;
    json_t *part;
    bool first = out->n == 0;
    json_array_foreach(c, i, part) {
        const json_t *text = NULL;
        if (json_is_string(part)) text = part;
        else if (json_is_object(part)) {
            const char *type = json_string_value(json_object_get(part, "type"));
            if (!type) return BAD("%s: content[%zu] has no type", where, i);
            if (strcmp(type, "text") && strcmp(type, "input_text")) continue; /* image_url, image, ... */
            text = json_object_get(part, "text");
            if (!json_is_string(text)) return BAD("%s: content[%zu].text must be a string", where, i);
        } else {
            return BAD("%s: content[%zu] must be an object", where, i);
        }
        if (!first && !chat_buf_putc(out, '\n')) return al_err(AL_ERR_NOMEM, "out of memory");
        if (!chat_buf_put(out, json_string_value(text), json_string_length(text))) return al_err(AL_ERR_NOMEM, "out of memory");
        first = false;
    }
    return al_ok();
}

static al_status set_content(json_t *msg, const json_t *c, const char *where) {
    chat_buf b = {0};
    al_status st = content_text(c, where, &b);
    if (!al_failed(&st) && json_object_set_new(msg, "content", json_stringn(b.p ? b.p : "", b.n)))
        st = BAD("%s: content is not valid UTF-8", where);
    chat_buf_free(&b);
    return st;
}

/* Arguments given as a JSON text (OpenAI) or an object (Ollama, Anthropic input) -> object. */
static al_status args_object(const json_t *a, const char *where, json_t **out) {
    *out = NULL;
    if (!a || json_is_null(a)) { *out = json_object(); return al_ok(); }
    if (json_is_object(a)) { *out = json_deep_copy(a); return al_ok(); }
    if (json_is_string(a)) {
        const char *t = json_string_value(a);
        size_t n = json_string_length(a);
        size_t k = 0;
        while (k < n && chat_is_ws((unsigned char)t[k])) k++;
        if (k == n) { *out = json_object(); return al_ok(); }
        json_error_t e;
        json_t *v = json_loadb(t, n, 0, &e);
        if (!json_is_object(v)) {
            json_decref(v);
            return BAD("%s: arguments are not a JSON object", where);
        }
        *out = v;
        return al_ok();
    }
    return BAD("%s: arguments must be a JSON object or a JSON text", where);
}

static json_t *hf_call(const char *id, const char *name, json_t *args /* stolen */) {
    json_t *c = json_object();
    if (id) json_object_set_new(c, "id", json_string(id));
    json_object_set_new(c, "type", json_string("function"));
    json_t *f = json_object();
    json_object_set_new(f, "name", json_string(name));
    json_object_set_new(f, "arguments", args);
    json_object_set_new(c, "function", f);
    return c;
}

/* The name of the call `id` among the assistant messages already converted. */
static const char *call_name(const json_t *msgs, const char *id) {
    if (!id) return NULL;
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        json_t *calls = json_object_get(json_array_get(msgs, i), "tool_calls");
        size_t j;
        json_t *c;
        json_array_foreach(calls, j, c) {
            const char *cid = json_string_value(json_object_get(c, "id"));
            if (cid && !strcmp(cid, id)) return json_string_value(json_object_get(json_object_get(c, "function"), "name"));
        }
    }
    return NULL;
}

/* OpenAI / Ollama tool_calls arrays. */
static al_status convert_calls(const json_t *calls, const char *where, json_t *msg) {
    if (!calls || json_is_null(calls)) return al_ok();
    if (!json_is_array(calls)) return BAD("%s: tool_calls must be an array", where);
    json_t *out = json_array();
    json_object_set_new(msg, "tool_calls", out);
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        char w[96];
        snprintf(w, sizeof w, "%s.tool_calls[%zu]", where, i);
        const json_t *f = json_object_get(c, "function");
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!json_is_object(f) || !name) return BAD("%s: function.name is missing", w);
        json_t *args;
        AL_TRY(args_object(json_object_get(f, "arguments"), w, &args));
        json_array_append_new(out, hf_call(json_string_value(json_object_get(c, "id")), name, args));
    }
    return al_ok();
}

static al_status role_of(const json_t *m, const char *where, const char **role) {
    if (!json_is_object(m)) return BAD("%s must be an object", where);
    *role = json_string_value(json_object_get(m, "role"));
    if (!*role) return BAD("%s: role is missing", where);
    return al_ok();
}

static al_status from_openai_like(const json_t *messages, bool ollama, json_t **out) {
    *out = NULL;
    if (!json_is_array(messages)) return BAD("messages must be an array");
    json_t *res = json_array();
    if (!res) return al_err(AL_ERR_NOMEM, "out of memory");
    al_status st = al_ok();
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        char where[48];
        snprintf(where, sizeof where, "messages[%zu]", i);
        const char *role;
        if ((st = role_of(m, where, &role)).code != AL_OK) break;
        json_t *o = json_object();
        json_array_append_new(res, o);
        if (!strcmp(role, "system") || !strcmp(role, "developer")) role = "system";
        else if (!strcmp(role, "function")) role = "tool";
        else if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")) {
            st = BAD("%s: unknown role \"%s\"", where, role);
            break;
        }
        json_object_set_new(o, "role", json_string(role));
        if ((st = set_content(o, json_object_get(m, "content"), where)).code != AL_OK) break;
        const json_t *name = json_object_get(m, "name");
        if (json_is_string(name) && strcmp(role, "tool")) json_object_set(o, "name", (json_t *)name);
        if (!strcmp(role, "assistant")) {
            const json_t *r = json_object_get(m, ollama ? "thinking" : "reasoning_content");
            if (json_is_string(r) && json_string_length(r)) json_object_set(o, "reasoning_content", (json_t *)r);
            if ((st = convert_calls(json_object_get(m, "tool_calls"), where, o)).code != AL_OK) break;
        } else if (!strcmp(role, "tool")) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            const char *tname = json_string_value(json_object_get(m, ollama ? "tool_name" : "name"));
            if (!tname) tname = json_string_value(name);
            if (!tname) tname = call_name(res, id);
            if (id) json_object_set_new(o, "tool_call_id", json_string(id));
            if (tname) json_object_set_new(o, "name", json_string(tname));
        }
    }
    if (al_failed(&st)) { json_decref(res); return st; }
    *out = res;
    return al_ok();
}

al_status al_chat_messages_from_openai(const json_t *messages, json_t **out) {
    if (!out) return BAD("al_chat_messages_from_openai: out is NULL");
    return from_openai_like(messages, false, out);
}

al_status al_chat_messages_from_ollama(const json_t *messages, json_t **out) {
    if (!out) return BAD("al_chat_messages_from_ollama: out is NULL");
    return from_openai_like(messages, true, out);
}

/* One Anthropic message: its blocks become at most one message of its role plus, for tool_result
 * blocks, one "tool" message each (placed first, as they answer the previous assistant turn). */
static al_status anthropic_message(json_t *res, const json_t *m, const char *where) {
    const char *role;
    AL_TRY(role_of(m, where, &role));
    if (strcmp(role, "user") && strcmp(role, "assistant")) return BAD("%s: role must be user or assistant", where);
    bool assistant = !strcmp(role, "assistant");
    const json_t *content = json_object_get(m, "content");
    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string(role));
    if (json_is_string(content) || !content || json_is_null(content)) {
        al_status st = set_content(msg, content, where);
        if (al_failed(&st)) { json_decref(msg); return st; }
        json_array_append_new(res, msg);
        return al_ok();
    }
    if (!json_is_array(content)) { json_decref(msg); return BAD("%s: content must be a string or an array of blocks", where); }
    chat_buf text = {0}, think = {0};
    json_t *calls = NULL;
    al_status st = al_ok();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        char w[96];
        snprintf(w, sizeof w, "%s.content[%zu]", where, i);
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type) { st = BAD("%s: block without type", w); break; }
        if (!strcmp(type, "text")) {
            const json_t *t = json_object_get(b, "text");
            if (!json_is_string(t)) { st = BAD("%s: text must be a string", w); break; }
            if (text.n) chat_buf_putc(&text, '\n');
            chat_buf_put(&text, json_string_value(t), json_string_length(t));
        } else if (!strcmp(type, "thinking")) {
            const json_t *t = json_object_get(b, "thinking");
            if (!json_is_string(t)) { st = BAD("%s: thinking must be a string", w); break; }
            if (think.n) chat_buf_putc(&think, '\n');
            chat_buf_put(&think, json_string_value(t), json_string_length(t));
        } else if (!strcmp(type, "tool_use")) {
            if (!assistant) { st = BAD("%s: tool_use in a user message", w); break; }
            const char *name = json_string_value(json_object_get(b, "name"));
            if (!name) { st = BAD("%s: tool_use.name is missing", w); break; }
            json_t *args;
            if ((st = args_object(json_object_get(b, "input"), w, &args)).code != AL_OK) break;
            if (!calls) calls = json_array();
            json_array_append_new(calls, hf_call(json_string_value(json_object_get(b, "id")), name, args));
        } else if (!strcmp(type, "tool_result")) {
            if (assistant) { st = BAD("%s: tool_result in an assistant message", w); break; }
            const char *id = json_string_value(json_object_get(b, "tool_use_id"));
            json_t *tm = json_object();
            json_object_set_new(tm, "role", json_string("tool"));
            st = set_content(tm, json_object_get(b, "content"), w);
            if (al_failed(&st)) { json_decref(tm); break; }
            if (id) json_object_set_new(tm, "tool_call_id", json_string(id));
            const char *tname = call_name(res, id);
            if (tname) json_object_set_new(tm, "name", json_string(tname));
            json_array_append_new(res, tm);
        }
        /* image, document, redacted_thinking, ...: not given to the model */
    }
    if (!al_failed(&st) && (text.oom || think.oom)) st = al_err(AL_ERR_NOMEM, "out of memory");
    if (!al_failed(&st) && json_object_set_new(msg, "content", json_stringn(text.p ? text.p : "", text.n)))
        st = BAD("%s: text is not valid UTF-8", where);
    if (!al_failed(&st) && think.n) json_object_set_new(msg, "reasoning_content", json_stringn(think.p, think.n));
    if (calls) json_object_set_new(msg, "tool_calls", calls);
    /* A user message made only of tool results adds no empty user turn. */
    bool only_results = !assistant && text.n == 0 && json_array_size(content) > 0;
    if (only_results) {
        json_array_foreach(content, i, b) {
            const char *type = json_string_value(json_object_get(b, "type"));
            if (!type || strcmp(type, "tool_result")) { only_results = false; break; }
        }
    }
    if (!al_failed(&st) && !only_results) json_array_append(res, msg);
    json_decref(msg);
    chat_buf_free(&text);
    chat_buf_free(&think);
    return st;
}

al_status al_chat_messages_from_anthropic(const json_t *system, const json_t *messages, json_t **out) {
    if (!out) return BAD("al_chat_messages_from_anthropic: out is NULL");
    *out = NULL;
    if (!json_is_array(messages)) return BAD("messages must be an array");
    json_t *res = json_array();
    al_status st = al_ok();
    if (system && !json_is_null(system)) {
        json_t *sm = json_object();
        json_object_set_new(sm, "role", json_string("system"));
        json_array_append_new(res, sm);
        st = set_content(sm, system, "system");
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (al_failed(&st)) break;
        char where[48];
        snprintf(where, sizeof where, "messages[%zu]", i);
        st = anthropic_message(res, m, where);
    }
    if (al_failed(&st)) { json_decref(res); return st; }
    *out = res;
    return al_ok();
}

/* ---- tools ---- */

static al_status add_tool(json_t *list, const json_t *name, const json_t *desc, const json_t *params, const char *where) {
    if (!json_is_string(name) || json_string_length(name) == 0) return BAD("%s: name is missing", where);
    if (params && !json_is_null(params) && !json_is_object(params)) return BAD("%s: parameters must be an object", where);
    json_t *f = json_object();
    json_object_set(f, "name", (json_t *)name);
    if (json_is_string(desc)) json_object_set(f, "description", (json_t *)desc);
    if (params && json_is_object(params)) json_object_set_new(f, "parameters", json_deep_copy(params));
    else json_object_set_new(f, "parameters", json_pack("{s:s, s:{}}", "type", "object", "properties"));
    json_array_append_new(list, json_pack("{s:s, s:o}", "type", "function", "function", f));
    return al_ok();
}

al_status al_chat_tools_from_openai(const json_t *tools, json_t **out) {
    if (!out) return BAD("al_chat_tools_from_openai: out is NULL");
    *out = NULL;
    if (!tools || json_is_null(tools)) return al_ok();
    if (!json_is_array(tools)) return BAD("tools must be an array");
    if (json_array_size(tools) == 0) return al_ok();
    json_t *list = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char w[48];
        snprintf(w, sizeof w, "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        const json_t *f = json_object_get(t, "function");
        if ((type && strcmp(type, "function")) || !json_is_object(f)) {
            json_decref(list);
            return BAD("%s: only {\"type\": \"function\", \"function\": {...}} tools are supported", w);
        }
        al_status st = add_tool(list, json_object_get(f, "name"), json_object_get(f, "description"), json_object_get(f, "parameters"), w);
        if (al_failed(&st)) { json_decref(list); return st; }
    }
    *out = list;
    return al_ok();
}

al_status al_chat_tools_from_anthropic(const json_t *tools, json_t **out) {
    if (!out) return BAD("al_chat_tools_from_anthropic: out is NULL");
    *out = NULL;
    if (!tools || json_is_null(tools)) return al_ok();
    if (!json_is_array(tools)) return BAD("tools must be an array");
    if (json_array_size(tools) == 0) return al_ok();
    json_t *list = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char w[48];
        snprintf(w, sizeof w, "tools[%zu]", i);
        if (!json_is_object(t)) { json_decref(list); return BAD("%s must be an object", w); }
        al_status st = add_tool(list, json_object_get(t, "name"), json_object_get(t, "description"), json_object_get(t, "input_schema"), w);
        if (al_failed(&st)) { json_decref(list); return st; }
    }
    *out = list;
    return al_ok();
}

static bool tool_listed(const json_t *tools, const char *name) {
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && !strcmp(n, name)) return true;
    }
    return false;
}

static al_status set_named(al_tool_choice *out, const char *name, const json_t *tools) {
    if (!name || !*name) return BAD("tool_choice: the tool name is missing");
    if (strlen(name) >= sizeof out->name) return BAD("tool_choice: tool name too long");
    if (!tool_listed(tools, name)) return BAD("tool_choice: no tool named \"%s\" in tools", name);
    out->kind = AL_TOOL_CHOICE_NAMED;
    snprintf(out->name, sizeof out->name, "%s", name);
    return al_ok();
}

al_status al_tool_choice_from_openai(const json_t *choice, const json_t *tools, al_tool_choice *out) {
    if (!out) return BAD("al_tool_choice_from_openai: out is NULL");
    memset(out, 0, sizeof *out);
    if (!choice || json_is_null(choice)) return al_ok();
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (!strcmp(c, "auto")) out->kind = AL_TOOL_CHOICE_AUTO;
        else if (!strcmp(c, "none")) out->kind = AL_TOOL_CHOICE_NONE;
        else if (!strcmp(c, "required") || !strcmp(c, "any")) out->kind = AL_TOOL_CHOICE_REQUIRED;
        else return BAD("tool_choice: unknown value \"%s\"", c);
    } else if (json_is_object(choice)) {
        const json_t *f = json_object_get(choice, "function");
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!name) name = json_string_value(json_object_get(choice, "name"));
        AL_TRY(set_named(out, name, tools));
    } else {
        return BAD("tool_choice must be a string or an object");
    }
    if (out->kind == AL_TOOL_CHOICE_REQUIRED && json_array_size(tools) == 0) return BAD("tool_choice \"required\" without tools");
    return al_ok();
}

al_status al_tool_choice_from_anthropic(const json_t *choice, const json_t *tools, al_tool_choice *out) {
    if (!out) return BAD("al_tool_choice_from_anthropic: out is NULL");
    memset(out, 0, sizeof *out);
    if (!choice || json_is_null(choice)) return al_ok();
    if (!json_is_object(choice)) return BAD("tool_choice must be an object");
    const char *type = json_string_value(json_object_get(choice, "type"));
    if (!type) return BAD("tool_choice.type is missing");
    if (!strcmp(type, "auto")) out->kind = AL_TOOL_CHOICE_AUTO;
    else if (!strcmp(type, "none")) out->kind = AL_TOOL_CHOICE_NONE;
    else if (!strcmp(type, "any")) out->kind = AL_TOOL_CHOICE_REQUIRED;
    else if (!strcmp(type, "tool")) AL_TRY(set_named(out, json_string_value(json_object_get(choice, "name")), tools));
    else return BAD("tool_choice: unknown type \"%s\"", type);
    if (out->kind == AL_TOOL_CHOICE_REQUIRED && json_array_size(tools) == 0) return BAD("tool_choice \"any\" without tools");
    return al_ok();
}
