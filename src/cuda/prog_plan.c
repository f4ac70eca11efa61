/*
 * prog_plan.c — the barrier / tagged-read plan of a persistent decode program (prog_plan.h).
 */
#include "cuda/prog_plan.h"

#include <string.h>

#include "alloy/cuda.h"

static bool writes_buf(const al_plan_op *o, const void *b) {
    if (!b) return false;
    if (o->kind == AL_PLAN_PRODUCT) {
        for (int m = 0; m < o->n_out && m < 4; m++)
            if (o->out[m] == b) return true;
        return o->h_out == b;
    }
    for (int m = 0; m < 4 && o->out[m]; m++)
        if (o->out[m] == b) return true;
    return false;
}

/* the last op before i that writes b, or -1 */
static int last_writer(const al_plan_op *ops, int i, const void *b) {
    for (int w = i - 1; w >= 0; w--)
        if (writes_buf(&ops[w], b)) return w;
    return -1;
}

/* a barrier after one of ops w .. i - 1 (sync: the plan so far) */
static bool barrier_between(const al_plan_out *out, int w, int i) {
    for (int t = w; t < i; t++)
        if (out[t].sync) return true;
    return false;
}

/* the output of writer w that b is (-1: none) */
static int out_index(const al_plan_op *o, const void *b) {
    const int nm = o->kind == AL_PLAN_PRODUCT ? o->n_out : 4;
    for (int m = 0; m < nm && m < 4; m++)
        if (b && o->out[m] == b) return m;
    return -1;
}
/* writer w can store b tagged: one of a product's outputs (at most 4) or its residual sum, an
 * attention's output or split partials */
static bool taggable(const al_plan_op *ops, int w, const void *b) {
    const al_plan_op *o = &ops[w];
    if (o->kind == AL_PLAN_ATTN) return out_index(o, b) >= 0;
    return o->kind == AL_PLAN_PRODUCT && ((o->n_out <= 4 && out_index(o, b) >= 0) || o->h_out == b);
}
/* whether the attention n reads exactly the outputs of product j */
static bool attn_reads_all(const al_plan_op *j, const al_plan_op *n) {
    if (j->n_out < 1 || j->n_out > 3) return false;
    for (int m = 0; m < j->n_out; m++) {
        bool found = false;
        for (int q = 0; q < 3; q++) found = found || n->in[q] == j->out[m];
        if (!found) return false;
    }
    for (int q = 0; q < 3; q++)
        if (n->in[q] && out_index(j, n->in[q]) < 0) return false;
    return true;
}

/* every input of op i (a product or an attention) is ordered with out (barriers) or could be tagged;
 * fixed inputs by a barrier */
static bool inputs_ok(const al_plan_op *ops, const al_plan_out *out, int i) {
    for (int q = 0; q < 4; q++) {
        const void *b = ops[i].in[q];
        const int w = b ? last_writer(ops, i, b) : -1;
        if (w >= 0 && !barrier_between(out, w, i) && !taggable(ops, w, b)) return false;
    }
    for (int q = 0; q < 2; q++) {
        const void *b = ops[i].fixed[q];
        const int w = b ? last_writer(ops, i, b) : -1;
        if (w >= 0 && !barrier_between(out, w, i)) return false;
    }
    return true;
}

al_status al_prog_plan(const al_plan_op *ops, int n, int level, al_plan_out *out) {
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].sync = ops[i].sync;
        for (int q = 0; q < 4; q++) out[i].in_tag[q] = -1;
    }
    const int edges = level > 0 && (level & AL_TAG_EDGES) ? level & (AL_TAG_E_PP | AL_TAG_E_PA | AL_TAG_E_AP)
                      : level >= AL_TAG_FULL ? AL_TAG_E_PP | AL_TAG_E_PA | AL_TAG_E_AP
                      : level >= AL_TAG_ATTN_IN ? AL_TAG_E_PP | AL_TAG_E_PA
                      : level >= AL_TAG_PRODUCTS ? AL_TAG_E_PP : 0;
    int seg = 0; /* first op after the last barrier */
    for (int j = 0; j + 1 < n; j++) {
        const al_plan_op *J = &ops[j], *N = &ops[j + 1];
        bool drop = false;
        if ((edges & AL_TAG_E_PP) && J->kind == AL_PLAN_PRODUCT && out[j].sync && N->kind == AL_PLAN_PRODUCT && J->n_out == 1 && J->out[0])
            /* the next product reads all of J's output through a taggable input, none through a fixed one */
            drop = (N->in[AL_PLAN_X] == J->out[0] || N->in[AL_PLAN_D] == J->out[0]) && N->in[AL_PLAN_H] != J->out[0] &&
                   N->fixed[0] != J->out[0] && N->fixed[1] != J->out[0];
        else if ((edges & AL_TAG_E_PA) && J->kind == AL_PLAN_PRODUCT && out[j].sync && N->kind == AL_PLAN_ATTN)
            drop = attn_reads_all(J, N);
        else if ((edges & AL_TAG_E_AP) && J->kind == AL_PLAN_ATTN && out[j].sync && N->kind == AL_PLAN_PRODUCT && J->out[0])
            /* the next product reads the attention's output as x (and its partials, merging them), nothing else of it */
            drop = N->in[AL_PLAN_X] == J->out[0] && (!N->in[AL_PLAN_M] || N->in[AL_PLAN_M] == J->out[1]) &&
                   out_index(J, N->in[AL_PLAN_H]) < 0 && out_index(J, N->in[AL_PLAN_D]) < 0 && out_index(J, N->fixed[0]) < 0 &&
                   out_index(J, N->fixed[1]) < 0;
        for (int t = seg; drop && t < j; t++) drop = ops[t].kind != AL_PLAN_OTHER;
        if (drop) { /* every later product's inputs must stay ordered without it */
            out[j].sync = false;
            for (int i = j + 1; i < n && !out[j].sync; i++)
                if ((ops[i].kind == AL_PLAN_PRODUCT || ops[i].kind == AL_PLAN_ATTN) && !inputs_ok(ops, out, i)) out[j].sync = true;
        }
        if (out[j].sync) seg = j + 1;
    }
    for (int i = 0; i < n; i++) { /* the reads, on the final barriers */
        if (ops[i].kind != AL_PLAN_PRODUCT && ops[i].kind != AL_PLAN_ATTN) continue;
        for (int q = 0; q < 4; q++) {
            const void *b = ops[i].in[q];
            const int w = b ? last_writer(ops, i, b) : -1;
            if (w < 0 || barrier_between(out, w, i)) continue;
            if (!taggable(ops, w, b))
                return al_err(AL_ERR_INVALID, "prog plan: op %d reads input %d of op %d with no barrier between", i, q, w);
            out[i].in_tag[q] = w;
            const int m = out_index(&ops[w], b);
            if (m >= 0) out[w].tag_out[m] = true;
            else out[w].tag_h_out = true;
        }
        for (int q = 0; q < 2; q++) {
            const void *b = ops[i].fixed[q];
            const int w = b ? last_writer(ops, i, b) : -1;
            if (w >= 0 && !barrier_between(out, w, i))
                return al_err(AL_ERR_INVALID, "prog plan: op %d reads a fixed input of op %d with no barrier between", i, w);
        }
    }
    return al_ok();
}
