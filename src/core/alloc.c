/* alloc.c — the default aligned allocator and checked helpers. */
#include <stdlib.h>
#include <string.h>

#include "alloy/core.h"

static void *default_alloc(void *ud, size_t size, size_t align) {
    (void)ud;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : align) != 0) return NULL;
    return p;
}

static void default_free(void *ud, void *ptr) {
    (void)ud;
    free(ptr);
}

static const al_allocator default_allocator = {default_alloc, default_free, NULL};

const al_allocator *al_allocator_default(void) { return &default_allocator; }

void *al_alloc(const al_allocator *a, size_t size) {
    if (!a) a = &default_allocator;
    return a->alloc(a->ud, size, AL_ALIGN);
}

void *al_calloc(const al_allocator *a, size_t count, size_t size) {
    size_t total;
    if (!al_mul_ok(count, size, &total)) return NULL;
    void *p = al_alloc(a, total);
    if (p) memset(p, 0, total);
    return p;
}

void al_free(const al_allocator *a, void *ptr) {
    if (!ptr) return;
    if (!a) a = &default_allocator;
    a->free(a->ud, ptr);
}
