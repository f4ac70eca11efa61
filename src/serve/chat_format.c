/* chat_format.c — tool-call format names and detection from the chat template text, call ids,
 * the byte buffer used by the parsers. */
#include <time.h>

#include "serve/chat_internal.h"

static const char *const format_names[AL_CHAT_FMT_COUNT] = {
    [AL_CHAT_FMT_GENERIC] = "generic",       [AL_CHAT_FMT_HERMES] = "hermes",
    [AL_CHAT_FMT_LLAMA3] = "llama3",         [AL_CHAT_FMT_MISTRAL] = "mistral",
    [AL_CHAT_FMT_MISTRAL_V11] = "mistral-v11", [AL_CHAT_FMT_NEMOTRON] = "nemotron",
};

const char *al_chat_format_name(al_chat_format f) {
    return (unsigned)f < AL_CHAT_FMT_COUNT ? format_names[f] : "unknown";
}

al_chat_format al_chat_detect_format(const char *tpl) {
    if (!tpl) return AL_CHAT_FMT_GENERIC;
    /* Most specific markers first: the Nemotron and Mistral tags cannot appear in the others. */
    if (chat_has(tpl, "<TOOLCALL>")) return AL_CHAT_FMT_NEMOTRON;
    if (chat_has(tpl, "[TOOL_CALLS]")) return chat_has(tpl, "[ARGS]") ? AL_CHAT_FMT_MISTRAL_V11 : AL_CHAT_FMT_MISTRAL;
    if (chat_has(tpl, "<tool_call>")) return AL_CHAT_FMT_HERMES;
    if (chat_has(tpl, "<|python_tag|>")) return AL_CHAT_FMT_LLAMA3;
    /* Llama 3.2 templates have no python tag but describe the {"name", "parameters"} layout. */
    if (chat_has(tpl, "<|start_header_id|>") && chat_has(tpl, "parameters")) return AL_CHAT_FMT_LLAMA3;
    return AL_CHAT_FMT_GENERIC;
}

bool al_chat_prompt_opens_think(const char *prompt, size_t len) {
    if (!prompt) return false;
    while (len > 0 && chat_is_ws((unsigned char)prompt[len - 1])) len--;
    static const char open[] = "<think>";
    size_t k = sizeof open - 1;
    return len >= k && memcmp(prompt + len - k, open, k) == 0;
}

bool chat_buf_put(chat_buf *b, const char *s, size_t n) {
    if (b->oom) return false;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return false; }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return false; }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

void chat_buf_drop(chat_buf *b, size_t n) {
    if (n >= b->n) { chat_buf_clear(b); return; }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    b->p[b->n] = 0;
}

size_t chat_utf8_complete_prefix(const char *s, size_t n) {
    /* Walk back over at most 3 continuation bytes to the lead byte of the last character. */
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, back++;
    if (i == 0) return n; /* only continuation bytes: nothing to wait for */
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (lead < 0x80 || lead > 0xF4) return n;
    return back + 1 < need ? i - 1 : n;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void chat_make_call_id(uint64_t *state, bool mistral, char out[32]) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t o = 0, n = mistral ? 9 : 24;
    if (!mistral) memcpy(out, "call_", 5), o = 5;
    for (size_t i = 0; i < n; i++) out[o++] = alnum[splitmix64(state) % 62];
    out[o] = 0;
}

uint64_t chat_default_seed(const void *salt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)salt;
}
