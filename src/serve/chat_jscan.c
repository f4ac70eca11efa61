/* chat_jscan.c — finds where one JSON value ends, a byte at a time (used by the output parser to
 * cut tool-call objects and argument values out of streamed text). */
#include "serve/chat_internal.h"

enum {
    J_VALUE,      /* expecting a value (leading whitespace allowed) */
    J_STR,
    J_STR_ESC,
    J_STR_HEX,
    J_NUM,
    J_LIT,
    J_AFTER,      /* after a value inside a container: ',' or the closing bracket */
    J_OBJ_FIRST,  /* after '{': a key or '}' */
    J_ARR_FIRST,  /* after '[': a value or ']' */
    J_KEY,        /* after ',' in an object: a key */
    J_COLON,
    J_END,
};

void chat_jscan_init(chat_jscan *j) { memset(j, 0, sizeof *j); j->st = J_VALUE; }

static chat_jscan_rc value_ended(chat_jscan *j) {
    if (j->depth == 0) { j->st = J_END; return JS_DONE; }
    j->st = J_AFTER;
    return JS_MORE;
}

static chat_jscan_rc start_value(chat_jscan *j, unsigned char c) {
    if (c == '"') { j->st = J_STR; j->key = false; return JS_MORE; }
    if (c == '{' || c == '[') {
        if (j->depth >= CHAT_JSCAN_MAX_DEPTH) return JS_ERR;
        j->stack[j->depth++] = c;
        j->st = c == '{' ? J_OBJ_FIRST : J_ARR_FIRST;
        return JS_MORE;
    }
    if (c == '-' || (c >= '0' && c <= '9')) { j->st = J_NUM; return JS_MORE; }
    if (c == 't' || c == 'f' || c == 'n') { j->st = J_LIT; return JS_MORE; }
    return JS_ERR;
}

static chat_jscan_rc close_container(chat_jscan *j, unsigned char c) {
    if (j->depth == 0 || j->stack[j->depth - 1] != (c == '}' ? '{' : '[')) return JS_ERR;
    j->depth--;
    return value_ended(j);
}

chat_jscan_rc chat_jscan_byte(chat_jscan *j, unsigned char c) {
    switch (j->st) {
    case J_VALUE:
        if (chat_is_ws(c)) return JS_MORE;
        return start_value(j, c);
    case J_STR:
        if (c == '"') {
            if (j->key) { j->key = false; j->st = J_COLON; return JS_MORE; }
            return value_ended(j);
        }
        if (c == '\\') j->st = J_STR_ESC;
        else if (c < 0x20) return JS_ERR;
        return JS_MORE;
    case J_STR_ESC:
        if (c == 'u') { j->st = J_STR_HEX; j->hex = 4; return JS_MORE; }
        if (!strchr("\"\\/bfnrt", c) || c == 0) return JS_ERR;
        j->st = J_STR;
        return JS_MORE;
    case J_STR_HEX:
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return JS_ERR;
        if (--j->hex == 0) j->st = J_STR;
        return JS_MORE;
    case J_NUM:
        if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') return JS_MORE;
        goto ended_before;
    case J_LIT:
        if (c >= 'a' && c <= 'z') return JS_MORE;
        goto ended_before;
    case J_AFTER:
        if (chat_is_ws(c)) return JS_MORE;
        if (c == ',') { j->st = j->stack[j->depth - 1] == '{' ? J_KEY : J_VALUE; return JS_MORE; }
        if (c == '}' || c == ']') return close_container(j, c);
        return JS_ERR;
    case J_OBJ_FIRST:
    case J_KEY:
        if (chat_is_ws(c)) return JS_MORE;
        if (c == '"') { j->st = J_STR; j->key = true; return JS_MORE; }
        if (c == '}' && j->st == J_OBJ_FIRST) return close_container(j, c);
        return JS_ERR;
    case J_ARR_FIRST:
        if (chat_is_ws(c)) return JS_MORE;
        if (c == ']') return close_container(j, c);
        return start_value(j, c);
    case J_COLON:
        if (chat_is_ws(c)) return JS_MORE;
        if (c == ':') { j->st = J_VALUE; return JS_MORE; }
        return JS_ERR;
    default:
        return JS_ERR;
    }
ended_before:
    /* A number or literal ends at the first byte that cannot continue it. */
    if (j->depth == 0) { j->st = J_END; return JS_DONE_UNGET; }
    j->st = J_AFTER;
    {
        chat_jscan_rc rc = chat_jscan_byte(j, c);
        if (rc == JS_ERR) return JS_ERR;
        return rc;
    }
}

chat_jscan_rc chat_jscan_eof(const chat_jscan *j) {
    if (j->st == J_END) return JS_DONE;
    if (j->depth == 0 && (j->st == J_NUM || j->st == J_LIT)) return JS_DONE;
    return JS_ERR;
}
