/*
 * jinja_eval.c — the tree-walking interpreter and the public API of alloy/template.h.
 *
 * Scoping follows jinja2: the template's top level is one scope over the context; each for-loop
 * iteration, macro call and {% with %} opens a scope whose assignments vanish when it ends (which
 * is why templates use namespace() to carry state out of loops); {% if %} opens none.
 * Every node evaluated and every loop iteration costs one step; depth counts nested expression
 * evaluation and macro calls.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja_internal.h"

struct al_template {
    jarena arena;
    jbody body;
};

static jv eval(jrt *rt, const jexpr *e);
static void exec_body(jrt *rt, const jbody *b);

/* ---- scopes --------------------------------------------------------------------------------- */

static jframe *push_frame(jrt *rt, jframe *parent) {
    jframe *f = ja_alloc(rt->a, sizeof *f);
    f->parent = parent;
    f->vars = ja_alloc(rt->a, sizeof(jdict));
    rt->frame = f;
    return f;
}

static void set_var(jrt *rt, const char *name, jv v) { jd_set(rt, rt->frame->vars, name, strlen(name), v); }

static jv lookup(jrt *rt, const char *name) {
    size_t n = strlen(name);
    for (jframe *f = rt->frame; f; f = f->parent) {
        jv *v = jd_get(f->vars, name, n);
        if (v) return *v;
    }
    if (!strcmp(name, "caller") && rt->caller.t == JV_MACRO) return rt->caller;
    jv g;
    if (jinja_global(name, &g)) return g;
    return jv_undef(name);
}

/* ---- expressions ---------------------------------------------------------------------------- */

static jargs eval_args(jrt *rt, const jexpr *e) {
    jargs a = {.n = e->n_items, .nkw = e->n_kw, .kwn = e->kw_names, .line = e->line, .col = e->col};
    if (a.n) {
        a.pos = ja_alloc(rt->a, a.n * sizeof(jv));
        for (size_t i = 0; i < a.n; i++) a.pos[i] = eval(rt, e->items[i]);
    }
    if (a.nkw) {
        a.kwv = ja_alloc(rt->a, a.nkw * sizeof(jv));
        for (size_t i = 0; i < a.nkw; i++) a.kwv[i] = eval(rt, e->kw_vals[i]);
    }
    return a;
}

static jv call_macro(jrt *rt, jmacro *m, jargs *a, jv caller);

static jv call_value(jrt *rt, jv f, jargs *a) {
    switch (f.t) {
    case JV_FUNC: return jinja_call_global(rt, f.u.s.p, a);
    case JV_METHOD: return jinja_call_method(rt, *f.u.meth.self, f.u.meth.name, a);
    case JV_MACRO: return call_macro(rt, f.u.m, a, jv_undef(NULL));
    case JV_UNDEF: jrt_fail(rt, a->line, a->col, "'%s' is undefined", f.u.s.p ? f.u.s.p : "value");
    default: jrt_fail(rt, a->line, a->col, "'%s' object is not callable", jv_type_name(f));
    }
}

static int64_t checked(jrt *rt, const jexpr *e, bool ovf, int64_t r) {
    if (ovf) jrt_fail(rt, e->line, e->col, "integer overflow");
    return r;
}

static int64_t as_int(jv v) { return v.t == JV_INT ? v.u.i : (int64_t)v.u.b; }

static jv repeat(jrt *rt, const jexpr *e, jv seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > rt->o.max_output / seq.u.s.n) jrt_fail_code(rt, AL_ERR_RANGE, "string repetition too large");
        jbuf b = {0};
        for (int64_t i = 0; i < times; i++) jb_put(rt, &b, seq.u.s.p, seq.u.s.n);
        return jv_from_buf(rt, &b);
    }
    if ((uint64_t)times * (seq.u.l->n + 1) > rt->o.max_steps) jrt_fail_code(rt, AL_ERR_RANGE, "list repetition too large");
    jv l = jv_list(rt, seq.u.l->n * (size_t)times);
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < seq.u.l->n; j++) jl_push(rt, &l, seq.u.l->v[j]);
    (void)e;
    return l;
}

static jv arith(jrt *rt, const jexpr *e, char op, jv x, jv y) {
    if (x.t == JV_UNDEF || y.t == JV_UNDEF) {
        jv u = x.t == JV_UNDEF ? x : y;
        jrt_fail(rt, e->line, e->col, "'%s' is undefined", u.u.s.p ? u.u.s.p : "value");
    }
    if (op == '+') {
        if (x.t == JV_STR && y.t == JV_STR) {
            jbuf b = {0};
            jb_put(rt, &b, x.u.s.p, x.u.s.n);
            jb_put(rt, &b, y.u.s.p, y.u.s.n);
            return jv_from_buf(rt, &b);
        }
        if (x.t == JV_LIST && y.t == JV_LIST) {
            jv l = jv_list(rt, x.u.l->n + y.u.l->n);
            for (size_t i = 0; i < x.u.l->n; i++) jl_push(rt, &l, x.u.l->v[i]);
            for (size_t i = 0; i < y.u.l->n; i++) jl_push(rt, &l, y.u.l->v[i]);
            l.tuple = x.tuple;
            return l;
        }
    }
    if (op == '*') {
        if ((x.t == JV_STR || x.t == JV_LIST) && (y.t == JV_INT || y.t == JV_BOOL)) return repeat(rt, e, x, as_int(y));
        if ((y.t == JV_STR || y.t == JV_LIST) && (x.t == JV_INT || x.t == JV_BOOL)) return repeat(rt, e, y, as_int(x));
    }
    if (!jv_is_num(x) || !jv_is_num(y)) {
        static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
        const char *ops = "+-*/F%P";
        const char *p = strchr(ops, op);
        jrt_fail(rt, e->line, e->col, "unsupported operand type(s) for %s: '%s' and '%s'", p ? names[p - ops] : "?",
                 jv_type_name(x), jv_type_name(y));
    }
    bool ints = x.t != JV_FLOAT && y.t != JV_FLOAT;
    if (ints) {
        int64_t a = as_int(x), b = as_int(y), r;
        switch (op) {
        case '+': { bool o = __builtin_add_overflow(a, b, &r); return jv_int(checked(rt, e, o, r)); }
        case '-': { bool o = __builtin_sub_overflow(a, b, &r); return jv_int(checked(rt, e, o, r)); }
        case '*': { bool o = __builtin_mul_overflow(a, b, &r); return jv_int(checked(rt, e, o, r)); }
        case '/':
            if (b == 0) jrt_fail(rt, e->line, e->col, "division by zero");
            return jv_float((double)a / (double)b);
        case 'F':
        case '%': {
            if (b == 0) jrt_fail(rt, e->line, e->col, "integer division or modulo by zero");
            if (a == INT64_MIN && b == -1) jrt_fail(rt, e->line, e->col, "integer overflow");
            int64_t q = a / b, m = a % b;
            if (m != 0 && ((m < 0) != (b < 0))) { q--; m += b; }
            return jv_int(op == 'F' ? q : m);
        }
        case 'P': {
            if (b < 0) return jv_float(pow((double)a, (double)b));
            int64_t acc = 1;
            for (int64_t i = 0; i < b; i++) {
                if (__builtin_mul_overflow(acc, a, &acc)) jrt_fail(rt, e->line, e->col, "integer overflow");
                if (acc == 0 || acc == 1) break;
                jrt_step(rt);
            }
            return jv_int(acc);
        }
        }
    }
    double a = jv_num(x), b = jv_num(y);
    switch (op) {
    case '+': return jv_float(a + b);
    case '-': return jv_float(a - b);
    case '*': return jv_float(a * b);
    case '/':
        if (b == 0) jrt_fail(rt, e->line, e->col, "float division by zero");
        return jv_float(a / b);
    case 'F':
    case '%': {
        if (b == 0) jrt_fail(rt, e->line, e->col, "float modulo");
        double m = fmod(a, b);
        if (m != 0 && ((m < 0) != (b < 0))) m += b;
        if (op == '%') return jv_float(m);
        return jv_float(floor((a - m) / b + 0.5));
    }
    default: return jv_float(pow(a, b));
    }
}

static bool contains(jrt *rt, const jexpr *e, jv needle, jv hay) {
    switch (hay.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (needle.t != JV_STR) jrt_fail(rt, e->line, e->col, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        if (!needle.u.s.n) return true;
        for (size_t i = 0; i + needle.u.s.n <= hay.u.s.n; i++)
            if (!memcmp(hay.u.s.p + i, needle.u.s.p, needle.u.s.n)) return true;
        return false;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_eq(hay.u.l->v[i], needle)) return true;
        return false;
    case JV_DICT:
    case JV_NS:
        return needle.t == JV_STR && jd_get(hay.u.d, needle.u.s.p, needle.u.s.n) != NULL;
    default:
        jrt_fail(rt, e->line, e->col, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static bool compare(jrt *rt, const jexpr *e, jcmp op, jv x, jv y) {
    switch (op) {
    case JC_EQ: return jv_eq(x, y);
    case JC_NE: return !jv_eq(x, y);
    case JC_IN: return contains(rt, e, x, y);
    case JC_NOTIN: return !contains(rt, e, x, y);
    default: break;
    }
    int c = jv_cmp(rt, x, y);
    switch (op) {
    case JC_LT: return c < 0;
    case JC_LE: return c <= 0;
    case JC_GT: return c > 0;
    default: return c >= 0;
    }
}

/* Python slice of a list or string (code points). */
static jv slice(jrt *rt, const jexpr *e, jv obj, jv vstart, jv vstop, jv vstep) {
    if (obj.t != JV_LIST && obj.t != JV_STR) {
        if (obj.t == JV_UNDEF) jrt_fail(rt, e->line, e->col, "'%s' is undefined", obj.u.s.p ? obj.u.s.p : "value");
        return jv_undef(NULL);
    }
    for (int i = 0; i < 3; i++) {
        jv p = i == 0 ? vstart : i == 1 ? vstop : vstep;
        if (p.t != JV_NONE && p.t != JV_INT && p.t != JV_BOOL && p.t != JV_UNDEF)
            jrt_fail(rt, e->line, e->col, "slice indices must be integers or None");
    }
    int64_t len = obj.t == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)utf8_count(obj.u.s.p, obj.u.s.n);
    int64_t step = (vstep.t == JV_INT || vstep.t == JV_BOOL) ? as_int(vstep) : 1;
    if (step == 0) jrt_fail(rt, e->line, e->col, "slice step cannot be zero");
    bool has_start = vstart.t == JV_INT || vstart.t == JV_BOOL, has_stop = vstop.t == JV_INT || vstop.t == JV_BOOL;
    int64_t start, stop;
    if (step > 0) {
        start = has_start ? as_int(vstart) : 0;
        stop = has_stop ? as_int(vstop) : len;
        if (start < 0) start = start + len < 0 ? 0 : start + len;
        if (start > len) start = len;
        if (stop < 0) stop = stop + len < 0 ? 0 : stop + len;
        if (stop > len) stop = len;
    } else {
        start = has_start ? as_int(vstart) : len - 1;
        stop = has_stop ? as_int(vstop) : -1;
        if (has_start) {
            if (start < 0) start = start + len < 0 ? -1 : start + len;
            if (start >= len) start = len - 1;
        }
        if (has_stop) {
            if (stop < 0) stop = stop + len < 0 ? -1 : stop + len;
            if (stop >= len) stop = len - 1;
        }
    }
    /* code point offsets for strings */
    size_t *offs = NULL;
    if (obj.t == JV_STR) {
        offs = ja_alloc(rt->a, ((size_t)len + 1) * sizeof *offs);
        size_t p = 0;
        for (int64_t i = 0; i <= len; i++) {
            offs[i] = p;
            p = utf8_advance(obj.u.s.p, obj.u.s.n, p, 1);
        }
    }
    jv out = obj.t == JV_LIST ? jv_list(rt, 0) : jv_undef(NULL);
    jbuf b = {0};
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        jrt_step(rt);
        if (obj.t == JV_LIST) jl_push(rt, &out, obj.u.l->v[i]);
        else jb_put(rt, &b, obj.u.s.p + offs[i], offs[i + 1] - offs[i]);
    }
    if (obj.t == JV_STR) return jv_from_buf(rt, &b);
    out.tuple = obj.tuple;
    return out;
}

static jv eval_inner(jrt *rt, const jexpr *e) {
    switch (e->kind) {
    case JE_CONST: return *e->value;
    case JE_NAME: return lookup(rt, e->name);
    case JE_LIST:
    case JE_TUPLE: {
        jv l = jv_list(rt, e->n_items);
        for (size_t i = 0; i < e->n_items; i++) jl_push(rt, &l, eval(rt, e->items[i]));
        l.tuple = e->kind == JE_TUPLE;
        return l;
    }
    case JE_DICT: {
        jv d = jv_dict(rt, e->n_items);
        for (size_t i = 0; i < e->n_items; i++) {
            jv k = eval(rt, e->keys[i]);
            if (k.t != JV_STR) k = jv_to_str(rt, k);
            jd_set(rt, d.u.d, k.u.s.p, k.u.s.n, eval(rt, e->items[i]));
        }
        return d;
    }
    case JE_ATTR: return jinja_getattr(rt, eval(rt, e->a), e->name, e->line, e->col);
    case JE_ITEM: {
        jv obj = eval(rt, e->a);
        return jinja_getitem(rt, obj, eval(rt, e->b), e->line, e->col);
    }
    case JE_SLICE: {
        jv obj = eval(rt, e->a);
        jv s = e->b ? eval(rt, e->b) : jv_none();
        jv t = e->c ? eval(rt, e->c) : jv_none();
        jv st = e->items[0] ? eval(rt, e->items[0]) : jv_none();
        return slice(rt, e, obj, s, t, st);
    }
    case JE_CALL: {
        if (e->a->kind == JE_ATTR) { /* method call: obj.name(args) */
            jv obj = eval(rt, e->a->a);
            if (obj.t != JV_UNDEF && obj.t != JV_LOOP && jinja_has_method(obj, e->a->name)) {
                jargs a = eval_args(rt, e);
                return jinja_call_method(rt, obj, e->a->name, &a);
            }
            jv f = jinja_getattr(rt, obj, e->a->name, e->a->line, e->a->col);
            jargs a = eval_args(rt, e);
            return call_value(rt, f, &a);
        }
        jv f = eval(rt, e->a);
        jargs a = eval_args(rt, e);
        return call_value(rt, f, &a);
    }
    case JE_FILTER: {
        jv v = eval(rt, e->a);
        jargs a = eval_args(rt, e);
        return jinja_filter(rt, e->name, v, &a);
    }
    case JE_TEST: {
        jv v = eval(rt, e->a);
        jargs a = eval_args(rt, e);
        bool r = jinja_test(rt, e->name, v, &a);
        return jv_bool(e->negated ? !r : r);
    }
    case JE_UNARY: {
        jv v = eval(rt, e->a);
        if (e->op == 'n') return jv_bool(!jv_truthy(v));
        if (!jv_is_num(v)) jrt_fail(rt, e->line, e->col, "bad operand type for unary %c: '%s'", e->op, jv_type_name(v));
        if (e->op == '+') return v.t == JV_BOOL ? jv_int(v.u.b) : v;
        if (v.t == JV_FLOAT) return jv_float(-v.u.f);
        if (as_int(v) == INT64_MIN) jrt_fail(rt, e->line, e->col, "integer overflow");
        return jv_int(-as_int(v));
    }
    case JE_BINARY: {
        jv x = eval(rt, e->a);
        if (e->op == 'a') return jv_truthy(x) ? eval(rt, e->b) : x;
        if (e->op == 'o') return jv_truthy(x) ? x : eval(rt, e->b);
        jv y = eval(rt, e->b);
        if (e->op == '~') {
            jbuf b = {0};
            jv_write_str(rt, &b, x);
            jv_write_str(rt, &b, y);
            return jv_from_buf(rt, &b);
        }
        return arith(rt, e, e->op, x, y);
    }
    case JE_COMPARE: {
        jv x = eval(rt, e->items[0]);
        for (size_t i = 1; i < e->n_items; i++) {
            jv y = eval(rt, e->items[i]);
            if (!compare(rt, e, e->cmp_ops[i - 1], x, y)) return jv_bool(false);
            x = y;
        }
        return jv_bool(true);
    }
    case JE_COND:
        if (jv_truthy(eval(rt, e->a))) return eval(rt, e->b);
        return e->c ? eval(rt, e->c) : jv_undef(NULL);
    }
    return jv_undef(NULL);
}

static jv eval(jrt *rt, const jexpr *e) {
    jrt_step(rt);
    if (++rt->depth > rt->o.max_depth) jrt_fail_code(rt, AL_ERR_RANGE, "recursion depth limit (%d) exceeded", rt->o.max_depth);
    jv v = eval_inner(rt, e);
    rt->depth--;
    return v;
}

/* ---- macros --------------------------------------------------------------------------------- */

static jv render_body_to_string(jrt *rt, const jbody *b) {
    jbuf buf = {0};
    jbuf *saved = rt->out;
    rt->out = &buf;
    exec_body(rt, b);
    rt->out = saved;
    return jv_from_buf(rt, &buf);
}

static jv call_macro(jrt *rt, jmacro *m, jargs *a, jv caller) {
    const jnode *n = m->node;
    if (++rt->depth > rt->o.max_depth) jrt_fail_code(rt, AL_ERR_RANGE, "recursion depth limit (%d) exceeded", rt->o.max_depth);
    if (a->n > n->n_params) jrt_fail(rt, a->line, a->col, "macro '%s' takes not more than %zu argument(s)", n->name ? n->name : "caller", n->n_params);
    jframe *saved = rt->frame;
    jv saved_caller = rt->caller;
    /* evaluate defaults in the caller's scope first, then bind in the macro scope */
    jv *vals = n->n_params ? ja_alloc(rt->a, n->n_params * sizeof(jv)) : NULL;
    for (size_t i = 0; i < n->n_params; i++) {
        if (i < a->n) vals[i] = a->pos[i];
        else vals[i] = jv_undef(n->params[i]);
    }
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < n->n_params && strcmp(n->params[i], a->kwn[k])) i++;
        if (i == n->n_params) jrt_fail(rt, a->line, a->col, "macro '%s' got an unexpected keyword argument '%s'", n->name ? n->name : "caller", a->kwn[k]);
        vals[i] = a->kwv[k];
    }
    push_frame(rt, m->closure);
    for (size_t i = 0; i < n->n_params; i++) {
        if (vals[i].t == JV_UNDEF && n->defaults[i]) vals[i] = eval(rt, n->defaults[i]);
        set_var(rt, n->params[i], vals[i]);
    }
    rt->caller = caller;
    if (caller.t == JV_MACRO) set_var(rt, "caller", caller);
    jv out = render_body_to_string(rt, &n->body);
    rt->loop_ctl = 0;
    rt->frame = saved;
    rt->caller = saved_caller;
    rt->depth--;
    return out;
}

/* ---- statements ----------------------------------------------------------------------------- */

static void assign_targets(jrt *rt, const jnode *n, jv v) {
    if (n->n_targets == 1) {
        set_var(rt, n->targets[0], v);
        return;
    }
    size_t cnt;
    jv *items;
    if (v.t == JV_UNDEF || v.t == JV_NONE || v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT)
        jrt_fail(rt, n->line, n->col, "cannot unpack non-iterable %s object", jv_type_name(v));
    jv_iterable_items(rt, v, &cnt, &items);
    if (cnt != n->n_targets)
        jrt_fail(rt, n->line, n->col, "%s values to unpack (expected %zu, got %zu)", cnt > n->n_targets ? "too many" : "not enough", n->n_targets, cnt);
    for (size_t i = 0; i < cnt; i++) set_var(rt, n->targets[i], items[i]);
}

static void exec_for(jrt *rt, const jnode *n) {
    jv seq = eval(rt, n->expr);
    size_t cnt;
    jv *items;
    if (seq.t == JV_NONE || seq.t == JV_BOOL || seq.t == JV_INT || seq.t == JV_FLOAT || seq.t == JV_FUNC || seq.t == JV_MACRO)
        jrt_fail(rt, n->line, n->col, "'%s' object is not iterable", jv_type_name(seq));
    jv_iterable_items(rt, seq, &cnt, &items);
    jframe *saved = rt->frame;
    if (n->filter) { /* the `if` clause filters before loop.* is computed */
        jv kept = jv_list(rt, cnt);
        for (size_t i = 0; i < cnt; i++) {
            jrt_step(rt);
            push_frame(rt, saved);
            assign_targets(rt, n, items[i]);
            if (jv_truthy(eval(rt, n->filter))) jl_push(rt, &kept, items[i]);
            rt->frame = saved;
        }
        cnt = kept.u.l->n;
        items = kept.u.l->v;
    }
    if (!cnt) {
        push_frame(rt, saved);
        exec_body(rt, &n->else_body);
        rt->frame = saved;
        return;
    }
    jloop *lp = ja_alloc(rt->a, sizeof *lp);
    lp->items = items;
    lp->n = cnt;
    jv loopv = {.t = JV_LOOP};
    loopv.u.loop = lp;
    /* one scope reused by every iteration (cleared each time): assignments do not survive an
     * iteration, and a long loop does not grow memory */
    jframe *iter = push_frame(rt, saved);
    for (size_t i = 0; i < cnt; i++) {
        jrt_step(rt);
        lp->i = i;
        iter->vars->n = 0;
        rt->frame = iter;
        assign_targets(rt, n, items[i]);
        set_var(rt, "loop", loopv);
        exec_body(rt, &n->body);
        rt->frame = saved;
        if (rt->loop_ctl == 1) {
            rt->loop_ctl = 0;
            break;
        }
        rt->loop_ctl = 0;
    }
}

static void exec_node(jrt *rt, const jnode *n) {
    jrt_step(rt);
    switch (n->kind) {
    case JN_TEXT: jb_put(rt, rt->out, n->text, n->text_n); return;
    case JN_OUTPUT: jv_write_str(rt, rt->out, eval(rt, n->expr)); return;
    case JN_IF:
        for (size_t i = 0; i < n->n_conds; i++)
            if (jv_truthy(eval(rt, n->conds[i]))) {
                exec_body(rt, &n->bodies[i]);
                return;
            }
        exec_body(rt, &n->else_body);
        return;
    case JN_FOR: exec_for(rt, n); return;
    case JN_SET: {
        jv v = eval(rt, n->expr);
        if (n->attr) {
            jv ns = lookup(rt, n->targets[0]);
            if (ns.t != JV_NS) jrt_fail(rt, n->line, n->col, "cannot assign attribute on non-namespace object");
            jd_set(rt, ns.u.d, n->attr, strlen(n->attr), v);
            return;
        }
        assign_targets(rt, n, v);
        return;
    }
    case JN_SET_BLOCK: {
        jv v = render_body_to_string(rt, &n->body);
        if (n->expr) { /* filter chain applied to the captured text: innermost filter has a == NULL */
            const jexpr *chain[64];
            size_t k = 0;
            for (const jexpr *f = n->expr; f && k < 64; f = f->a) chain[k++] = f;
            while (k--) {
                jargs a = eval_args(rt, chain[k]);
                v = jinja_filter(rt, chain[k]->name, v, &a);
            }
        }
        set_var(rt, n->targets[0], v);
        return;
    }
    case JN_MACRO: {
        jmacro *m = ja_alloc(rt->a, sizeof *m);
        m->node = n;
        m->closure = rt->frame;
        jv v = {.t = JV_MACRO};
        v.u.m = m;
        set_var(rt, n->name, v);
        return;
    }
    case JN_CALL_BLOCK: {
        jmacro *cm = ja_alloc(rt->a, sizeof *cm);
        cm->node = n;
        cm->closure = rt->frame;
        jv callerv = {.t = JV_MACRO};
        callerv.u.m = cm;
        const jexpr *call = n->expr;
        jv f = eval(rt, call->a);
        jargs a = eval_args(rt, call);
        if (f.t != JV_MACRO) jrt_fail(rt, n->line, n->col, "{%% call %%} needs a macro");
        jb_put(rt, rt->out, "", 0);
        jv r = call_macro(rt, f.u.m, &a, callerv);
        jv_write_str(rt, rt->out, r);
        return;
    }
    case JN_FILTER_BLOCK: {
        jv v = render_body_to_string(rt, &n->body);
        const jexpr *chain[64];
        size_t k = 0;
        for (const jexpr *f = n->expr; f && k < 64; f = f->a) chain[k++] = f;
        while (k--) {
            jargs a = eval_args(rt, chain[k]);
            v = jinja_filter(rt, chain[k]->name, v, &a);
        }
        jv_write_str(rt, rt->out, v);
        return;
    }
    case JN_BREAK: rt->loop_ctl = 1; return;
    case JN_CONTINUE: rt->loop_ctl = 2; return;
    case JN_SCOPE: {
        if (!n->n_with) { /* {% generation %}: renders in place */
            exec_body(rt, &n->body);
            return;
        }
        jframe *saved = rt->frame;
        jv *vals = ja_alloc(rt->a, n->n_with * sizeof(jv));
        for (size_t i = 0; i < n->n_with; i++) vals[i] = eval(rt, n->with_vals[i]);
        push_frame(rt, saved);
        for (size_t i = 0; i < n->n_with; i++) set_var(rt, n->with_names[i], vals[i]);
        exec_body(rt, &n->body);
        rt->frame = saved;
        return;
    }
    }
}

static void exec_body(jrt *rt, const jbody *b) {
    for (size_t i = 0; i < b->n && !rt->loop_ctl; i++) exec_node(rt, b->v[i]);
}

/* ---- API ------------------------------------------------------------------------------------ */

al_status al_template_init(al_template **out, const char *src, size_t len) {
    if (!out || (!src && len)) return al_err(AL_ERR_INVALID, "al_template_init: NULL argument");
    *out = NULL;
    al_template *t = calloc(1, sizeof *t);
    if (!t) return al_err(AL_ERR_NOMEM, "al_template_init: out of memory");
    al_status st = al_ok();
    jmp_buf jb;
    t->arena.cap = (size_t)64 << 20;
    t->arena.jmp = &jb;
    t->arena.err = &st;
    if (setjmp(jb)) {
        ja_free(&t->arena);
        free(t);
        return st;
    }
    jtoks toks = {0};
    jinja_lex(&t->arena, src ? src : "", len, &toks);
    jinja_parse(&t->arena, &toks, &t->body);
    t->arena.jmp = NULL;
    t->arena.err = NULL;
    *out = t;
    return st;
}

void al_template_free(al_template *t) {
    if (!t) return;
    ja_free(&t->arena);
    free(t);
}

static al_status render(const al_template *t, const json_t *context, const json_t *overlay,
                        const al_template_opts *opts, char **out, size_t *out_len) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!t || !out) return al_err(AL_ERR_INVALID, "al_template_render: NULL argument");
    if (context && !json_is_object(context)) return al_err(AL_ERR_INVALID, "al_template_render: context must be a JSON object");
    al_template_opts o = opts ? *opts : (al_template_opts){0};
    if (!o.max_output) o.max_output = (size_t)16 << 20;
    if (!o.max_memory) o.max_memory = (size_t)256 << 20;
    if (!o.max_steps) o.max_steps = 50000000;
    if (o.max_depth <= 0) o.max_depth = 256;

    al_status st = al_ok();
    jmp_buf jb;
    jarena arena = {.cap = o.max_memory, .jmp = &jb, .err = &st};
    jrt rt = {.a = &arena, .jmp = &jb, .err = &st, .o = o};
    if (setjmp(jb)) {
        ja_free(&arena);
        return st;
    }
    rt.caller = jv_undef(NULL);
    rt.globals = push_frame(&rt, NULL);
    const json_t *layers[2] = {context, overlay};
    for (int l = 0; l < 2; l++) {
        if (!layers[l]) continue;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)layers[l], k, v) {
            size_t kn = strlen(k);
            jd_set(&rt, rt.globals->vars, ja_strndup(&arena, k, kn), kn, jv_from_json(&rt, v, 0));
        }
    }
    push_frame(&rt, rt.globals);
    jbuf buf = {0};
    rt.out = &buf;
    exec_body(&rt, &t->body);
    char *s = malloc(buf.n + 1);
    if (!s) {
        ja_free(&arena);
        return al_err(AL_ERR_NOMEM, "al_template_render: out of memory");
    }
    if (buf.n) memcpy(s, buf.p, buf.n);
    s[buf.n] = '\0';
    *out = s;
    if (out_len) *out_len = buf.n;
    ja_free(&arena);
    return st;
}

al_status al_template_render_opts(const al_template *t, const json_t *context, const al_template_opts *opts,
                                  char **out, size_t *out_len) {
    return render(t, context, NULL, opts, out, out_len);
}

al_status al_template_render(const al_template *t, const json_t *context, char **out, size_t *out_len) {
    return render(t, context, NULL, NULL, out, out_len);
}

al_status al_chat_render(const al_template *t, const json_t *messages, const json_t *tools,
                         bool add_generation_prompt, const json_t *extra, const char *bos,
                         const char *eos, const al_template_opts *opts, char **out, size_t *out_len) {
    if (out) *out = NULL;
    if (!messages || !json_is_array(messages)) return al_err(AL_ERR_INVALID, "al_chat_render: messages must be a JSON array");
    if (extra && !json_is_object(extra)) return al_err(AL_ERR_INVALID, "al_chat_render: extra must be a JSON object");
    json_t *ctx = json_object();
    if (!ctx) return al_err(AL_ERR_NOMEM, "al_chat_render: out of memory");
    int bad = 0;
    bad |= json_object_set(ctx, "messages", (json_t *)messages);
    bad |= json_object_set_new(ctx, "tools", tools ? json_incref((json_t *)tools) : json_null());
    bad |= json_object_set_new(ctx, "documents", json_null());
    bad |= json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    bad |= json_object_set_new(ctx, "bos_token", json_string(bos ? bos : ""));
    bad |= json_object_set_new(ctx, "eos_token", json_string(eos ? eos : ""));
    if (bad) {
        json_decref(ctx);
        return al_err(AL_ERR_INVALID, "al_chat_render: could not build the context (bos/eos must be UTF-8)");
    }
    al_status st = render(t, ctx, extra, opts, out, out_len);
    json_decref(ctx);
    return st;
}
