/* fuzz_yaml_config.c — libFuzzer target for the config.yaml path: al_yaml_parse (libyaml events ->
 * jansson tree), then the alloy schema (al_hparams_from_alloy_config). Any crash, sanitizer report,
 * leak, or an error without a message / a result on failure is a bug. */
#include <stdlib.h>

#include "alloy/yaml.h"
#include "model/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *j = (json_t *)1;
    al_status s = al_yaml_parse(&j, (const char *)data, size, "fuzz");
    if (al_failed(&s)) {
        if (j || !s.msg[0]) abort();
        return 0;
    }
    if (!j) abort();
    char *dump = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!dump) abort(); /* the tree must be valid JSON (UTF-8 strings, finite numbers) */
    free(dump);
    al_hparams hp;
    s = al_hparams_from_alloy_config(&hp, j);
    if (al_failed(&s) && !s.msg[0]) abort();
    if (!al_failed(&s) && (hp.n_layer <= 0 || hp.n_layer > AL_MAX_LAYERS || hp.n_embd <= 0)) abort();
    json_decref(j);
    return 0;
}
