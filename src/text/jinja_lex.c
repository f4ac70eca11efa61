/*
 * jinja_lex.c — arena + tokenizer for the Jinja subset.
 *
 * Text handling follows jinja2's lexer as transformers configures it:
 *  - newlines (\r\n, \r, \n) are normalized to \n and one trailing newline is dropped
 *    (keep_trailing_newline=False);
 *  - `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` all whitespace
 *    after it;
 *  - trim_blocks: a single \n right after `%}` or `#}` is removed;
 *  - lstrip_blocks: spaces/tabs between the start of a line and `{%` / `{#` are removed (not for
 *    `{{`, not with `{%+`). "Start of a line" includes the position right after a tag whose end
 *    swallowed a newline, and the start of the template;
 *  - inside a tag the end marker only counts when (), [] and {} are balanced.
 * Comments vanish; {% raw %}...{% endraw %} becomes text.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja_internal.h"

/* ---- arena ---------------------------------------------------------------------------------- */

struct jarena_chunk {
    jarena_chunk *next;
    size_t size, used;
    /* data follows, 16-byte aligned */
};
#define JA_HDR ((sizeof(jarena_chunk) + 15) & ~(size_t)15)
#define JA_CHUNK (64 * 1024)

static _Noreturn void ja_fail(jarena *a, al_code code, const char *what) {
    if (a->err) *a->err = al_err(code, "template: %s", what);
    longjmp(*a->jmp, 1);
}

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    if (n > a->cap || a->used > a->cap - n) ja_fail(a, AL_ERR_NOMEM, "memory limit exceeded");
    jarena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t sz = n > JA_CHUNK / 4 ? n : JA_CHUNK;
        c = malloc(JA_HDR + sz);
        if (!c) ja_fail(a, AL_ERR_NOMEM, "out of memory");
        c->size = sz;
        c->used = 0;
        if (sz == n && a->head) { /* big block: keep the current chunk at the head */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c + JA_HDR + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ja_free(jarena *a) {
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- lexer ---------------------------------------------------------------------------------- */

typedef struct lexer {
    jarena *a;
    const char *s;
    size_t n, pos;
    /* line tracking: line number at offset lpos */
    size_t lpos, lstart;
    int line;
    jtoks *out;
} lexer;

static void lx_where(lexer *L, size_t off, int *line, int *col) {
    while (L->lpos < off && L->lpos < L->n) {
        if (L->s[L->lpos] == '\n') {
            L->line++;
            L->lstart = L->lpos + 1;
        }
        L->lpos++;
    }
    *line = L->line;
    *col = (int)(off - L->lstart) + 1;
}

static _Noreturn void lx_fail(lexer *L, size_t off, const char *msg) {
    int line, col;
    lx_where(L, off, &line, &col);
    if (L->a->err) *L->a->err = al_err(AL_ERR_FORMAT, "template syntax error at line %d, column %d: %s", line, col, msg);
    longjmp(*L->a->jmp, 1);
}

static jtok *lx_push(lexer *L, jtok_type type, size_t off) {
    jtoks *t = L->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        jtok *v = ja_alloc(L->a, cap * sizeof *v);
        if (t->n) memcpy(v, t->v, t->n * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    jtok *k = &t->v[t->n++];
    memset(k, 0, sizeof *k);
    k->type = type;
    lx_where(L, off, &k->line, &k->col);
    return k;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void emit_text(lexer *L, size_t off, const char *p, size_t n) {
    if (!n) return;
    jtok *k = lx_push(L, JT_TEXT, off);
    k->s = p;
    k->n = n;
}

static void put_utf8(char *o, size_t *on, uint32_t cp) {
    if (cp < 0x80) o[(*on)++] = (char)cp;
    else if (cp < 0x800) {
        o[(*on)++] = (char)(0xC0 | (cp >> 6));
        o[(*on)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*on)++] = (char)(0xE0 | (cp >> 12));
        o[(*on)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*on)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*on)++] = (char)(0xF0 | (cp >> 18));
        o[(*on)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*on)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*on)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python "unicode-escape" decoding of a string literal body. */
static void lex_string(lexer *L) {
    size_t start = L->pos;
    char q = L->s[L->pos++];
    size_t b = L->pos;
    while (L->pos < L->n && L->s[L->pos] != q) {
        if (L->s[L->pos] == '\\' && L->pos + 1 < L->n) L->pos++;
        L->pos++;
    }
    if (L->pos >= L->n) lx_fail(L, start, "unterminated string literal");
    size_t e = L->pos++;
    char *o = ja_alloc(L->a, (e - b) * 4 + 1);
    size_t on = 0;
    for (size_t i = b; i < e; i++) {
        char c = L->s[i];
        if (c != '\\' || i + 1 >= e) {
            o[on++] = c;
            continue;
        }
        char d = L->s[++i];
        switch (d) {
        case '\n': break;
        case '\\': o[on++] = '\\'; break;
        case '\'': o[on++] = '\''; break;
        case '"': o[on++] = '"'; break;
        case 'a': o[on++] = '\a'; break;
        case 'b': o[on++] = '\b'; break;
        case 'f': o[on++] = '\f'; break;
        case 'n': o[on++] = '\n'; break;
        case 'r': o[on++] = '\r'; break;
        case 't': o[on++] = '\t'; break;
        case 'v': o[on++] = '\v'; break;
        case 'x': case 'u': case 'U': {
            int digits = d == 'x' ? 2 : d == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < e ? hexval(L->s[i + 1 + k]) : -1;
                if (h < 0) lx_fail(L, start, "truncated \\x/\\u escape in string literal");
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) lx_fail(L, start, "invalid code point escape");
            i += (size_t)digits;
            put_utf8(o, &on, cp);
            break;
        }
        default:
            if (d >= '0' && d <= '7') {
                uint32_t cp = (uint32_t)(d - '0');
                for (int k = 0; k < 2 && i + 1 < e && L->s[i + 1] >= '0' && L->s[i + 1] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(L->s[++i] - '0');
                put_utf8(o, &on, cp);
            } else {
                o[on++] = '\\';
                o[on++] = d;
            }
        }
    }
    o[on] = '\0';
    jtok *k = lx_push(L, JT_STRING, start);
    k->s = o;
    k->n = on;
}

static const char *const lx_ops2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char lx_ops1[] = "+-*/%~<>=()[]{},.:|";

/* Lexes the inside of {{ ... }} or {% ... %} up to and including the end marker. */
static void lex_tag(lexer *L, bool is_block, size_t tag_off) {
    int depth = 0;
    char endc = is_block ? '%' : '}';
    for (;;) {
        while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
        if (L->pos >= L->n) lx_fail(L, tag_off, is_block ? "unclosed block tag '{%'" : "unclosed variable tag '{{'");
        const char *p = L->s + L->pos;
        size_t rem = L->n - L->pos;
        if (depth == 0) {
            bool dash = rem >= 3 && (p[0] == '-' || (is_block && p[0] == '+')) && p[1] == endc && p[2] == '}';
            if (dash || (rem >= 2 && p[0] == endc && p[1] == '}')) {
                lx_push(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->pos);
                L->pos += dash ? 3 : 2;
                if (dash && p[0] == '-') {
                    while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
                } else if (is_block && !(dash && p[0] == '+') && L->pos < L->n && L->s[L->pos] == '\n') {
                    L->pos++;
                }
                return;
            }
        }
        char c = *p;
        if (isalpha((unsigned char)c) || c == '_') {
            size_t b = L->pos;
            while (L->pos < L->n && (isalnum((unsigned char)L->s[L->pos]) || L->s[L->pos] == '_')) L->pos++;
            jtok *k = lx_push(L, JT_NAME, b);
            k->s = ja_strndup(L->a, L->s + b, L->pos - b);
            k->n = L->pos - b;
            continue;
        }
        if (isdigit((unsigned char)c)) {
            size_t b = L->pos;
            bool after_dot = L->out->n && L->out->v[L->out->n - 1].type == JT_OP && L->out->v[L->out->n - 1].s[0] == '.';
            bool is_float = false;
            while (L->pos < L->n && (isdigit((unsigned char)L->s[L->pos]) || L->s[L->pos] == '_')) L->pos++;
            if (!after_dot && L->pos + 1 < L->n && L->s[L->pos] == '.' && isdigit((unsigned char)L->s[L->pos + 1])) {
                is_float = true;
                L->pos++;
                while (L->pos < L->n && (isdigit((unsigned char)L->s[L->pos]) || L->s[L->pos] == '_')) L->pos++;
            }
            if (!after_dot && L->pos < L->n && (L->s[L->pos] == 'e' || L->s[L->pos] == 'E')) {
                size_t q = L->pos + 1;
                if (q < L->n && (L->s[q] == '+' || L->s[q] == '-')) q++;
                if (q < L->n && isdigit((unsigned char)L->s[q])) {
                    is_float = true;
                    L->pos = q;
                    while (L->pos < L->n && isdigit((unsigned char)L->s[L->pos])) L->pos++;
                }
            }
            char buf[64];
            size_t bn = 0;
            for (size_t i = b; i < L->pos && bn < sizeof buf - 1; i++)
                if (L->s[i] != '_') buf[bn++] = L->s[i];
            buf[bn] = '\0';
            jtok *k = lx_push(L, is_float ? JT_FLOAT : JT_INT, b);
            if (is_float) k->f = strtod(buf, NULL);
            else {
                char *end;
                unsigned long long v = strtoull(buf, &end, 10);
                if (bn > 18 && (v > (unsigned long long)INT64_MAX || bn > 19)) lx_fail(L, b, "integer literal too large");
                k->i = (int64_t)v;
            }
            continue;
        }
        if (c == '\'' || c == '"') {
            lex_string(L);
            continue;
        }
        const char *op = NULL;
        for (size_t i = 0; i < sizeof lx_ops2 / sizeof *lx_ops2; i++)
            if (rem >= 2 && p[0] == lx_ops2[i][0] && p[1] == lx_ops2[i][1]) op = lx_ops2[i];
        if (op) {
            jtok *k = lx_push(L, JT_OP, L->pos);
            k->s = op;
            k->n = 2;
            L->pos += 2;
            continue;
        }
        const char *q = strchr(lx_ops1, c);
        if (c && q) {
            if (c == '(' || c == '[' || c == '{') depth++;
            if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) lx_fail(L, L->pos, "unbalanced closing bracket");
                depth--;
            }
            jtok *k = lx_push(L, JT_OP, L->pos);
            k->s = ja_strndup(L->a, p, 1);
            k->n = 1;
            L->pos++;
            continue;
        }
        lx_fail(L, L->pos, "unexpected character in tag");
    }
}

/* `{% raw %}` was just seen (pos after "raw", before %}): emit the raw body as text. */
static void lex_raw(lexer *L, size_t tag_off) {
    while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
    bool strip_after = false;
    if (L->pos < L->n && L->s[L->pos] == '-') {
        strip_after = true;
        L->pos++;
    }
    if (L->pos + 1 >= L->n || L->s[L->pos] != '%' || L->s[L->pos + 1] != '}') lx_fail(L, tag_off, "expected '%}' after 'raw'");
    L->pos += 2;
    if (strip_after) while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
    else if (L->pos < L->n && L->s[L->pos] == '\n') L->pos++;
    size_t body = L->pos;
    for (size_t i = body; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t j = i + 2;
        bool dash = j < L->n && L->s[j] == '-';
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) j++;
        while (j < L->n && is_ws(L->s[j])) j++;
        if (L->n - j < 6 || memcmp(L->s + j, "endraw", 6) != 0) continue;
        j += 6;
        while (j < L->n && is_ws(L->s[j])) j++;
        bool dash2 = j < L->n && L->s[j] == '-';
        if (dash2) j++;
        if (j + 1 >= L->n || L->s[j] != '%' || L->s[j + 1] != '}') continue;
        size_t e = i;
        if (dash) while (e > body && is_ws(L->s[e - 1])) e--;
        else { /* lstrip_blocks on the endraw tag */
            size_t l = e;
            while (l > body && (L->s[l - 1] == ' ' || L->s[l - 1] == '\t')) l--;
            if (l < e && (l == body ? false : L->s[l - 1] == '\n')) e = l;
        }
        emit_text(L, body, L->s + body, e - body);
        L->pos = j + 2;
        if (dash2) while (L->pos < L->n && is_ws(L->s[L->pos])) L->pos++;
        else if (L->pos < L->n && L->s[L->pos] == '\n') L->pos++;
        return;
    }
    lx_fail(L, tag_off, "missing {% endraw %}");
}

void jinja_lex(jarena *a, const char *src, size_t len, jtoks *out) {
    /* normalize newlines, drop one trailing newline */
    char *s = ja_alloc(a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = '\0';

    lexer L = {.a = a, .s = s, .n = n, .line = 1, .out = out};
    bool line_starting = true;
    while (L.pos < n) {
        /* find the next tag start */
        size_t t = L.pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) {
            emit_text(&L, L.pos, s + L.pos, n - L.pos);
            break;
        }
        char kind = s[t + 1];
        char mod = t + 2 < n ? s[t + 2] : '\0';
        const char *text = s + L.pos;
        size_t tn = t - L.pos;
        if (mod == '-') {
            while (tn && is_ws(text[tn - 1])) tn--;
        } else if (mod != '+' && kind != '{') {
            size_t l = tn;
            while (l && text[l - 1] != '\n') l--;
            if (l > 0 || line_starting) {
                bool all_ws = l < tn;
                for (size_t i = l; i < tn; i++)
                    if (!is_ws(text[i])) all_ws = false;
                if (all_ws) tn = l;
            }
        }
        emit_text(&L, L.pos, text, tn);
        size_t body = t + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) lx_fail(&L, t, "missing end of comment tag '#}'");
            bool dash = e > body && s[e - 1] == '-';
            L.pos = e + 2;
            if (dash) while (L.pos < n && is_ws(s[L.pos])) L.pos++;
            else if (L.pos < n && s[L.pos] == '\n') L.pos++;
            line_starting = s[L.pos - 1] == '\n';
            continue;
        }
        bool is_block = kind == '%';
        L.pos = body;
        if (is_block) {
            size_t q = body;
            while (q < n && is_ws(s[q])) q++;
            if (n - q >= 3 && memcmp(s + q, "raw", 3) == 0 && (q + 3 >= n || !(isalnum((unsigned char)s[q + 3]) || s[q + 3] == '_'))) {
                L.pos = q + 3;
                lex_raw(&L, t);
                line_starting = s[L.pos - 1] == '\n';
                continue;
            }
        }
        lx_push(&L, is_block ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, t);
        lex_tag(&L, is_block, t);
        line_starting = s[L.pos - 1] == '\n';
    }
    lx_push(&L, JT_EOF, n);
}
