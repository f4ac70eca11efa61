/* tensor.c — al_tensor construction and shape queries. */
#include <string.h>

#include "alloy/quant.h"

static al_status tensor_describe(al_tensor *t, al_type type, int ndim, const int64_t *ne) {
    const al_type_traits *tr = al_type_traits_get(type);
    if (!tr->name || tr->block_size == 0) return al_err(AL_ERR_INVALID, "tensor: unknown type %d", (int)type);
    if (ndim < 1 || ndim > AL_MAX_DIMS) return al_err(AL_ERR_INVALID, "tensor: ndim %d out of [1,%d]", ndim, AL_MAX_DIMS);
    memset(t, 0, sizeof *t);
    t->type = type;
    t->ndim = ndim;
    for (int i = 0; i < AL_MAX_DIMS; i++) {
        int64_t n = i < ndim ? ne[i] : 1;
        if (n < 0) return al_err(AL_ERR_INVALID, "tensor: negative dim %d", i);
        t->ne[i] = n;
    }
    if (t->ne[0] % tr->block_size) {
        return al_err(AL_ERR_INVALID, "tensor: row of %lld not a multiple of %s block size %d",
                      (long long)t->ne[0], tr->name, tr->block_size);
    }
    t->nb[0] = tr->type_size;
    t->nb[1] = (size_t)(t->ne[0] / tr->block_size) * tr->type_size;
    for (int i = 2; i < AL_MAX_DIMS; i++) {
        if (!al_mul_ok(t->nb[i - 1], (size_t)t->ne[i - 1], &t->nb[i]))
            return al_err(AL_ERR_RANGE, "tensor: size overflows");
    }
    size_t total;
    if (!al_mul_ok(t->nb[3], (size_t)t->ne[3], &total)) return al_err(AL_ERR_RANGE, "tensor: size overflows");
    return al_ok();
}

al_status al_tensor_init(al_tensor *t, const al_allocator *a, al_type type, int ndim, const int64_t *ne) {
    AL_TRY(tensor_describe(t, type, ndim, ne));
    if (!a) a = al_allocator_default();
    size_t n = al_tensor_nbytes(t);
    t->data = al_calloc(a, 1, n);
    if (!t->data) return al_err(AL_ERR_NOMEM, "tensor: cannot allocate %zu bytes", n);
    t->alloc = a;
    return al_ok();
}

al_status al_tensor_view(al_tensor *t, al_type type, int ndim, const int64_t *ne, void *data) {
    AL_TRY(tensor_describe(t, type, ndim, ne));
    t->data = data;
    return al_ok();
}

void al_tensor_free(al_tensor *t) {
    if (!t) return;
    if (t->alloc) al_free(t->alloc, t->data);
    t->data = NULL;
    t->alloc = NULL;
}

int64_t al_tensor_nelements(const al_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

size_t al_tensor_nbytes(const al_tensor *t) { return t->nb[3] * (size_t)t->ne[3]; }

bool al_tensor_is_contiguous(const al_tensor *t) {
    const al_type_traits *tr = al_type_traits_get(t->type);
    if (t->nb[0] != tr->type_size) return false;
    if (t->nb[1] != (size_t)(t->ne[0] / tr->block_size) * tr->type_size) return false;
    for (int i = 2; i < AL_MAX_DIMS; i++)
        if (t->nb[i] != t->nb[i - 1] * (size_t)t->ne[i - 1]) return false;
    return true;
}

bool al_tensor_same_shape(const al_tensor *a, const al_tensor *b) {
    for (int i = 0; i < AL_MAX_DIMS; i++)
        if (a->ne[i] != b->ne[i]) return false;
    return true;
}
