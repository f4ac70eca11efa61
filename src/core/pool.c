/*
 * pool.c — a fork-join thread pool tuned for many short parallel sections (one per matmul in
 * decode). Workers spin briefly on a generation counter, then sleep on a condition variable.
 * Invariant: `pending` counts workers that have not finished the current generation; the
 * caller returns only when it is 0, so `fn`/`arg` are stable while workers read them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "alloy/core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ITERS = 1 << 13 };

typedef struct worker {
    struct al_pool *pool;
    int ith;
    pthread_t thread;
} worker;

struct al_pool {
    int n; /* threads including the caller */
    worker *workers; /* n - 1 */
    _Atomic uint64_t gen;
    _Atomic int pending;
    _Atomic int sleepers;
    _Atomic bool stop;
    al_task_fn fn;
    void *arg;
    int ntasks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

int al_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double al_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker_main(void *p) {
    worker *w = p;
    al_pool *pool = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load(&pool->gen)) == seen && !atomic_load(&pool->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
            spins = 0;
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = g;
        if (w->ith < pool->ntasks) pool->fn(pool->arg, w->ith, pool->ntasks);
        atomic_fetch_sub(&pool->pending, 1);
    }
}

al_status al_pool_init(al_pool **out, int n_threads) {
    *out = NULL;
    if (n_threads <= 0) n_threads = al_cpu_count();
    if (n_threads > 1024) return al_err(AL_ERR_INVALID, "pool: %d threads is too many", n_threads);
    al_pool *p = calloc(1, sizeof *p);
    if (!p) return al_err(AL_ERR_NOMEM, "pool: out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            al_pool_free(p);
            return al_err(AL_ERR_NOMEM, "pool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker *w = &p->workers[i - 1];
        w->pool = p;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            p->n = i; /* join only the started ones */
            al_pool_free(p);
            return al_err(AL_ERR_IO, "pool: cannot start thread %d", i);
        }
    }
    *out = p;
    return al_ok();
}

void al_pool_free(al_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->workers[i - 1].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->workers);
    free(p);
}

int al_pool_size(const al_pool *p) { return p ? p->n : 1; }

void al_pool_run(al_pool *p, al_task_fn fn, void *arg, int n_tasks) {
    if (!p || p->n == 1 || n_tasks == 1) {
        fn(arg, 0, 1);
        return;
    }
    int nt = n_tasks <= 0 || n_tasks > p->n ? p->n : n_tasks;
    p->fn = fn;
    p->arg = arg;
    p->ntasks = nt;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, nt);
    while (atomic_load(&p->pending) > 0) cpu_relax();
}
