/* fuzz_gguf.c — libFuzzer target: parse arbitrary bytes as GGUF, then touch everything the reader
 * exposes (every KV, every array element at every nesting level, every tensor's bytes). Any crash,
 * sanitizer report or non-format error on bad input is a bug. */
#include <stdlib.h>
#include <string.h>

#include "alloy/gguf.h"

static uint64_t walk(const al_gguf_value *v) {
    uint64_t h = (uint64_t)v->type;
    if (v->type == AL_GGUF_STRING) {
        al_str s = al_gguf_value_str(v);
        if (s.len) h += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
    } else if (v->type == AL_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->count; i++) {
            al_gguf_value e = al_gguf_arr_at(v, i);
            if (e.type != v->elem_type) abort();
            h = h * 31 + walk(&e);
        }
    } else {
        h = h * 31 + (uint64_t)al_gguf_value_i64(v) + (al_gguf_value_f64(v) != 0.0);
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    al_gguf *g = NULL;
    al_status s = al_gguf_parse(&g, data, size);
    if (s.code != AL_OK) {
        if (s.code != AL_ERR_FORMAT || g != NULL) abort();
        return 0;
    }
    volatile uint64_t h = 0;
    for (int64_t i = 0; i < al_gguf_kv_count(g); i++) {
        al_str k = al_gguf_kv_key(g, i);
        al_gguf_value v = al_gguf_kv_value(g, i);
        h += walk(&v) + k.len;
    }
    uint32_t u;
    float f;
    al_str str;
    if (al_gguf_get_u32(g, "general.alignment", &u)) h += u;
    if (al_gguf_get_f32(g, "general.alignment", &f)) h += (uint64_t)f;
    if (al_gguf_get_str(g, "general.architecture", &str)) h += str.len;
    size_t end = al_gguf_data_offset(g);
    for (int64_t i = 0; i < al_gguf_tensor_count(g); i++) {
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        const uint8_t *d = al_gguf_tensor_data(g, i);
        if (end + t->offset + t->nbytes > size) abort();
        h += d[0] + d[t->nbytes - 1];
        char name[80];
        if (t->name.len < sizeof name) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = 0;
            if (strlen(name) == t->name.len && al_gguf_find_tensor(g, name) != i) abort();
        }
        al_tensor view;
        if (al_gguf_tensor_view(g, i, &view).code != AL_OK) abort();
    }
    /* copy every KV through a writer (exercises the value-extent walk on accepted inputs) */
    al_gguf_writer *w = NULL;
    if (al_gguf_writer_init(&w, NULL).code == AL_OK) {
        for (int64_t i = 0; i < al_gguf_kv_count(g); i++)
            if (al_gguf_writer_copy_kv(w, g, i).code != AL_OK) abort();
        al_gguf_writer_free(w);
    }
    (void)h;
    al_gguf_free(g);
    return 0;
}
