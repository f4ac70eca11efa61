/*
 * jinja_builtins.c — attribute/item lookup, global functions, filters, tests and the Python
 * methods of str / dict / list that chat templates call. Each family is a name -> function table.
 *
 * Lookup rules (jinja2's sandboxed getattr / getitem):
 *   obj.name   : a method of obj if it has one (so dict.items wins over a key "items"), else obj[name]
 *   obj[key]   : the item, else (for a string key) the method; missing -> Undefined
 *   anything on an Undefined raises; anything missing on None/int/... is Undefined.
 * The ImmutableSandboxedEnvironment forbids mutating methods (list.append, dict.update, ...): they
 * are simply absent here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "text/jinja_internal.h"

#define MAX_RANGE 100000 /* jinja2.sandbox.MAX_RANGE */

/* ---- argument helpers ----------------------------------------------------------------------- */

/* positional idx or keyword `kw`; `def` when absent */
static jv arg(jargs *a, size_t idx, const char *kw, jv def) {
    if (idx < a->n) return a->pos[idx];
    for (size_t i = 0; i < a->nkw; i++)
        if (kw && !strcmp(a->kwn[i], kw)) return a->kwv[i];
    return def;
}

static jv arg_str(jrt *rt, jargs *a, size_t idx, const char *kw, const char *def) {
    jv v = arg(a, idx, kw, jv_undef(NULL));
    if (v.t == JV_UNDEF) return def ? jv_str_nocopy(def, strlen(def)) : v;
    if (v.t != JV_STR) jrt_fail(rt, a->line, a->col, "argument '%s' must be a string, not %s", kw ? kw : "?", jv_type_name(v));
    return v;
}

static int64_t arg_int(jrt *rt, jargs *a, size_t idx, const char *kw, int64_t def) {
    jv v = arg(a, idx, kw, jv_undef(NULL));
    if (v.t == JV_UNDEF || v.t == JV_NONE) return def;
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jrt_fail(rt, a->line, a->col, "argument '%s' must be an integer, not %s", kw ? kw : "?", jv_type_name(v));
}

static bool arg_bool(jargs *a, size_t idx, const char *kw, bool def) {
    jv v = arg(a, idx, kw, jv_undef(NULL));
    return v.t == JV_UNDEF ? def : jv_truthy(v);
}

static jv need_str(jrt *rt, jargs *a, jv self, const char *what) {
    if (self.t != JV_STR) jrt_fail(rt, a->line, a->col, "%s expects a string, got %s", what, jv_type_name(self));
    return self;
}

/* soft_str: Undefined -> "", others str() */
static jv soft_str(jrt *rt, jv v) { return v.t == JV_UNDEF ? jv_str_nocopy("", 0) : jv_to_str(rt, v); }

static jv mk_method(jrt *rt, jv self, const char *name) {
    jv m = {.t = JV_METHOD};
    m.u.meth.self = ja_alloc(rt->a, sizeof(jv));
    *m.u.meth.self = self;
    m.u.meth.name = name;
    return m;
}

static jv tuple2(jrt *rt, jv a, jv b) {
    jv t = jv_list(rt, 2);
    jl_push(rt, &t, a);
    jl_push(rt, &t, b);
    t.tuple = true;
    return t;
}

/* ---- unicode helpers ------------------------------------------------------------------------ */

static int32_t dec(const char *s, size_t n, size_t *pos) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + *pos, (utf8proc_ssize_t)(n - *pos), &cp);
    if (k <= 0) {
        (*pos)++;
        return 0xFFFD;
    }
    *pos += (size_t)k;
    return cp;
}

static void enc(jrt *rt, jbuf *b, int32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, tmp);
    jb_put(rt, b, (const char *)tmp, (size_t)k);
}

static bool py_space(int32_t c) {
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0) return true;
    if (c < 0x100) return false;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

static bool cased(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

typedef enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE } case_mode;

static jv change_case(jrt *rt, jv s, case_mode mode) {
    jbuf b = {0};
    size_t p = 0;
    bool prev_cased = false, first = true;
    while (p < s.u.s.n) {
        int32_t c = dec(s.u.s.p, s.u.s.n, &p);
        int32_t o;
        bool up = mode == CASE_UPPER || (mode == CASE_CAPITALIZE && first) || (mode == CASE_TITLE && !prev_cased);
        if (c == 0xDF && up) { /* Python's full case mapping: sharp s -> SS (Ss when titled) */
            jb_puts(rt, &b, mode == CASE_UPPER ? "SS" : "Ss");
            prev_cased = true;
            first = false;
            continue;
        }
        if (c == 0x130 && !up) { /* capital I with dot -> i + combining dot */
            jb_puts(rt, &b, "i\xcc\x87");
            prev_cased = true;
            first = false;
            continue;
        }
        switch (mode) {
        case CASE_UPPER: o = utf8proc_toupper(c); break;
        case CASE_LOWER: o = utf8proc_tolower(c); break;
        case CASE_CAPITALIZE: o = first ? utf8proc_toupper(c) : utf8proc_tolower(c); break;
        default: o = prev_cased ? utf8proc_tolower(c) : utf8proc_totitle(c); break;
        }
        prev_cased = cased(c);
        first = false;
        enc(rt, &b, o);
    }
    return jv_from_buf(rt, &b);
}

/* strip with Python semantics: chars None -> whitespace */
static jv do_strip(jrt *rt, jv s, jv chars, bool left, bool right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    bool ws = chars.t != JV_STR;
    if (left) {
        while (b < e) {
            size_t q = b;
            int32_t c = dec(p, e, &q);
            bool strip;
            if (ws) strip = py_space(c);
            else {
                strip = false;
                size_t r = 0;
                while (r < chars.u.s.n && !strip) strip = dec(chars.u.s.p, chars.u.s.n, &r) == c;
            }
            if (!strip) break;
            b = q;
        }
    }
    if (right) {
        while (e > b) {
            size_t q = e - 1;
            while (q > b && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
            size_t r0 = q;
            int32_t c = dec(p, e, &r0);
            bool strip;
            if (ws) strip = py_space(c);
            else {
                strip = false;
                size_t r = 0;
                while (r < chars.u.s.n && !strip) strip = dec(chars.u.s.p, chars.u.s.n, &r) == c;
            }
            if (!strip) break;
            e = q;
        }
    }
    (void)rt;
    if (b == 0 && e == s.u.s.n) return s;
    return jv_str(rt, p + b, e - b);
}

static bool starts_at(jv s, size_t pos, jv sub) {
    return pos + sub.u.s.n <= s.u.s.n && memcmp(s.u.s.p + pos, sub.u.s.p, sub.u.s.n) == 0;
}

static jv do_replace(jrt *rt, jv s, jv old, jv new_, int64_t count) {
    jbuf b = {0};
    if (!old.u.s.n) { /* insert between code points */
        size_t p = 0;
        int64_t done = 0;
        if (count != 0) { jb_put(rt, &b, new_.u.s.p, new_.u.s.n); done++; }
        while (p < s.u.s.n) {
            size_t q = utf8_advance(s.u.s.p, s.u.s.n, p, 1);
            jb_put(rt, &b, s.u.s.p + p, q - p);
            p = q;
            if (count < 0 || done < count) { jb_put(rt, &b, new_.u.s.p, new_.u.s.n); done++; }
        }
        return jv_from_buf(rt, &b);
    }
    size_t p = 0, run = 0;
    int64_t done = 0;
    while (p + old.u.s.n <= s.u.s.n && (count < 0 || done < count)) {
        if (starts_at(s, p, old)) {
            jb_put(rt, &b, s.u.s.p + run, p - run);
            jb_put(rt, &b, new_.u.s.p, new_.u.s.n);
            p += old.u.s.n;
            run = p;
            done++;
        } else p++;
    }
    jb_put(rt, &b, s.u.s.p + run, s.u.s.n - run);
    return jv_from_buf(rt, &b);
}

static jv do_split(jrt *rt, jv s, jv sep, int64_t maxsplit) {
    jv out = jv_list(rt, 4);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (sep.t != JV_STR) { /* whitespace split */
        size_t i = 0;
        int64_t splits = 0;
        while (i < n) {
            size_t q = i;
            while (q < n) { size_t r = q; if (!py_space(dec(p, n, &r))) break; q = r; }
            i = q;
            if (i >= n) break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i) { size_t k = e - 1; while (k > i && ((unsigned char)p[k] & 0xC0) == 0x80) k--; size_t r = k; if (!py_space(dec(p, n, &r))) break; e = k; }
                jl_push(rt, &out, jv_str(rt, p + i, e - i));
                break;
            }
            size_t j = i;
            while (j < n) { size_t r = j; if (py_space(dec(p, n, &r))) break; j = r; }
            jl_push(rt, &out, jv_str(rt, p + i, j - i));
            splits++;
            i = j;
        }
        return out;
    }
    if (!sep.u.s.n) jrt_fail(rt, 0, 0, "empty separator");
    size_t i = 0, start = 0;
    int64_t splits = 0;
    while (i + sep.u.s.n <= n && (maxsplit < 0 || splits < maxsplit)) {
        if (starts_at(s, i, sep)) {
            jl_push(rt, &out, jv_str(rt, p + start, i - start));
            i += sep.u.s.n;
            start = i;
            splits++;
        } else i++;
    }
    jl_push(rt, &out, jv_str(rt, p + start, n - start));
    return out;
}

static jv do_splitlines(jrt *rt, jv s, bool keepends) {
    jv out = jv_list(rt, 4);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, start = 0, i = 0;
    while (i < n) {
        size_t eol = 0;
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') eol = 2;
        else if (p[i] == '\n' || p[i] == '\r' || p[i] == '\v' || p[i] == '\f' || (p[i] >= 0x1c && p[i] <= 0x1e)) eol = 1;
        if (eol) {
            jl_push(rt, &out, jv_str(rt, p + start, i - start + (keepends ? eol : 0)));
            i += eol;
            start = i;
        } else i++;
    }
    if (start < n) jl_push(rt, &out, jv_str(rt, p + start, n - start));
    return out;
}

/* ---- attribute / item lookup ---------------------------------------------------------------- */

static jv loop_attr(jrt *rt, jv self, const char *name, bool *found) {
    const jloop *l = self.u.loop;
    int64_t i = (int64_t)l->i, n = (int64_t)l->n;
    *found = true;
    if (!strcmp(name, "index")) return jv_int(i + 1);
    if (!strcmp(name, "index0")) return jv_int(i);
    if (!strcmp(name, "revindex")) return jv_int(n - i);
    if (!strcmp(name, "revindex0")) return jv_int(n - i - 1);
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i == n - 1);
    if (!strcmp(name, "length")) return jv_int(n);
    if (!strcmp(name, "depth")) return jv_int(1);
    if (!strcmp(name, "depth0")) return jv_int(0);
    if (!strcmp(name, "previtem")) return i > 0 ? l->items[i - 1] : jv_undef("previtem");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? l->items[i + 1] : jv_undef("nextitem");
    if (!strcmp(name, "cycle")) return mk_method(rt, self, "cycle");
    *found = false;
    return jv_undef(name);
}

jv jinja_getattr(jrt *rt, jv obj, const char *name, int line, int col) {
    switch (obj.t) {
    case JV_UNDEF:
        jrt_fail(rt, line, col, "'%s' is undefined (accessing attribute '%s')", obj.u.s.p ? obj.u.s.p : "value", name);
    case JV_DICT: {
        if (jinja_has_method(obj, name)) return mk_method(rt, obj, name);
        jv *v = jd_get(obj.u.d, name, strlen(name));
        return v ? *v : jv_undef(name);
    }
    case JV_NS: {
        jv *v = jd_get(obj.u.d, name, strlen(name));
        return v ? *v : jv_undef(name);
    }
    case JV_LOOP: {
        bool found;
        return loop_attr(rt, obj, name, &found);
    }
    case JV_STR:
    case JV_LIST:
        if (jinja_has_method(obj, name)) return mk_method(rt, obj, name);
        return jv_undef(name);
    default: return jv_undef(name);
    }
}

jv jinja_getitem(jrt *rt, jv obj, jv key, int line, int col) {
    switch (obj.t) {
    case JV_UNDEF:
        jrt_fail(rt, line, col, "'%s' is undefined (subscripting it)", obj.u.s.p ? obj.u.s.p : "value");
    case JV_DICT:
        if (key.t == JV_STR) {
            jv *v = jd_get(obj.u.d, key.u.s.p, key.u.s.n);
            if (v) return *v;
            if (jinja_has_method(obj, key.u.s.p)) return mk_method(rt, obj, key.u.s.p);
            return jv_undef(key.u.s.p);
        }
        return jv_undef(NULL);
    case JV_NS:
    case JV_LOOP:
        if (key.t == JV_STR) return jinja_getattr(rt, obj, key.u.s.p, line, col);
        return jv_undef(NULL);
    case JV_LIST:
    case JV_STR: {
        if (key.t == JV_STR) return jinja_getattr(rt, obj, key.u.s.p, line, col);
        if (key.t != JV_INT && key.t != JV_BOOL) return jv_undef(NULL);
        int64_t i = key.t == JV_INT ? key.u.i : key.u.b;
        int64_t n = obj.t == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)utf8_count(obj.u.s.p, obj.u.s.n);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return jv_undef("index out of range");
        if (obj.t == JV_LIST) return obj.u.l->v[i];
        size_t b = utf8_advance(obj.u.s.p, obj.u.s.n, 0, (size_t)i);
        size_t e = utf8_advance(obj.u.s.p, obj.u.s.n, b, 1);
        return jv_str(rt, obj.u.s.p + b, e - b);
    }
    default: return jv_undef(NULL);
    }
}

/* dotted attribute path for map/selectattr/sort/...: "a.b" or "0" */
static jv attr_path(jrt *rt, jv item, jv path, jargs *a) {
    if (path.t == JV_INT) return jinja_getitem(rt, item, path, a->line, a->col);
    if (path.t != JV_STR) jrt_fail(rt, a->line, a->col, "attribute must be a string");
    const char *p = path.u.s.p;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        jv key;
        char *endp;
        char tmp[32];
        bool is_int = false;
        if (n && n < sizeof tmp) {
            memcpy(tmp, p, n);
            tmp[n] = '\0';
            long long v = strtoll(tmp, &endp, 10);
            if (*endp == '\0' && (tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'))) {
                is_int = true;
                key = jv_int(v);
            }
        }
        if (!is_int) key = jv_str(rt, p, n);
        item = jinja_getitem(rt, item, key, a->line, a->col);
        if (!dot) return item;
        p = dot + 1;
    }
}

/* ---- methods -------------------------------------------------------------------------------- */

typedef jv (*method_fn)(jrt *rt, jv self, jargs *a);

static jv m_strip(jrt *rt, jv s, jargs *a) { return do_strip(rt, s, arg(a, 0, "chars", jv_none()), true, true); }
static jv m_lstrip(jrt *rt, jv s, jargs *a) { return do_strip(rt, s, arg(a, 0, "chars", jv_none()), true, false); }
static jv m_rstrip(jrt *rt, jv s, jargs *a) { return do_strip(rt, s, arg(a, 0, "chars", jv_none()), false, true); }
static jv m_upper(jrt *rt, jv s, jargs *a) { (void)a; return change_case(rt, s, CASE_UPPER); }
static jv m_lower(jrt *rt, jv s, jargs *a) { (void)a; return change_case(rt, s, CASE_LOWER); }
static jv m_title(jrt *rt, jv s, jargs *a) { (void)a; return change_case(rt, s, CASE_TITLE); }
static jv m_capitalize(jrt *rt, jv s, jargs *a) { (void)a; return change_case(rt, s, CASE_CAPITALIZE); }
static jv m_split(jrt *rt, jv s, jargs *a) {
    jv sep = arg(a, 0, "sep", jv_none());
    if (sep.t != JV_STR && sep.t != JV_NONE && sep.t != JV_UNDEF) jrt_fail(rt, a->line, a->col, "split separator must be a string");
    return do_split(rt, s, sep, arg_int(rt, a, 1, "maxsplit", -1));
}
static jv m_splitlines(jrt *rt, jv s, jargs *a) { return do_splitlines(rt, s, arg_bool(a, 0, "keepends", false)); }
static jv m_replace(jrt *rt, jv s, jargs *a) {
    jv o = arg(a, 0, "old", jv_undef(NULL)), n = arg(a, 1, "new", jv_undef(NULL));
    if (o.t != JV_STR || n.t != JV_STR) jrt_fail(rt, a->line, a->col, "replace() arguments must be strings");
    return do_replace(rt, s, o, n, arg_int(rt, a, 2, "count", -1));
}
static jv affix(jrt *rt, jv s, jargs *a, bool start) {
    jv p = arg(a, 0, "prefix", jv_undef(NULL));
    if (p.t == JV_LIST) {
        for (size_t i = 0; i < p.u.l->n; i++) {
            jv q = p.u.l->v[i];
            if (q.t != JV_STR) jrt_fail(rt, a->line, a->col, "startswith/endswith tuple items must be strings");
            if (q.u.s.n <= s.u.s.n && !memcmp(s.u.s.p + (start ? 0 : s.u.s.n - q.u.s.n), q.u.s.p, q.u.s.n)) return jv_bool(true);
        }
        return jv_bool(false);
    }
    if (p.t != JV_STR) jrt_fail(rt, a->line, a->col, "startswith/endswith argument must be a string");
    return jv_bool(p.u.s.n <= s.u.s.n && !memcmp(s.u.s.p + (start ? 0 : s.u.s.n - p.u.s.n), p.u.s.p, p.u.s.n));
}
static jv m_startswith(jrt *rt, jv s, jargs *a) { return affix(rt, s, a, true); }
static jv m_endswith(jrt *rt, jv s, jargs *a) { return affix(rt, s, a, false); }
static jv m_find(jrt *rt, jv s, jargs *a) {
    jv sub = need_str(rt, a, arg(a, 0, "sub", jv_undef(NULL)), "find()");
    for (size_t i = 0; i + sub.u.s.n <= s.u.s.n; i++)
        if (starts_at(s, i, sub)) return jv_int((int64_t)utf8_count(s.u.s.p, i));
    return jv_int(-1);
}
static jv m_rfind(jrt *rt, jv s, jargs *a) {
    jv sub = need_str(rt, a, arg(a, 0, "sub", jv_undef(NULL)), "rfind()");
    for (size_t i = s.u.s.n + 1; i-- > 0;)
        if (starts_at(s, i, sub)) return jv_int((int64_t)utf8_count(s.u.s.p, i));
    return jv_int(-1);
}
static jv m_str_count(jrt *rt, jv s, jargs *a) {
    jv sub = need_str(rt, a, arg(a, 0, "sub", jv_undef(NULL)), "count()");
    if (!sub.u.s.n) return jv_int((int64_t)utf8_count(s.u.s.p, s.u.s.n) + 1);
    int64_t c = 0;
    for (size_t i = 0; i + sub.u.s.n <= s.u.s.n;) {
        if (starts_at(s, i, sub)) { c++; i += sub.u.s.n; } else i++;
    }
    return jv_int(c);
}
static jv m_join(jrt *rt, jv s, jargs *a) {
    size_t n;
    jv *items;
    jv it = arg(a, 0, "iterable", jv_undef(NULL));
    jv_iterable_items(rt, it, &n, &items);
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (items[i].t != JV_STR) jrt_fail(rt, a->line, a->col, "sequence item %zu: expected str instance, %s found", i, jv_type_name(items[i]));
        if (i) jb_put(rt, &b, s.u.s.p, s.u.s.n);
        jb_put(rt, &b, items[i].u.s.p, items[i].u.s.n);
    }
    return jv_from_buf(rt, &b);
}
static jv str_pred(jv s, int kind) {
    if (!s.u.s.n) return jv_bool(false);
    size_t p = 0;
    bool any_cased = false;
    while (p < s.u.s.n) {
        int32_t c = dec(s.u.s.p, s.u.s.n, &p);
        utf8proc_category_t cat = utf8proc_category(c);
        bool ok;
        switch (kind) {
        case 0: ok = cat == UTF8PROC_CATEGORY_ND; break;
        case 1: ok = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO; break;
        case 2: ok = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO); break;
        case 3: ok = py_space(c); break;
        case 4: ok = cat != UTF8PROC_CATEGORY_LU && cat != UTF8PROC_CATEGORY_LT; any_cased |= cat == UTF8PROC_CATEGORY_LL; break;
        default: ok = cat != UTF8PROC_CATEGORY_LL && cat != UTF8PROC_CATEGORY_LT; any_cased |= cat == UTF8PROC_CATEGORY_LU; break;
        }
        if (!ok) return jv_bool(false);
    }
    return jv_bool(kind < 4 || any_cased);
}
static jv m_isdigit(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 0); }
static jv m_isalpha(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 1); }
static jv m_isalnum(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 2); }
static jv m_isspace(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 3); }
static jv m_islower(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 4); }
static jv m_isupper(jrt *rt, jv s, jargs *a) { (void)rt; (void)a; return str_pred(s, 5); }

static jv m_items(jrt *rt, jv d, jargs *a) {
    (void)a;
    jv l = jv_list(rt, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) jl_push(rt, &l, tuple2(rt, jv_str_nocopy(d.u.d->k[i], d.u.d->kn[i]), d.u.d->v[i]));
    return l;
}
static jv m_keys(jrt *rt, jv d, jargs *a) {
    (void)a;
    jv l = jv_list(rt, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) jl_push(rt, &l, jv_str_nocopy(d.u.d->k[i], d.u.d->kn[i]));
    return l;
}
static jv m_values(jrt *rt, jv d, jargs *a) {
    (void)a;
    jv l = jv_list(rt, d.u.d->n);
    for (size_t i = 0; i < d.u.d->n; i++) jl_push(rt, &l, d.u.d->v[i]);
    return l;
}
static jv m_get(jrt *rt, jv d, jargs *a) {
    jv k = arg(a, 0, "key", jv_undef(NULL));
    jv def = arg(a, 1, "default", jv_none());
    (void)rt;
    if (k.t != JV_STR) return def;
    jv *v = jd_get(d.u.d, k.u.s.p, k.u.s.n);
    return v ? *v : def;
}
static jv m_list_index(jrt *rt, jv l, jargs *a) {
    jv x = arg(a, 0, "value", jv_undef(NULL));
    for (size_t i = 0; i < l.u.l->n; i++)
        if (jv_eq(l.u.l->v[i], x)) return jv_int((int64_t)i);
    jrt_fail(rt, a->line, a->col, "list.index(x): x not in list");
}
static jv m_list_count(jrt *rt, jv l, jargs *a) {
    (void)rt;
    jv x = arg(a, 0, "value", jv_undef(NULL));
    int64_t c = 0;
    for (size_t i = 0; i < l.u.l->n; i++) c += jv_eq(l.u.l->v[i], x);
    return jv_int(c);
}
static jv m_cycle(jrt *rt, jv self, jargs *a) {
    if (!a->n) jrt_fail(rt, a->line, a->col, "no items for cycling given");
    return a->pos[self.u.loop->i % a->n];
}

typedef struct method_entry { jv_type on; const char *name; method_fn fn; } method_entry;
static const method_entry methods[] = {
    {JV_STR, "strip", m_strip}, {JV_STR, "lstrip", m_lstrip}, {JV_STR, "rstrip", m_rstrip},
    {JV_STR, "upper", m_upper}, {JV_STR, "lower", m_lower}, {JV_STR, "title", m_title},
    {JV_STR, "capitalize", m_capitalize}, {JV_STR, "split", m_split}, {JV_STR, "splitlines", m_splitlines},
    {JV_STR, "replace", m_replace}, {JV_STR, "startswith", m_startswith}, {JV_STR, "endswith", m_endswith},
    {JV_STR, "find", m_find}, {JV_STR, "rfind", m_rfind}, {JV_STR, "count", m_str_count}, {JV_STR, "join", m_join},
    {JV_STR, "isdigit", m_isdigit}, {JV_STR, "isalpha", m_isalpha}, {JV_STR, "isalnum", m_isalnum},
    {JV_STR, "isspace", m_isspace}, {JV_STR, "islower", m_islower}, {JV_STR, "isupper", m_isupper},
    {JV_DICT, "items", m_items}, {JV_DICT, "keys", m_keys}, {JV_DICT, "values", m_values}, {JV_DICT, "get", m_get},
    {JV_LIST, "index", m_list_index}, {JV_LIST, "count", m_list_count},
    {JV_LOOP, "cycle", m_cycle},
};

static const method_entry *find_method(jv self, const char *name) {
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (methods[i].on == self.t && !strcmp(methods[i].name, name)) return &methods[i];
    return NULL;
}

bool jinja_has_method(jv self, const char *name) { return find_method(self, name) != NULL; }

jv jinja_call_method(jrt *rt, jv self, const char *name, jargs *a) {
    const method_entry *m = find_method(self, name);
    if (!m) jrt_fail(rt, a->line, a->col, "'%s' object has no method '%s'", jv_type_name(self), name);
    return m->fn(rt, self, a);
}

/* ---- global functions ----------------------------------------------------------------------- */

static jv g_range(jrt *rt, jargs *a) {
    int64_t start = 0, stop, step = 1;
    if (a->n == 1) stop = arg_int(rt, a, 0, NULL, 0);
    else if (a->n == 2 || a->n == 3) {
        start = arg_int(rt, a, 0, NULL, 0);
        stop = arg_int(rt, a, 1, NULL, 0);
        if (a->n == 3) step = arg_int(rt, a, 2, NULL, 1);
    } else jrt_fail(rt, a->line, a->col, "range expected 1 to 3 arguments");
    if (step == 0) jrt_fail(rt, a->line, a->col, "range() arg 3 must not be zero");
    double cnt = step > 0 ? ceil(((double)stop - (double)start) / (double)step) : ceil(((double)start - (double)stop) / (double)-step);
    if (cnt < 0) cnt = 0;
    if (cnt > MAX_RANGE) jrt_fail(rt, a->line, a->col, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
    jv l = jv_list(rt, (size_t)cnt);
    for (int64_t i = 0, v = start; i < (int64_t)cnt; i++, v += step) jl_push(rt, &l, jv_int(v));
    return l;
}

static jv make_dict(jrt *rt, jargs *a, jv_type t) {
    jv d = jv_dict(rt, a->nkw);
    d.t = t;
    for (size_t i = 0; i < a->n; i++) {
        jv src = a->pos[i];
        if (src.t == JV_DICT || src.t == JV_NS) {
            for (size_t k = 0; k < src.u.d->n; k++) jd_set(rt, d.u.d, src.u.d->k[k], src.u.d->kn[k], src.u.d->v[k]);
        } else if (src.t == JV_LIST) {
            for (size_t k = 0; k < src.u.l->n; k++) {
                jv pr = src.u.l->v[k];
                if (pr.t != JV_LIST || pr.u.l->n != 2 || pr.u.l->v[0].t != JV_STR) jrt_fail(rt, a->line, a->col, "dict()/namespace() expects (key, value) pairs");
                jd_set(rt, d.u.d, pr.u.l->v[0].u.s.p, pr.u.l->v[0].u.s.n, pr.u.l->v[1]);
            }
        } else jrt_fail(rt, a->line, a->col, "dict()/namespace() positional argument must be a mapping");
    }
    for (size_t i = 0; i < a->nkw; i++) jd_set(rt, d.u.d, a->kwn[i], strlen(a->kwn[i]), a->kwv[i]);
    return d;
}
static jv g_namespace(jrt *rt, jargs *a) { return make_dict(rt, a, JV_NS); }
static jv g_dict(jrt *rt, jargs *a) { return make_dict(rt, a, JV_DICT); }

static jv g_raise_exception(jrt *rt, jargs *a) {
    jv m = soft_str(rt, arg(a, 0, "message", jv_undef(NULL)));
    *rt->err = al_err(AL_ERR_INVALID, "template raised an exception: %s", m.u.s.p);
    longjmp(*rt->jmp, 1);
}

static jv g_strftime_now(jrt *rt, jargs *a) {
    jv fmt = arg(a, 0, "format", jv_undef(NULL));
    if (fmt.t != JV_STR) jrt_fail(rt, a->line, a->col, "strftime_now expects a format string");
    struct tm tmv;
    time_t now = rt->o.fixed_now ? (time_t)rt->o.now : time(NULL);
    if (rt->o.fixed_now) gmtime_r(&now, &tmv);
    else localtime_r(&now, &tmv);
    char buf[512];
    size_t n = fmt.u.s.n ? strftime(buf, sizeof buf, fmt.u.s.p, &tmv) : 0;
    return jv_str(rt, buf, n);
}

typedef jv (*global_fn)(jrt *rt, jargs *a);
typedef struct global_entry { const char *name; global_fn fn; } global_entry;
static const global_entry globals_tab[] = {
    {"range", g_range}, {"namespace", g_namespace}, {"dict", g_dict},
    {"raise_exception", g_raise_exception}, {"strftime_now", g_strftime_now},
};

bool jinja_global(const char *name, jv *out) {
    for (size_t i = 0; i < sizeof globals_tab / sizeof *globals_tab; i++)
        if (!strcmp(globals_tab[i].name, name)) {
            out->t = JV_FUNC;
            out->tuple = false;
            out->u.s.p = globals_tab[i].name;
            out->u.s.n = i;
            return true;
        }
    return false;
}

jv jinja_call_global(jrt *rt, const char *name, jargs *a) {
    for (size_t i = 0; i < sizeof globals_tab / sizeof *globals_tab; i++)
        if (!strcmp(globals_tab[i].name, name)) return globals_tab[i].fn(rt, a);
    jrt_fail(rt, a->line, a->col, "unknown function '%s'", name);
}

/* ---- tests ---------------------------------------------------------------------------------- */

typedef bool (*test_fn)(jrt *rt, jv v, jargs *a);

static jv test_arg(jrt *rt, jargs *a) {
    if (!a->n && !a->nkw) jrt_fail(rt, a->line, a->col, "test needs an argument");
    return a->n ? a->pos[0] : a->kwv[0];
}
static bool t_defined(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t != JV_UNDEF; }
static bool t_undefined(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_UNDEF; }
static bool t_none(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_NONE; }
static bool t_string(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_STR; }
static bool t_mapping(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_DICT; }
static bool t_iterable(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF; }
static bool t_sequence(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF; }
static bool t_number(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return jv_is_num(v); }
static bool t_integer(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_INT; }
static bool t_float(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_FLOAT; }
static bool t_boolean(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_BOOL; }
static bool t_true(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_BOOL && v.u.b; }
static bool t_false(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_BOOL && !v.u.b; }
static bool t_callable(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_FUNC || v.t == JV_METHOD || v.t == JV_MACRO; }
static bool t_eq(jrt *rt, jv v, jargs *a) { return jv_eq(v, test_arg(rt, a)); }
static bool t_ne(jrt *rt, jv v, jargs *a) { return !jv_eq(v, test_arg(rt, a)); }
static bool t_lt(jrt *rt, jv v, jargs *a) { return jv_cmp(rt, v, test_arg(rt, a)) < 0; }
static bool t_le(jrt *rt, jv v, jargs *a) { return jv_cmp(rt, v, test_arg(rt, a)) <= 0; }
static bool t_gt(jrt *rt, jv v, jargs *a) { return jv_cmp(rt, v, test_arg(rt, a)) > 0; }
static bool t_ge(jrt *rt, jv v, jargs *a) { return jv_cmp(rt, v, test_arg(rt, a)) >= 0; }
static bool t_in(jrt *rt, jv v, jargs *a) {
    jv hay = test_arg(rt, a);
    if (hay.t == JV_STR) {
        if (v.t != JV_STR) jrt_fail(rt, a->line, a->col, "'in <string>' requires string as left operand");
        jv r = m_find(rt, hay, &(jargs){.pos = &v, .n = 1});
        return r.u.i >= 0;
    }
    if (hay.t == JV_LIST) {
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_eq(hay.u.l->v[i], v)) return true;
        return false;
    }
    if (hay.t == JV_DICT) return v.t == JV_STR && jd_get(hay.u.d, v.u.s.p, v.u.s.n);
    jrt_fail(rt, a->line, a->col, "argument of type '%s' is not iterable", jv_type_name(hay));
}
static int64_t need_int(jrt *rt, jv v, jargs *a) {
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    jrt_fail(rt, a->line, a->col, "expected an integer, got %s", jv_type_name(v));
}
static bool t_odd(jrt *rt, jv v, jargs *a) { return need_int(rt, v, a) % 2 != 0; }
static bool t_even(jrt *rt, jv v, jargs *a) { return need_int(rt, v, a) % 2 == 0; }
static bool t_divisibleby(jrt *rt, jv v, jargs *a) {
    int64_t d = need_int(rt, test_arg(rt, a), a);
    if (d == 0) jrt_fail(rt, a->line, a->col, "integer division or modulo by zero");
    return d == -1 || need_int(rt, v, a) % d == 0;
}
static bool t_sameas(jrt *rt, jv v, jargs *a) {
    jv o = test_arg(rt, a);
    if (v.t != o.t) return false;
    switch (v.t) {
    case JV_NONE: case JV_UNDEF: return true;
    case JV_BOOL: return v.u.b == o.u.b;
    case JV_LIST: return v.u.l == o.u.l;
    case JV_DICT: case JV_NS: return v.u.d == o.u.d;
    default: return jv_eq(v, o) && (v.t == JV_INT ? v.u.i >= -5 && v.u.i <= 256 : false);
    }
}
static bool t_lower(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_STR && jv_truthy(jv_eq(change_case(rt, v, CASE_LOWER), v) ? jv_bool(true) : jv_bool(false)); }
static bool t_upper(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v.t == JV_STR && jv_eq(change_case(rt, v, CASE_UPPER), v); }
static bool t_escaped(jrt *rt, jv v, jargs *a) { (void)rt; (void)v; (void)a; return false; }

typedef struct test_entry { const char *name; test_fn fn; } test_entry;
static const test_entry tests_tab[] = {
    {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"string", t_string},
    {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_sequence}, {"number", t_number},
    {"integer", t_integer}, {"float", t_float}, {"boolean", t_boolean}, {"true", t_true}, {"false", t_false},
    {"callable", t_callable}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"ne", t_ne}, {"!=", t_ne},
    {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le}, {"gt", t_gt},
    {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge}, {"in", t_in}, {"odd", t_odd},
    {"even", t_even}, {"divisibleby", t_divisibleby}, {"sameas", t_sameas}, {"lower", t_lower},
    {"upper", t_upper}, {"escaped", t_escaped},
};

bool jinja_test(jrt *rt, const char *name, jv self, jargs *a) {
    for (size_t i = 0; i < sizeof tests_tab / sizeof *tests_tab; i++)
        if (!strcmp(tests_tab[i].name, name)) return tests_tab[i].fn(rt, self, a);
    jrt_fail(rt, a->line, a->col, "no test named '%s'", name);
}

/* ---- filters -------------------------------------------------------------------------------- */

typedef jv (*filter_fn)(jrt *rt, jv v, jargs *a);

static jargs shift_args(jargs *a, size_t k) {
    jargs r = *a;
    if (r.n >= k) {
        r.pos += k;
        r.n -= k;
    } else {
        r.n = 0;
    }
    return r;
}

static jv seq_of(jrt *rt, jv v, jargs *a, size_t *n, jv **items) {
    if (v.t == JV_NONE || v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_FUNC || v.t == JV_MACRO || v.t == JV_METHOD || v.t == JV_LOOP)
        jrt_fail(rt, a->line, a->col, "'%s' object is not iterable", jv_type_name(v));
    return jv_iterable_items(rt, v, n, items);
}

static jv f_length(jrt *rt, jv v, jargs *a) {
    switch (v.t) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: return jv_int((int64_t)utf8_count(v.u.s.p, v.u.s.n));
    case JV_LIST: return jv_int((int64_t)v.u.l->n);
    case JV_DICT: return jv_int((int64_t)v.u.d->n);
    default: jrt_fail(rt, a->line, a->col, "object of type '%s' has no len()", jv_type_name(v));
    }
}
static jv f_trim(jrt *rt, jv v, jargs *a) { return do_strip(rt, soft_str(rt, v), arg(a, 0, "chars", jv_none()), true, true); }
static jv f_upper(jrt *rt, jv v, jargs *a) { (void)a; return change_case(rt, soft_str(rt, v), CASE_UPPER); }
static jv f_lower(jrt *rt, jv v, jargs *a) { (void)a; return change_case(rt, soft_str(rt, v), CASE_LOWER); }
static jv f_capitalize(jrt *rt, jv v, jargs *a) { (void)a; return change_case(rt, soft_str(rt, v), CASE_CAPITALIZE); }
static jv f_title(jrt *rt, jv v, jargs *a) {
    (void)a;
    /* jinja: words begin after [-\s({\[<]; each word: first char upper, rest lower */
    jv s = soft_str(rt, v);
    jbuf b = {0};
    size_t p = 0;
    bool at_start = true;
    while (p < s.u.s.n) {
        int32_t c = dec(s.u.s.p, s.u.s.n, &p);
        bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_space(c);
        if (sep) {
            enc(rt, &b, c);
            at_start = true;
        } else {
            enc(rt, &b, at_start ? utf8proc_toupper(c) : utf8proc_tolower(c));
            at_start = false;
        }
    }
    return jv_from_buf(rt, &b);
}
static jv f_string(jrt *rt, jv v, jargs *a) { (void)a; return soft_str(rt, v); }
static jv f_safe(jrt *rt, jv v, jargs *a) { (void)rt; (void)a; return v; }
static jv f_default(jrt *rt, jv v, jargs *a) {
    jv def = arg(a, 0, "default_value", jv_str_nocopy("", 0));
    bool boolean = arg_bool(a, 1, "boolean", false);
    (void)rt;
    if (v.t == JV_UNDEF || (boolean && !jv_truthy(v))) return def;
    return v;
}
static jv f_tojson(jrt *rt, jv v, jargs *a) {
    bool ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
    jv ind = arg(a, 1, "indent", jv_none());
    jv seps = arg(a, 2, "separators", jv_none());
    bool sort_keys = arg_bool(a, 3, "sort_keys", false);
    const char *indent = NULL;
    if (ind.t == JV_INT || ind.t == JV_BOOL) {
        int64_t k = ind.t == JV_INT ? ind.u.i : ind.u.b;
        if (k < 0) k = 0;
        if (k > 64) jrt_fail(rt, a->line, a->col, "tojson indent too large");
        char *s = ja_alloc(rt->a, (size_t)k + 1);
        memset(s, ' ', (size_t)k);
        indent = s;
    } else if (ind.t == JV_STR) {
        indent = ind.u.s.p;
    } else if (ind.t != JV_NONE && ind.t != JV_UNDEF) {
        jrt_fail(rt, a->line, a->col, "tojson indent must be an int or a string");
    }
    const char *item_sep = indent ? "," : ", ", *key_sep = ": ";
    if (seps.t == JV_LIST) {
        if (seps.u.l->n != 2 || seps.u.l->v[0].t != JV_STR || seps.u.l->v[1].t != JV_STR)
            jrt_fail(rt, a->line, a->col, "tojson separators must be two strings");
        item_sep = seps.u.l->v[0].u.s.p;
        key_sep = seps.u.l->v[1].u.s.p;
    }
    jbuf b = {0};
    jv_write_json(rt, &b, v, indent, item_sep, key_sep, sort_keys, ensure_ascii, 0);
    return jv_from_buf(rt, &b);
}
static jv f_int(jrt *rt, jv v, jargs *a) {
    jv def = arg(a, 0, "default", jv_int(0));
    int64_t base = arg_int(rt, a, 1, "base", 10);
    switch (v.t) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.u.b);
    case JV_FLOAT:
        if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18) return def;
        return jv_int((int64_t)v.u.f);
    case JV_STR: {
        jv s = do_strip(rt, v, jv_none(), true, true);
        char *end;
        if (!s.u.s.n || base < 2 || base > 36) return def;
        long long r = strtoll(s.u.s.p, &end, (int)base);
        if (*end == '\0') return jv_int(r);
        double f = strtod(s.u.s.p, &end);
        if (*end == '\0' && isfinite(f) && fabs(f) < 9.2e18) return jv_int((int64_t)f);
        return def;
    }
    default: return def;
    }
}
static jv f_float(jrt *rt, jv v, jargs *a) {
    jv def = arg(a, 0, "default", jv_float(0.0));
    switch (v.t) {
    case JV_FLOAT: return v;
    case JV_INT: return jv_float((double)v.u.i);
    case JV_BOOL: return jv_float(v.u.b);
    case JV_STR: {
        jv s = do_strip(rt, v, jv_none(), true, true);
        char *end;
        if (!s.u.s.n) return def;
        double f = strtod(s.u.s.p, &end);
        return *end == '\0' ? jv_float(f) : def;
    }
    default: return def;
    }
}
static jv f_join(jrt *rt, jv v, jargs *a) {
    jv sep = arg_str(rt, a, 0, "d", "");
    jv attr = arg(a, 1, "attribute", jv_none());
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) jb_put(rt, &b, sep.u.s.p, sep.u.s.n);
        jv it = attr.t != JV_NONE ? attr_path(rt, items[i], attr, a) : items[i];
        jv_write_str(rt, &b, it);
    }
    return jv_from_buf(rt, &b);
}
static jv f_first(jrt *rt, jv v, jargs *a) {
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    return n ? items[0] : jv_undef("first");
}
static jv f_last(jrt *rt, jv v, jargs *a) {
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    return n ? items[n - 1] : jv_undef("last");
}
static jv f_list(jrt *rt, jv v, jargs *a) {
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    jv l = jv_list(rt, n);
    for (size_t i = 0; i < n; i++) jl_push(rt, &l, items[i]);
    return l;
}
static jv f_items(jrt *rt, jv v, jargs *a) {
    if (v.t == JV_UNDEF) return jv_list(rt, 0);
    if (v.t != JV_DICT) jrt_fail(rt, a->line, a->col, "Can only get item pairs from a mapping.");
    return m_items(rt, v, a);
}
static jv f_replace(jrt *rt, jv v, jargs *a) {
    jv s = soft_str(rt, v);
    jv o = soft_str(rt, arg(a, 0, "old", jv_undef(NULL))), n = soft_str(rt, arg(a, 1, "new", jv_undef(NULL)));
    jv c = arg(a, 2, "count", jv_none());
    return do_replace(rt, s, o, n, c.t == JV_INT ? c.u.i : -1);
}

/* select/reject(attr): mode bit0 = reject, bit1 = by attribute */
static jv select_impl(jrt *rt, jv v, jargs *a, int mode) {
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    bool by_attr = mode & 2, reject = mode & 1;
    size_t k = by_attr ? 1 : 0;
    jv attr = by_attr ? arg(a, 0, "attribute", jv_undef(NULL)) : jv_none();
    jv test = k < a->n ? a->pos[k] : jv_none();
    if (test.t != JV_NONE && test.t != JV_STR) jrt_fail(rt, a->line, a->col, "test name must be a string");
    jargs targs = shift_args(a, k + 1);
    targs.nkw = 0;
    jv out = jv_list(rt, n);
    for (size_t i = 0; i < n; i++) {
        jrt_step(rt);
        jv x = by_attr ? attr_path(rt, items[i], attr, a) : items[i];
        bool ok = test.t == JV_STR ? jinja_test(rt, test.u.s.p, x, &targs) : jv_truthy(x);
        if (ok != reject) jl_push(rt, &out, items[i]);
    }
    return out;
}
static jv f_select(jrt *rt, jv v, jargs *a) { return select_impl(rt, v, a, 0); }
static jv f_reject(jrt *rt, jv v, jargs *a) { return select_impl(rt, v, a, 1); }
static jv f_selectattr(jrt *rt, jv v, jargs *a) { return select_impl(rt, v, a, 2); }
static jv f_rejectattr(jrt *rt, jv v, jargs *a) { return select_impl(rt, v, a, 3); }

static jv f_map(jrt *rt, jv v, jargs *a) {
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    jv attr = arg(a, 99, "attribute", jv_undef(NULL));
    jv out = jv_list(rt, n);
    if (attr.t != JV_UNDEF) {
        jv def = arg(a, 99, "default", jv_undef(NULL));
        for (size_t i = 0; i < n; i++) {
            jv x = attr_path(rt, items[i], attr, a);
            jl_push(rt, &out, x.t == JV_UNDEF && def.t != JV_UNDEF ? def : x);
        }
        return out;
    }
    if (!a->n || a->pos[0].t != JV_STR) jrt_fail(rt, a->line, a->col, "map requires a filter name or attribute=");
    jargs fa = shift_args(a, 1);
    for (size_t i = 0; i < n; i++) {
        jrt_step(rt);
        jl_push(rt, &out, jinja_filter(rt, a->pos[0].u.s.p, items[i], &fa));
    }
    return out;
}

static int cmp_ci(jrt *rt, jv x, jv y, bool case_sensitive) {
    if (!case_sensitive && x.t == JV_STR && y.t == JV_STR) {
        x = change_case(rt, x, CASE_LOWER);
        y = change_case(rt, y, CASE_LOWER);
    }
    return jv_cmp(rt, x, y);
}

/* stable merge sort of values by key */
static void sort_vals(jrt *rt, jv *v, jv *keys, size_t n, bool cs, bool rev) {
    if (n < 2) return;
    jv *tv = ja_alloc(rt->a, n * sizeof *tv), *tk = ja_alloc(rt->a, n * sizeof *tk);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                jrt_step(rt);
                int c = cmp_ci(rt, keys[j], keys[i], cs);
                bool take_right = rev ? c > 0 : c < 0;
                if (take_right) { tv[o] = v[j]; tk[o++] = keys[j++]; }
                else { tv[o] = v[i]; tk[o++] = keys[i++]; }
            }
            while (i < mid) { tv[o] = v[i]; tk[o++] = keys[i++]; }
            while (j < hi) { tv[o] = v[j]; tk[o++] = keys[j++]; }
        }
        memcpy(v, tv, n * sizeof *v);
        memcpy(keys, tk, n * sizeof *keys);
    }
}

static jv f_sort(jrt *rt, jv v, jargs *a) {
    bool rev = arg_bool(a, 0, "reverse", false), cs = arg_bool(a, 1, "case_sensitive", false);
    jv attr = arg(a, 2, "attribute", jv_none());
    jv l = f_list(rt, v, a);
    size_t n = l.u.l->n;
    jv *keys = ja_alloc(rt->a, (n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) keys[i] = attr.t != JV_NONE ? attr_path(rt, l.u.l->v[i], attr, a) : l.u.l->v[i];
    sort_vals(rt, l.u.l->v, keys, n, cs, rev);
    return l;
}
static jv f_dictsort(jrt *rt, jv v, jargs *a) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    jv by = arg_str(rt, a, 1, "by", "key");
    bool rev = arg_bool(a, 2, "reverse", false);
    if (v.t != JV_DICT) jrt_fail(rt, a->line, a->col, "dictsort expects a mapping");
    jv l = m_items(rt, v, a);
    size_t n = l.u.l->n;
    int pos = strcmp(by.u.s.p, "value") == 0 ? 1 : 0;
    jv *keys = ja_alloc(rt->a, (n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) keys[i] = l.u.l->v[i].u.l->v[pos];
    sort_vals(rt, l.u.l->v, keys, n, cs, rev);
    return l;
}
static jv f_unique(jrt *rt, jv v, jargs *a) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    jv attr = arg(a, 1, "attribute", jv_none());
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    jv out = jv_list(rt, n), seen = jv_list(rt, n);
    for (size_t i = 0; i < n; i++) {
        jv k = attr.t != JV_NONE ? attr_path(rt, items[i], attr, a) : items[i];
        if (!cs && k.t == JV_STR) k = change_case(rt, k, CASE_LOWER);
        bool dup = false;
        for (size_t j = 0; j < seen.u.l->n && !dup; j++) {
            jrt_step(rt);
            dup = jv_eq(seen.u.l->v[j], k);
        }
        if (!dup) {
            jl_push(rt, &seen, k);
            jl_push(rt, &out, items[i]);
        }
    }
    return out;
}
static jv f_reverse(jrt *rt, jv v, jargs *a) {
    if (v.t == JV_STR) {
        jbuf b = {0};
        size_t e = v.u.s.n;
        while (e > 0) {
            size_t s = e - 1;
            while (s > 0 && ((unsigned char)v.u.s.p[s] & 0xC0) == 0x80) s--;
            jb_put(rt, &b, v.u.s.p + s, e - s);
            e = s;
        }
        return jv_from_buf(rt, &b);
    }
    jv l = f_list(rt, v, a);
    for (size_t i = 0, j = l.u.l->n; i + 1 < j; i++, j--) {
        jv t = l.u.l->v[i];
        l.u.l->v[i] = l.u.l->v[j - 1];
        l.u.l->v[j - 1] = t;
    }
    return l;
}
static jv f_abs(jrt *rt, jv v, jargs *a) {
    if (v.t == JV_INT) {
        if (v.u.i == INT64_MIN) jrt_fail(rt, a->line, a->col, "integer overflow");
        return jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
    }
    if (v.t == JV_BOOL) return jv_int(v.u.b);
    if (v.t == JV_FLOAT) return jv_float(fabs(v.u.f));
    jrt_fail(rt, a->line, a->col, "bad operand type for abs(): '%s'", jv_type_name(v));
}
static jv f_round(jrt *rt, jv v, jargs *a) {
    int64_t prec = arg_int(rt, a, 0, "precision", 0);
    jv method = arg_str(rt, a, 1, "method", "common");
    if (!jv_is_num(v)) jrt_fail(rt, a->line, a->col, "round expects a number");
    double x = jv_num(v);
    if (prec < -300 || prec > 300) return jv_float(x);
    if (!strcmp(method.u.s.p, "common")) {
        if (v.t != JV_FLOAT) return v.t == JV_BOOL ? jv_int(v.u.b) : v;
        if (!isfinite(x)) return v;
        if (prec >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            return jv_float(strtod(buf, NULL));
        }
        double p = pow(10.0, (double)-prec);
        return jv_float(nearbyint(x / p) * p);
    }
    double p = pow(10.0, (double)prec);
    if (!strcmp(method.u.s.p, "ceil")) return jv_float(ceil(x * p) / p);
    if (!strcmp(method.u.s.p, "floor")) return jv_float(floor(x * p) / p);
    jrt_fail(rt, a->line, a->col, "method must be common, ceil or floor");
}
static jv f_indent(jrt *rt, jv v, jargs *a) {
    jv w = arg(a, 0, "width", jv_int(4));
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    jv ind;
    if (w.t == JV_STR) ind = w;
    else {
        int64_t k = w.t == JV_INT ? w.u.i : 4;
        if (k < 0) k = 0;
        if (k > 1024) jrt_fail(rt, a->line, a->col, "indent width too large");
        char *s = ja_alloc(rt->a, (size_t)k + 1);
        memset(s, ' ', (size_t)k);
        ind = jv_str_nocopy(s, (size_t)k);
    }
    jv s = soft_str(rt, v);
    jbuf tmp = {0};
    jb_put(rt, &tmp, s.u.s.p, s.u.s.n);
    jb_putc(rt, &tmp, '\n');
    jv lines = do_splitlines(rt, jv_from_buf(rt, &tmp), false);
    jbuf b = {0};
    if (first) jb_put(rt, &b, ind.u.s.p, ind.u.s.n);
    for (size_t i = 0; i < lines.u.l->n; i++) {
        jv ln = lines.u.l->v[i];
        if (i) {
            jb_putc(rt, &b, '\n');
            if (blank || ln.u.s.n) jb_put(rt, &b, ind.u.s.p, ind.u.s.n);
        }
        jb_put(rt, &b, ln.u.s.p, ln.u.s.n);
    }
    return jv_from_buf(rt, &b);
}
static jv f_sum(jrt *rt, jv v, jargs *a) {
    jv attr = arg(a, 0, "attribute", jv_none());
    jv acc = arg(a, 1, "start", jv_int(0));
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    jexpr at = {.line = a->line, .col = a->col};
    (void)at;
    for (size_t i = 0; i < n; i++) {
        jv x = attr.t != JV_NONE ? attr_path(rt, items[i], attr, a) : items[i];
        if (!jv_is_num(acc) || !jv_is_num(x)) jrt_fail(rt, a->line, a->col, "sum of non-numbers");
        if (acc.t == JV_FLOAT || x.t == JV_FLOAT) acc = jv_float(jv_num(acc) + jv_num(x));
        else {
            int64_t r;
            if (__builtin_add_overflow((int64_t)(acc.t == JV_INT ? acc.u.i : acc.u.b), (int64_t)(x.t == JV_INT ? x.u.i : x.u.b), &r))
                jrt_fail(rt, a->line, a->col, "integer overflow");
            acc = jv_int(r);
        }
    }
    return acc;
}
static jv minmax(jrt *rt, jv v, jargs *a, bool want_max) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    jv attr = arg(a, 1, "attribute", jv_none());
    size_t n;
    jv *items;
    seq_of(rt, v, a, &n, &items);
    if (!n) return jv_undef("min/max of empty sequence");
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        jv x = attr.t != JV_NONE ? attr_path(rt, items[i], attr, a) : items[i];
        jv y = attr.t != JV_NONE ? attr_path(rt, items[best], attr, a) : items[best];
        int c = cmp_ci(rt, x, y, cs);
        if (want_max ? c > 0 : c < 0) best = i;
    }
    return items[best];
}
static jv f_max(jrt *rt, jv v, jargs *a) { return minmax(rt, v, a, true); }
static jv f_min(jrt *rt, jv v, jargs *a) { return minmax(rt, v, a, false); }
static jv f_escape(jrt *rt, jv v, jargs *a) {
    (void)a;
    jv s = soft_str(rt, v);
    jbuf b = {0};
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        switch (c) {
        case '&': jb_puts(rt, &b, "&amp;"); break;
        case '<': jb_puts(rt, &b, "&lt;"); break;
        case '>': jb_puts(rt, &b, "&gt;"); break;
        case '"': jb_puts(rt, &b, "&#34;"); break;
        case '\'': jb_puts(rt, &b, "&#39;"); break;
        default: jb_putc(rt, &b, c);
        }
    }
    return jv_from_buf(rt, &b);
}
static jv f_attr(jrt *rt, jv v, jargs *a) {
    jv name = arg_str(rt, a, 0, "name", NULL);
    if (name.t != JV_STR) jrt_fail(rt, a->line, a->col, "attr needs a name");
    return jinja_getattr(rt, v, name.u.s.p, a->line, a->col);
}
static jv f_wordcount(jrt *rt, jv v, jargs *a) {
    jv words = do_split(rt, soft_str(rt, v), jv_none(), -1);
    (void)a;
    return jv_int((int64_t)words.u.l->n);
}
static jv f_format(jrt *rt, jv v, jargs *a) {
    jv s = soft_str(rt, v);
    jbuf b = {0};
    size_t k = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        if (c != '%' || i + 1 >= s.u.s.n) {
            jb_putc(rt, &b, c);
            continue;
        }
        char d = s.u.s.p[++i];
        if (d == '%') { jb_putc(rt, &b, '%'); continue; }
        if (k >= a->n) jrt_fail(rt, a->line, a->col, "not enough arguments for format string");
        jv x = a->pos[k++];
        if (d == 's') jv_write_str(rt, &b, x);
        else if (d == 'r') jv_write_repr(rt, &b, x);
        else if (d == 'd' || d == 'i') {
            if (!jv_is_num(x)) jrt_fail(rt, a->line, a->col, "%%d format: a number is required");
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)(x.t == JV_FLOAT ? (int64_t)x.u.f : x.t == JV_INT ? x.u.i : x.u.b));
            jb_puts(rt, &b, num);
        } else jrt_fail(rt, a->line, a->col, "unsupported format character '%c'", d);
    }
    return jv_from_buf(rt, &b);
}

typedef struct filter_entry { const char *name; filter_fn fn; } filter_entry;
static const filter_entry filters_tab[] = {
    {"length", f_length}, {"count", f_length}, {"trim", f_trim}, {"upper", f_upper}, {"lower", f_lower},
    {"capitalize", f_capitalize}, {"title", f_title}, {"string", f_string}, {"safe", f_safe},
    {"default", f_default}, {"d", f_default}, {"tojson", f_tojson}, {"int", f_int}, {"float", f_float},
    {"join", f_join}, {"first", f_first}, {"last", f_last}, {"list", f_list}, {"items", f_items},
    {"replace", f_replace}, {"select", f_select}, {"reject", f_reject}, {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr}, {"map", f_map}, {"sort", f_sort}, {"dictsort", f_dictsort},
    {"unique", f_unique}, {"reverse", f_reverse}, {"abs", f_abs}, {"round", f_round}, {"indent", f_indent},
    {"sum", f_sum}, {"max", f_max}, {"min", f_min}, {"escape", f_escape}, {"e", f_escape}, {"attr", f_attr},
    {"wordcount", f_wordcount}, {"format", f_format},
};

jv jinja_filter(jrt *rt, const char *name, jv self, jargs *a) {
    jrt_step(rt);
    for (size_t i = 0; i < sizeof filters_tab / sizeof *filters_tab; i++)
        if (!strcmp(filters_tab[i].name, name)) return filters_tab[i].fn(rt, self, a);
    jrt_fail(rt, a->line, a->col, "no filter named '%s'", name);
}
