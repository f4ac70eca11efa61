/*
 * alloy/engine.h — continuous-batching generation engine: many concurrent requests share the
 * forward passes of one model.
 *
 * Contract
 *  - The engine owns one worker thread and `n_parallel` slots (one al_session each, n_ctx tokens).
 *    al_engine_submit queues a request and returns at once; the worker admits queued requests into
 *    free slots, prefills them, and then advances every active slot by one token per step in a
 *    single batched forward pass. A finished or cancelled request frees its slot at once.
 *  - Events are delivered by calling `on_event` from the worker thread, in order, for one request:
 *    zero or more AL_EV_TOKEN, then exactly one AL_EV_DONE (finish reason + usage). The callback must
 *    be quick and must not call back into the engine except al_engine_cancel. Strings in the event
 *    are valid only during the call.
 *  - Returning false from on_event cancels the request (e.g. the client disconnected).
 *  - Stop strings are matched on the detokenized text; text that could still become a stop string
 *    is held back until it is decided, and the stop string itself is not emitted.
 *  - `constraint` (optional) restricts which tokens may be sampled (JSON / JSON-schema output);
 *    see al_engine_constraint below.
 *  - Prefix reuse: each slot remembers the tokens its state holds (the last request's prompt and the
 *    generated tokens fed back). A new request goes to the free slot whose remembered tokens share
 *    the longest prefix with its prompt, and prefills only the rest when that prefix is reusable:
 *    all of the remembered tokens (any model: a multi-turn chat whose new prompt extends the last
 *    exchange), any common prefix where the backend can cut the state back (attention-only
 *    models), or the last prompt (any model: a snapshot of the state taken where it ended) when the
 *    new prompt starts with it. Otherwise the prompt's last token is evaluated again for its logits,
 *    except for the very same prompt again (a regenerated reply), which starts from the logits kept
 *    at its end and evaluates nothing.
 */
#ifndef ALLOY_ENGINE_H
#define ALLOY_ENGINE_H

#include "alloy/model.h"
#include "alloy/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum al_finish {
    AL_FINISH_NONE = 0,
    AL_FINISH_STOP,      /* end-of-generation token or a stop string */
    AL_FINISH_LENGTH,    /* max_tokens or the context is full */
    AL_FINISH_CANCELLED, /* al_engine_cancel or on_event returned false */
    AL_FINISH_ERROR
} al_finish;

typedef enum al_event_kind { AL_EV_TOKEN = 1, AL_EV_DONE = 2 } al_event_kind;

#define AL_MAX_TOP_LOGPROBS 20

typedef struct al_event {
    al_event_kind kind;
    uint64_t id;
    /* AL_EV_TOKEN */
    int32_t token;
    const char *text; /* UTF-8 text completed by this token (may be empty), NUL-terminated */
    size_t text_len;
    float logprob;    /* log-probability of `token` under the model's (unfiltered) distribution; NAN unless
                         the request asked for logprobs */
    int n_top;        /* top alternatives, when requested */
    int32_t top_ids[AL_MAX_TOP_LOGPROBS];
    float top_logprobs[AL_MAX_TOP_LOGPROBS];
    /* AL_EV_DONE */
    al_finish finish;
    const char *stop_string; /* the stop string that ended it, or NULL */
    const char *error;       /* AL_FINISH_ERROR: why */
    int n_prompt, n_generated;
    int n_cached;            /* prompt tokens served by prefix reuse (not evaluated again) */
    double t_queue, t_prompt, t_gen; /* seconds waiting, prefilling, generating */
} al_event;

typedef bool (*al_event_fn)(void *ud, const al_event *ev);

/* Token filter: called before sampling with the text generated so far; sets allowed[id] = 0 for
 * tokens that must not be chosen (the array arrives all 1). Returning false means "no constraint
 * now". Used for JSON-mode and JSON-schema decoding. */
typedef bool (*al_constraint_fn)(void *ud, const char *text_so_far, size_t len, uint8_t *allowed, int n_vocab);

typedef struct al_gen_request {
    const int32_t *prompt; /* copied at submit */
    size_t n_prompt;
    al_sampler_params sampling;
    int max_tokens;        /* <= 0: until the context is full */
    const char *const *stop; /* copied at submit */
    int n_stop;
    bool logprobs;         /* fill al_event.logprob (one log-softmax over the vocabulary per token, ~1 ms at
                              150k ids); otherwise it is NAN. top_logprobs > 0 implies it */
    int top_logprobs;      /* 0..AL_MAX_TOP_LOGPROBS */
    bool ignore_eos;
    bool render_special;   /* control tokens (e.g. [TOOL_CALLS], <|python_tag|>) appear in the text */
    al_event_fn on_event;
    void *ud;
    al_constraint_fn constraint;
    void *constraint_ud;
} al_gen_request;

typedef struct al_engine al_engine;

typedef struct al_engine_stats {
    int n_parallel, active, queued;
    uint64_t requests_total, tokens_prompt, tokens_generated;
    uint64_t tokens_cached; /* prompt tokens not evaluated again (prefix reuse) */
    uint64_t backend_errors; /* failed backend calls (prefill or decode) */
    int fail_streak;         /* failed backend calls since the last one that succeeded */
} al_engine_stats;

/* ---- slot backends ---------------------------------------------------------------------------
 * Where the slots' forward passes run. al_engine_init uses the CPU: one al_session per slot, and
 * every decode step is one batched forward pass over all active slots. Another device supplies the
 * functions below (the GPU: al_cuda_engine_backend_init in alloy/cuda.h); the engine calls them
 * from its worker thread only, one call at a time. A slot is one sequence's state (n_ctx tokens).
 * Logits are host memory [n_vocab], written by the backend before the call returns. */
typedef struct al_engine_backend {
    void *ctx;                 /* passed to every call */
    const char *device;        /* description for logs ("cpu", the GPU's name); copied */
    size_t device_bytes;       /* model bytes held in device memory (0 on the CPU) */
    int prefill_chunk;         /* prompt tokens per prefill step (<= 0: 256) */
    al_status (*slot_init)(void *ctx, int n_ctx, void **slot); /* n_ctx <= 0: the model's default */
    void (*slot_free)(void *ctx, void *slot);                   /* slot NULL: no-op */
    void (*slot_reset)(void *ctx, void *slot);                  /* back to position 0, empty state */
    int (*slot_pos)(void *ctx, const void *slot);               /* tokens fed so far */
    int (*slot_n_ctx)(void *ctx, const void *slot);
    /* keep the first n tokens of the slot's sequence (prefix reuse); NULL where the state cannot be cut
     * back (recurrent layers): then only a cached sequence that the new prompt extends is reused */
    al_status (*slot_truncate)(void *ctx, void *slot, int n);
    /* remember the slot's state now / go back to it (see al_session_snapshot); may be NULL. Where
     * slot_truncate is NULL the engine snapshots each prompt's end, so that a next prompt that shares
     * the whole prompt but not the reply (a chat template dropping the reasoning of past turns)
     * reuses it on hybrid models (with slot_truncate, a cut back serves that case) */
    al_status (*slot_snapshot)(void *ctx, void *slot);
    al_status (*slot_restore)(void *ctx, void *slot);
    /* n tokens of a prompt (1 <= n <= prefill_chunk); logits of the last one when logits != NULL */
    al_status (*slot_prefill)(void *ctx, void *slot, const int32_t *tok, int n, float *logits);
    /* one token into each of n distinct slots; logits[i] receives slot i's next-token logits */
    al_status (*decode)(void *ctx, void *const *slots, const int32_t *tok, int n, float *const *logits);
    /* the slot's own host buffer of n_vocab floats (owned by the slot, alive until slot_free), which the
     * engine then passes as the slot's logits to prefill and decode — e.g. the pinned memory a device
     * copies logits into, saving a copy per token; the engine may write into it between calls. NULL:
     * the engine allocates the buffers. */
    float *(*slot_logits)(void *ctx, void *slot);
    void (*destroy)(void *ctx); /* after every slot is freed; may be NULL */
} al_engine_backend;

/* The model must outlive the engine. n_ctx per slot (<= 0: model default). */
al_status al_engine_init(al_engine **out, al_model *m, int n_parallel, int n_ctx);
/* As al_engine_init on backend b (copied). The engine owns b->ctx from this call on, whatever it
 * returns: b->destroy(b->ctx) runs in al_engine_free, or here when initialisation fails. */
al_status al_engine_init_backend(al_engine **out, al_model *m, int n_parallel, int n_ctx, const al_engine_backend *b);
/* Stops the worker (pending requests finish with AL_FINISH_CANCELLED) and frees everything. */
void al_engine_free(al_engine *e);
/* Queues a request; *id identifies it in events. AL_ERR_RANGE if the prompt exceeds n_ctx. */
al_status al_engine_submit(al_engine *e, const al_gen_request *r, uint64_t *id);
void al_engine_cancel(al_engine *e, uint64_t id);
al_engine_stats al_engine_get_stats(al_engine *e);
int al_engine_n_ctx(const al_engine *e);
void al_engine_last_error(al_engine *e, char *buf, size_t size); /* the backend's last failure, or "" */
const al_model *al_engine_model(const al_engine *e);
const char *al_engine_device(const al_engine *e);  /* the backend's device description */
size_t al_engine_device_bytes(const al_engine *e); /* al_engine_backend.device_bytes */

#ifdef __cplusplus
}
#endif
#endif
