/* tokenizer_pretok.c — UTF-8 helpers, GPT-2 byte mapping, pre-tokenizer regex sets (PCRE2). */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_impl.h"

/* ---- UTF-8 -------------------------------------------------------------------------------- */

size_t al_utf8_len_lead(unsigned char c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

uint32_t al_utf8_next(const char *s8, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)s8 + *i;
    size_t left = n - *i;
    unsigned c = s[0];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    size_t need;
    uint32_t cp;
    if (!(c & 0x40)) goto bad;
    if (!(c & 0x20)) need = 1, cp = c & 0x1f;
    else if (!(c & 0x10)) need = 2, cp = c & 0x0f;
    else if (!(c & 0x08)) need = 3, cp = c & 0x07;
    else goto bad;
    if (left <= need) goto bad;
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80) goto bad;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    *i += need + 1;
    return cp > 0x10FFFF ? 0xFFFD : cp;
bad:
    *i += 1;
    return 0xFFFD;
}

size_t al_utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int al_utf8_check(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return 0; /* a valid prefix so far */
        unsigned b = s[k];
        bool ok = k == 1 ? (b >= lo && b <= hi) : (b & 0xC0) == 0x80;
        if (!ok) return -k;
    }
    return need + 1;
}

bool al_cpt_is_whitespace(uint32_t cp) {
    /* Unicode White_Space */
    if (cp >= 0x09 && cp <= 0x0D) return true;
    if (cp < 0x85) return cp == 0x20;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t al_byte_to_cpt(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (unsigned k = 0; k < b; k++) n += !byte_is_printable(k);
    return 0x100 + n;
}

int al_cpt_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    uint32_t n = cp - 0x100;
    for (unsigned b = 0; b < 256; b++)
        if (!byte_is_printable(b) && n-- == 0) return (int)b;
    return -1;
}

/* ---- pre-tokenizer families ---------------------------------------------------------------- */

/* Regex sets as used by llama.cpp (llama-vocab.cpp), where some patterns were adapted from the
 * tokenizer.json originals (e.g. (?i:...) spelled out). */
#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_CONTRACT "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RX_LLAMA3 RX_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2 RX_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_BLOOM " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"
#define RX_UPPER_LOWER "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define RX_UPPER_LOWER2 "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"

/* deepseek-llm's letter class, verbatim from llama.cpp (UTF-8). */
#define RX_DS_LETTERS                                                                              \
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf"    \
    "\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5" \
    "\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd" \
    "\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a" \
    "\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97" \
    "\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe"   \
    "\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac" \
    "\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d" \
    "\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf"   \
    "\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae" \
    "\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87"   \
    "\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba" \
    "\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb"   \
    "\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
/* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
#define RX_DS_PUNCT "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80\x82]+"
/* [一-龥ࠀ-一가-퟿]+ */
#define RX_DS_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"

const al_pre_traits al_pre_table[AL_PRE_COUNT] = {
    [AL_PRE_DEFAULT] = {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RX_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false, true},
    [AL_PRE_LLAMA3] = {"llama3", {RX_LLAMA3}, true, true, true},
    [AL_PRE_DEEPSEEK_LLM] = {"deepseek-llm", {"[\r\n]", RX_DS_LETTERS, RX_DS_PUNCT, "\\s+$", RX_DS_CJK, "\\p{N}+"}, false, false, false},
    [AL_PRE_DEEPSEEK_CODER] = {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RX_DS_CJK, "\\p{N}"}, false, false, false},
    [AL_PRE_DEEPSEEK3] = {"deepseek-v3",
                          {"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
                           "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
                          false, false, false},
    [AL_PRE_FALCON] = {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]"}, false, false, true},
    [AL_PRE_MPT] = {"mpt", {RX_GPT2}, false, false, true},
    [AL_PRE_STARCODER] = {"starcoder", {"\\p{N}", RX_GPT2}, false, false, true},
    [AL_PRE_GPT2] = {"gpt-2", {RX_GPT2}, false, false, true},
    [AL_PRE_REFACT] = {"refact", {"\\p{N}", RX_GPT2}, false, false, true},
    [AL_PRE_COMMAND_R] = {"command-r", {"\\p{N}", RX_GPT2}, false, false, false},
    [AL_PRE_QWEN2] = {"qwen2", {RX_QWEN2}, false, false, false},
    [AL_PRE_STABLELM2] = {"stablelm2", {RX_QWEN2}, false, false, true},
    [AL_PRE_OLMO] = {"olmo", {RX_GPT2}, false, false, true},
    [AL_PRE_DBRX] = {"dbrx", {RX_LLAMA3}, false, false, true},
    [AL_PRE_SMAUG] = {"smaug-bpe", {RX_LLAMA3}, false, false, true},
    [AL_PRE_PORO] = {"poro-chat", {RX_BLOOM}, false, false, false},
    [AL_PRE_CHATGLM4] = {"chatglm-bpe", {RX_LLAMA3}, false, false, true},
    [AL_PRE_VIKING] = {"viking", {RX_BLOOM, "\\p{N}"}, false, false, false},
    [AL_PRE_JAIS] = {"jais", {RX_GPT2}, false, false, true},
    [AL_PRE_TEKKEN] = {"tekken",
                       {RX_UPPER_LOWER "|" RX_UPPER_LOWER2 "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
                       true, true, false},
    [AL_PRE_SMOLLM] = {"smollm", {"\\p{N}", RX_GPT2}, false, false, false},
    [AL_PRE_CODESHELL] = {"codeshell", {"\\p{N}", RX_GPT2}, false, false, true},
    [AL_PRE_BLOOM] = {"bloom", {RX_BLOOM}, false, false, true},
    [AL_PRE_GPT3_FINNISH] = {"gpt3-finnish", {RX_BLOOM}, false, false, true},
    [AL_PRE_EXAONE] = {"exaone", {"\\p{N}", RX_GPT2}, false, false, true},
    [AL_PRE_CHAMELEON] = {"chameleon",
                          {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
                           "[\\p{P}!-/:-@\\[-`{-~]", RX_GPT2},
                          false, true, false},
    [AL_PRE_MINERVA] = {"minerva-7b", {"\\p{N}", RX_GPT2}, false, false, true},
    [AL_PRE_GPT4O] = {"gpt-4o",
                      {RX_UPPER_LOWER RX_CONTRACT "?|" RX_UPPER_LOWER2 RX_CONTRACT
                       "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
                      false, false, false},
    [AL_PRE_CUSTOM] = {"custom", {NULL}, false, false, false},
};

static const struct { const char *name; al_tok_pre pre; } k_pre_names[] = {
    {"default", AL_PRE_DEFAULT},        {"llama3", AL_PRE_LLAMA3},          {"llama-v3", AL_PRE_LLAMA3},
    {"llama-bpe", AL_PRE_LLAMA3},       {"falcon3", AL_PRE_LLAMA3},         {"deepseek-llm", AL_PRE_DEEPSEEK_LLM},
    {"deepseek-coder", AL_PRE_DEEPSEEK_CODER}, {"deepseek-v3", AL_PRE_DEEPSEEK3}, {"falcon", AL_PRE_FALCON},
    {"mpt", AL_PRE_MPT},                {"starcoder", AL_PRE_STARCODER},    {"gpt-2", AL_PRE_GPT2},
    {"phi-2", AL_PRE_GPT2},             {"jina-es", AL_PRE_GPT2},           {"jina-de", AL_PRE_GPT2},
    {"gigachat", AL_PRE_GPT2},          {"jina-v1-en", AL_PRE_GPT2},        {"jina-v2-es", AL_PRE_GPT2},
    {"jina-v2-de", AL_PRE_GPT2},        {"jina-v2-code", AL_PRE_GPT2},      {"roberta-bpe", AL_PRE_GPT2},
    {"refact", AL_PRE_REFACT},          {"command-r", AL_PRE_COMMAND_R},    {"qwen2", AL_PRE_QWEN2},
    {"megrez", AL_PRE_QWEN2},           {"stablelm2", AL_PRE_STABLELM2},    {"olmo", AL_PRE_OLMO},
    {"dbrx", AL_PRE_DBRX},              {"smaug-bpe", AL_PRE_SMAUG},        {"poro-chat", AL_PRE_PORO},
    {"chatglm-bpe", AL_PRE_CHATGLM4},   {"viking", AL_PRE_VIKING},          {"jais", AL_PRE_JAIS},
    {"tekken", AL_PRE_TEKKEN},          {"smollm", AL_PRE_SMOLLM},          {"codeshell", AL_PRE_CODESHELL},
    {"bloom", AL_PRE_BLOOM},            {"gpt3-finnish", AL_PRE_GPT3_FINNISH}, {"exaone", AL_PRE_EXAONE},
    {"chameleon", AL_PRE_CHAMELEON},    {"minerva-7b", AL_PRE_MINERVA},     {"gpt-4o", AL_PRE_GPT4O},
};

bool al_pre_from_name(const char *name, size_t len, al_tok_pre *out) {
    for (size_t k = 0; k < sizeof k_pre_names / sizeof k_pre_names[0]; k++) {
        if (strlen(k_pre_names[k].name) == len && memcmp(k_pre_names[k].name, name, len) == 0) {
            *out = k_pre_names[k].pre;
            return true;
        }
    }
    return false;
}

al_status al_pretok_compile(al_pretok *p, const char *const *regex, int n) {
    if (n > AL_TOK_MAX_REGEX) return al_err(AL_ERR_UNSUPPORTED, "tokenizer: %d pre-tokenizer regexes (max %d)", n, AL_TOK_MAX_REGEX);
    for (int k = 0; k < n; k++) {
        int code;
        PCRE2_SIZE at;
        /* $ only at the very end, as in ECMAScript / Rust regex */
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex[k], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
        if (!re) {
            char msg[160];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
            return al_err(AL_ERR_FORMAT, "tokenizer: pre-tokenizer regex %d at %zu: %s", k, (size_t)at, msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
        size_t sl = strlen(regex[k]);
        char *src = malloc(sl + 1);
        if (!src) {
            pcre2_code_free(re);
            return al_err(AL_ERR_NOMEM, "tokenizer: pre-tokenizer regex %d", k);
        }
        memcpy(src, regex[k], sl + 1);
        p->src[p->n_re] = src;
        p->re[p->n_re++] = re;
    }
    return al_ok();
}

void al_pretok_free(al_pretok *p) {
    for (int k = 0; k < p->n_re; k++) {
        pcre2_code_free(p->re[k]);
        free(p->src[k]);
        p->src[k] = NULL;
    }
    p->n_re = 0;
}

/* ---- splitting ----------------------------------------------------------------------------- */

/* Fragment lengths in code points. */
typedef struct { size_t *v, n, cap; } szvec;
static bool szpush(szvec *s, size_t x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *p = realloc(s->v, cap * sizeof *p);
        if (!p) return false;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

/* index k with off[k] == byte (byte is always a code point boundary) */
static size_t cpt_at(const size_t *off, size_t n, size_t byte) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (off[mid] < byte) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

al_status al_pretok_split(const al_tokenizer *t, const char *text, size_t len, bool byte_level,
                          al_word_fn fn, void *ud) {
    al_status st = al_ok();
    uint32_t *cpts = NULL;
    size_t *off = NULL;
    char *subj = NULL;
    szvec cur = {0}, nxt = {0};
    al_buf word = {0};
    pcre2_match_data *md = NULL;
    if (len == 0) return st;

    /* Code points (lenient decoding), and a clean UTF-8 subject for the regexes in which every
     * non-ASCII white space is U+000B and surrogates are U+FFFD (llama.cpp's matchers see the
     * same classes). off[k] = byte offset of code point k in the subject. */
    cpts = malloc(len * sizeof *cpts);
    off = malloc((len + 1) * sizeof *off);
    subj = malloc(len * 4 + 1);
    if (!cpts || !off || !subj) {
        st = al_err(AL_ERR_NOMEM, "tokenizer: pre-tokenizing %zu bytes", len);
        goto done;
    }
    size_t n = 0, sl = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = al_utf8_next(text, len, &i);
        uint32_t m = cp;
        if (cp >= 0x80 && al_cpt_is_whitespace(cp)) m = 0x0B;
        else if (cp >= 0xD800 && cp <= 0xDFFF) m = 0xFFFD;
        cpts[n] = cp;
        off[n++] = sl;
        sl += al_utf8_put(m, subj + sl);
    }
    off[n] = sl;
    subj[sl] = '\0';

    if (!szpush(&cur, n)) goto nomem;
    if (t->pretok.n_re) {
        md = pcre2_match_data_create(4, NULL);
        if (!md) goto nomem;
    }
    for (int r = 0; r < t->pretok.n_re; r++) {
        const pcre2_code *re = t->pretok.re[r];
        nxt.n = 0;
        size_t start = 0; /* first code point of the fragment */
        for (size_t f = 0; f < cur.n; f++) {
            size_t flen = cur.v[f];
            const char *base = subj + off[start];
            size_t blen = off[start + flen] - off[start];
            size_t pos = 0, last = 0; /* bytes within the fragment */
            uint32_t opts = 0;
            while (pos <= blen) {
                int rc = pcre2_match(re, (PCRE2_SPTR)base, blen, pos, opts | PCRE2_NO_UTF_CHECK, md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) {
                    if (opts == 0) break;
                    /* no non-empty match here: step one code point */
                    opts = 0;
                    if (pos >= blen) break;
                    pos += al_utf8_len_lead((unsigned char)base[pos]);
                    continue;
                }
                if (rc < 0) {
                    st = al_err(AL_ERR_INVALID, "tokenizer: regex match failed (%d)", rc);
                    goto done;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* empty match: retry non-empty at the same place */
                    opts = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
                    pos = ms;
                    continue;
                }
                opts = 0;
                size_t cs = cpt_at(off, n + 1, off[start] + ms), ce = cpt_at(off, n + 1, off[start] + me);
                size_t cl = cpt_at(off, n + 1, off[start] + last);
                if (cs > cl && !szpush(&nxt, cs - cl)) goto nomem;
                if (!szpush(&nxt, ce - cs)) goto nomem;
                last = me;
                pos = me;
            }
            size_t cl = cpt_at(off, n + 1, off[start] + last);
            if (start + flen > cl && !szpush(&nxt, start + flen - cl)) goto nomem;
            start += flen;
        }
        szvec tmp = cur;
        cur = nxt;
        nxt = tmp;
    }

    /* emit words from the original code points */
    size_t start = 0;
    for (size_t f = 0; f < cur.n; f++) {
        word.n = 0;
        for (size_t k = start; k < start + cur.v[f]; k++) {
            char u[4], e[8];
            size_t ul = al_utf8_put(cpts[k], u);
            if (!byte_level) {
                st = al_buf_put(&word, u, ul);
            } else {
                for (size_t b = 0; b < ul && !al_failed(&st); b++) {
                    size_t el = al_utf8_put(al_byte_to_cpt((uint8_t)u[b]), e);
                    st = al_buf_put(&word, e, el);
                }
            }
            if (al_failed(&st)) goto done;
        }
        start += cur.v[f];
        if (word.n) {
            st = fn(ud, word.p, word.n);
            if (al_failed(&st)) goto done;
        }
    }
    goto done;
nomem:
    st = al_err(AL_ERR_NOMEM, "tokenizer: pre-tokenizing %zu bytes", len);
done:
    pcre2_match_data_free(md);
    free(cpts);
    free(off);
    free(subj);
    free(cur.v);
    free(nxt.v);
    free(word.p);
    return st;
}
