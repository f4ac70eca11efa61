/*
 * alloy/model.h — loading models and running them: dense transformers (llama, qwen2/3) and
 * hybrid SSM-attention models (mamba2, nemotron_h, zamba2, jamba, alloy).
 *
 * Contract
 *  - al_model_load takes a GGUF file or a Hugging Face folder (config.json + safetensors). Large
 *    matrices are borrowed from the memory-mapped file (kept open by the model) in their stored
 *    type; small vectors (norms, biases, SSM parameters) are converted to owned float32.
 *  - An al_session is one sequence's state: the KV cache of every attention layer and the conv +
 *    SSM state of every Mamba layer, plus scratch. Sessions of one model are independent; one
 *    session is used by one thread at a time. The model must outlive its sessions.
 *  - al_session_eval feeds n tokens at positions [pos, pos + n) and advances pos. Prefill (n > 1)
 *    uses batched matrix products and the chunked SSD scan; decode (n = 1) the one-step recurrence;
 *    both give the same logits up to float rounding.
 *  - Logits are float32 [n_out][n_vocab], n_out = n when all_logits, else 1 (the last position).
 */
#ifndef ALLOY_MODEL_H
#define ALLOY_MODEL_H

#include "alloy/core.h"
#include "alloy/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum al_arch {
    AL_ARCH_LLAMA = 0,
    AL_ARCH_QWEN2,
    AL_ARCH_QWEN3,
    AL_ARCH_MAMBA2,
    AL_ARCH_NEMOTRON_H,
    AL_ARCH_ZAMBA2,
    AL_ARCH_JAMBA,
    AL_ARCH_ALLOY,
    AL_ARCH_COUNT
} al_arch;

const char *al_arch_name(al_arch a);              /* GGUF general.architecture string */
bool al_arch_from_name(const char *name, al_arch *out);

typedef struct al_model al_model;
typedef struct al_session al_session;

typedef struct al_model_params {
    int n_threads;          /* <= 0: all cores */
    al_isa isa;             /* AL_ISA_AUTO */
    const al_logger *log;   /* may be NULL */
} al_model_params;

al_model_params al_model_default_params(void);
al_status al_model_load(al_model **out, const char *path, const al_model_params *params);
void al_model_free(al_model *m);

al_arch al_model_arch(const al_model *m);
int al_model_n_vocab(const al_model *m);
int al_model_n_embd(const al_model *m);
int al_model_n_layer(const al_model *m);
int al_model_n_ctx_train(const al_model *m);
/* Bytes of weights read per decoded token (every matrix once): the decode roofline's numerator. */
size_t al_model_weight_bytes(const al_model *m);
/* Number of weights stored in the file (all tensors, every expert). */
int64_t al_model_n_params(const al_model *m);
/* llama.cpp-style name of the weight format: "Q4_K_M", "Q8_0", "F16", ... (from general.file_type
 * for GGUF, else the type of the first matrix). */
const char *al_model_ftype_name(const al_model *m);
/* One-line description: "qwen3 2L d64 vocab 512 F32, 0.43 MB". */
void al_model_describe(const al_model *m, char *buf, size_t size);
al_cpu *al_model_cpu(al_model *m);
/* The model's tokenizer (GGUF tokenizer.* metadata, or tokenizer.json in an HF folder). Sets *out
 * to NULL and returns why when the model carries none or it could not be loaded. */
struct al_tokenizer;
al_status al_model_tokenizer(const al_model *m, const struct al_tokenizer **out);
/* The file the model came from: a GGUF path or the HF folder. */
const char *al_model_path(const al_model *m);

/* Converts a GGUF file or HF folder to GGUF with weights of `type` ("F32", "Q8_0", "Q4_K", ...) or
 * a mixed recipe ("Q4_K_M", "Q5_K_M"). Norms and SSM parameters stay F32. bytes_in/out (may be
 * NULL) receive the weight bytes read and written. */
al_status al_model_convert(const char *in_path, const char *out_path, const char *type, int n_threads,
                           size_t *bytes_in, size_t *bytes_out);

/* Writes a random-weight GGUF of a named shape ("alloy-tiny", "qwen3-0.6b", "llama-3.2-1b",
 * "mamba2-1.3b") with weights of `type`; tokenizer_gguf (may be NULL) supplies tokenizer.* metadata
 * and, for presets without a fixed vocabulary, the vocabulary size. Same seed, same file. */
al_status al_model_create_preset(const char *preset, const char *tokenizer_gguf, const char *out_path, const char *type,
                                 uint64_t seed);

/* n_ctx <= 0: the model's training context (capped at 8192). */
al_status al_session_init(al_session **out, al_model *m, int n_ctx);
void al_session_free(al_session *s);
void al_session_reset(al_session *s);
/* Keeps the first n tokens (n <= position): later ones are forgotten, the next eval continues at n.
 * Only where every layer's state is its KV rows: AL_ERR_UNSUPPORTED for models with conv / SSM
 * state (it has absorbed the later tokens). */
al_status al_session_truncate(al_session *s, int n);
bool al_model_can_truncate(const al_model *m); /* no layer keeps recurrent (conv / SSM) state */
/* Remembers the recurrent (conv / SSM) state and the position now (one snapshot per session, in
 * host memory the size of that state). al_session_restore goes back to it: the position becomes the
 * snapshot's and the KV rows before it are those kept, so it is valid while the session has only
 * gone on from there (reset, or a truncate below it, drop it: AL_ERR_NOT_FOUND). */
al_status al_session_snapshot(al_session *s);
al_status al_session_restore(al_session *s);
int al_session_snapshot_pos(const al_session *s); /* -1: none */
int al_session_pos(const al_session *s);
int al_session_n_ctx(const al_session *s);
al_status al_session_eval(al_session *s, const int32_t *tokens, int n, float *logits, bool all_logits);

#ifdef __cplusplus
}
#endif
#endif
