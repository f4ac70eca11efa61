/*
 * prog_plan.h (internal) — which grid barriers of a persistent decode program (persist.cu) can go,
 * and which reads must then use tagged words (al_cuda_prog_set_tagged).
 *
 * A product normally ends with a grid barrier so that the next op sees all of its output. Without
 * that barrier, a product can hand its output on as tagged words: every float is stored together
 * with the writing op's tag in one 8-byte word ({value, tag}), and the readers reload each word until
 * it carries the expected tag — the data is its own signal (NCCL's LL protocol). The plan decides:
 *  - the barrier after product j goes where product j has one output (out[0]), the next op is a
 *    product that reads it whole (as x or as the residual d), and every input of that product written
 *    since the last barrier can come tagged (a product's out[0] or the residual sum h_out its block 0
 *    stores); ops since the last barrier are products or embeddings only (an attention, SSM or conv
 *    shift reads memory that a later product may overwrite once nothing waits for it);
 *  - the barrier after a product goes where the next op is an attention reading all of its outputs
 *    (q, k, v; each unit the rows of its heads), under the same conditions (every row of the product
 *    is read by some unit, and everything after the attention waits for all of its units);
 *  - the barrier after an attention goes where the next product reads its output (x, or the split
 *    partials it merges itself: in[AL_PLAN_M]); the kernel still meets at a barrier at positions
 *    where the attention's last unit per KV head merges the splits (persist.cu: sync 2), since that
 *    path counts arrivals in memory the next layer reuses;
 *  - an input is read tagged where no barrier lies between it and its last writer, and that writer
 *    then stores tagged copies (tag_out, tag_h_out) beside its plain outputs.
 * Reuse of a buffer stays safe without the barrier because each such product reads all of the op
 * before it (every block with rows of op j has written before any block of op j + 1 goes on) and
 * blocks with no rows in a product skip it (persist.cu), so no block still reads a buffer that the
 * next ops write.
 */
#ifndef ALLOY_CUDA_PROG_PLAN_H
#define ALLOY_CUDA_PROG_PLAN_H

#include <stdbool.h>

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { AL_PLAN_PRODUCT, AL_PLAN_EMBED, AL_PLAN_ATTN, AL_PLAN_OTHER };

typedef struct al_plan_op {
    int kind;             /* AL_PLAN_*: ATTN reads in[0 .. 3) (q, k, v) in parts, taggable; OTHER = SSM step,
                           * conv shift (read device memory per unit, never tagged) */
    bool sync;            /* recorded with a grid barrier after it */
    int n_out;            /* product: outputs out[0 .. n_out) */
    const void *out[4];   /* product outputs; embedding / other: the buffers it writes (NULL-terminated) */
    const void *h_out;    /* product: the residual sum block 0 stores, or NULL */
    const void *in[4];    /* product inputs read whole: x, h, d, merged attention splits; attention: q, k, v (NULL: none) */
    const void *fixed[2]; /* product inputs that cannot come tagged (a gate z, rows of another activation) */
} al_plan_op;

enum { AL_PLAN_X, AL_PLAN_H, AL_PLAN_D, AL_PLAN_M };
typedef struct al_plan_out {
    bool sync;            /* a grid barrier after the op */
    bool tag_out[4], tag_h_out; /* the op stores tagged copies of out[m] / h_out */
    int in_tag[4];        /* per input: -1 plain, else the op whose tagged copy it reads */
} al_plan_out;

/* plans n ops; out[n]. level (al_tag_level of alloy/cuda.h): which of the three kinds of barrier
 * above may go — 1: after a product read by a product, 2: also after a product read by an attention,
 * 3: also after an attention (0: none; the plan then keeps every barrier); or AL_TAG_EDGES | mask of
 * the kinds (AL_TAG_E_PP, _PA, _AP) one by one. AL_ERR_INVALID where the
 * recorded program reads an input that no barrier or tag could order (a bug of the caller). */
al_status al_prog_plan(const al_plan_op *ops, int n, int level, al_plan_out *out);

#ifdef __cplusplus
}
#endif

#endif
