/*
 * yaml.c — one YAML document to a jansson tree, through libyaml's event parser (alloy/yaml.h).
 *
 * Invariants of the builder while events are consumed:
 *  - stack[0..depth) are the open containers; each is already attached to its parent (or is the
 *    root), so json_decref(root) frees every node on any error path;
 *  - for a mapping on top of the stack, `key` is NULL while a key is expected and holds the
 *    (malloc'd, NUL-free) key while its value is expected.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "alloy/yaml.h"

typedef struct frame {
    json_t *node; /* object or array, borrowed from the tree */
    char *key;    /* mapping: pending key (owned) or NULL */
} frame;

typedef struct builder {
    const char *what;
    json_t *root;
    frame stack[AL_YAML_MAX_DEPTH];
    int depth;
    int n_docs;
} builder;

#define TAG_PREFIX "tag:yaml.org,2002:"

static bool all_in(const char *s, size_t n, const char *set) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, s[i]) || s[i] == '\0') return false;
    return true;
}

static bool is_null_text(const char *s) { return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"); }
static int bool_text(const char *s) {
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return 0;
    return -1;
}

/* YAML 1.2 core schema int: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ */
static int int_text(const char *s, size_t n, long long *v) {
    int base = 10;
    const char *d = s;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        d = s + 2;
        if (!all_in(d, n - 2, base == 16 ? "0123456789abcdefABCDEF" : "01234567")) return 0;
    } else {
        const char *q = s + (s[0] == '-' || s[0] == '+');
        if (!all_in(q, n - (size_t)(q - s), "0123456789")) return 0;
    }
    errno = 0;
    char *end;
    long long x = strtoll(d, &end, base);
    if (errno == ERANGE || *end) return -1;
    *v = x;
    return 1;
}

/* YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, or .inf/.nan */
static int float_text(const char *s, double *v) {
    const char *p = s + (*s == '-' || *s == '+');
    const char *special[] = {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (!strcmp(p, special[i])) return -1;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return 0;
    errno = 0;
    double x = strtod(s, NULL);
    if (errno == ERANGE && !isfinite(x)) return -1;
    if (!isfinite(x)) return -1;
    *v = x;
    return 1;
}

static al_status at_err(const builder *b, const yaml_event_t *ev, const char *msg) {
    return al_err(AL_ERR_FORMAT, "%s: line %zu column %zu: %s", b->what, ev->start_mark.line + 1, ev->start_mark.column + 1, msg);
}

/* A scalar event's value as a JSON node, per the core schema and the tag. */
static al_status scalar_value(const builder *b, const yaml_event_t *ev, json_t **out) {
    *out = NULL;
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && !strcmp(tag, "!")) tag = TAG_PREFIX "str";
    if (tag && strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0) return at_err(b, ev, "unsupported tag");
    const char *kind = tag ? tag + strlen(TAG_PREFIX) : NULL;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (kind ? !strcmp(kind, "str") : !plain) {
        if (memchr(s, '\0', n)) return at_err(b, ev, "NUL byte in a string");
        *out = json_stringn(s, n);
        return *out ? al_ok() : at_err(b, ev, "string is not valid UTF-8");
    }
    if (memchr(s, '\0', n)) return at_err(b, ev, "NUL byte in a scalar");
    long long iv;
    double fv;
    int r;
    if ((!kind || !strcmp(kind, "null")) && is_null_text(s)) *out = json_null();
    else if ((!kind || !strcmp(kind, "bool")) && (r = bool_text(s)) >= 0) *out = json_boolean(r);
    else if ((!kind || !strcmp(kind, "int")) && (r = int_text(s, n, &iv)) != 0) {
        if (r < 0) return at_err(b, ev, "integer out of range");
        *out = json_integer((json_int_t)iv);
    } else if ((!kind || !strcmp(kind, "float")) && (r = float_text(s, &fv)) != 0) {
        if (r < 0) return at_err(b, ev, "non-finite or out-of-range number");
        *out = json_real(fv);
    } else if (!kind) {
        *out = json_stringn(s, n);
        if (!*out) return at_err(b, ev, "string is not valid UTF-8");
    } else {
        return at_err(b, ev, "scalar does not match its tag");
    }
    return *out ? al_ok() : al_err(AL_ERR_NOMEM, "%s: out of memory", b->what);
}

/* Attaches v (a new reference, consumed) to the open container or makes it the root. */
static al_status attach(builder *b, const yaml_event_t *ev, json_t *v) {
    if (b->depth == 0) {
        if (b->root) {
            json_decref(v);
            return at_err(b, ev, "more than one root node");
        }
        b->root = v;
        return al_ok();
    }
    frame *f = &b->stack[b->depth - 1];
    if (json_is_array(f->node)) {
        if (json_array_append_new(f->node, v) != 0) return al_err(AL_ERR_NOMEM, "%s: out of memory", b->what);
        return al_ok();
    }
    if (!f->key) {
        json_decref(v);
        return at_err(b, ev, "mapping keys must be plain scalars");
    }
    if (json_object_get(f->node, f->key)) {
        json_decref(v);
        return al_err(AL_ERR_FORMAT, "%s: line %zu: duplicate key '%.64s'", b->what, ev->start_mark.line + 1, f->key);
    }
    int rc = json_object_set_new(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return rc == 0 ? al_ok() : at_err(b, ev, "key is not valid UTF-8");
}

static al_status on_event(builder *b, const yaml_event_t *ev, bool *done) {
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_NO_EVENT:
        return al_ok();
    case YAML_STREAM_END_EVENT:
        *done = true;
        return al_ok();
    case YAML_DOCUMENT_START_EVENT:
        if (++b->n_docs > 1) return at_err(b, ev, "more than one document");
        return al_ok();
    case YAML_DOCUMENT_END_EVENT:
        return al_ok();
    case YAML_ALIAS_EVENT:
        return at_err(b, ev, "aliases are not supported");
    case YAML_SCALAR_EVENT: {
        if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].node) && !b->stack[b->depth - 1].key) {
            const char *s = (const char *)ev->data.scalar.value;
            size_t n = ev->data.scalar.length;
            if (memchr(s, '\0', n)) return at_err(b, ev, "NUL byte in a key");
            b->stack[b->depth - 1].key = strdup(s);
            return b->stack[b->depth - 1].key ? al_ok() : al_err(AL_ERR_NOMEM, "%s: out of memory", b->what);
        }
        json_t *v;
        AL_TRY(scalar_value(b, ev, &v));
        return attach(b, ev, v);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        const char *tag = (const char *)(ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.tag
                                                                              : ev->data.mapping_start.tag);
        const char *want = ev->type == YAML_SEQUENCE_START_EVENT ? TAG_PREFIX "seq" : TAG_PREFIX "map";
        if (tag && strcmp(tag, "!") != 0 && strcmp(tag, want) != 0) return at_err(b, ev, "unsupported tag");
        if (b->depth == AL_YAML_MAX_DEPTH) return at_err(b, ev, "nesting too deep");
        json_t *c = ev->type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
        if (!c) return al_err(AL_ERR_NOMEM, "%s: out of memory", b->what);
        AL_TRY(attach(b, ev, c));
        b->stack[b->depth].node = c;
        b->stack[b->depth].key = NULL;
        b->depth++;
        return al_ok();
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        /* libyaml pairs start/end events; a mapping never ends with a dangling key */
        if (b->depth == 0) return at_err(b, ev, "unbalanced collection end");
        b->depth--;
        free(b->stack[b->depth].key);
        b->stack[b->depth].key = NULL;
        return al_ok();
    }
    return at_err(b, ev, "unexpected YAML event");
}

al_status al_yaml_parse(json_t **out, const char *text, size_t len, const char *what) {
    if (!out) return al_err(AL_ERR_INVALID, "al_yaml_parse: NULL out");
    *out = NULL;
    if (!what) what = "YAML";
    if (!text && len) return al_err(AL_ERR_INVALID, "al_yaml_parse: NULL text");
    if (len > AL_YAML_MAX_BYTES) return al_err(AL_ERR_RANGE, "%s: %zu bytes, more than the %u allowed", what, len, AL_YAML_MAX_BYTES);
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return al_err(AL_ERR_NOMEM, "%s: libyaml could not start", what);
    yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""), len);
    builder b = {.what = what};
    al_status st = al_ok();
    for (bool done = false; !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            st = al_err(AL_ERR_FORMAT, "%s: line %zu column %zu: %s%s%s", what, p.problem_mark.line + 1,
                        p.problem_mark.column + 1, p.problem ? p.problem : "invalid YAML", p.context ? " " : "",
                        p.context ? p.context : "");
            break;
        }
        st = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
        if (al_failed(&st)) break;
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < b.depth; i++) free(b.stack[i].key);
    if (!al_failed(&st) && !b.root) st = al_err(AL_ERR_FORMAT, "%s: empty document", what);
    if (al_failed(&st)) {
        json_decref(b.root);
        return st;
    }
    *out = b.root;
    return al_ok();
}

al_status al_yaml_load_file(json_t **out, const char *path) {
    if (!out || !path) return al_err(AL_ERR_INVALID, "al_yaml_load_file: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return al_err(AL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* read at most one byte past the limit, so an oversized file is refused without reading it all */
    size_t cap = (size_t)AL_YAML_MAX_BYTES + 1;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return al_err(AL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, cap, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    al_status st = bad ? al_err(AL_ERR_IO, "%s: read error", path) : al_yaml_parse(out, buf, n, path);
    free(buf);
    return st;
}
