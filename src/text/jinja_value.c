/*
 * jinja_value.c — runtime values with Python semantics: truthiness, ==, ordering, str()/repr(),
 * and json.dumps (the HF `tojson`). Strings are UTF-8, NUL-terminated, immutable; lengths and
 * indices of strings count code points as Python does. Dicts keep insertion order and have
 * string keys.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja_internal.h"

/* ---- errors / buffers ----------------------------------------------------------------------- */

void jrt_fail(jrt *rt, int line, int col, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) *rt->err = al_err(AL_ERR_INVALID, "template error at line %d, column %d: %s", line, col, msg);
    else *rt->err = al_err(AL_ERR_INVALID, "template error: %s", msg);
    longjmp(*rt->jmp, 1);
}

void jrt_fail_code(jrt *rt, al_code code, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *rt->err = al_err(code, "template: %s", msg);
    longjmp(*rt->jmp, 1);
}

void jrt_step(jrt *rt) {
    if (++rt->steps > rt->o.max_steps) jrt_fail_code(rt, AL_ERR_RANGE, "step limit exceeded (%llu)", (unsigned long long)rt->o.max_steps);
}

void jb_put(jrt *rt, jbuf *b, const char *s, size_t n) {
    if (!n) return;
    if (n > rt->o.max_output || b->n > rt->o.max_output - n)
        jrt_fail_code(rt, AL_ERR_RANGE, "output larger than %zu bytes", rt->o.max_output);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = ja_alloc(rt->a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
void jb_putc(jrt *rt, jbuf *b, char c) { jb_put(rt, b, &c, 1); }
void jb_puts(jrt *rt, jbuf *b, const char *s) { jb_put(rt, b, s, strlen(s)); }

/* ---- constructors --------------------------------------------------------------------------- */

jv jv_str(jrt *rt, const char *s, size_t n) {
    jv v = {.t = JV_STR};
    v.u.s.p = ja_strndup(rt->a, s, n);
    v.u.s.n = n;
    return v;
}

jv jv_str_nocopy(const char *s, size_t n) {
    jv v = {.t = JV_STR};
    v.u.s.p = s;
    v.u.s.n = n;
    return v;
}

jv jv_from_buf(jrt *rt, jbuf *b) {
    if (!b->n) return jv_str_nocopy("", 0);
    (void)rt;
    return jv_str_nocopy(b->p, b->n);
}

jv jv_list(jrt *rt, size_t cap) {
    jv v = {.t = JV_LIST};
    v.u.l = ja_alloc(rt->a, sizeof(jlist));
    if (cap) {
        v.u.l->v = ja_alloc(rt->a, cap * sizeof(jv));
        v.u.l->cap = cap;
    }
    return v;
}

void jl_push(jrt *rt, jv *list, jv item) {
    jlist *l = list->u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = ja_alloc(rt->a, cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

jv jv_dict(jrt *rt, size_t cap) {
    jv v = {.t = JV_DICT};
    v.u.d = ja_alloc(rt->a, sizeof(jdict));
    (void)cap;
    return v;
}

jv *jd_get(const jdict *d, const char *k, size_t kn) {
    for (size_t i = 0; i < d->n; i++)
        if (d->kn[i] == kn && memcmp(d->k[i], k, kn) == 0) return &d->v[i];
    return NULL;
}

void jd_set(jrt *rt, jdict *d, const char *k, size_t kn, jv v) {
    jv *slot = jd_get(d, k, kn);
    if (slot) {
        *slot = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        const char **nk = ja_alloc(rt->a, cap * sizeof *nk);
        size_t *nkn = ja_alloc(rt->a, cap * sizeof *nkn);
        jv *nv = ja_alloc(rt->a, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nkn, d->kn, d->n * sizeof *nkn);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->kn = nkn;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->kn[d->n] = kn;
    d->v[d->n] = v;
    d->n++;
}

jv jv_from_json(jrt *rt, const json_t *j, int depth) {
    if (depth > 512) jrt_fail_code(rt, AL_ERR_RANGE, "context JSON nested too deeply");
    jrt_step(rt);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv d = jv_dict(rt, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t kn = strlen(k);
            jd_set(rt, d.u.d, ja_strndup(rt->a, k, kn), kn, jv_from_json(rt, v, depth + 1));
        }
        return d;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list(rt, n);
        for (size_t i = 0; i < n; i++) jl_push(rt, &l, jv_from_json(rt, json_array_get(j, i), depth + 1));
        return l;
    }
    case JSON_STRING: return jv_str(rt, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    default: return jv_none();
    }
}

static const char *const type_names[] = {
    [JV_UNDEF] = "Undefined", [JV_NONE] = "NoneType", [JV_BOOL] = "bool", [JV_INT] = "int",
    [JV_FLOAT] = "float", [JV_STR] = "str", [JV_LIST] = "list", [JV_DICT] = "dict",
    [JV_NS] = "Namespace", [JV_LOOP] = "LoopContext", [JV_FUNC] = "function", [JV_METHOD] = "method",
    [JV_MACRO] = "Macro",
};
_Static_assert(sizeof type_names / sizeof *type_names == JV_MACRO + 1, "type_names out of sync");

const char *jv_type_name(jv v) { return v.t == JV_LIST && v.tuple ? "tuple" : type_names[v.t]; }

/* ---- semantics ------------------------------------------------------------------------------ */

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

bool jv_is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
double jv_num(jv v) { return v.t == JV_INT ? (double)v.u.i : v.t == JV_BOOL ? (double)v.u.b : v.u.f; }

bool jv_eq(jv a, jv b) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            return x == y;
        }
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case JV_LIST:
        if (a.tuple != b.tuple || a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_eq(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jd_get(b.u.d, a.u.d->k[i], a.u.d->kn[i]);
            if (!o || !jv_eq(a.u.d->v[i], *o)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_LOOP: return a.u.loop == b.u.loop;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.s.p == b.u.s.p;
    default: return false;
    }
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

int jv_cmp(jrt *rt, jv a, jv b) {
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_INT ? a.u.i : a.u.b, y = b.t == JV_INT ? b.u.i : b.u.b;
            return x < y ? -1 : x > y;
        }
        double x = jv_num(a), y = jv_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == JV_STR && b.t == JV_STR) return cmp_bytes(a.u.s.p, a.u.s.n, b.u.s.p, b.u.s.n);
    if (a.t == JV_LIST && b.t == JV_LIST && a.tuple == b.tuple) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_eq(a.u.l->v[i], b.u.l->v[i])) continue;
            return jv_cmp(rt, a.u.l->v[i], b.u.l->v[i]);
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) jrt_fail(rt, 0, 0, "'%s' is undefined", a.t == JV_UNDEF ? (a.u.s.p ? a.u.s.p : "value") : (b.u.s.p ? b.u.s.p : "value"));
    jrt_fail(rt, 0, 0, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

size_t utf8_advance(const char *s, size_t n, size_t pos, size_t count) {
    while (count && pos < n) {
        pos++;
        while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
        count--;
    }
    return pos;
}

/* ---- str / repr ----------------------------------------------------------------------------- */

void jv_fmt_float(double f, char *buf, size_t cap) {
    if (isnan(f)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(f)) { snprintf(buf, cap, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0.0) { snprintf(buf, cap, signbit(f) ? "-0.0" : "0.0"); return; }
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]D[.DDD]e[+-]XX */
    char digits[32];
    int nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') { neg = true; p++; }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(buf, cap, "%s", out);
}

static void write_repr_str(jrt *rt, jbuf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jb_putc(rt, b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\\') jb_put(rt, b, "\\\\", 2);
        else if (c == (unsigned char)q) { jb_putc(rt, b, '\\'); jb_putc(rt, b, (char)c); }
        else if (c == '\n') jb_put(rt, b, "\\n", 2);
        else if (c == '\r') jb_put(rt, b, "\\r", 2);
        else if (c == '\t') jb_put(rt, b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            jb_puts(rt, b, esc);
        } else if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] <= 0xA0) {
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned char)s[i + 1]);
            jb_puts(rt, b, esc);
            i++;
        } else jb_putc(rt, b, (char)c);
    }
    jb_putc(rt, b, q);
}

static void write_value(jrt *rt, jbuf *b, jv v, bool repr, int depth) {
    char num[64];
    if (depth > 256) jrt_fail_code(rt, AL_ERR_RANGE, "value nested too deeply to print");
    switch (v.t) {
    case JV_UNDEF: break;
    case JV_NONE: jb_puts(rt, b, "None"); break;
    case JV_BOOL: jb_puts(rt, b, v.u.b ? "True" : "False"); break;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); jb_puts(rt, b, num); break;
    case JV_FLOAT: jv_fmt_float(v.u.f, num, sizeof num); jb_puts(rt, b, num); break;
    case JV_STR:
        if (repr) write_repr_str(rt, b, v.u.s.p, v.u.s.n);
        else jb_put(rt, b, v.u.s.p, v.u.s.n);
        break;
    case JV_LIST:
        jb_putc(rt, b, v.tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_put(rt, b, ", ", 2);
            write_value(rt, b, v.u.l->v[i], true, depth + 1);
        }
        if (v.tuple && v.u.l->n == 1) jb_putc(rt, b, ',');
        jb_putc(rt, b, v.tuple ? ')' : ']');
        break;
    case JV_DICT:
        jb_putc(rt, b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_put(rt, b, ", ", 2);
            write_repr_str(rt, b, v.u.d->k[i], v.u.d->kn[i]);
            jb_put(rt, b, ": ", 2);
            write_value(rt, b, v.u.d->v[i], true, depth + 1);
        }
        jb_putc(rt, b, '}');
        break;
    case JV_NS: jb_puts(rt, b, "<Namespace>"); break;
    case JV_LOOP: jb_puts(rt, b, "<LoopContext>"); break;
    case JV_MACRO: jb_puts(rt, b, "<Macro>"); break;
    default: jb_puts(rt, b, "<function>"); break;
    }
}

void jv_write_str(jrt *rt, jbuf *b, jv v) { write_value(rt, b, v, false, 0); }
void jv_write_repr(jrt *rt, jbuf *b, jv v) { write_value(rt, b, v, true, 0); }

jv jv_to_str(jrt *rt, jv v) {
    if (v.t == JV_STR) return v;
    jbuf b = {0};
    jv_write_str(rt, &b, v);
    return jv_from_buf(rt, &b);
}

/* ---- json.dumps ----------------------------------------------------------------------------- */

static uint32_t utf8_decode(const char *s, size_t n, size_t *i) {
    unsigned char c = (unsigned char)s[*i];
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    uint32_t cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : extra == 1 ? c & 0x1F : c;
    for (int k = 0; k < extra && *i + 1 < n; k++) cp = (cp << 6) | ((unsigned char)s[++*i] & 0x3F);
    return cp;
}

static void write_json_str(jrt *rt, jbuf *b, const char *s, size_t n, bool ensure_ascii) {
    jb_putc(rt, b, '"');
    char esc[16];
    size_t run = 0; /* start of a run of bytes copied verbatim */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c == '\b') rep = "\\b";
        else if (c == '\f') rep = "\\f";
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rep = esc;
        } else if (c >= 0x80 && ensure_ascii) {
            jb_put(rt, b, s + run, i - run);
            uint32_t cp = utf8_decode(s, n, &i);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            jb_puts(rt, b, esc);
            run = i + 1;
            continue;
        }
        if (rep) {
            jb_put(rt, b, s + run, i - run);
            jb_puts(rt, b, rep);
            run = i + 1;
        }
    }
    jb_put(rt, b, s + run, n - run);
    jb_putc(rt, b, '"');
}

static void json_newline(jrt *rt, jbuf *b, const char *indent, int level) {
    jb_putc(rt, b, '\n');
    for (int i = 0; i < level; i++) jb_puts(rt, b, indent);
}

static int cmp_keys(const void *x, const void *y, void *d) {
    const jdict *dd = d;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    return cmp_bytes(dd->k[i], dd->kn[i], dd->k[j], dd->kn[j]);
}

static void sort_idx(size_t *idx, size_t n, const jdict *d) {
    for (size_t i = 1; i < n; i++) { /* insertion sort: dicts in templates are small */
        size_t x = idx[i], j = i;
        while (j > 0 && cmp_keys(&idx[j - 1], &x, (void *)d) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
}

void jv_write_json(jrt *rt, jbuf *b, jv v, const char *indent, const char *item_sep, const char *key_sep,
                   bool sort_keys, bool ensure_ascii, int level) {
    char num[64];
    if (level > 256) jrt_fail_code(rt, AL_ERR_RANGE, "value nested too deeply for tojson");
    jrt_step(rt);
    switch (v.t) {
    case JV_NONE: jb_puts(rt, b, "null"); return;
    case JV_BOOL: jb_puts(rt, b, v.u.b ? "true" : "false"); return;
    case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v.u.i); jb_puts(rt, b, num); return;
    case JV_FLOAT:
        if (isnan(v.u.f)) jb_puts(rt, b, "NaN");
        else if (isinf(v.u.f)) jb_puts(rt, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else { jv_fmt_float(v.u.f, num, sizeof num); jb_puts(rt, b, num); }
        return;
    case JV_STR: write_json_str(rt, b, v.u.s.p, v.u.s.n, ensure_ascii); return;
    case JV_LIST:
        if (!v.u.l->n) { jb_puts(rt, b, "[]"); return; }
        jb_putc(rt, b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_puts(rt, b, item_sep);
            if (indent) json_newline(rt, b, indent, level + 1);
            jv_write_json(rt, b, v.u.l->v[i], indent, item_sep, key_sep, sort_keys, ensure_ascii, level + 1);
        }
        if (indent) json_newline(rt, b, indent, level);
        jb_putc(rt, b, ']');
        return;
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (!d->n) { jb_puts(rt, b, "{}"); return; }
        size_t *idx = ja_alloc(rt->a, d->n * sizeof *idx);
        for (size_t i = 0; i < d->n; i++) idx[i] = i;
        if (sort_keys) sort_idx(idx, d->n, d);
        jb_putc(rt, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jb_puts(rt, b, item_sep);
            if (indent) json_newline(rt, b, indent, level + 1);
            write_json_str(rt, b, d->k[idx[i]], d->kn[idx[i]], ensure_ascii);
            jb_puts(rt, b, key_sep);
            jv_write_json(rt, b, d->v[idx[i]], indent, item_sep, key_sep, sort_keys, ensure_ascii, level + 1);
        }
        if (indent) json_newline(rt, b, indent, level);
        jb_putc(rt, b, '}');
        return;
    }
    default:
        jrt_fail(rt, 0, 0, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

/* ---- iteration ------------------------------------------------------------------------------ */

jv jv_iterable_items(jrt *rt, jv v, size_t *n, jv **items) {
    switch (v.t) {
    case JV_UNDEF: *n = 0; *items = NULL; return v;
    case JV_LIST: *n = v.u.l->n; *items = v.u.l->v; return v;
    case JV_DICT:
    case JV_NS: {
        jv l = jv_list(rt, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) jl_push(rt, &l, jv_str_nocopy(v.u.d->k[i], v.u.d->kn[i]));
        *n = l.u.l->n;
        *items = l.u.l->v;
        return l;
    }
    case JV_STR: {
        jv l = jv_list(rt, v.u.s.n);
        size_t p = 0;
        while (p < v.u.s.n) {
            size_t q = utf8_advance(v.u.s.p, v.u.s.n, p, 1);
            jl_push(rt, &l, jv_str(rt, v.u.s.p + p, q - p));
            p = q;
        }
        *n = l.u.l->n;
        *items = l.u.l->v;
        return l;
    }
    default:
        jrt_fail(rt, 0, 0, "'%s' object is not iterable", jv_type_name(v));
    }
}
