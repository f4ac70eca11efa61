/*
 * alloy/core.h — the base every subsystem stands on.
 *
 * Contract
 *  - Errors: every fallible call returns an `al_status` by value. `code == AL_OK` means success;
 *    otherwise `msg` holds a human-readable, NUL-terminated reason. Library code never prints to
 *    stdout and never exits; it reports through al_status and, optionally, an `al_logger`.
 *  - Memory: allocations go through an `al_allocator` (alloc/free with user data) so callers and
 *    tests can inject their own, e.g. one that fails the Nth call. NULL means the default
 *    (aligned malloc). Every `*_free(NULL)` in Alloy is a no-op.
 *  - Tensors: up to 4 dims, ggml order: ne[0] is the innermost, contiguous dimension (a row),
 *    nb[i] the byte stride of dim i. For block-quantized types ne[0] is a multiple of the block
 *    size and nb[1] = al_type_row_size(type, ne[0]). A tensor either owns its data (freed by
 *    al_tensor_free through its allocator) or borrows it (e.g. a view into an mmap'd file).
 *  - Threads: `al_pool` runs one task on n threads (the caller is thread 0) and returns when all
 *    are done. Size 0 means "one per online CPU".
 * No hidden globals: state lives in the objects passed in.
 */
#ifndef ALLOY_CORE_H
#define ALLOY_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_VERSION_STRING "0.1.0"

/* ---- status ------------------------------------------------------------------------------- */

typedef enum al_code {
    AL_OK = 0,
    AL_ERR_INVALID,     /* bad argument or shape mismatch */
    AL_ERR_IO,          /* open/read/write/mmap failed */
    AL_ERR_FORMAT,      /* malformed or hostile file / request */
    AL_ERR_NOMEM,       /* allocation failed or would exceed a sane limit */
    AL_ERR_UNSUPPORTED, /* valid input Alloy does not handle (yet) */
    AL_ERR_NOT_FOUND,   /* missing key, tensor, file */
    AL_ERR_RANGE,       /* value out of range / overflow */
    AL_ERR_CANCELLED,
    AL_ERR_COUNT
} al_code;

typedef struct al_status {
    al_code code;
    char msg[252];
} al_status;

static inline al_status al_ok(void) {
    al_status s;
    s.code = AL_OK;
    s.msg[0] = '\0';
    return s;
}
static inline bool al_failed(const al_status *s) { return s->code != AL_OK; }

/* printf-style constructor: al_err(AL_ERR_FORMAT, "tensor %s: offset %llu past end", ...) */
al_status al_err(al_code code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefixes context to an existing error: "loading x.gguf: <old message>". */
al_status al_err_wrap(al_status inner, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *al_code_name(al_code code);

/* Return early from a function returning al_status when `expr` fails. */
#define AL_TRY(expr)                                                                               \
    do {                                                                                           \
        al_status al_try_s_ = (expr);                                                              \
        if (al_try_s_.code != AL_OK) return al_try_s_;                                             \
    } while (0)

/* ---- logging ------------------------------------------------------------------------------ */

typedef enum al_log_level { AL_LOG_DEBUG, AL_LOG_INFO, AL_LOG_WARN, AL_LOG_ERROR, AL_LOG_NONE } al_log_level;

typedef void (*al_log_fn)(void *ud, al_log_level level, const char *msg);
typedef struct al_logger {
    al_log_fn fn;       /* NULL: discard */
    void *ud;
    al_log_level level; /* messages below this level are dropped */
} al_logger;

/* A logger writing "[level] msg\n" to stderr. */
al_logger al_logger_stderr(al_log_level level);
void al_log(const al_logger *lg, al_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- allocation --------------------------------------------------------------------------- */

typedef struct al_allocator {
    /* Returns memory aligned to `align` (a power of two >= sizeof(void*)), or NULL. */
    void *(*alloc)(void *ud, size_t size, size_t align);
    void (*free)(void *ud, void *ptr);
    void *ud;
} al_allocator;

#define AL_ALIGN 64

/* The default allocator (posix_memalign/free). The returned object is immutable. */
const al_allocator *al_allocator_default(void);
/* a == NULL uses the default. size 0 returns a valid unique pointer. */
void *al_alloc(const al_allocator *a, size_t size);
void *al_calloc(const al_allocator *a, size_t count, size_t size); /* overflow-checked, zeroed */
void al_free(const al_allocator *a, void *ptr);

/* Checked arithmetic for sizes from untrusted input: return false on overflow. */
static inline bool al_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool al_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

/* ---- element / block types ----------------------------------------------------------------- */

/* Values equal ggml/GGUF type ids so GGUF tensor infos map directly. */
typedef enum al_type {
    AL_TYPE_F32 = 0,
    AL_TYPE_F16 = 1,
    AL_TYPE_Q4_0 = 2,
    AL_TYPE_Q4_1 = 3,
    AL_TYPE_Q5_0 = 6,
    AL_TYPE_Q5_1 = 7,
    AL_TYPE_Q8_0 = 8,
    AL_TYPE_Q8_1 = 9,
    AL_TYPE_Q2_K = 10,
    AL_TYPE_Q3_K = 11,
    AL_TYPE_Q4_K = 12,
    AL_TYPE_Q5_K = 13,
    AL_TYPE_Q6_K = 14,
    AL_TYPE_Q8_K = 15,
    AL_TYPE_IQ4_NL = 20,
    AL_TYPE_IQ4_XS = 23,
    AL_TYPE_I8 = 24,
    AL_TYPE_I16 = 25,
    AL_TYPE_I32 = 26,
    AL_TYPE_I64 = 27,
    AL_TYPE_F64 = 28,
    AL_TYPE_BF16 = 30,
    AL_TYPE_COUNT = 40 /* table size; ids without traits are "unknown" */
} al_type;

/* ---- tensor ------------------------------------------------------------------------------- */

#define AL_MAX_DIMS 4

typedef struct al_tensor {
    al_type type;
    int ndim;
    int64_t ne[AL_MAX_DIMS]; /* elements per dim, ne[0] innermost; unused dims are 1 */
    size_t nb[AL_MAX_DIMS];  /* byte strides; nb[0] = element (or block) size */
    void *data;
    const al_allocator *alloc; /* non-NULL iff the tensor owns `data` */
} al_tensor;

/* Allocates an owned, contiguous, zeroed tensor. ne has ndim entries. */
al_status al_tensor_init(al_tensor *t, const al_allocator *a, al_type type, int ndim, const int64_t *ne);
/* Describes borrowed, contiguous data (no copy). */
al_status al_tensor_view(al_tensor *t, al_type type, int ndim, const int64_t *ne, void *data);
void al_tensor_free(al_tensor *t); /* frees owned data; borrowed data untouched; NULL ok */
int64_t al_tensor_nelements(const al_tensor *t);
size_t al_tensor_nbytes(const al_tensor *t);
bool al_tensor_is_contiguous(const al_tensor *t);
bool al_tensor_same_shape(const al_tensor *a, const al_tensor *b);

/* ---- thread pool -------------------------------------------------------------------------- */

typedef struct al_pool al_pool;

/* Task body: ith in [0, nth). Split work by ith; never block on other workers. */
typedef void (*al_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online CPU. */
al_status al_pool_init(al_pool **out, int n_threads);
void al_pool_free(al_pool *p);
int al_pool_size(const al_pool *p);
/* Runs fn(arg, i, n) for i in [0, n) with n = min(n_tasks, size) (n_tasks <= 0: size), the caller
 * running i = 0; returns after all finished. p == NULL runs fn(arg, 0, 1) inline. Not reentrant. */
void al_pool_run(al_pool *p, al_task_fn fn, void *arg, int n_tasks);

int al_cpu_count(void);
double al_time_sec(void); /* monotonic seconds */

/* Split [0, n) into nth near-equal ranges; range of worker ith. */
static inline void al_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = (n + nth - 1) / nth;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* ---- float conversion --------------------------------------------------------------------- */

/* Branch-free and exact for every input (inline so conversion loops vectorize): shift the half
 * into float position and rescale by 2^-112 (normals, inf/nan through the exponent offset), or
 * build subnormals as (0.5 + m * 2^-24) - 0.5. */
static inline float al_f16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } n, d, r;
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t two_w = w + w;
    n.u = (two_w >> 4) + (0xE0u << 23);
    n.f *= 0x1.0p-112f;
    d.u = (two_w >> 17) | (126u << 23);
    d.f -= 0.5f;
    r.u = (w & 0x80000000u) | (two_w < (1u << 27) ? d.u : n.u);
    return r.f;
}
uint16_t al_f32_to_f16(float f);     /* round to nearest even */
static inline float al_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
uint16_t al_f32_to_bf16(float f);    /* round to nearest even, NaN kept quiet */

#ifdef __cplusplus
}
#endif
#endif
