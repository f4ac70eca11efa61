/* fuzz_tokenizer.c — encode arbitrary bytes with the GPT-2 vocabulary (tests/data); decoding the
 * ids must reproduce valid UTF-8 input exactly, and the streaming detokenizer must only ever
 * hand out valid UTF-8 that concatenates to the same text.
 * The vocabulary path defaults to tests/data/tokenizers/ggml-vocab-gpt-2.gguf next to this
 * source file; ALLOY_FUZZ_VOCAB overrides it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/gguf.h"
#include "alloy/tokenizer.h"

static al_tokenizer *g_tok;

static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) k = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) k = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        else return false;
        if (i + k >= n) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (unsigned j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

static void load(void) {
    char path[4096];
    const char *env = getenv("ALLOY_FUZZ_VOCAB");
    if (env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        const char *src = __FILE__;
        const char *slash = strrchr(src, '/');
        int dir = slash ? (int)(slash - src) : 0;
        snprintf(path, sizeof path, "%.*s%s../tests/data/tokenizers/ggml-vocab-gpt-2.gguf", dir, src, dir ? "/" : "");
    }
    al_gguf *g;
    al_status s = al_gguf_open(&g, path);
    if (s.code == AL_OK) {
        s = al_tokenizer_from_gguf(&g_tok, g);
        al_gguf_free(g);
    }
    if (s.code != AL_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, s.msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) load();
    if (size > 1 << 16) return 0;
    int32_t *ids;
    size_t n;
    if (al_tokenizer_encode(g_tok, (const char *)data, size, false, true, &ids, &n).code != AL_OK) abort();
    char *text;
    size_t tl;
    if (al_tokenizer_decode(g_tok, ids, n, AL_DETOK_SPECIAL, &text, &tl).code != AL_OK) abort();
    if (valid_utf8(data, size) && (tl != size || memcmp(text, data, size) != 0)) abort();

    al_detok *d;
    if (al_detok_init(&d, g_tok, AL_DETOK_SPECIAL).code != AL_OK) abort();
    char *acc = malloc(tl * 3 + 16);
    size_t al = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *o;
        size_t ol;
        al_status s = i < n ? al_detok_push(d, ids[i], &o, &ol) : al_detok_flush(d, &o, &ol);
        if (s.code != AL_OK || !valid_utf8((const unsigned char *)o, ol)) abort();
        memcpy(acc + al, o, ol);
        al += ol;
    }
    if (valid_utf8((const unsigned char *)text, tl) && (al != tl || memcmp(acc, text, tl) != 0)) abort();
    free(acc);
    al_detok_free(d);
    free(text);
    free(ids);
    return 0;
}
