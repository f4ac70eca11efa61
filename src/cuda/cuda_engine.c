/*
 * cuda_engine.c — the engine's GPU backend (see alloy/cuda.h, al_cuda_engine_backend_init): one
 * al_cuda context and al_cuda_model, one al_cuda_session per slot. Decode feeds the slots one after
 * the other (each step its session's persistent kernel, the logits through the session's pinned
 * buffer) or, with batch >= 2, in groups through al_cuda_session_decode_batch.
 */
#include <stdlib.h>
#include <string.h>

#include "alloy/cuda.h"

#define SERVE_UBATCH 512 /* prefill chunk: a few ms of GPU time, so other streams keep flowing */

typedef struct gpu_backend {
    al_cuda *cu;
    al_cuda_model *cm;
    al_cuda_session_params p;
    int batch;
    int n_vocab;
    char device[160];
} gpu_backend;

static al_status gpu_slot_init(void *ctx, int n_ctx, void **slot) {
    gpu_backend *b = ctx;
    al_cuda_session_params p = b->p;
    p.n_ctx = n_ctx;
    al_cuda_session *s = NULL;
    AL_TRY(al_cuda_session_init(&s, b->cm, &p));
    *slot = s;
    return al_ok();
}

static void gpu_slot_free(void *ctx, void *slot) {
    (void)ctx;
    al_cuda_session_free(slot);
}

static void gpu_slot_reset(void *ctx, void *slot) {
    (void)ctx;
    al_cuda_session_reset(slot);
}

static int gpu_slot_pos(void *ctx, const void *slot) {
    (void)ctx;
    return al_cuda_session_pos(slot);
}

static int gpu_slot_n_ctx(void *ctx, const void *slot) {
    (void)ctx;
    return al_cuda_session_n_ctx(slot);
}

static al_status gpu_slot_truncate(void *ctx, void *slot, int n) {
    (void)ctx;
    return al_cuda_session_truncate(slot, n);
}

static al_status gpu_slot_snapshot(void *ctx, void *slot) {
    (void)ctx;
    return al_cuda_session_snapshot(slot);
}

static al_status gpu_slot_restore(void *ctx, void *slot) {
    (void)ctx;
    return al_cuda_session_restore(slot);
}

static al_status gpu_slot_prefill(void *ctx, void *slot, const int32_t *tok, int n, float *logits) {
    (void)ctx;
    return al_cuda_session_eval(slot, tok, n, logits, false);
}

static al_status gpu_decode(void *ctx, void *const *slots, const int32_t *tok, int n, float *const *logits) {
    gpu_backend *b = ctx;
    if (b->batch >= 2 && n >= 2) {
        for (int i = 0; i < n;) {
            int g = n - i < b->batch ? n - i : b->batch;
            const int cap = al_cuda_session_batch_max(slots[i]);
            if (g > cap) g = cap > 1 ? cap : 1;
            AL_TRY(al_cuda_session_decode_batch((al_cuda_session *const *)(slots + i), tok + i, g, logits + i));
            i += g;
        }
        return al_ok();
    }
    for (int i = 0; i < n; i++) {
        const float *lg;
        AL_TRY(al_cuda_session_decode(slots[i], tok[i], &lg));
        if (lg != logits[i]) memcpy(logits[i], lg, sizeof(float) * (size_t)b->n_vocab);
    }
    return al_ok();
}

/* A throwaway session runs a short prompt and two decode steps at start-up, so that the first request
 * does not pay for what a process does once: loading the kernels' modules (lazily, on first launch),
 * cuBLAS's setup, sizing the context's scratch. */
static al_status warm_up(gpu_backend *b) {
    al_cuda_session_params p = b->p;
    p.n_ctx = 64;
    al_cuda_session *s = NULL;
    AL_TRY(al_cuda_session_init(&s, b->cm, &p));
    int32_t tok[32];
    for (int i = 0; i < 32; i++) tok[i] = (int32_t)((i * 7919) % b->n_vocab);
    al_status st = al_cuda_session_eval(s, tok, 32, NULL, false);
    const float *lg;
    for (int i = 0; i < 2 && !al_failed(&st); i++) st = al_cuda_session_decode(s, tok[i], &lg);
    al_cuda_session_free(s);
    return st;
}

/* the engine's logits of a slot are its session's pinned buffer: decode copies into it, and nothing
 * copies out of it */
static float *gpu_slot_logits(void *ctx, void *slot) {
    (void)ctx;
    return al_cuda_session_logits_buffer(slot);
}

static void gpu_destroy(void *ctx) {
    gpu_backend *b = ctx;
    if (!b) return;
    al_cuda_model_free(b->cm);
    al_cuda_free(b->cu);
    free(b);
}

al_cuda_serve_params al_cuda_serve_default_params(void) {
    return (al_cuda_serve_params){.device = 0, .n_gpu_layers = -1, .session = al_cuda_session_default_params(), .batch = 1};
}

al_status al_cuda_engine_backend_init(al_engine_backend *out, al_model *m, const al_cuda_serve_params *sp) {
    memset(out, 0, sizeof *out);
    const al_cuda_serve_params def = al_cuda_serve_default_params();
    if (!sp) sp = &def;
    const int device = sp->device;
    if (al_cuda_device_count() <= device || device < 0)
        return al_err(AL_ERR_NOT_FOUND, "cuda: no device %d (%d found)", device, al_cuda_device_count() > 0 ? al_cuda_device_count() : 0);
    gpu_backend *b = calloc(1, sizeof *b);
    if (!b) return al_err(AL_ERR_NOMEM, "cuda: out of memory");
    b->p = sp->session;
    b->batch = sp->batch;
    if (b->p.ubatch <= 0) b->p.ubatch = SERVE_UBATCH;
    b->n_vocab = al_model_n_vocab(m);
    al_status st = al_cuda_init(&b->cu, device);
    if (!al_failed(&st)) {
        al_cuda_describe(b->cu, b->device, sizeof b->device);
        st = al_cuda_model_init_layers(&b->cm, b->cu, m, sp->n_gpu_layers);
    }
    if (!al_failed(&st)) st = warm_up(b);
    if (al_failed(&st)) {
        gpu_destroy(b);
        return st;
    }
    *out = (al_engine_backend){
        .ctx = b,
        .device = b->device,
        .device_bytes = al_cuda_model_bytes(b->cm),
        .prefill_chunk = b->p.ubatch,
        .slot_init = gpu_slot_init,
        .slot_free = gpu_slot_free,
        .slot_reset = gpu_slot_reset,
        .slot_pos = gpu_slot_pos,
        .slot_n_ctx = gpu_slot_n_ctx,
        .slot_truncate = al_model_can_truncate(m) ? gpu_slot_truncate : NULL,
        .slot_snapshot = gpu_slot_snapshot,
        .slot_restore = gpu_slot_restore,
        .slot_prefill = gpu_slot_prefill,
        .decode = gpu_decode,
        .slot_logits = gpu_slot_logits,
        .destroy = gpu_destroy,
    };
    return al_ok();
}
