/*
 * hf.c — a Hugging Face model folder: config.json + model.safetensors, or the shards named by
 * model.safetensors.index.json ("weight_map": tensor name -> shard file name in the same folder).
 * An Alloy model folder is the same with config.yaml instead of config.json (read into the same
 * jansson tree by alloy/yaml.h; config.json wins when both exist).
 *
 * Invariants after al_hf_open succeeds:
 *  - shards[0..nshards) are open; every tensor of every shard appears once in tensors[] (shard
 *    order, then data-offset order) and once in by_name[] (sorted by name); a name present in
 *    two shards is refused;
 *  - every weight_map entry names a tensor present in the shard it points to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloy/safetensors.h"
#include "alloy/yaml.h"

struct al_hf {
    char *dir;
    json_t *config;
    const char *config_name; /* "config.json" or "config.yaml" */
    al_st_file **shards;
    size_t nshards;
    int64_t n;
    const al_st_tensor **tensors;
    const al_st_tensor **by_name;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int cmp_name(const void *a, const void *b) {
    const al_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_key(const void *key, const void *elem) {
    const al_st_tensor *const *t = elem;
    return strcmp((const char *)key, (*t)->name);
}

/* dir + "/" + name, malloc'd. */
static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name), n;
    if (!al_add_ok(a, b, &n) || !al_add_ok(n, 2, &n)) return NULL;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Shard names come from the index: a plain file name inside the folder. */
static bool shard_name_ok(const char *s) {
    return s[0] != '\0' && !strchr(s, '/') && !strchr(s, '\\') && !strstr(s, "..");
}

static al_status load_json(json_t **out, const char *path, const char *what) {
    json_error_t jerr;
    *out = NULL;
    if (!file_exists(path)) return al_err(AL_ERR_NOT_FOUND, "%s: %s not found", path, what);
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) return al_err(AL_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", path, jerr.text, jerr.line);
    if (!json_is_object(j)) {
        json_decref(j);
        return al_err(AL_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = j;
    return al_ok();
}

static al_status open_shard(al_hf *h, const char *name) {
    char *p = path_join(h->dir, name);
    if (!p) return al_err(AL_ERR_NOMEM, "path");
    al_status s = al_st_open(&h->shards[h->nshards], p);
    if (!al_failed(&s)) h->nshards++;
    else if (s.code == AL_ERR_NOT_FOUND) s = al_err(AL_ERR_NOT_FOUND, "shard %s listed in the index is missing", p);
    free(p);
    return s;
}

/* Opens the distinct shards named in weight_map and checks every entry against its shard. */
static al_status open_index(al_hf *h, const char *index_path) {
    json_t *idx;
    AL_TRY(load_json(&idx, index_path, "index"));
    al_status s = al_ok();
    const char **names = NULL;
    json_t *wm = json_object_get(idx, "weight_map");
    if (!wm) {
        s = al_err(AL_ERR_FORMAT, "%s: missing weight_map", index_path);
        goto done;
    }
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        s = al_err(AL_ERR_FORMAT, "%s: weight_map is not a nonempty object", index_path);
        goto done;
    }
    size_t n = json_object_size(wm), k = 0;
    names = calloc(n, sizeof *names);
    if (!names) {
        s = al_err(AL_ERR_NOMEM, "%s: %zu weight_map entries", index_path, n);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            s = al_err(AL_ERR_FORMAT, "%s: weight_map['%.80s'] is not a string", index_path, key);
            goto done;
        }
        const char *shard = json_string_value(v);
        if (!shard_name_ok(shard)) {
            s = al_err(AL_ERR_FORMAT, "%s: shard name '%.80s' is not a plain file name in the folder", index_path,
                       shard);
            goto done;
        }
        if (k < n) names[k++] = shard;
    }
    qsort(names, k, sizeof *names, cmp_str);
    size_t nd = 0; /* names[0..nd): the distinct shard names, sorted; shards[i] is names[i] */
    for (size_t i = 0; i < k; i++)
        if (nd == 0 || strcmp(names[i], names[nd - 1]) != 0) names[nd++] = names[i];
    h->shards = calloc(nd, sizeof *h->shards);
    if (!h->shards) {
        s = al_err(AL_ERR_NOMEM, "%zu shards", nd);
        goto done;
    }
    for (size_t i = 0; i < nd; i++) {
        s = open_shard(h, names[i]);
        if (al_failed(&s)) goto done;
    }
    json_object_foreach(wm, key, v) {
        const char *shard = json_string_value(v);
        const char **hit = bsearch(&shard, names, nd, sizeof *names, cmp_str);
        if (!hit || !al_st_find(h->shards[hit - names], key)) {
            s = al_err(AL_ERR_FORMAT, "%s: tensor '%.80s' is listed in %s but absent from it", index_path, key, shard);
            goto done;
        }
    }
done:
    free(names);
    json_decref(idx);
    return s;
}

static al_status collect(al_hf *h) {
    int64_t n = 0;
    for (size_t i = 0; i < h->nshards; i++) n += al_st_count(h->shards[i]);
    h->tensors = calloc(n ? (size_t)n : 1, sizeof *h->tensors);
    h->by_name = calloc(n ? (size_t)n : 1, sizeof *h->by_name);
    if (!h->tensors || !h->by_name) return al_err(AL_ERR_NOMEM, "%lld tensors", (long long)n);
    for (size_t i = 0; i < h->nshards; i++)
        for (int64_t j = 0; j < al_st_count(h->shards[i]); j++) h->tensors[h->n++] = al_st_at(h->shards[i], j);
    memcpy(h->by_name, h->tensors, (size_t)n * sizeof *h->tensors);
    qsort(h->by_name, (size_t)n, sizeof *h->by_name, cmp_name);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(h->by_name[i]->name, h->by_name[i - 1]->name) == 0)
            return al_err(AL_ERR_FORMAT, "tensor '%.80s' appears in more than one shard", h->by_name[i]->name);
    return al_ok();
}

static al_status hf_open(al_hf *h, const char *dir) {
    h->dir = strdup(dir);
    if (!h->dir) return al_err(AL_ERR_NOMEM, "dir");
    struct stat sb;
    if (stat(dir, &sb) != 0) return al_err(AL_ERR_NOT_FOUND, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return al_err(AL_ERR_INVALID, "%s: not a directory", dir);

    char *p = path_join(dir, "config.json");
    char *py = path_join(dir, "config.yaml");
    al_status s = al_ok();
    if (!p || !py) s = al_err(AL_ERR_NOMEM, "path");
    else if (!file_exists(p) && file_exists(py)) {
        h->config_name = "config.yaml";
        s = al_yaml_load_file(&h->config, py);
        if (!al_failed(&s) && !json_is_object(h->config)) s = al_err(AL_ERR_FORMAT, "%s: not a YAML mapping", py);
    } else {
        h->config_name = "config.json";
        s = load_json(&h->config, p, "config.json");
    }
    free(p);
    free(py);
    AL_TRY(s);

    char *index = path_join(dir, "model.safetensors.index.json");
    if (!index) return al_err(AL_ERR_NOMEM, "path");
    if (file_exists(index)) {
        s = open_index(h, index);
    } else {
        h->shards = calloc(1, sizeof *h->shards);
        s = h->shards ? open_shard(h, "model.safetensors") : al_err(AL_ERR_NOMEM, "shards");
        if (s.code == AL_ERR_NOT_FOUND)
            s = al_err(AL_ERR_NOT_FOUND, "%s: neither model.safetensors nor model.safetensors.index.json", dir);
    }
    free(index);
    AL_TRY(s);
    return collect(h);
}

al_status al_hf_open(al_hf **out, const char *dir) {
    if (!out || !dir) return al_err(AL_ERR_INVALID, "al_hf_open: NULL argument");
    *out = NULL;
    al_hf *h = calloc(1, sizeof *h);
    if (!h) return al_err(AL_ERR_NOMEM, "al_hf_open");
    al_status s = hf_open(h, dir);
    if (al_failed(&s)) {
        al_hf_free(h);
        return s;
    }
    *out = h;
    return al_ok();
}

void al_hf_free(al_hf *h) {
    if (!h) return;
    for (size_t i = 0; i < h->nshards; i++) al_st_free(h->shards[i]);
    free(h->shards);
    free(h->tensors);
    free(h->by_name);
    json_decref(h->config);
    free(h->dir);
    free(h);
}

const char *al_hf_dir(const al_hf *h) { return h ? h->dir : NULL; }
json_t *al_hf_config(const al_hf *h) { return h ? h->config : NULL; }
const char *al_hf_config_name(const al_hf *h) { return h ? h->config_name : NULL; }
int64_t al_hf_tensor_count(const al_hf *h) { return h ? h->n : 0; }

const al_st_tensor *al_hf_tensor_at(const al_hf *h, int64_t i) {
    return h && i >= 0 && i < h->n ? h->tensors[i] : NULL;
}

const al_st_tensor *al_hf_find(const al_hf *h, const char *name) {
    if (!h || !name || h->n == 0) return NULL;
    const al_st_tensor *const *hit = bsearch(name, h->by_name, (size_t)h->n, sizeof *h->by_name, cmp_key);
    return hit ? *hit : NULL;
}
