/*
 * test_ollama_store.c — resolving Ollama store names (manifests + blobs, the layout `ollama pull`
 * writes: manifests/<host>/<namespace>/<model>/<tag> with an application/vnd.ollama.image.model
 * layer, blobs/sha256-<hex>) and plain paths; the resolved blob loads as a model.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/model.h"
#include "alloy/serve.h"
#include "harness.h"

static char root[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static const char digest[] = "5f0e4b3c2a1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

static void setup(void) {
    char p[1024];
    snprintf(root, sizeof root, "/tmp/alloy_ollama_XXXXXX");
    if (!mkdtemp(root)) return;
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/tiny", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/manifests/example.com/team/tool", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/blobs", root);
    mkdirs(p);
    char manifest[1024];
    snprintf(manifest, sizeof manifest,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
             "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:00\",\"size\":1},"
             "\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:11\",\"size\":1},"
             "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":6057344}]}",
             digest);
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/tiny/latest", root);
    write_file(p, manifest);
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/tiny/q8", root);
    write_file(p, manifest);
    snprintf(p, sizeof p, "%s/manifests/example.com/team/tool/v1", root);
    write_file(p, manifest);
    snprintf(p, sizeof p, "%s/manifests/registry.ollama.ai/library/tiny/nolayer", root);
    write_file(p, "{\"layers\":[]}");
    /* the blob is a real GGUF: the bundled default model */
    snprintf(p, sizeof p, "%s/blobs/sha256-%s", root, digest);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s/models/alloy-tiny.gguf' '%s'", ALLOY_SOURCE_DIR, p);
    if (system(cmd) != 0) fprintf(stderr, "copy failed\n");
}

static void test_names(void) {
    char path[4096], want[1024];
    snprintf(want, sizeof want, "%s/blobs/sha256-%s", root, digest);
    const char *ok[] = {"tiny", "tiny:latest", "library/tiny", "library/tiny:q8", "registry.ollama.ai/library/tiny",
                        "example.com/team/tool:v1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        al_status st = al_serve_resolve_model(ok[i], root, path, sizeof path);
        CHECKF(st.code == AL_OK && !strcmp(path, want), "%s: %s -> %s", ok[i], st.msg, path);
    }
    const char *missing[] = {"nope", "tiny:absent", "other/tiny", "../tiny", "tiny:../../x", "a/b/c/d", ""};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        al_status st = al_serve_resolve_model(missing[i], root, path, sizeof path);
        CHECKF(st.code != AL_OK, "'%s' resolved to %s", missing[i], path);
    }
    CHECK_ERR(al_serve_resolve_model("tiny:nolayer", root, path, sizeof path), AL_ERR_FORMAT);
    /* a plain path wins */
    snprintf(want, sizeof want, "%s/models/alloy-tiny.gguf", ALLOY_SOURCE_DIR);
    CHECK_OK(al_serve_resolve_model(want, root, path, sizeof path));
    CHECK(!strcmp(path, want));
}

static void test_blob_loads(void) {
    char path[4096];
    REQUIRE_OK(al_serve_resolve_model("tiny", root, path, sizeof path));
    al_model *m;
    al_model_params mp = al_model_default_params();
    mp.n_threads = 1;
    REQUIRE_OK(al_model_load(&m, path, &mp));
    CHECK(al_model_n_vocab(m) == 32000);
    al_model_free(m);
}

int main(void) {
    setup();
    AL_RUN(test_names);
    AL_RUN(test_blob_loads);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return al_test_finish();
}
