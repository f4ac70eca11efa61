/*
 * jinja_internal.h — shared pieces of the Jinja interpreter (see alloy/template.h):
 *   arena      bump allocator with a byte cap; templates own one for the AST, renders one for values
 *   tokens     produced by jinja_lex.c, consumed by jinja_parse.c
 *   AST        statements (jnode) and expressions (jexpr), produced by jinja_parse.c
 *   values     jv, the runtime value (Python-like: undefined/None/bool/int/float/str/list/dict/...)
 * Errors inside the lexer, parser and evaluator unwind with longjmp to the entry point; every
 * allocation in between lives in an arena, so unwinding leaks nothing.
 */
#ifndef ALLOY_JINJA_INTERNAL_H
#define ALLOY_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloy/core.h"
#include "alloy/template.h"

/* ---- arena ---------------------------------------------------------------------------------- */

typedef struct jarena_chunk jarena_chunk;
typedef struct jarena {
    jarena_chunk *head;
    size_t used, cap;   /* bytes handed out in total / limit */
    jmp_buf *jmp;       /* where to unwind when the cap is hit */
    al_status *err;     /* filled before unwinding */
} jarena;

void *ja_alloc(jarena *a, size_t n); /* zeroed, 8-byte aligned; unwinds on cap */
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free(jarena *a);

/* ---- tokens --------------------------------------------------------------------------------- */

typedef enum jtok_type {
    JT_EOF,
    JT_TEXT,       /* literal template text (whitespace control already applied) */
    JT_VAR_BEGIN,  /* {{ */
    JT_VAR_END,    /* }} */
    JT_BLOCK_BEGIN,/* {% */
    JT_BLOCK_END,  /* %} */
    JT_NAME,
    JT_STRING,     /* value already unescaped */
    JT_INT,
    JT_FLOAT,
    JT_OP,         /* operator / punctuation, text in s */
} jtok_type;

typedef struct jtok {
    jtok_type type;
    const char *s; /* text / name / string value / operator (NUL-terminated, in the arena) */
    size_t n;
    int64_t i;
    double f;
    int line, col;
} jtok;

typedef struct jtoks {
    jtok *v;
    size_t n, cap;
} jtoks;

/* Tokenizes `src` with trim_blocks + lstrip_blocks. Unwinds on error. */
void jinja_lex(jarena *a, const char *src, size_t len, jtoks *out);

/* ---- AST ------------------------------------------------------------------------------------ */

typedef enum jexpr_kind {
    JE_CONST,    /* literal value */
    JE_NAME,
    JE_LIST,     /* items */
    JE_TUPLE,
    JE_DICT,     /* keys[i] : items[i] */
    JE_ATTR,     /* a.name */
    JE_ITEM,     /* a[b] */
    JE_SLICE,    /* a[b:c:d], missing parts NULL */
    JE_CALL,     /* a(args, kwargs) */
    JE_FILTER,   /* a | name(args) ; a NULL inside {% filter %} */
    JE_TEST,     /* a is [not] name(args) */
    JE_UNARY,    /* op: '-', '+', 'n' (not) */
    JE_BINARY,   /* op: + - * / F(//) % P(**) ~ a(and) o(or) */
    JE_COMPARE,  /* a op b [op c ...]: ops in cmp_ops, operands in items */
    JE_COND,     /* b if a else c */
} jexpr_kind;

typedef enum jcmp { JC_EQ, JC_NE, JC_LT, JC_LE, JC_GT, JC_GE, JC_IN, JC_NOTIN } jcmp;

typedef struct jexpr jexpr;
struct jv;

typedef struct jexpr {
    jexpr_kind kind;
    int line, col;
    char op;
    bool negated;          /* JE_TEST */
    const char *name;      /* JE_NAME, JE_ATTR, JE_FILTER, JE_TEST */
    jexpr *a, *b, *c;
    jexpr **items; size_t n_items;      /* args / list items / compare operands */
    jexpr **keys;                       /* JE_DICT keys */
    const char **kw_names; jexpr **kw_vals; size_t n_kw; /* keyword arguments */
    jcmp *cmp_ops;
    struct jv *value;      /* JE_CONST */
} jexpr;

typedef enum jnode_kind {
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_BLOCK, JN_MACRO, JN_CALL_BLOCK,
    JN_FILTER_BLOCK, JN_BREAK, JN_CONTINUE, JN_SCOPE /* generation / with: a plain body */
} jnode_kind;

typedef struct jnode jnode;
typedef struct jbody { jnode **v; size_t n, cap; } jbody;

typedef struct jnode {
    jnode_kind kind;
    int line, col;
    const char *text; size_t text_n;     /* JN_TEXT */
    jexpr *expr;                         /* output / set value / for iterable / call / filter */
    /* JN_IF: conds[i] guards bodies[i]; else_body */
    jexpr **conds; jbody *bodies; size_t n_conds;
    jbody body, else_body;
    /* JN_FOR / JN_SET targets: names; attr != NULL means `ns.attr` */
    const char **targets; size_t n_targets;
    const char *attr;
    jexpr *filter;                       /* JN_FOR `if` filter */
    /* JN_MACRO / caller params */
    const char *name;
    const char **params; jexpr **defaults; size_t n_params;
    /* JN_SCOPE (with): assignments */
    const char **with_names; jexpr **with_vals; size_t n_with;
} jnode;

/* Parses tokens into a body. Unwinds on error with "line L, column C: ...". */
void jinja_parse(jarena *a, const jtoks *toks, jbody *out);

/* ---- values --------------------------------------------------------------------------------- */

typedef enum jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,      /* namespace(): a mutable dict with attribute access */
    JV_LOOP,    /* the `loop` variable */
    JV_FUNC,    /* builtin global function, id in i */
    JV_METHOD,  /* bound method: self in obj, name in name */
    JV_MACRO,
} jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmacro jmacro;

typedef struct jv {
    jv_type t;
    bool tuple;                /* JV_LIST made from a tuple (repr uses parentheses) */
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;   /* JV_STR (NUL-terminated); JV_UNDEF: hint name */
        jlist *l;
        jdict *d;
        jloop *loop;
        jmacro *m;
        struct { struct jv *self; const char *name; } meth;
    } u;
} jv;

struct jlist { jv *v; size_t n, cap; };
struct jdict { const char **k; size_t *kn; jv *v; size_t n, cap; };

/* ---- runtime -------------------------------------------------------------------------------- */

typedef struct jbuf { char *p; size_t n, cap; } jbuf;

typedef struct jframe {
    struct jframe *parent;
    jdict *vars;
} jframe;

struct jloop {
    jv *items;      /* the (filtered) sequence being iterated */
    size_t n, i;
};

struct jmacro {
    const jnode *node;     /* JN_MACRO, or the JN_CALL_BLOCK for `caller` */
    jframe *closure;       /* frame the macro was defined in */
};

typedef struct jrt {
    jarena *a;
    jmp_buf *jmp;
    al_status *err;
    al_template_opts o;
    uint64_t steps;
    int depth;
    jframe *globals;       /* context variables (bottom of every lookup) */
    jframe *frame;         /* innermost scope */
    jbuf *out;
    size_t out_total;      /* bytes written to all buffers (bounded by max_output * 4) */
    int loop_ctl;          /* 1: break, 2: continue pending */
    jv caller;             /* `caller` inside a macro invoked by {% call %} (JV_UNDEF otherwise) */
} jrt;

typedef struct jargs {
    jv *pos; size_t n;
    const char **kwn; jv *kwv; size_t nkw;
    int line, col;
} jargs;

/* Raises a template runtime error (AL_ERR_INVALID unless code given) and unwinds. */
_Noreturn void jrt_fail(jrt *rt, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
_Noreturn void jrt_fail_code(jrt *rt, al_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void jrt_step(jrt *rt);

/* buffers (arena-backed, growth bounded by max_output) */
void jb_put(jrt *rt, jbuf *b, const char *s, size_t n);
void jb_putc(jrt *rt, jbuf *b, char c);
void jb_puts(jrt *rt, jbuf *b, const char *s);

/* values (jinja_value.c) */
static inline jv jv_undef(const char *hint) { jv v = {.t = JV_UNDEF}; v.u.s.p = hint; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
static inline jv jv_bool(bool b) { jv v = {.t = JV_BOOL}; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.u.f = f; return v; }
jv jv_str(jrt *rt, const char *s, size_t n);      /* copies */
jv jv_str_nocopy(const char *s, size_t n);        /* s must outlive the render and be NUL-terminated */
jv jv_from_buf(jrt *rt, jbuf *b);
jv jv_list(jrt *rt, size_t cap);
void jl_push(jrt *rt, jv *list, jv item);
jv jv_dict(jrt *rt, size_t cap);
jv *jd_get(const jdict *d, const char *k, size_t kn);
void jd_set(jrt *rt, jdict *d, const char *k, size_t kn, jv v);
jv jv_from_json(jrt *rt, const json_t *j, int depth);
const char *jv_type_name(jv v);
bool jv_truthy(jv v);
bool jv_eq(jv a, jv b);
int jv_cmp(jrt *rt, jv a, jv b);                 /* -1/0/1, fails on unorderable types */
bool jv_is_num(jv v);
double jv_num(jv v);
void jv_write_str(jrt *rt, jbuf *b, jv v);        /* Python str() */
void jv_write_repr(jrt *rt, jbuf *b, jv v);       /* Python repr() */
jv jv_to_str(jrt *rt, jv v);
void jv_write_json(jrt *rt, jbuf *b, jv v, const char *indent, const char *item_sep, const char *key_sep,
                   bool sort_keys, bool ensure_ascii, int level);
void jv_fmt_float(double f, char *buf, size_t cap);  /* Python repr(float) */
size_t utf8_count(const char *s, size_t n);
size_t utf8_advance(const char *s, size_t n, size_t pos, size_t count); /* byte offset after count code points */
jv jv_iterable_items(jrt *rt, jv v, size_t *n, jv **items); /* list of items a for-loop visits */

/* builtins (jinja_builtins.c) */
jv jinja_filter(jrt *rt, const char *name, jv self, jargs *a);
bool jinja_test(jrt *rt, const char *name, jv self, jargs *a);
bool jinja_has_method(jv self, const char *name);
jv jinja_call_method(jrt *rt, jv self, const char *name, jargs *a);
bool jinja_global(const char *name, jv *out);
jv jinja_call_global(jrt *rt, const char *name, jargs *a);
jv jinja_getattr(jrt *rt, jv obj, const char *name, int line, int col);
jv jinja_getitem(jrt *rt, jv obj, jv key, int line, int col);

#endif
