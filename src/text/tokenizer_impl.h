/*
 * tokenizer_impl.h — the private layout of al_tokenizer shared by src/text/tokenizer_*.c.
 *
 *  tokenizer_vocab.c   string maps, the builder both loaders fill, finalisation (special ids,
 *                      end-of-generation set, special-token cache, piece cache), getters
 *  tokenizer_gguf.c    tokenizer.ggml.* -> builder
 *  tokenizer_hf.c      tokenizer.json (+ tokenizer_config.json) -> builder
 *  tokenizer_pretok.c  UTF-8 decoding, pre-tokenizer regex sets (PCRE2), GPT-2 byte<->unicode
 *  tokenizer_bpe.c     the merge loop (rank-ordered BPE and score-ordered SentencePiece)
 *  tokenizer_encode.c  special-token partition and the encode driver
 *  tokenizer_detok.c   pieces, decode, streaming detokenizer
 */
#ifndef ALLOY_TOKENIZER_IMPL_H
#define ALLOY_TOKENIZER_IMPL_H

#include "alloy/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- byte-string -> int32 hash map (keys copied into the map's arena) ---- */
typedef struct al_strmap_slot {
    uint64_t hash;
    uint32_t off, len; /* key bytes in arena */
    int32_t val;
    uint32_t used;
} al_strmap_slot;

typedef struct al_strmap {
    al_strmap_slot *slots;
    size_t cap, count; /* cap is a power of two */
    char *arena;
    size_t arena_len, arena_cap;
} al_strmap;

al_status al_strmap_init(al_strmap *m, size_t expect);
void al_strmap_free(al_strmap *m);
/* Inserts or (if `replace`) overwrites; keeps the first value otherwise. */
al_status al_strmap_put(al_strmap *m, const char *key, size_t len, int32_t val, bool replace);
bool al_strmap_get(const al_strmap *m, const char *key, size_t len, int32_t *val);
uint64_t al_hash_bytes(const char *p, size_t n);

/* ---- pre-tokenizer families (tokenizer.ggml.pre) ---- */
typedef enum al_tok_pre {
    AL_PRE_DEFAULT = 0,
    AL_PRE_LLAMA3,
    AL_PRE_DEEPSEEK_LLM,
    AL_PRE_DEEPSEEK_CODER,
    AL_PRE_DEEPSEEK3,
    AL_PRE_FALCON,
    AL_PRE_MPT,
    AL_PRE_STARCODER,
    AL_PRE_GPT2,
    AL_PRE_REFACT,
    AL_PRE_COMMAND_R,
    AL_PRE_QWEN2,
    AL_PRE_STABLELM2,
    AL_PRE_OLMO,
    AL_PRE_DBRX,
    AL_PRE_SMAUG,
    AL_PRE_PORO,
    AL_PRE_CHATGLM4,
    AL_PRE_VIKING,
    AL_PRE_JAIS,
    AL_PRE_TEKKEN,
    AL_PRE_SMOLLM,
    AL_PRE_CODESHELL,
    AL_PRE_BLOOM,
    AL_PRE_GPT3_FINNISH,
    AL_PRE_EXAONE,
    AL_PRE_CHAMELEON,
    AL_PRE_MINERVA,
    AL_PRE_GPT4O,
    AL_PRE_CUSTOM, /* regexes given by tokenizer.json */
    AL_PRE_COUNT
} al_tok_pre;

#define AL_TOK_MAX_REGEX 8

typedef struct al_pretok {
    pcre2_code *re[AL_TOK_MAX_REGEX];
    char *src[AL_TOK_MAX_REGEX]; /* the patterns as given (NUL-terminated), for export */
    int n_re;
} al_pretok;

/* Family traits; indexed by al_tok_pre. */
typedef struct al_pre_traits {
    const char *name;
    const char *regex[AL_TOK_MAX_REGEX]; /* applied in turn, each splitting the previous pieces */
    bool ignore_merges;                  /* a whole pre-token that is a token is emitted as is */
    bool add_bos;                        /* default for tokenizer.ggml.add_bos_token */
    bool clean_spaces;
} al_pre_traits;

extern const al_pre_traits al_pre_table[AL_PRE_COUNT];
/* Maps a tokenizer.ggml.pre value to a family; false if unknown. */
bool al_pre_from_name(const char *name, size_t len, al_tok_pre *out);

al_status al_pretok_compile(al_pretok *p, const char *const *regex, int n);
void al_pretok_free(al_pretok *p);

/* ---- the tokenizer ---- */
struct al_tokenizer {
    al_tok_model model;
    al_tok_pre pre;
    int32_t n_tokens;

    char *text_arena;  /* token texts back to back (each followed by a NUL) */
    size_t text_cap;
    size_t *text_off;  /* [n_tokens] */
    uint32_t *text_len; /* [n_tokens] */
    float *scores;     /* [n_tokens] */
    uint32_t *attr;    /* [n_tokens] AL_TOK_ATTR_* */
    al_strmap tok_map; /* text -> id (a later duplicate wins, as in llama.cpp) */
    al_strmap merges;  /* (left,right) key -> rank; see al_merge_key */
    int32_t max_token_len;

    char *piece_arena; /* pieces with special = true */
    size_t *piece_off;
    uint32_t *piece_len;

    int32_t bos, eos, eot, eom, unk, pad, sep, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;

    int32_t *eog; /* sorted ids */
    size_t n_eog;
    int32_t *special; /* control/user-defined/unknown ids, longest text first */
    size_t n_special;

    al_pretok pretok;
    /* tokenizer.json extras */
    bool byte_fallback;     /* BPE_SPM: unknown chars -> <0xNN> tokens */
    bool hf_prepend_space;  /* BPE: ByteLevel add_prefix_space; BPE_SPM: prepend "▁" */
    bool hf_prepend_always; /* BPE_SPM: to every text fragment, not only the one at offset 0 */
    bool hf_prepend_dedup;  /* BPE_SPM (Metaspace): not when the fragment starts with a space */
    int hf_normalize;       /* 0 none, else UTF8PROC_* options for NFC/NFKC/... */
    bool byte_level;        /* byte-level mapping of pre-tokens (BPE) */

    char *chat_template;
    char *pre_name;
};

/* Merge lookup key: u32 length of left, left bytes, right bytes. buf must hold 4+ll+rl bytes. */
size_t al_merge_key(char *buf, const char *l, size_t ll, const char *r, size_t rl);

/* ---- builder shared by the loaders ---- */
typedef struct al_tok_builder {
    al_tokenizer *t;
    const char *model_name; /* general.name, for per-model attribute tweaks (may be NULL) */
} al_tok_builder;

/* Allocates a tokenizer with n tokens (texts to be set with al_tok_set_token). */
al_status al_tok_alloc(al_tokenizer **out, al_tok_model model, int32_t n_tokens, size_t text_bytes);
/* Token i: text (copied), score, attribute bits. Empty texts become "[EMPTY_i]". */
al_status al_tok_set_token(al_tokenizer *t, int32_t i, const char *text, size_t len, float score,
                           uint32_t attr);
al_status al_tok_add_merge(al_tokenizer *t, const char *merge, size_t len, int32_t rank);
al_status al_tok_add_merge_pair(al_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl,
                                int32_t rank);
/* The text -> id map (once all tokens are set; al_tok_finalize calls it too). */
al_status al_tok_build_map(al_tokenizer *t);
/* Builds maps and caches once tokens, ids and flags are set. */
al_status al_tok_finalize(al_tokenizer *t, const char *model_name);
uint32_t al_tok_attr_from_type(int64_t type); /* GGUF token_type -> AL_TOK_ATTR_* */

/* ---- UTF-8 helpers (tokenizer_pretok.c) ---- */
/* llama.cpp-compatible lenient decoder: returns the code point at s[*i] and advances *i; an
 * invalid lead or missing continuation byte yields 0xFFFD and advances by one byte. */
uint32_t al_utf8_next(const char *s, size_t n, size_t *i);
size_t al_utf8_put(uint32_t cp, char *out); /* 1..4 bytes; cp must be <= 0x10FFFF */
size_t al_utf8_len_lead(unsigned char c);    /* 1..4 from the high nibble, as llama.cpp */
bool al_cpt_is_whitespace(uint32_t cp);
/* Strict validation: length of the valid sequence at s (1..4), 0 if s[0..n) is a proper prefix
 * of a valid sequence (needs more bytes), or -k if the first k bytes are an invalid subpart. */
int al_utf8_check(const unsigned char *s, size_t n);

/* GPT-2 byte -> code point map and its inverse. */
uint32_t al_byte_to_cpt(uint8_t b);
int al_cpt_to_byte(uint32_t cp); /* -1 if cp is not in the map */

/* A growable int32 vector. */
typedef struct al_ivec {
    int32_t *v;
    size_t n, cap;
} al_ivec;
al_status al_ivec_push(al_ivec *v, int32_t x);

/* A growable byte buffer. */
typedef struct al_buf {
    char *p;
    size_t n, cap;
} al_buf;
al_status al_buf_put(al_buf *b, const void *p, size_t n);

/* Splits text[0,len) with the tokenizer's regexes and calls fn for each pre-token; with
 * byte_level, each pre-token is passed GPT-2 byte-encoded. */
typedef al_status (*al_word_fn)(void *ud, const char *word, size_t len);
al_status al_pretok_split(const al_tokenizer *t, const char *text, size_t len, bool byte_level,
                          al_word_fn fn, void *ud);

/* Merge engine over one word; appends ids to out. */
al_status al_bpe_word(const al_tokenizer *t, const char *word, size_t len, al_ivec *out);
al_status al_spm_text(const al_tokenizer *t, const char *text, size_t len, al_ivec *out);
int32_t al_tok_byte_token(const al_tokenizer *t, uint8_t byte); /* <0xNN> (SPM) */

#endif
