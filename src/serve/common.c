#define _GNU_SOURCE
/* common.c — buffers, typed JSON field access, ids and times shared by the API dialects of
 * `alloy serve`. */
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
    free(r->prompt);
    free(r->prompt_ids);
    free(r->system);
    free(r->suffix);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    al_grammar_free(r->format);
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

bool srv_chat_ok(al_status st, const char *param, srv_error *e) {
    if (!al_failed(&st)) return true;
    if (st.code == AL_ERR_NOMEM) return srv_fail(e, 500, "api_error", param, "out of memory");
    return srv_fail(e, 400, "invalid_request_error", param, "%s", st.msg);
}

char *srv_call_args(const al_tool_call *c) {
    if (c->arguments_text) {
        json_t *v = json_loads(c->arguments_text, 0, NULL);
        bool obj = json_is_object(v);
        json_decref(v);
        if (obj) return strdup(c->arguments_text);
    }
    char *s = c->arguments ? json_dumps(c->arguments, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    return s ? s : strdup("{}");
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
