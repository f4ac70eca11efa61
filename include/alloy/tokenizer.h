/*
 * alloy/tokenizer.h — text <-> token ids, matching llama.cpp's tokenizers token for token.
 *
 * Contract
 *  - An al_tokenizer is immutable after loading and may be shared by threads (encode/decode only
 *    read it). It owns copies of everything it needs: the al_gguf (or JSON files) it was loaded
 *    from may be freed right after loading.
 *  - Models: "gpt2" (byte-level BPE, pre-tokenizer regex set chosen by tokenizer.ggml.pre),
 *    "llama" (SentencePiece with scores and <0xNN> byte fallback), and from tokenizer.json: BPE
 *    either byte-level (ByteLevel pre-tokenizer/decoder) or SentencePiece-style (Metaspace /
 *    "▁" replacement, byte_fallback), ranked by its merges.
 *  - Encoding: special/added tokens are cut out of the text first (longest token text first, as
 *    llama.cpp does); control and unknown tokens only when parse_special, user-defined tokens
 *    always. The remaining text is pre-split and merged. Invalid UTF-8 in the input never fails:
 *    each bad byte is read as U+FFFD, as llama.cpp does.
 *  - Ids are int32_t in [0, vocab_size); AL_TOKEN_NULL (-1) means "none".
 *  - Pieces: al_tokenizer_token_to_piece returns bytes owned by the tokenizer (not
 *    NUL-terminated, possibly an incomplete UTF-8 sequence, e.g. a single <0xE2> byte token).
 *    Buffers returned through out-parameters (ids, decoded text) are malloc'd: free() them.
 *  - al_detok is a streaming detokenizer: it buffers bytes until they form complete UTF-8
 *    characters, so what it hands out is always valid UTF-8 and never splits a character.
 */
#ifndef ALLOY_TOKENIZER_H
#define ALLOY_TOKENIZER_H

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_gguf al_gguf;
typedef struct al_tokenizer al_tokenizer;

#define AL_TOKEN_NULL (-1)

typedef enum al_tok_model {
    AL_TOK_MODEL_BPE = 0, /* byte-level BPE (GPT-2 style), merges ranked */
    AL_TOK_MODEL_SPM,     /* SentencePiece BPE: merge the pair whose token has the best score */
    AL_TOK_MODEL_BPE_SPM, /* tokenizer.json BPE over "▁"-escaped text with byte fallback */
    AL_TOK_MODEL_COUNT
} al_tok_model;

/* Token attributes (bit set, values as llama.cpp's llama_token_attr). */
enum {
    AL_TOK_ATTR_UNDEFINED = 0,
    AL_TOK_ATTR_UNKNOWN = 1 << 0,
    AL_TOK_ATTR_UNUSED = 1 << 1,
    AL_TOK_ATTR_NORMAL = 1 << 2,
    AL_TOK_ATTR_CONTROL = 1 << 3,
    AL_TOK_ATTR_USER_DEFINED = 1 << 4,
    AL_TOK_ATTR_BYTE = 1 << 5,
    AL_TOK_ATTR_NORMALIZED = 1 << 6,
    AL_TOK_ATTR_LSTRIP = 1 << 7,
    AL_TOK_ATTR_RSTRIP = 1 << 8,
    AL_TOK_ATTR_SINGLE_WORD = 1 << 9,
};

/* Decode / detokenizer flags. */
enum {
    AL_DETOK_SPECIAL = 1 << 0,       /* render control/unknown tokens as their text */
    AL_DETOK_SKIP_BOS_EOS = 1 << 1,  /* drop a leading BOS / trailing EOS the model adds */
    AL_DETOK_STRIP_SPACE = 1 << 2,   /* SPM: drop the space the encoder prefixed (first token
                                        after a skipped BOS) */
};

/* ---- loading ---- */

/* From GGUF metadata (tokenizer.ggml.*). Unsupported tokenizer.ggml.model -> AL_ERR_UNSUPPORTED,
 * unknown tokenizer.ggml.pre -> AL_ERR_UNSUPPORTED, malformed arrays -> AL_ERR_FORMAT. */
al_status al_tokenizer_from_gguf(al_tokenizer **out, const al_gguf *g);
/* From a Hugging Face folder: dir/tokenizer.json and, when present, dir/tokenizer_config.json
 * (chat_template, bos/eos tokens, add_bos_token/add_eos_token). */
al_status al_tokenizer_from_hf(al_tokenizer **out, const char *dir);
/* Same from in-memory JSON texts; config may be NULL. */
al_status al_tokenizer_from_hf_json(al_tokenizer **out, const char *tokenizer_json, size_t len,
                                    const char *config_json, size_t config_len);
void al_tokenizer_free(al_tokenizer *t);

/* ---- export ---- */
typedef struct al_gguf_writer al_gguf_writer;
/* Writes the tokenizer as llama.cpp GGUF metadata (tokenizer.ggml.model/pre/tokens/scores/
 * token_type/merges, special token ids, add_bos/add_eos/add_space_prefix, tokenizer.chat_template),
 * as convert_hf_to_gguf.py does; al_tokenizer_from_gguf loads it back. Byte-level BPE becomes
 * "gpt2" (tokenizer.json regexes must be those of a llama.cpp pre-tokenizer family, else
 * AL_ERR_UNSUPPORTED); SentencePiece and tokenizer.json "▁" BPE become "llama" (the latter with
 * scores made from merge ranks). What GGUF cannot carry is dropped, as llama.cpp drops it:
 * tokenizer.json normalizers, added-token lstrip/rstrip, Metaspace prepend_scheme "first". */
al_status al_tokenizer_to_gguf(const al_tokenizer *t, al_gguf_writer *w);

/* ---- encoding ---- */

/* Tokenizes text[0, len). add_special: prepend BOS / append EOS where the model asks for it.
 * parse_special: control tokens written in the text become their ids. *ids is malloc'd (may be
 * NULL when *n == 0). */
al_status al_tokenizer_encode(const al_tokenizer *t, const char *text, size_t len, bool add_special,
                              bool parse_special, int32_t **ids, size_t *n);

/* ---- decoding ---- */

/* The bytes token `id` stands for; control/unknown tokens give "" unless `special`. Returns the
 * length and sets *piece to tokenizer-owned storage. Out-of-range ids give 0 and "". */
size_t al_tokenizer_token_to_piece(const al_tokenizer *t, int32_t id, bool special, const char **piece);
/* Concatenated pieces (flags: AL_DETOK_*); *text is malloc'd and NUL-terminated. Ids out of range
 * -> AL_ERR_RANGE. No clean-up of spaces around punctuation is done. */
al_status al_tokenizer_decode(const al_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                              char **text, size_t *len);

/* ---- vocabulary ---- */
int32_t al_tokenizer_vocab_size(const al_tokenizer *t);
al_tok_model al_tokenizer_model(const al_tokenizer *t);
const char *al_tokenizer_pre_name(const al_tokenizer *t); /* e.g. "gpt-2", "llama3", "default" */
/* The vocabulary text of a token (as stored: byte-level or "▁" escaped), or NULL if out of range. */
const char *al_tokenizer_token_text(const al_tokenizer *t, int32_t id, size_t *len);
int32_t al_tokenizer_find(const al_tokenizer *t, const char *text, size_t len); /* or NULL */
uint32_t al_tokenizer_token_attr(const al_tokenizer *t, int32_t id);
float al_tokenizer_token_score(const al_tokenizer *t, int32_t id);
int32_t al_tokenizer_bos(const al_tokenizer *t);
int32_t al_tokenizer_eos(const al_tokenizer *t);
int32_t al_tokenizer_eot(const al_tokenizer *t);
int32_t al_tokenizer_unk(const al_tokenizer *t);
int32_t al_tokenizer_pad(const al_tokenizer *t);
bool al_tokenizer_add_bos(const al_tokenizer *t);
bool al_tokenizer_add_eos(const al_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the usual end-of-turn texts (<|im_end|>, <|eot_id|>, ...). */
bool al_tokenizer_is_eog(const al_tokenizer *t, int32_t id);
bool al_tokenizer_is_control(const al_tokenizer *t, int32_t id);
/* tokenizer.chat_template (or tokenizer_config.json's), NUL-terminated, or NULL if none. */
const char *al_tokenizer_chat_template(const al_tokenizer *t);

/* ---- streaming detokenizer ---- */
typedef struct al_detok al_detok;

al_status al_detok_init(al_detok **out, const al_tokenizer *t, unsigned flags);
void al_detok_free(al_detok *d);
void al_detok_reset(al_detok *d);
/* Adds token `id`; text and len receive the newly completed characters (valid UTF-8, possibly
 * empty), in storage owned by `d` valid until the next call. Bytes that can never become a valid
 * character are replaced with U+FFFD. */
al_status al_detok_push(al_detok *d, int32_t id, const char **text, size_t *len);
/* End of stream: hands out what is pending; an incomplete trailing sequence becomes U+FFFD. */
al_status al_detok_flush(al_detok *d, const char **text, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
