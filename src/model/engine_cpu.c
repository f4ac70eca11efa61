/*
 * engine_cpu.c — the engine's CPU backend (al_engine_backend): one al_session per slot; a decode
 * call is one al_forward_batch over all its slots, so the weights are read once per step for every
 * active stream. The batch scratch ([n_parallel] rows, the slots' n_ctx) is sized at the first decode.
 */
#include <stdlib.h>
#include <string.h>

#include "model/session_internal.h"

typedef struct cpu_backend {
    al_model *m;
    int rows;             /* n_parallel */
    bool sc_ready;
    al_scratch sc;
    al_fwd_item *items;   /* [rows] */
} cpu_backend;

static al_status cpu_slot_init(void *ctx, int n_ctx, void **slot) {
    cpu_backend *b = ctx;
    al_session *s = NULL;
    AL_TRY(al_session_init(&s, b->m, n_ctx));
    *slot = s;
    return al_ok();
}

static void cpu_slot_free(void *ctx, void *slot) {
    (void)ctx;
    al_session_free(slot);
}

static void cpu_slot_reset(void *ctx, void *slot) {
    (void)ctx;
    al_session_reset(slot);
}

static int cpu_slot_pos(void *ctx, const void *slot) {
    (void)ctx;
    return al_session_pos(slot);
}

static int cpu_slot_n_ctx(void *ctx, const void *slot) {
    (void)ctx;
    return al_session_n_ctx(slot);
}

static al_status cpu_slot_truncate(void *ctx, void *slot, int n) {
    (void)ctx;
    return al_session_truncate(slot, n);
}

static al_status cpu_slot_snapshot(void *ctx, void *slot) {
    (void)ctx;
    return al_session_snapshot(slot);
}

static al_status cpu_slot_restore(void *ctx, void *slot) {
    (void)ctx;
    return al_session_restore(slot);
}

static al_status cpu_slot_prefill(void *ctx, void *slot, const int32_t *tok, int n, float *logits) {
    (void)ctx;
    return al_session_eval(slot, tok, n, logits, false);
}

static al_status cpu_decode(void *ctx, void *const *slots, const int32_t *tok, int n, float *const *logits) {
    cpu_backend *b = ctx;
    if (n <= 0 || n > b->rows) return al_err(AL_ERR_INVALID, "engine: decode of %d slots (at most %d)", n, b->rows);
    if (!b->sc_ready) {
        AL_TRY(al_scratch_init(&b->sc, b->m, b->rows, al_session_n_ctx(slots[0])));
        b->sc_ready = true;
    }
    for (int i = 0; i < n; i++) {
        if (al_session_n_ctx(slots[i]) > b->sc.n_ctx)
            return al_err(AL_ERR_INVALID, "engine: slot of %d tokens exceeds the batch scratch (%d)", al_session_n_ctx(slots[i]),
                          b->sc.n_ctx);
        b->items[i] = (al_fwd_item){slots[i], &tok[i], 1, logits[i], false};
    }
    return al_forward_batch(b->m, &b->sc, b->items, n);
}

static void cpu_destroy(void *ctx) {
    cpu_backend *b = ctx;
    if (!b) return;
    if (b->sc_ready) al_scratch_free(&b->sc);
    free(b->items);
    free(b);
}

al_status al_engine_cpu_backend(al_model *m, int n_parallel, al_engine_backend *out) {
    memset(out, 0, sizeof *out);
    if (n_parallel <= 0 || n_parallel > 1024) return al_err(AL_ERR_INVALID, "engine: n_parallel %d out of [1, 1024]", n_parallel);
    cpu_backend *b = calloc(1, sizeof *b);
    if (b) b->items = calloc((size_t)n_parallel, sizeof *b->items);
    if (!b || !b->items) {
        cpu_destroy(b);
        return al_err(AL_ERR_NOMEM, "engine: out of memory");
    }
    b->m = m;
    b->rows = n_parallel;
    *out = (al_engine_backend){
        .ctx = b,
        .device = "cpu",
        .prefill_chunk = 256,
        .slot_init = cpu_slot_init,
        .slot_free = cpu_slot_free,
        .slot_reset = cpu_slot_reset,
        .slot_pos = cpu_slot_pos,
        .slot_n_ctx = cpu_slot_n_ctx,
        .slot_truncate = al_model_can_truncate(m) ? cpu_slot_truncate : NULL,
        .slot_snapshot = cpu_slot_snapshot,
        .slot_restore = cpu_slot_restore,
        .slot_prefill = cpu_slot_prefill,
        .decode = cpu_decode,
        .destroy = cpu_destroy,
    };
    return al_ok();
}
