/* chat_grammar.h — compiled grammars and the JSON recognizer behind al_constraint (internal).
 *
 * A grammar is a list of alternatives, each: literal prefix, a JSON value described by a schema
 * node tree (jnode), literal suffix. The recognizer runs a small set of parallel states (anyOf
 * and the alternatives fork it) over the output bytes; container nesting is a persistent linked
 * stack of frames allocated from an arena, so states are small values that copy cheaply. */
#ifndef ALLOY_CHAT_GRAMMAR_H
#define ALLOY_CHAT_GRAMMAR_H

#include "serve/chat_internal.h"

enum {
    JT_OBJ = 1 << 0, JT_ARR = 1 << 1, JT_STR = 1 << 2, JT_NUM = 1 << 3, /* any number */
    JT_INT = 1 << 4, JT_BOOL = 1 << 5, JT_NULL = 1 << 6,
    JT_ALL = 0x7f,
};

/* Sorted (bytewise, shorter first on a shared prefix) list of literal texts. */
typedef struct litset {
    uint32_t n;
    const char **s;
    uint32_t *len;
} litset;

typedef struct jnode jnode;
struct jnode {
    uint32_t types;     /* JT_* */
    litset lits;        /* n > 0: enum / const, compact JSON texts; overrides `types` */
    /* object */
    litset keys;        /* JSON-escaped property names (no quotes), sorted */
    jnode **key_schema; /* schema per entry of keys */
    uint64_t req;       /* required: bit per key index (< 64) */
    bool addl;          /* other keys allowed */
    jnode *addl_schema; /* their schema; NULL = any value */
    /* array */
    jnode *items;       /* NULL = any value */
    /* anyOf / oneOf: the value matches one of these (other keywords of the node are ignored) */
    uint32_t n_any;
    jnode **any;
};

typedef struct galt {
    char *prefix, *suffix;
    size_t plen, slen;
    jnode *root;
} galt;

typedef struct gnode_list gnode_list;

struct al_grammar {
    galt *alts;
    size_t n_alts;
    jnode *any;          /* the "any JSON value" node */
    litset lit_bool, lit_null;
    void **owned;        /* every allocation, freed with the grammar */
    size_t n_owned, cap_owned;
};

/* Allocation owned by the grammar (zeroed). */
void *gram_alloc(al_grammar *g, size_t size);
al_status gram_new(al_grammar **out);
/* Compiles a schema into a node of g (root: the document, for $ref). */
al_status gram_compile(al_grammar *g, const json_t *schema, jnode **out);
al_status gram_add_alt(al_grammar *g, const char *prefix, jnode *root, const char *suffix);

/* ---- recognizer ---- */

typedef struct arena_chunk arena_chunk;
typedef struct arena {
    arena_chunk *head;
    size_t used_total;
} arena;
void *arena_alloc(arena *a, size_t n);
void arena_reset(arena *a); /* keeps the first chunk */
void arena_free(arena *a);

typedef struct rframe rframe;

typedef struct rstate {
    const rframe *up;      /* enclosing containers (saved) */
    const jnode *cnode;    /* schema of the innermost open container; NULL at top level */
    const jnode *vnode;    /* schema of the value expected / being read */
    const galt *alt;
    const litset *ls;      /* R_LIT: the literal set being matched */
    uint64_t seen;         /* innermost object: keys seen (bit per key index < 64) */
    uint32_t pos;          /* literal / key / prefix / suffix position; \u value */
    uint32_t lo, hi;       /* candidate range in ls / cnode->keys */
    uint16_t depth;
    uint8_t mode;
    uint8_t sub;           /* number state / \u digits left */
    uint8_t u8;            /* UTF-8 continuation bytes still expected */
    uint8_t u8lo, u8hi;    /* allowed range of the next continuation byte */
    uint8_t ckind;         /* innermost container: 0 top, 1 object, 2 array */
    uint8_t ws;            /* length of the current whitespace run */
    uint8_t iskey;         /* R_STR: the string is an object key */
} rstate;

#define R_MAX_STATES 64

typedef struct rset {
    const al_grammar *g;
    int n;
    rstate s[R_MAX_STATES];
} rset;

/* Initial states (flags: AL_CONSTRAINT_ALLOW_THINK). */
void rec_init(const al_grammar *g, unsigned flags, rset *out);
/* out = states after byte c from in (out != in). Frames come from `a`. */
void rec_step(const rset *in, unsigned char c, arena *a, rset *out);
bool rec_can_finish(const rset *s);
/* All states read free string text (no key/enum matching), at a character boundary. */
bool rec_free_string(const rset *s);
/* All states are inside a think block with nothing of "</think>" matched. */
bool rec_free_think(const rset *s);
/* Some state matches a literal prefix/suffix (where control tokens may appear). */
bool rec_in_wrapper(const rset *s);
/* Drops the states that are not inside a literal prefix/suffix. */
void rec_keep_wrapper(rset *s);

#endif
