/* chat_internal.h — helpers shared by src/serve/chat_*.c (not a public interface). */
#ifndef ALLOY_CHAT_INTERNAL_H
#define ALLOY_CHAT_INTERNAL_H

#include <stdlib.h>
#include <string.h>

#include "alloy/chat.h"

/* Growable byte buffer; always NUL-terminated when p != NULL. */
typedef struct chat_buf {
    char *p;
    size_t n, cap;
    bool oom; /* an append failed: the contents are incomplete */
} chat_buf;

bool chat_buf_put(chat_buf *b, const char *s, size_t n);
static inline bool chat_buf_putc(chat_buf *b, char c) { return chat_buf_put(b, &c, 1); }
static inline void chat_buf_clear(chat_buf *b) { b->n = 0; if (b->p) b->p[0] = 0; }
static inline void chat_buf_free(chat_buf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; b->oom = false; }
/* Removes the first n bytes. */
void chat_buf_drop(chat_buf *b, size_t n);

static inline bool chat_is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Length of the longest prefix of s[0,n) that ends on a UTF-8 character boundary, judging only the
 * trailing bytes (an incomplete multi-byte sequence at the end is excluded). */
size_t chat_utf8_complete_prefix(const char *s, size_t n);

/* A tool-call id: "call_" + 24 alphanumerics, or 9 alphanumerics when `mistral`. *state advances
 * (splitmix64). out must hold 32 bytes. */
void chat_make_call_id(uint64_t *state, bool mistral, char out[32]);

/* A seed from the clock and an address, for call ids when the caller gives none. */
uint64_t chat_default_seed(const void *salt);

/* Whether `needle` occurs in the NUL-terminated haystack. */
static inline bool chat_has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

#endif

/* ---- jscan: a byte-at-a-time scanner that finds the end of one JSON value ------------------
 * Checks the structure (brackets, strings, escapes, commas, colons); numbers and the literals
 * true/false/null are only delimited (their spelling is checked when the text is parsed). */
#define CHAT_JSCAN_MAX_DEPTH 128

typedef enum chat_jscan_rc {
    JS_MORE = 0,  /* byte consumed, value not finished */
    JS_DONE,      /* byte consumed, it ended the value */
    JS_DONE_UNGET,/* the value ended before this byte (a number or literal); byte not consumed */
    JS_ERR,       /* byte cannot continue a JSON value */
} chat_jscan_rc;

typedef struct chat_jscan {
    uint8_t st;
    uint8_t hex;  /* \u hex digits still expected */
    uint16_t depth;
    uint8_t stack[CHAT_JSCAN_MAX_DEPTH]; /* '{' or '[' per open container */
    bool key;     /* the string being scanned is an object key */
} chat_jscan;

void chat_jscan_init(chat_jscan *j);
chat_jscan_rc chat_jscan_byte(chat_jscan *j, unsigned char c);
/* End of input: JS_DONE if the value is complete (a trailing number/literal), else JS_ERR. */
chat_jscan_rc chat_jscan_eof(const chat_jscan *j);
