/* test_core.c — status, allocator, tensor, half conversions, thread pool. */
#include <stdatomic.h>
#include <stdlib.h>

#include "alloy/quant.h"
#include "harness.h"

static void test_status(void) {
    al_status s = al_err(AL_ERR_FORMAT, "bad %d", 42);
    CHECK(s.code == AL_ERR_FORMAT);
    CHECK(strcmp(s.msg, "bad 42") == 0);
    al_status w = al_err_wrap(s, "loading %s", "x.gguf");
    CHECK(w.code == AL_ERR_FORMAT);
    CHECK(strcmp(w.msg, "loading x.gguf: bad 42") == 0);
    CHECK(al_ok().code == AL_OK);
    CHECK(strcmp(al_code_name(AL_ERR_NOMEM), "out of memory") == 0);
}

typedef struct { int calls, fail_at; } failing_alloc;
static void *fa_alloc(void *ud, size_t size, size_t align) {
    failing_alloc *f = ud;
    if (++f->calls == f->fail_at) return NULL;
    return al_allocator_default()->alloc(NULL, size, align);
}
static void fa_free(void *ud, void *p) { (void)ud; free(p); }

static void test_alloc_and_tensor(void) {
    failing_alloc st = {0, 2};
    al_allocator a = {fa_alloc, fa_free, &st};
    al_tensor t, u;
    int64_t ne[2] = {64, 3};
    REQUIRE_OK(al_tensor_init(&t, &a, AL_TYPE_F32, 2, ne));
    CHECK(((uintptr_t)t.data % AL_ALIGN) == 0);
    CHECK(al_tensor_nelements(&t) == 192);
    CHECK(al_tensor_nbytes(&t) == 768);
    CHECK(al_tensor_is_contiguous(&t));
    CHECK_ERR(al_tensor_init(&u, &a, AL_TYPE_F32, 2, ne), AL_ERR_NOMEM); /* 2nd allocation fails */
    al_tensor_free(&t);
    al_tensor_free(NULL);
    int64_t bad[2] = {100, 2};
    CHECK_ERR(al_tensor_init(&u, NULL, AL_TYPE_Q4_K, 2, bad), AL_ERR_INVALID);
    int64_t q[2] = {512, 2};
    REQUIRE_OK(al_tensor_init(&u, NULL, AL_TYPE_Q4_K, 2, q));
    CHECK(u.nb[1] == 2 * 144);
    al_tensor_free(&u);
    CHECK(al_calloc(NULL, SIZE_MAX / 2, 4) == NULL);
}

static void test_half(void) {
    /* exhaustive f16 -> f32 -> f16 round trip on every non-NaN pattern */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        if (al_f32_to_f16(al_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0);
    CHECK(al_f16_to_f32(0x3c00) == 1.0f);
    CHECK(al_f16_to_f32(0xc000) == -2.0f);
    CHECK(al_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(al_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(al_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);  /* tie -> even */
    CHECK(al_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);  /* tie -> even (up) */
    CHECK(al_f32_to_f16(5.960464477539063e-08f) == 0x0001);
    CHECK(al_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(al_bf16_to_f32(0x4049) == 3.140625f);
    CHECK(al_f32_to_bf16(1.00390625f) == 0x3f80); /* tie -> even */
}

typedef struct { _Atomic long sum; int n; } pool_job;
static void pool_task(void *arg, int ith, int nth) {
    pool_job *j = arg;
    int64_t lo, hi;
    al_split(j->n, ith, nth, &lo, &hi);
    long s = 0;
    for (int64_t i = lo; i < hi; i++) s += i;
    atomic_fetch_add(&j->sum, s);
}

static void test_pool(void) {
    al_pool *p;
    REQUIRE_OK(al_pool_init(&p, 4));
    CHECK(al_pool_size(p) == 4);
    for (int rep = 0; rep < 2000; rep++) {
        pool_job j = {0, 1000 + rep};
        al_pool_run(p, pool_task, &j, rep % 5);
        long want = (long)(j.n - 1) * j.n / 2;
        if (atomic_load(&j.sum) != want) { CHECKF(0, "rep %d: sum %ld want %ld", rep, atomic_load(&j.sum), want); break; }
    }
    al_pool_free(p);
    pool_job j = {0, 10};
    al_pool_run(NULL, pool_task, &j, 0);
    CHECK(atomic_load(&j.sum) == 45);
    al_pool_free(NULL);
}

int main(void) {
    AL_RUN(test_status);
    AL_RUN(test_alloc_and_tensor);
    AL_RUN(test_half);
    AL_RUN(test_pool);
    return al_test_finish();
}
