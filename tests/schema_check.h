/* schema_check.h — an independent validator for the JSON-Schema subset that alloy's constrained
 * decoding supports (type / type lists, properties, required, additionalProperties, items, enum,
 * const, anyOf, oneOf, local $ref), written from the JSON-Schema spec for the tests. Header-only
 * (tests link only harness.c). al_test_schema_valid(value, schema): the schema is also the root
 * for $ref. */
#ifndef ALLOY_TEST_SCHEMA_CHECK_H
#define ALLOY_TEST_SCHEMA_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static inline const json_t *al_test_schema_resolve(const json_t *root, const char *ref) {
    static const char *const pre[] = {"#/$defs/", "#/definitions/"};
    if (!ref) return NULL;
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(pre[i]);
        if (!strncmp(ref, pre[i], n)) return json_object_get(json_object_get(root, i ? "definitions" : "$defs"), ref + n);
    }
    return !strcmp(ref, "#") ? root : NULL;
}

static inline bool al_test_schema_type_ok(const json_t *v, const char *t) {
    if (!t) return false;
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return false;
}

static inline bool al_test_schema_valid_in(const json_t *v, const json_t *s, const json_t *root) {
    if (!s) return false;
    if (json_is_true(s)) return true;
    if (json_is_false(s)) return false;
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) return al_test_schema_valid_in(v, al_test_schema_resolve(root, json_string_value(ref)), root);
    const json_t *any = json_object_get(s, "anyOf");
    if (any) {
        size_t i;
        json_t *b;
        json_array_foreach(any, i, b) if (al_test_schema_valid_in(v, b, root)) return true;
        return false;
    }
    const json_t *one = json_object_get(s, "oneOf");
    if (one) {
        size_t i, hits = 0;
        json_t *b;
        json_array_foreach(one, i, b) hits += al_test_schema_valid_in(v, b, root);
        return hits == 1;
    }
    const json_t *c = json_object_get(s, "const");
    if (c && !json_equal(c, (json_t *)v)) return false;
    const json_t *en = json_object_get(s, "enum");
    if (en) {
        bool found = false;
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e) found = found || json_equal(e, (json_t *)v);
        if (!found) return false;
    }
    const json_t *t = json_object_get(s, "type");
    if (json_is_string(t) && !al_test_schema_type_ok(v, json_string_value(t))) return false;
    if (json_is_array(t)) {
        bool ok = false;
        size_t i;
        json_t *x;
        json_array_foreach(t, i, x) ok = ok || al_test_schema_type_ok(v, json_string_value(x));
        if (!ok) return false;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties"), *addl = json_object_get(s, "additionalProperties");
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(s, "required"), i, r) if (!json_object_get(v, json_string_value(r))) return false;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            const json_t *ps = json_object_get(props, k);
            if (ps) {
                if (!al_test_schema_valid_in(x, ps, root)) return false;
            } else if (json_is_false(addl)) {
                return false;
            } else if (json_is_object(addl) && !al_test_schema_valid_in(x, addl, root)) {
                return false;
            }
        }
    }
    if (json_is_array(v) && json_object_get(s, "items")) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) if (!al_test_schema_valid_in(x, json_object_get(s, "items"), root)) return false;
    }
    return true;
}

static inline bool al_test_schema_valid(const json_t *v, const json_t *schema) {
    return al_test_schema_valid_in(v, schema, schema);
}

#endif
