/*
 * jinja_parse.c — tokens -> AST, with jinja2's operator precedence (loosest first):
 *   a if c else b  <  or  <  and  <  not  <  comparisons (== != < <= > >= in, not in)
 *   <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  primary with postfix . [] () | is
 * Filters and tests bind to the unary expression on their left: `a + b | trim` is a + (b|trim),
 * `-1 | abs` is abs(-1). Nesting deeper than PARSE_MAX_DEPTH is a syntax error (no stack blow-up).
 */
#include <stdio.h>
#include <string.h>

#include "text/jinja_internal.h"

#define PARSE_MAX_DEPTH 200

typedef struct parser {
    jarena *a;
    const jtoks *t;
    size_t i;
    int depth;
} parser;

static _Noreturn void p_fail(parser *P, const jtok *k, const char *fmt, const char *arg) {
    char msg[160];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    if (P->a->err)
        *P->a->err = al_err(AL_ERR_FORMAT, "template syntax error at line %d, column %d: %s", k->line, k->col, msg);
    longjmp(*P->a->jmp, 1);
}

static const jtok *peek(parser *P) { return &P->t->v[P->i]; }
static const jtok *peek2(parser *P) { return P->i + 1 < P->t->n ? &P->t->v[P->i + 1] : &P->t->v[P->t->n - 1]; }
static const jtok *advance(parser *P) {
    const jtok *k = &P->t->v[P->i];
    if (k->type != JT_EOF) P->i++;
    return k;
}
static bool tok_op(const jtok *k, const char *op) { return k->type == JT_OP && strcmp(k->s, op) == 0; }
static bool tok_name(const jtok *k, const char *nm) { return k->type == JT_NAME && strcmp(k->s, nm) == 0; }
static bool accept_op(parser *P, const char *op) {
    if (!tok_op(peek(P), op)) return false;
    advance(P);
    return true;
}
static bool accept_name(parser *P, const char *nm) {
    if (!tok_name(peek(P), nm)) return false;
    advance(P);
    return true;
}
static void expect_op(parser *P, const char *op) {
    if (!accept_op(P, op)) p_fail(P, peek(P), "expected '%s'", op);
}
static const char *expect_name(parser *P) {
    const jtok *k = peek(P);
    if (k->type != JT_NAME) p_fail(P, k, "expected a name%s", NULL);
    advance(P);
    return k->s;
}
static void expect_block_end(parser *P) {
    const jtok *k = peek(P);
    if (k->type != JT_BLOCK_END) p_fail(P, k, "expected end of block tag '%%}'%s", NULL);
    advance(P);
}

static jexpr *mk(parser *P, jexpr_kind kind, const jtok *at) {
    jexpr *e = ja_alloc(P->a, sizeof *e);
    e->kind = kind;
    e->line = at->line;
    e->col = at->col;
    return e;
}

/* growable pointer arrays in the arena */
typedef struct pvec { void **v; size_t n, cap; } pvec;
static void pv_push(parser *P, pvec *pv, void *x) {
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 4;
        void **v = ja_alloc(P->a, cap * sizeof *v);
        if (pv->n) memcpy(v, pv->v, pv->n * sizeof *v);
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = x;
}

static jexpr *parse_expr(parser *P);
static jexpr *parse_or(parser *P);
static jexpr *parse_unary(parser *P, bool with_filter);
static jexpr *parse_primary(parser *P);

static void enter(parser *P) {
    if (++P->depth > PARSE_MAX_DEPTH) p_fail(P, peek(P), "expression nested too deeply%s", NULL);
}

/* (args, name=kw) after '(' has been consumed; stops after ')' */
static void parse_args(parser *P, jexpr *e) {
    pvec args = {0}, kwn = {0}, kwv = {0};
    while (!accept_op(P, ")")) {
        if (args.n + kwn.n) expect_op(P, ",");
        if (accept_op(P, ")")) break; /* trailing comma */
        const jtok *k = peek(P);
        if (k->type == JT_NAME && tok_op(peek2(P), "=")) {
            advance(P);
            advance(P);
            pv_push(P, &kwn, (void *)k->s);
            pv_push(P, &kwv, parse_expr(P));
        } else {
            if (kwn.n) p_fail(P, k, "positional argument after keyword argument%s", NULL);
            if (tok_op(k, "*") || tok_op(k, "**")) p_fail(P, k, "*args / **kwargs are not supported%s", NULL);
            pv_push(P, &args, parse_expr(P));
        }
    }
    e->items = (jexpr **)args.v;
    e->n_items = args.n;
    e->kw_names = (const char **)kwn.v;
    e->kw_vals = (jexpr **)kwv.v;
    e->n_kw = kwn.n;
}

static jexpr *parse_const(parser *P, const jtok *at, jv v) {
    jexpr *e = mk(P, JE_CONST, at);
    e->value = ja_alloc(P->a, sizeof(jv));
    *e->value = v;
    return e;
}

static jexpr *parse_subscript(parser *P, jexpr *obj) {
    const jtok *at = peek(P);
    if (accept_op(P, ".")) {
        const jtok *k = advance(P);
        if (k->type == JT_NAME) {
            jexpr *e = mk(P, JE_ATTR, at);
            e->a = obj;
            e->name = k->s;
            return e;
        }
        if (k->type == JT_INT) {
            jexpr *e = mk(P, JE_ITEM, at);
            e->a = obj;
            e->b = parse_const(P, k, (jv){.t = JV_INT, .u.i = k->i});
            return e;
        }
        p_fail(P, k, "expected attribute name after '.'%s", NULL);
    }
    expect_op(P, "[");
    jexpr *parts[3] = {NULL, NULL, NULL};
    bool is_slice = false;
    int idx = 0;
    for (;;) {
        const jtok *k = peek(P);
        if (tok_op(k, "]")) break;
        if (tok_op(k, ":")) {
            if (++idx > 2) p_fail(P, k, "too many ':' in slice%s", NULL);
            is_slice = true;
            advance(P);
            continue;
        }
        if (parts[idx]) p_fail(P, k, "expected ']'%s", NULL);
        parts[idx] = parse_expr(P);
        if (!is_slice && tok_op(peek(P), ",")) p_fail(P, peek(P), "tuple subscripts are not supported%s", NULL);
    }
    expect_op(P, "]");
    if (!is_slice) {
        if (!parts[0]) p_fail(P, at, "empty subscript%s", NULL);
        jexpr *e = mk(P, JE_ITEM, at);
        e->a = obj;
        e->b = parts[0];
        return e;
    }
    jexpr *e = mk(P, JE_SLICE, at);
    e->a = obj;
    e->b = parts[0];
    e->c = parts[1];
    e->items = ja_alloc(P->a, sizeof(jexpr *));
    e->items[0] = parts[2];
    e->n_items = 1;
    return e;
}

static jexpr *parse_filter(parser *P, jexpr *obj) {
    const jtok *at = peek(P);
    const char *name = expect_name(P);
    while (tok_op(peek(P), ".")) { /* dotted filter names: join them */
        advance(P);
        const char *more = expect_name(P);
        size_t n1 = strlen(name), n2 = strlen(more);
        char *s = ja_alloc(P->a, n1 + n2 + 2);
        memcpy(s, name, n1);
        s[n1] = '.';
        memcpy(s + n1 + 1, more, n2);
        name = s;
    }
    jexpr *e = mk(P, JE_FILTER, at);
    e->a = obj;
    e->name = name;
    if (accept_op(P, "(")) parse_args(P, e);
    return e;
}

static jexpr *parse_test(parser *P, jexpr *obj) {
    const jtok *at = peek(P);
    bool neg = accept_name(P, "not");
    const char *name = expect_name(P);
    jexpr *e = mk(P, JE_TEST, at);
    e->a = obj;
    e->negated = neg;
    e->name = name;
    const jtok *k = peek(P);
    if (accept_op(P, "(")) {
        parse_args(P, e);
    } else if ((k->type == JT_NAME || k->type == JT_STRING || k->type == JT_INT || k->type == JT_FLOAT ||
                tok_op(k, "[") || tok_op(k, "{")) &&
               !tok_name(k, "else") && !tok_name(k, "or") && !tok_name(k, "and")) {
        if (tok_name(k, "is")) p_fail(P, k, "unexpected 'is'%s", NULL);
        jexpr *arg = parse_primary(P);
        while (tok_op(peek(P), ".") || tok_op(peek(P), "[")) arg = parse_subscript(P, arg);
        e->items = ja_alloc(P->a, sizeof(jexpr *));
        e->items[0] = arg;
        e->n_items = 1;
    }
    return e;
}

static jexpr *parse_postfix(parser *P, jexpr *e, bool with_filter) {
    for (;;) {
        const jtok *k = peek(P);
        if (tok_op(k, ".") || tok_op(k, "[")) {
            e = parse_subscript(P, e);
        } else if (tok_op(k, "(")) {
            advance(P);
            jexpr *c = mk(P, JE_CALL, k);
            c->a = e;
            parse_args(P, c);
            e = c;
        } else if (with_filter && tok_op(k, "|")) {
            advance(P);
            e = parse_filter(P, e);
        } else if (with_filter && tok_name(k, "is")) {
            advance(P);
            e = parse_test(P, e);
        } else {
            return e;
        }
    }
}

static jexpr *parse_seq(parser *P, jexpr_kind kind, const jtok *at, const char *close) {
    jexpr *e = mk(P, kind, at);
    pvec items = {0}, keys = {0};
    while (!accept_op(P, close)) {
        if (items.n) {
            expect_op(P, ",");
            if (accept_op(P, close)) break;
        }
        if (kind == JE_DICT) {
            pv_push(P, &keys, parse_expr(P));
            expect_op(P, ":");
        }
        pv_push(P, &items, parse_expr(P));
    }
    e->items = (jexpr **)items.v;
    e->n_items = items.n;
    e->keys = (jexpr **)keys.v;
    return e;
}

static jexpr *parse_primary(parser *P) {
    enter(P);
    const jtok *k = advance(P);
    jexpr *e;
    switch (k->type) {
    case JT_NAME:
        if (!strcmp(k->s, "true") || !strcmp(k->s, "True")) e = parse_const(P, k, (jv){.t = JV_BOOL, .u.b = true});
        else if (!strcmp(k->s, "false") || !strcmp(k->s, "False")) e = parse_const(P, k, (jv){.t = JV_BOOL, .u.b = false});
        else if (!strcmp(k->s, "none") || !strcmp(k->s, "None")) e = parse_const(P, k, (jv){.t = JV_NONE});
        else {
            e = mk(P, JE_NAME, k);
            e->name = k->s;
        }
        break;
    case JT_STRING: {
        /* adjacent string literals concatenate */
        size_t n = k->n;
        const char *s = k->s;
        while (peek(P)->type == JT_STRING) {
            const jtok *k2 = advance(P);
            char *c = ja_alloc(P->a, n + k2->n + 1);
            memcpy(c, s, n);
            memcpy(c + n, k2->s, k2->n);
            n += k2->n;
            s = c;
        }
        jv v = {.t = JV_STR};
        v.u.s.p = s;
        v.u.s.n = n;
        e = parse_const(P, k, v);
        break;
    }
    case JT_INT: e = parse_const(P, k, (jv){.t = JV_INT, .u.i = k->i}); break;
    case JT_FLOAT: e = parse_const(P, k, (jv){.t = JV_FLOAT, .u.f = k->f}); break;
    case JT_OP:
        if (tok_op(k, "(")) {
            if (accept_op(P, ")")) {
                e = mk(P, JE_TUPLE, k);
                break;
            }
            e = parse_expr(P);
            if (tok_op(peek(P), ",")) {
                pvec items = {0};
                pv_push(P, &items, e);
                while (accept_op(P, ",")) {
                    if (tok_op(peek(P), ")")) break;
                    pv_push(P, &items, parse_expr(P));
                }
                e = mk(P, JE_TUPLE, k);
                e->items = (jexpr **)items.v;
                e->n_items = items.n;
            }
            expect_op(P, ")");
            break;
        }
        if (tok_op(k, "[")) { e = parse_seq(P, JE_LIST, k, "]"); break; }
        if (tok_op(k, "{")) { e = parse_seq(P, JE_DICT, k, "}"); break; }
        p_fail(P, k, "unexpected '%s'", k->s);
    default:
        p_fail(P, k, "unexpected %s", k->type == JT_EOF ? "end of template" : "token");
    }
    P->depth--;
    return e;
}

static jexpr *parse_unary(parser *P, bool with_filter) {
    enter(P);
    const jtok *k = peek(P);
    jexpr *e;
    if (tok_op(k, "-") || tok_op(k, "+")) {
        advance(P);
        e = mk(P, JE_UNARY, k);
        e->op = k->s[0];
        e->a = parse_unary(P, false);
    } else {
        e = parse_primary(P);
    }
    e = parse_postfix(P, e, with_filter);
    P->depth--;
    return e;
}

static jexpr *binary(parser *P, const jtok *at, char op, jexpr *l, jexpr *r) {
    jexpr *e = mk(P, JE_BINARY, at);
    e->op = op;
    e->a = l;
    e->b = r;
    return e;
}

static jexpr *parse_pow(parser *P) {
    jexpr *l = parse_unary(P, true);
    while (tok_op(peek(P), "**")) {
        const jtok *k = advance(P);
        l = binary(P, k, 'P', l, parse_unary(P, true));
    }
    return l;
}

static jexpr *parse_math2(parser *P) {
    jexpr *l = parse_pow(P);
    for (;;) {
        const jtok *k = peek(P);
        char op = tok_op(k, "*") ? '*' : tok_op(k, "/") ? '/' : tok_op(k, "//") ? 'F' : tok_op(k, "%") ? '%' : 0;
        if (!op) return l;
        advance(P);
        l = binary(P, k, op, l, parse_pow(P));
    }
}

static jexpr *parse_concat(parser *P) {
    jexpr *l = parse_math2(P);
    while (tok_op(peek(P), "~")) {
        const jtok *k = advance(P);
        l = binary(P, k, '~', l, parse_math2(P));
    }
    return l;
}

static jexpr *parse_math1(parser *P) {
    jexpr *l = parse_concat(P);
    for (;;) {
        const jtok *k = peek(P);
        char op = tok_op(k, "+") ? '+' : tok_op(k, "-") ? '-' : 0;
        if (!op) return l;
        advance(P);
        l = binary(P, k, op, l, parse_concat(P));
    }
}

static jexpr *parse_compare(parser *P) {
    const jtok *at = peek(P);
    jexpr *first = parse_math1(P);
    pvec operands = {0};
    jcmp ops[64];
    size_t nops = 0;
    for (;;) {
        const jtok *k = peek(P);
        jcmp op;
        if (tok_op(k, "==")) op = JC_EQ;
        else if (tok_op(k, "!=")) op = JC_NE;
        else if (tok_op(k, "<")) op = JC_LT;
        else if (tok_op(k, "<=")) op = JC_LE;
        else if (tok_op(k, ">")) op = JC_GT;
        else if (tok_op(k, ">=")) op = JC_GE;
        else if (tok_name(k, "in")) op = JC_IN;
        else if (tok_name(k, "not") && tok_name(peek2(P), "in")) {
            advance(P);
            op = JC_NOTIN;
        } else break;
        advance(P);
        if (nops == 64) p_fail(P, k, "comparison chain too long%s", NULL);
        if (!operands.n) pv_push(P, &operands, first);
        ops[nops++] = op;
        pv_push(P, &operands, parse_math1(P));
    }
    if (!nops) return first;
    jexpr *e = mk(P, JE_COMPARE, at);
    e->items = (jexpr **)operands.v;
    e->n_items = operands.n;
    e->cmp_ops = ja_alloc(P->a, nops * sizeof(jcmp));
    memcpy(e->cmp_ops, ops, nops * sizeof(jcmp));
    return e;
}

static jexpr *parse_not(parser *P) {
    const jtok *k = peek(P);
    if (tok_name(k, "not")) {
        advance(P);
        enter(P);
        jexpr *e = mk(P, JE_UNARY, k);
        e->op = 'n';
        e->a = parse_not(P);
        P->depth--;
        return e;
    }
    return parse_compare(P);
}

static jexpr *parse_and(parser *P) {
    jexpr *l = parse_not(P);
    while (tok_name(peek(P), "and")) {
        const jtok *k = advance(P);
        l = binary(P, k, 'a', l, parse_not(P));
    }
    return l;
}

static jexpr *parse_or(parser *P) {
    jexpr *l = parse_and(P);
    while (tok_name(peek(P), "or")) {
        const jtok *k = advance(P);
        l = binary(P, k, 'o', l, parse_and(P));
    }
    return l;
}

static jexpr *parse_expr(parser *P) {
    enter(P);
    jexpr *e = parse_or(P);
    while (tok_name(peek(P), "if")) {
        const jtok *k = advance(P);
        jexpr *c = mk(P, JE_COND, k);
        c->b = e;
        c->a = parse_or(P);
        if (accept_name(P, "else")) c->c = parse_expr(P);
        e = c;
    }
    P->depth--;
    return e;
}

/* expression or bare tuple `a, b` (used by {{ }}, set and for's iterable) */
static jexpr *parse_tuple(parser *P, bool with_condexpr) {
    const jtok *at = peek(P);
    jexpr *e = with_condexpr ? parse_expr(P) : parse_or(P);
    if (!tok_op(peek(P), ",")) return e;
    pvec items = {0};
    pv_push(P, &items, e);
    while (accept_op(P, ",")) {
        const jtok *k = peek(P);
        if (k->type == JT_BLOCK_END || k->type == JT_VAR_END || tok_name(k, "if")) break;
        pv_push(P, &items, with_condexpr ? parse_expr(P) : parse_or(P));
    }
    jexpr *t = mk(P, JE_TUPLE, at);
    t->items = (jexpr **)items.v;
    t->n_items = items.n;
    return t;
}

/* ---- statements ----------------------------------------------------------------------------- */

static jnode *mkn(parser *P, jnode_kind kind, const jtok *at) {
    jnode *n = ja_alloc(P->a, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static void body_push(parser *P, jbody *b, jnode *n) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        jnode **v = ja_alloc(P->a, cap * sizeof *v);
        if (b->n) memcpy(v, b->v, b->n * sizeof *v);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = n;
}

/* Parses nodes until `{% <one of ends> ...` (the keyword is consumed and returned, the rest of
 * that tag is left to the caller) or EOF when ends == NULL. */
static const char *parse_body(parser *P, jbody *b, const char *const *ends, const char *what);

static void parse_targets(parser *P, jnode *n, bool allow_attr) {
    pvec names = {0};
    bool paren = accept_op(P, "(");
    do {
        const char *nm = expect_name(P);
        if (allow_attr && !names.n && tok_op(peek(P), ".")) {
            advance(P);
            n->attr = expect_name(P);
            pv_push(P, &names, (void *)nm);
            break;
        }
        pv_push(P, &names, (void *)nm);
    } while (accept_op(P, ","));
    if (paren) expect_op(P, ")");
    n->targets = (const char **)names.v;
    n->n_targets = names.n;
}

static void parse_params(parser *P, jnode *n) {
    pvec names = {0}, defs = {0};
    if (accept_op(P, "(")) {
        while (!accept_op(P, ")")) {
            if (names.n) expect_op(P, ",");
            if (accept_op(P, ")")) break;
            pv_push(P, &names, (void *)expect_name(P));
            pv_push(P, &defs, accept_op(P, "=") ? parse_expr(P) : NULL);
        }
    }
    n->params = (const char **)names.v;
    n->defaults = (jexpr **)defs.v;
    n->n_params = names.n;
}

static jnode *parse_stmt(parser *P, const jtok *at) {
    const jtok *k = peek(P);
    if (k->type != JT_NAME) p_fail(P, k, "expected a statement name after '{%%'%s", NULL);
    advance(P);
    const char *kw = k->s;
    if (!strcmp(kw, "if")) {
        jnode *n = mkn(P, JN_IF, k);
        pvec conds = {0};
        jbody *bodies = NULL;
        size_t cap = 0;
        jexpr *cond = parse_expr(P);
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        for (;;) {
            expect_block_end(P);
            if (conds.n == cap) {
                cap = cap ? cap * 2 : 4;
                jbody *nb = ja_alloc(P->a, cap * sizeof *nb);
                if (conds.n) memcpy(nb, bodies, conds.n * sizeof *nb);
                bodies = nb;
            }
            pv_push(P, &conds, cond);
            const char *end = parse_body(P, &bodies[conds.n - 1], ends, "endif");
            if (!strcmp(end, "elif")) {
                cond = parse_expr(P);
                continue;
            }
            if (!strcmp(end, "else")) {
                expect_block_end(P);
                static const char *const ends2[] = {"endif", NULL};
                parse_body(P, &n->else_body, ends2, "endif");
            }
            expect_block_end(P);
            break;
        }
        n->conds = (jexpr **)conds.v;
        n->bodies = bodies;
        n->n_conds = conds.n;
        return n;
    }
    if (!strcmp(kw, "for")) {
        jnode *n = mkn(P, JN_FOR, k);
        parse_targets(P, n, false);
        if (!accept_name(P, "in")) p_fail(P, peek(P), "expected 'in' in for loop%s", NULL);
        n->expr = parse_tuple(P, false);
        if (accept_name(P, "if")) n->filter = parse_expr(P);
        if (tok_name(peek(P), "recursive")) p_fail(P, peek(P), "recursive loops are not supported%s", NULL);
        expect_block_end(P);
        static const char *const ends[] = {"else", "endfor", NULL};
        const char *end = parse_body(P, &n->body, ends, "endfor");
        if (!strcmp(end, "else")) {
            expect_block_end(P);
            static const char *const ends2[] = {"endfor", NULL};
            parse_body(P, &n->else_body, ends2, "endfor");
        }
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "set")) {
        jnode *n = mkn(P, JN_SET, k);
        parse_targets(P, n, true);
        if (accept_op(P, "=")) {
            n->expr = parse_tuple(P, true);
            expect_block_end(P);
            return n;
        }
        if (n->n_targets != 1 || n->attr) p_fail(P, peek(P), "expected '=' in set%s", NULL);
        n->kind = JN_SET_BLOCK;
        while (accept_op(P, "|")) n->expr = parse_filter(P, n->expr);
        expect_block_end(P);
        static const char *const ends[] = {"endset", NULL};
        parse_body(P, &n->body, ends, "endset");
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "macro")) {
        jnode *n = mkn(P, JN_MACRO, k);
        n->name = expect_name(P);
        parse_params(P, n);
        expect_block_end(P);
        static const char *const ends[] = {"endmacro", NULL};
        parse_body(P, &n->body, ends, "endmacro");
        if (peek(P)->type == JT_NAME) advance(P); /* {% endmacro name %} */
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "call")) {
        jnode *n = mkn(P, JN_CALL_BLOCK, k);
        if (tok_op(peek(P), "(")) parse_params(P, n);
        n->expr = parse_expr(P);
        if (n->expr->kind != JE_CALL) p_fail(P, k, "expected a macro call after 'call'%s", NULL);
        expect_block_end(P);
        static const char *const ends[] = {"endcall", NULL};
        parse_body(P, &n->body, ends, "endcall");
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "filter")) {
        jnode *n = mkn(P, JN_FILTER_BLOCK, k);
        n->expr = parse_filter(P, NULL);
        while (accept_op(P, "|")) n->expr = parse_filter(P, n->expr);
        expect_block_end(P);
        static const char *const ends[] = {"endfilter", NULL};
        parse_body(P, &n->body, ends, "endfilter");
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        jnode *n = mkn(P, kw[0] == 'b' ? JN_BREAK : JN_CONTINUE, k);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "generation") || !strcmp(kw, "with")) {
        bool with = kw[0] == 'w';
        jnode *n = mkn(P, JN_SCOPE, k);
        if (with) {
            pvec names = {0}, vals = {0};
            while (peek(P)->type != JT_BLOCK_END) {
                if (names.n) expect_op(P, ",");
                pv_push(P, &names, (void *)expect_name(P));
                expect_op(P, "=");
                pv_push(P, &vals, parse_expr(P));
            }
            n->with_names = (const char **)names.v;
            n->with_vals = (jexpr **)vals.v;
            n->n_with = names.n;
        }
        expect_block_end(P);
        static const char *const ends_g[] = {"endgeneration", NULL};
        static const char *const ends_w[] = {"endwith", NULL};
        parse_body(P, &n->body, with ? ends_w : ends_g, with ? "endwith" : "endgeneration");
        expect_block_end(P);
        return n;
    }
    (void)at;
    p_fail(P, k, "unknown or unexpected tag '%s'", kw);
}

static const char *parse_body(parser *P, jbody *b, const char *const *ends, const char *what) {
    for (;;) {
        const jtok *k = peek(P);
        switch (k->type) {
        case JT_EOF:
            if (ends) p_fail(P, k, "unexpected end of template, expected '{%% %s %%}'", what);
            return NULL;
        case JT_TEXT: {
            advance(P);
            jnode *n = mkn(P, JN_TEXT, k);
            n->text = k->s;
            n->text_n = k->n;
            body_push(P, b, n);
            break;
        }
        case JT_VAR_BEGIN: {
            advance(P);
            jnode *n = mkn(P, JN_OUTPUT, k);
            n->expr = parse_tuple(P, true);
            if (peek(P)->type != JT_VAR_END) p_fail(P, peek(P), "expected end of print statement '}}'%s", NULL);
            advance(P);
            body_push(P, b, n);
            break;
        }
        case JT_BLOCK_BEGIN: {
            advance(P);
            const jtok *name = peek(P);
            if (name->type == JT_NAME && ends) {
                for (size_t i = 0; ends[i]; i++)
                    if (!strcmp(name->s, ends[i])) {
                        advance(P);
                        return ends[i];
                    }
            }
            if (P->depth > PARSE_MAX_DEPTH) p_fail(P, k, "blocks nested too deeply%s", NULL);
            P->depth++;
            body_push(P, b, parse_stmt(P, k));
            P->depth--;
            break;
        }
        default:
            p_fail(P, k, "unexpected token outside of a tag%s", NULL);
        }
    }
}

void jinja_parse(jarena *a, const jtoks *toks, jbody *out) {
    parser P = {.a = a, .t = toks};
    memset(out, 0, sizeof *out);
    parse_body(&P, out, NULL, NULL);
}
