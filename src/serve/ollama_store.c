/* ollama_store.c — resolving model references: paths (GGUF file, HF folder) and Ollama store
 * names ([host/][namespace/]model[:tag]) via manifests/<host>/<namespace>/<model>/<tag> and
 * blobs/sha256-<hex> under ~/.ollama/models (or $OLLAMA_MODELS). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloy/serve.h"

static bool valid_part(const char *s, size_t n) {
    if (!n || n > 128) return false;
    if (n == 1 && s[0] == '.') return false;
    if (n == 2 && s[0] == '.' && s[1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

al_status al_serve_resolve_model(const char *name, const char *ollama_dir, char *path, size_t size) {
    struct stat st;
    if (!name || !*name) return al_err(AL_ERR_INVALID, "empty model name");
    if (stat(name, &st) == 0) {
        if (strlen(name) + 1 > size) return al_err(AL_ERR_RANGE, "model path too long");
        snprintf(path, size, "%s", name);
        return al_ok();
    }
    /* split [host/][ns/]model[:tag] */
    char host[256] = "registry.ollama.ai", ns[256] = "library", model[256], tag[256] = "latest";
    const char *parts[3];
    size_t lens[3];
    int np = 0;
    const char *p = name;
    while (np < 3) {
        const char *slash = strchr(p, '/');
        parts[np] = p;
        lens[np] = slash ? (size_t)(slash - p) : strlen(p);
        np++;
        if (!slash) break;
        p = slash + 1;
        if (np == 3) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found: not a file and not an Ollama name", name);
    }
    const char *last = parts[np - 1];
    size_t ll = lens[np - 1];
    const char *colon = memchr(last, ':', ll);
    size_t ml = colon ? (size_t)(colon - last) : ll;
    if (colon) {
        size_t tl = ll - ml - 1;
        if (!valid_part(colon + 1, tl)) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found (bad tag)", name);
        snprintf(tag, sizeof tag, "%.*s", (int)tl, colon + 1);
    }
    if (!valid_part(last, ml)) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found: not a file and not an Ollama name", name);
    snprintf(model, sizeof model, "%.*s", (int)ml, last);
    if (np >= 2) {
        if (!valid_part(parts[np - 2], lens[np - 2])) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found", name);
        snprintf(ns, sizeof ns, "%.*s", (int)lens[np - 2], parts[np - 2]);
    }
    if (np == 3) {
        if (!valid_part(parts[0], lens[0])) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found", name);
        snprintf(host, sizeof host, "%.*s", (int)lens[0], parts[0]);
    }
    char dir[1024];
    if (ollama_dir && *ollama_dir) snprintf(dir, sizeof dir, "%s", ollama_dir);
    else if (getenv("OLLAMA_MODELS") && *getenv("OLLAMA_MODELS")) snprintf(dir, sizeof dir, "%s", getenv("OLLAMA_MODELS"));
    else if (getenv("HOME")) snprintf(dir, sizeof dir, "%s/.ollama/models", getenv("HOME"));
    else return al_err(AL_ERR_NOT_FOUND, "model '%s' not found (no Ollama store)", name);
    char manifest[4096];
    snprintf(manifest, sizeof manifest, "%s/manifests/%s/%s/%s/%s", dir, host, ns, model, tag);
    json_error_t je;
    json_t *m = json_load_file(manifest, 0, &je);
    if (!m) return al_err(AL_ERR_NOT_FOUND, "model '%s' not found (no file, no Ollama manifest %s)", name, manifest);
    json_t *layers = json_object_get(m, "layers");
    const char *digest = NULL;
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        json_t *mt = json_object_get(l, "mediaType"), *dg = json_object_get(l, "digest");
        if (json_is_string(mt) && json_is_string(dg) && !strcmp(json_string_value(mt), "application/vnd.ollama.image.model")) {
            digest = json_string_value(dg);
            break;
        }
    }
    al_status res;
    if (!digest || strncmp(digest, "sha256:", 7) || !valid_part(digest + 7, strlen(digest + 7))) {
        res = al_err(AL_ERR_FORMAT, "Ollama manifest %s has no model layer", manifest);
    } else {
        char blob[4096];
        if (snprintf(blob, sizeof blob, "%s/blobs/sha256-%.128s", dir, digest + 7) >= (int)sizeof blob) blob[0] = 0;
        if (stat(blob, &st) != 0) res = al_err(AL_ERR_NOT_FOUND, "Ollama blob %s is missing", blob);
        else if (strlen(blob) + 1 > size) res = al_err(AL_ERR_RANGE, "model path too long");
        else {
            snprintf(path, size, "%s", blob);
            res = al_ok();
        }
    }
    json_decref(m);
    return res;
}
