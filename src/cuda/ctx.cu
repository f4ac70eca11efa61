/* ctx.cu — device context, buffers, scratch, graphs and weight upload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/quant.h"
#include "cuda/cuda_impl.cuh"

extern "C" int al_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky "no device / no driver" error */
        return 0;
    }
    return n;
}

extern "C" al_status al_cuda_init(al_cuda **out, int device) {
    *out = NULL;
    int n = al_cuda_device_count();
    if (device < 0 || device >= n) return al_err(AL_ERR_NOT_FOUND, "cuda: device %d not present (%d devices)", device, n);
    al_cuda *c = (al_cuda *)calloc(1, sizeof *c);
    if (!c) return al_err(AL_ERR_NOMEM, "cuda: out of memory");
    c->device = device;
    al_status st = al_cuda_status(cudaSetDevice(device), "cudaSetDevice");
    if (!al_failed(&st)) st = al_cuda_status(cudaGetDeviceProperties(&c->prop, device), "cudaGetDeviceProperties");
    if (!al_failed(&st)) st = al_cuda_status(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    if (!al_failed(&st)) {
        cublasStatus_t bs = cublasCreate(&c->blas);
        if (bs != CUBLAS_STATUS_SUCCESS) st = al_err(AL_ERR_IO, "cuda: cublasCreate failed (%d)", (int)bs);
        else {
            cublasSetStream(c->blas, c->stream);
            cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH); /* no TF32 for float32 GEMMs */
        }
    }
    if (al_failed(&st)) {
        al_cuda_free(c);
        return st;
    }
    c->pdl = c->prop.major >= 9;
    al_cuda_set_mmq_multi_min(c, -1);
    *out = c;
    return al_ok();
}

extern "C" void al_cuda_free(al_cuda *c) {
    if (!c) return;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->scratch) cudaFree(c->scratch);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" void al_cuda_set_pdl(al_cuda *c, bool on) { c->pdl = on && c->prop.major >= 9; }
extern "C" bool al_cuda_pdl(const al_cuda *c) { return c->pdl; }
extern "C" void al_cuda_set_mmq_multi_min(al_cuda *c, int64_t bytes) {
    c->mmq_multi_min = bytes < 0 ? (size_t)c->prop.l2CacheSize / 2 : (size_t)bytes;
}

extern "C" al_status al_cuda_sync(al_cuda *c) {
    AL_CUDA_TRY(cudaStreamSynchronize(c->stream), "stream sync");
    return al_cuda_status(cudaGetLastError(), "after sync");
}

extern "C" void al_cuda_describe(const al_cuda *c, char *buf, size_t size) {
    snprintf(buf, size, "%s, sm_%d%d, %d SMs, %.1f GiB", c->prop.name, c->prop.major, c->prop.minor,
             c->prop.multiProcessorCount, (double)c->prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

extern "C" void *al_cuda_stream(al_cuda *c) { return (void *)c->stream; }

extern "C" al_status al_cuda_alloc(al_cuda *c, void **out, size_t bytes) {
    *out = NULL;
    void *p = NULL;
    AL_CUDA_TRY(cudaMalloc(&p, bytes ? bytes : 16), "cudaMalloc");
    /* zeroed on the context's stream (non-blocking: a cudaMemset on the legacy stream is not ordered
     * before the uploads that follow on c->stream, and could land after them) and waited for */
    cudaError_t e = cudaMemsetAsync(p, 0, bytes ? bytes : 16, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        cudaFree(p);
        return al_cuda_status(e, "cudaMemset");
    }
    *out = p;
    return al_ok();
}

extern "C" void al_cuda_release(al_cuda *c, void *p) {
    (void)c;
    if (p) cudaFree(p);
}

extern "C" al_status al_cuda_upload(al_cuda *c, void *dst, const void *src, size_t bytes) {
    if (!bytes) return al_ok();
    AL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "upload");
    return al_cuda_status(cudaStreamSynchronize(c->stream), "upload sync");
}

extern "C" al_status al_cuda_download(al_cuda *c, void *dst, const void *src, size_t bytes) {
    if (!bytes) return al_ok();
    AL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download");
    return al_cuda_status(cudaStreamSynchronize(c->stream), "download sync");
}

extern "C" al_status al_cuda_copy_async(al_cuda *c, void *dst, const void *src, size_t bytes) {
    if (!bytes) return al_ok();
    AL_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, c->stream), "copy");
    return al_ok();
}

extern "C" al_status al_cuda_host_alloc(void **out, size_t bytes) {
    *out = NULL;
    AL_CUDA_TRY(cudaMallocHost(out, bytes ? bytes : 16), "cudaMallocHost");
    return al_ok();
}

extern "C" void al_cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

extern "C" al_status al_cuda_memset(al_cuda *c, void *p, int value, size_t bytes) {
    if (!bytes) return al_ok();
    AL_CUDA_TRY(cudaMemsetAsync(p, value, bytes, c->stream), "memset");
    return al_ok();
}

extern "C" al_status al_cuda_scratch(al_cuda *c, size_t bytes, void **out) {
    if (bytes <= c->scratch_size && c->scratch) {
        *out = c->scratch;
        return al_ok();
    }
    if (c->capturing) return al_err(AL_ERR_INVALID, "cuda: scratch must not grow during graph capture");
    size_t want = bytes + bytes / 4 + (1u << 20);
    if (c->scratch) {
        AL_CUDA_TRY(cudaStreamSynchronize(c->stream), "scratch sync");
        cudaFree(c->scratch);
        c->scratch = NULL;
        c->scratch_size = 0;
    }
    AL_CUDA_TRY(cudaMalloc(&c->scratch, want), "scratch cudaMalloc");
    c->scratch_size = want;
    c->scratch_gen++;
    *out = c->scratch;
    return al_ok();
}

extern "C" uint64_t al_cuda_scratch_gen(const al_cuda *c) { return c->scratch_gen; }

/* ---- graphs ---- */

extern "C" al_status al_cuda_graph_begin(al_cuda *c) {
    AL_CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "begin capture");
    c->capturing = true;
    return al_ok();
}

extern "C" al_status al_cuda_graph_end(al_cuda *c, al_cuda_graph **out) {
    *out = NULL;
    c->capturing = false;
    cudaGraph_t g = NULL;
    AL_CUDA_TRY(cudaStreamEndCapture(c->stream, &g), "end capture");
    al_cuda_graph *cg = (al_cuda_graph *)calloc(1, sizeof *cg);
    if (!cg) {
        cudaGraphDestroy(g);
        return al_err(AL_ERR_NOMEM, "cuda: out of memory");
    }
    cg->graph = g;
    cudaError_t e = cudaGraphInstantiate(&cg->exec, g, 0);
    if (e != cudaSuccess) {
        cudaGraphDestroy(g);
        free(cg);
        return al_cuda_status(e, "graph instantiate");
    }
    *out = cg;
    return al_ok();
}

extern "C" al_status al_cuda_graph_launch(al_cuda *c, al_cuda_graph *g) {
    AL_CUDA_TRY(cudaGraphLaunch(g->exec, c->stream), "graph launch");
    return al_ok();
}

extern "C" void al_cuda_graph_free(al_cuda_graph *g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    free(g);
}

/* ---- weights ---- */

extern "C" bool al_cuda_type_supported(al_type t) {
    switch (t) {
    case AL_TYPE_F32: case AL_TYPE_F16: case AL_TYPE_BF16: case AL_TYPE_Q4_0: case AL_TYPE_Q4_1: case AL_TYPE_Q5_0:
    case AL_TYPE_Q5_1: case AL_TYPE_Q8_0: case AL_TYPE_IQ4_NL: case AL_TYPE_Q2_K: case AL_TYPE_Q3_K: case AL_TYPE_Q4_K:
    case AL_TYPE_Q5_K: case AL_TYPE_Q6_K: case AL_TYPE_IQ4_XS:
        return true;
    default:
        return false;
    }
}

static al_status weight_shape(const al_tensor *t, int64_t n_mat, al_cuda_weight *w) {
    memset(w, 0, sizeof *w);
    if (!t->data) return al_err(AL_ERR_INVALID, "cuda upload: tensor has no data");
    if (!al_cuda_type_supported(t->type))
        return al_err(AL_ERR_UNSUPPORTED, "cuda upload: type %s has no GPU kernels", al_type_name(t->type));
    if (t->ndim > 3 && t->ne[3] != 1) return al_err(AL_ERR_INVALID, "cuda upload: 4-D tensors are not matrices");
    w->type = t->type;
    w->k = t->ne[0];
    w->n_out = t->ne[1];
    w->n_mat = n_mat;
    w->row_bytes = al_cuda_row_bytes(t->type, t->ne[0]);
    if (!w->row_bytes) return al_err(AL_ERR_INVALID, "cuda upload: row of %lld not a whole number of %s blocks",
                                     (long long)t->ne[0], al_type_name(t->type));
    w->mat_bytes = w->row_bytes * (size_t)w->n_out;
    return al_ok();
}

/* rows of a split type (Q6_K, Q8_0) into the split-row layout, through a bounded host buffer */
static al_status copy_split(al_cuda *c, char *dst, const char *base, const al_tensor *t, const al_cuda_weight *w) {
    const size_t chunk_rows = w->row_bytes >= (16u << 20) ? 1 : (16u << 20) / w->row_bytes;
    const size_t nr = (size_t)w->n_out, n = chunk_rows < nr ? chunk_rows : nr;
    char *buf = (char *)malloc(n * w->row_bytes);
    if (!buf) return al_err(AL_ERR_NOMEM, "cuda upload: out of host memory");
    al_status st = al_ok();
    for (size_t r0 = 0; r0 < nr && !al_failed(&st); r0 += n) {
        const size_t m = nr - r0 < n ? nr - r0 : n;
        for (size_t r = 0; r < m && !al_failed(&st); r++)
            st = al_cuda_row_image(t->type, w->k, base + (r0 + r) * t->nb[1], buf + r * w->row_bytes);
        if (!al_failed(&st))
            st = al_cuda_status(cudaMemcpyAsync(dst + r0 * w->row_bytes, buf, m * w->row_bytes, cudaMemcpyHostToDevice, c->stream), "weight upload");
        if (!al_failed(&st)) st = al_cuda_status(cudaStreamSynchronize(c->stream), "weight upload sync"); /* before buf is reused */
    }
    free(buf);
    return st;
}

/* rows of matrix `src` (strided like an al_tensor) into dst, contiguous (split types: split rows); on the
 * context's stream and waited for, so kernels queued there later see the weights */
static al_status copy_matrix(al_cuda *c, char *dst, const al_tensor *t, int64_t i2, const al_cuda_weight *w) {
    const char *base = (const char *)t->data + (size_t)i2 * t->nb[2];
    if (al_split_type(t->type)) return copy_split(c, dst, base, t, w);
    if (t->nb[1] == w->row_bytes)
        AL_CUDA_TRY(cudaMemcpyAsync(dst, base, w->mat_bytes, cudaMemcpyHostToDevice, c->stream), "weight upload");
    else
        AL_CUDA_TRY(cudaMemcpy2DAsync(dst, w->row_bytes, base, t->nb[1], w->row_bytes, (size_t)w->n_out,
                                      cudaMemcpyHostToDevice, c->stream), "weight upload 2D");
    return al_cuda_status(cudaStreamSynchronize(c->stream), "weight upload sync");
}

extern "C" al_status al_cuda_weight_upload(al_cuda *c, const al_tensor *t, al_cuda_weight *out) {
    int64_t n_mat = t->ndim >= 3 ? t->ne[2] : 1;
    AL_TRY(weight_shape(t, n_mat, out));
    void *p;
    AL_TRY(al_cuda_alloc(c, &p, out->mat_bytes * (size_t)n_mat));
    out->data = p;
    for (int64_t i = 0; i < n_mat; i++) {
        al_status st = copy_matrix(c, (char *)p + out->mat_bytes * (size_t)i, t, i, out);
        if (al_failed(&st)) {
            al_cuda_weight_free(c, out);
            return st;
        }
    }
    return al_ok();
}

extern "C" al_status al_cuda_weight_upload_stack(al_cuda *c, const al_tensor *ts, int n, al_cuda_weight *out) {
    if (n <= 0) return al_err(AL_ERR_INVALID, "cuda upload: empty stack");
    AL_TRY(weight_shape(&ts[0], n, out));
    for (int i = 1; i < n; i++)
        if (ts[i].type != ts[0].type || ts[i].ne[0] != ts[0].ne[0] || ts[i].ne[1] != ts[0].ne[1])
            return al_err(AL_ERR_INVALID, "cuda upload: stacked tensors differ in shape or type");
    void *p;
    AL_TRY(al_cuda_alloc(c, &p, out->mat_bytes * (size_t)n));
    out->data = p;
    for (int i = 0; i < n; i++) {
        al_status st = copy_matrix(c, (char *)p + out->mat_bytes * (size_t)i, &ts[i], 0, out);
        if (al_failed(&st)) {
            al_cuda_weight_free(c, out);
            return st;
        }
    }
    return al_ok();
}

extern "C" void al_cuda_weight_free(al_cuda *c, al_cuda_weight *w) {
    if (!w) return;
    al_cuda_release(c, w->data);
    memset(w, 0, sizeof *w);
}
