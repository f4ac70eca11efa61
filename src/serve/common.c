#define _GNU_SOURCE
/* common.c — buffers, typed JSON field access, think/content split, tool-call extraction, ids
 * and times shared by the API dialects of `alloy serve`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "serve/serve_internal.h"

/* ---- sbuf ---- */

void sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sbuf_adds(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

void sbuf_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sbuf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sbuf_add(b, big, (size_t)n);
    free(big);
}

void sbuf_add_json(sbuf *b, const json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        b->oom = true;
        return;
    }
    sbuf_adds(b, s);
    free(s);
}

void sbuf_add_json_steal(sbuf *b, json_t *j) {
    if (!j) {
        b->oom = true;
        return;
    }
    sbuf_add_json(b, j);
    json_decref(j);
}

void sbuf_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- errors and requests ---- */

bool srv_fail(srv_error *e, int status, const char *type, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return false;
}

void srv_request_init(srv_request *r, srv_api api) {
    memset(r, 0, sizeof *r);
    r->api = api;
    r->sp = al_sampler_default_params();
    r->sp.top_k = 0;
    r->sp.min_p = 0;
    r->sp.top_p = 1.0f;
    r->sp.temp = 1.0f;
    r->sp.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(al_time_sec() * 1e9);
    r->think = -1;
    r->parallel_tool_calls = true;
}

void srv_request_free(srv_request *r) {
    if (!r) return;
    free(r->model);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->tool_name);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->system);
    free(r->suffix);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    json_decref(r->schema);
    memset(r, 0, sizeof *r);
}

json_t *srv_parse_body(const char *body, size_t len, srv_error *e) {
    json_error_t je;
    json_t *j = json_loadb(body ? body : "", len, JSON_DECODE_INT_AS_REAL * 0, &je);
    if (!j) {
        srv_fail(e, 400, "invalid_request_error", NULL, "malformed JSON body: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        srv_fail(e, 400, "invalid_request_error", NULL, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

static bool absent(json_t *v) { return !v || json_is_null(v); }

bool srv_get_str(json_t *o, const char *key, char **out, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    if (!json_is_string(v)) return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be a string", key);
    char *s = strndup(json_string_value(v), json_string_length(v));
    if (!s) return srv_fail(e, 500, "api_error", key, "out of memory");
    free(*out);
    *out = s;
    return true;
}

bool srv_get_bool(json_t *o, const char *key, bool *out, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    if (!json_is_boolean(v)) return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

bool srv_get_int(json_t *o, const char *key, int *out, int lo, int hi, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v))
        d = json_real_value(v);
    else
        return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be an integer", key);
    if (d < lo || d > hi)
        return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be between %d and %d", key, lo, hi);
    *out = (int)d;
    return true;
}

bool srv_get_float(json_t *o, const char *key, float *out, float lo, float hi, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    if (!json_is_number(v)) return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be between %g and %g", key, lo, hi);
    *out = (float)d;
    return true;
}

bool srv_get_u64(json_t *o, const char *key, uint64_t *out, bool *set, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    if (!json_is_integer(v)) return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be an integer", key);
    *out = (uint64_t)json_integer_value(v);
    if (set) *set = true;
    return true;
}

bool srv_get_stop(json_t *o, const char *key, srv_request *r, srv_error *e) {
    json_t *v = json_object_get(o, key);
    if (absent(v)) return true;
    json_t *one = NULL;
    size_t n = 1;
    if (json_is_string(v))
        one = v;
    else if (json_is_array(v))
        n = json_array_size(v);
    else
        return srv_fail(e, 400, "invalid_request_error", key, "'%s' must be a string or an array of strings", key);
    if (n > SRV_MAX_STOP)
        return srv_fail(e, 400, "invalid_request_error", key, "at most %d stop sequences", SRV_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        json_t *s = one ? one : json_array_get(v, i);
        if (!json_is_string(s))
            return srv_fail(e, 400, "invalid_request_error", key, "'%s' must contain only strings", key);
        if (json_string_length(s) == 0) continue;
        if (r->n_stop >= SRV_MAX_STOP)
            return srv_fail(e, 400, "invalid_request_error", key, "at most %d stop sequences", SRV_MAX_STOP);
        r->stop[r->n_stop] = strndup(json_string_value(s), json_string_length(s));
        if (!r->stop[r->n_stop]) return srv_fail(e, 500, "api_error", key, "out of memory");
        r->n_stop++;
    }
    return true;
}

bool srv_content_text(json_t *content, const char *what, char **out, srv_error *e) {
    *out = NULL;
    if (absent(content)) {
        *out = strdup("");
        return *out ? true : srv_fail(e, 500, "api_error", NULL, "out of memory");
    }
    if (json_is_string(content)) {
        *out = strndup(json_string_value(content), json_string_length(content));
        return *out ? true : srv_fail(e, 500, "api_error", NULL, "out of memory");
    }
    if (!json_is_array(content))
        return srv_fail(e, 400, "invalid_request_error", what, "'%s' must be a string or an array of parts", what);
    sbuf b = {0};
    sbuf_adds(&b, "");
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        if (!json_is_object(part)) {
            sbuf_free(&b);
            return srv_fail(e, 400, "invalid_request_error", what, "'%s' parts must be objects", what);
        }
        json_t *type = json_object_get(part, "type");
        if (type && !json_is_string(type)) {
            sbuf_free(&b);
            return srv_fail(e, 400, "invalid_request_error", what, "'%s' part type must be a string", what);
        }
        if (type && strcmp(json_string_value(type), "text") != 0) continue;
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t)) {
            sbuf_free(&b);
            return srv_fail(e, 400, "invalid_request_error", what, "'%s' text parts need a string 'text'", what);
        }
        sbuf_add(&b, json_string_value(t), json_string_length(t));
    }
    if (b.oom) {
        sbuf_free(&b);
        return srv_fail(e, 500, "api_error", NULL, "out of memory");
    }
    *out = b.p;
    return true;
}

bool srv_tools_openai(json_t *tools, json_t **out, srv_error *e) {
    *out = NULL;
    if (absent(tools)) return true;
    if (!json_is_array(tools)) return srv_fail(e, 400, "invalid_request_error", "tools", "'tools' must be an array");
    json_t *res = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_is_object(t) ? json_object_get(t, "function") : NULL;
        json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
        if (!json_is_string(name)) {
            json_decref(res);
            return srv_fail(e, 400, "invalid_request_error", "tools",
                            "tools[%zu] must be {\"type\": \"function\", \"function\": {\"name\": ...}}", i);
        }
        json_t *params = json_object_get(fn, "parameters");
        if (params && !json_is_object(params) && !json_is_null(params)) {
            json_decref(res);
            return srv_fail(e, 400, "invalid_request_error", "tools", "tools[%zu].function.parameters must be an object", i);
        }
        json_t *f = json_object();
        json_object_set(f, "name", name);
        json_t *d = json_object_get(fn, "description");
        if (json_is_string(d)) json_object_set(f, "description", d);
        json_object_set_new(f, "parameters", json_is_object(params) ? json_incref(params) : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(res, json_pack("{s:s,s:o}", "type", "function", "function", f));
    }
    *out = res;
    return true;
}

/* ---- think split ---- */

static const char *const think_tags[2] = {"<think>", "</think>"};

static void think_emit(srv_think *t, srv_channel ch, const char *s, size_t n, srv_emit_fn emit, void *ud) {
    if (ch == SRV_CH_CONTENT && t->after_close) {
        while (n && (*s == '\n' || *s == ' ')) s++, n--;
        if (!n) return;
        t->after_close = false;
    }
    if (n) emit(ud, ch, s, n);
}

void srv_think_feed(srv_think *t, const char *text, size_t len, srv_emit_fn emit, void *ud) {
    sbuf_add(&t->hold, text, len);
    if (t->hold.oom) return;
    char *p = t->hold.p;
    size_t n = t->hold.len;
    size_t pos = 0;
    for (;;) {
        const char *tag = think_tags[t->state];
        size_t tl = strlen(tag);
        char *hit = NULL;
        for (size_t i = pos; i + tl <= n; i++)
            if (!memcmp(p + i, tag, tl)) {
                hit = p + i;
                break;
            }
        if (hit) {
            think_emit(t, (srv_channel)t->state, p + pos, (size_t)(hit - (p + pos)), emit, ud);
            pos = (size_t)(hit - p) + tl;
            if (t->state == SRV_CH_REASONING) t->after_close = true;
            t->state = !t->state;
            continue;
        }
        /* keep the longest suffix that could start the tag */
        size_t keep = 0;
        for (size_t l = tl - 1; l > 0; l--)
            if (l <= n - pos && !memcmp(p + n - l, tag, l)) {
                keep = l;
                break;
            }
        think_emit(t, (srv_channel)t->state, p + pos, n - pos - keep, emit, ud);
        memmove(p, p + n - keep, keep);
        t->hold.len = keep;
        p[keep] = 0;
        return;
    }
}

void srv_think_flush(srv_think *t, srv_emit_fn emit, void *ud) {
    if (t->hold.len) think_emit(t, (srv_channel)t->state, t->hold.p, t->hold.len, emit, ud);
    sbuf_free(&t->hold);
}

/* ---- tool calls ---- */

void srv_tool_calls_free(srv_tool_call *calls, int n) {
    for (int i = 0; i < n; i++) {
        free(calls[i].name);
        free(calls[i].args);
    }
    free(calls);
}

/* Adds a call from {"name": s, "arguments"|"parameters": object|string}; false if not that shape. */
static bool add_call(json_t *o, srv_tool_call **calls, int *n) {
    json_t *name = json_is_object(o) ? json_object_get(o, "name") : NULL;
    if (!json_is_string(name)) return false;
    json_t *args = json_object_get(o, "arguments");
    if (!args) args = json_object_get(o, "parameters");
    char *a = NULL;
    if (json_is_string(args)) {
        json_t *parsed = json_loads(json_string_value(args), 0, NULL);
        a = json_is_object(parsed) ? json_dumps(parsed, JSON_COMPACT) : NULL;
        json_decref(parsed);
    } else if (json_is_object(args)) {
        a = json_dumps(args, JSON_COMPACT);
    } else if (!args) {
        a = strdup("{}");
    }
    if (!a) return false;
    srv_tool_call *c = realloc(*calls, sizeof **calls * (size_t)(*n + 1));
    if (!c) {
        free(a);
        return false;
    }
    *calls = c;
    c[*n].name = strdup(json_string_value(name));
    c[*n].args = a;
    srv_make_id(c[*n].id, sizeof c[*n].id, "call_");
    (*n)++;
    return true;
}

static bool add_calls_json(json_t *v, srv_tool_call **calls, int *n) {
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        int before = *n;
        json_array_foreach(v, i, x) if (!add_call(x, calls, n)) {
            return *n > before;
        }
        return json_array_size(v) > 0;
    }
    return add_call(v, calls, n);
}

int srv_parse_tool_calls(const char *content, size_t len, srv_tool_call **calls, char **rest) {
    *calls = NULL;
    int n = 0;
    sbuf r = {0};
    sbuf_adds(&r, "");
    const char *p = content, *end = content + len;
    static const char open[] = "<tool_call>", close[] = "</tool_call>";
    bool any_tag = false;
    while (p < end) {
        const char *o = memmem(p, (size_t)(end - p), open, sizeof open - 1);
        if (!o) break;
        const char *c = memmem(o, (size_t)(end - o), close, sizeof close - 1);
        const char *jend = c ? c : end;
        json_t *v = json_loadb(o + sizeof open - 1, (size_t)(jend - o - (sizeof open - 1)), 0, NULL);
        if (v && add_calls_json(v, calls, &n)) {
            any_tag = true;
            sbuf_add(&r, p, (size_t)(o - p));
            p = c ? c + sizeof close - 1 : end;
        } else {
            sbuf_add(&r, p, (size_t)(o + 1 - p));
            p = o + 1;
        }
        json_decref(v);
    }
    if (any_tag) {
        sbuf_add(&r, p, (size_t)(end - p));
    } else {
        /* the whole content as a JSON call (Llama 3.x), possibly after [TOOL_CALLS] (Mistral) */
        const char *s = content;
        size_t sl = len;
        while (sl && isspace((unsigned char)*s)) s++, sl--;
        if (sl >= 12 && !memcmp(s, "[TOOL_CALLS]", 12)) s += 12, sl -= 12;
        if (sl && (*s == '{' || *s == '[')) {
            json_t *v = json_loadb(s, sl, JSON_DISABLE_EOF_CHECK * 0, NULL);
            if (!(v && add_calls_json(v, calls, &n))) sbuf_add(&r, content, len);
            json_decref(v);
        } else {
            sbuf_add(&r, content, len);
        }
    }
    *rest = r.p ? r.p : strdup("");
    return n;
}

/* ---- ids and times ---- */

void srv_make_id(char *buf, size_t size, const char *prefix) {
    static const char hex[] = "0123456789abcdef";
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) x = (uint64_t)(al_time_sec() * 1e9) ^ (uint64_t)(uintptr_t)buf;
    x |= 1;
    size_t n = (size_t)snprintf(buf, size, "%s", prefix);
    for (int i = 0; i < 24 && n + 1 < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[n++] = hex[x & 15];
    }
    buf[n < size ? n : size - 1] = 0;
}

void srv_time_rfc3339(char *buf, size_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%09ldZ", date, ts.tv_nsec);
}
