/* test_tokenizer.c — tokenizers against llama.cpp's reference ids, round trips, streaming
 * detokenizer, tokenizer.json loading.
 *
 * Reference data (tests/data/tokenizers, copied from /work/shared/tokenizers):
 *   ggml-vocab-<name>.gguf      tokenizer-only GGUF files of real models
 *   ggml-vocab-<name>.gguf.inp  test strings, each followed by a line "__ggml_vocab_test__"
 *   ggml-vocab-<name>.gguf.out  per string, the ids llama.cpp produces (no BOS/EOS, special
 *                               tokens parsed)
 */
#include <stdlib.h>

#include "alloy/gguf.h"
#include "alloy/tokenizer.h"
#include "harness.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct cases {
    char *inp, *out;    /* file contents (owned) */
    const char *s[128]; /* strings (pointing into inp, NUL-terminated in place) */
    size_t len[128];
    char *ids[128]; /* lines of `out` */
    int n;
} cases;

static bool load_cases(cases *c, const char *name) {
    char p[256];
    size_t ni, no;
    memset(c, 0, sizeof *c);
    snprintf(p, sizeof p, "tokenizers/ggml-vocab-%s.gguf.inp", name);
    c->inp = al_test_read_file(al_test_path(p), &ni);
    snprintf(p, sizeof p, "tokenizers/ggml-vocab-%s.gguf.out", name);
    c->out = al_test_read_file(al_test_path(p), &no);
    if (!c->inp || !c->out) return false;
    char *q = c->inp, *end = c->inp + ni;
    while (q < end && c->n < 128) {
        char *m = strstr(q, SEP);
        if (!m) break;
        *m = '\0';
        c->s[c->n] = q;
        c->len[c->n] = (size_t)(m - q);
        c->n++;
        q = m + strlen(SEP);
    }
    int k = 0;
    char *line = c->out;
    for (int i = 0; i < c->n; i++) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = '\0';
        c->ids[k++] = line;
        line = nl + 1;
    }
    return k == c->n && c->n > 0;
}

static void free_cases(cases *c) {
    free(c->inp);
    free(c->out);
}

static al_tokenizer *open_vocab(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "tokenizers/ggml-vocab-%s.gguf", name);
    al_gguf *g = NULL;
    al_status s = al_gguf_open(&g, al_test_path(p));
    if (s.code) {
        al_test_fail(__FILE__, __LINE__, "open %s: %s", name, s.msg);
        return NULL;
    }
    al_tokenizer *t = NULL;
    s = al_tokenizer_from_gguf(&t, g);
    al_gguf_free(g); /* the tokenizer must not keep pointers into the file */
    if (s.code) al_test_fail(__FILE__, __LINE__, "tokenizer %s: %s", name, s.msg);
    return t;
}

/* Encodes every .inp string and compares with the .out ids. */
static void check_vocab(const char *name) {
    cases c;
    REQUIRE(load_cases(&c, name));
    al_tokenizer *t = open_vocab(name);
    if (!t) {
        free_cases(&c);
        return;
    }
    int bad = 0;
    for (int i = 0; i < c.n; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        al_status s = al_tokenizer_encode(t, c.s[i], c.len[i], false, true, &ids, &n);
        CHECK_OK(s);
        char got[4096];
        size_t gl = 0;
        got[0] = '\0';
        for (size_t k = 0; k < n && gl + 16 < sizeof got; k++) gl += (size_t)snprintf(got + gl, sizeof got - gl, " %d", (int)ids[k]);
        if (strcmp(got, c.ids[i]) != 0) {
            bad++;
            al_test_fail(__FILE__, __LINE__, "%s case %d '%s':\n   want%s\n   got %s", name, i, c.s[i], c.ids[i], got);
        }
        free(ids);
    }
    CHECKF(bad == 0, "%s: %d of %d cases differ", name, bad, c.n);
    al_tokenizer_free(t);
    free_cases(&c);
}

static void test_gpt2(void) { check_vocab("gpt-2"); }
static void test_llama_spm(void) { check_vocab("llama-spm"); }
static void test_phi3(void) { check_vocab("phi-3"); }
static void test_deepseek_llm(void) { check_vocab("deepseek-llm"); }

/* Metadata exposed from GGUF: special ids, flags, chat template. */
static void test_gguf_metadata(void) {
    al_tokenizer *t = open_vocab("gpt-2");
    REQUIRE(t);
    CHECK(al_tokenizer_vocab_size(t) == 50257);
    CHECK(al_tokenizer_model(t) == AL_TOK_MODEL_BPE);
    CHECK(strcmp(al_tokenizer_pre_name(t), "gpt-2") == 0);
    CHECK(al_tokenizer_bos(t) == 50256 && al_tokenizer_eos(t) == 50256);
    CHECK(al_tokenizer_eot(t) == 50256); /* "<|endoftext|>" */
    CHECK(al_tokenizer_is_eog(t, 50256) && !al_tokenizer_is_eog(t, 0));
    CHECK(al_tokenizer_chat_template(t) == NULL);
    /* parse_special: the control token is one id, or plain text when not parsed */
    int32_t *ids;
    size_t n;
    REQUIRE_OK(al_tokenizer_encode(t, "a<|endoftext|>b", 15, false, true, &ids, &n));
    CHECK(n == 3 && ids[1] == 50256);
    free(ids);
    REQUIRE_OK(al_tokenizer_encode(t, "a<|endoftext|>b", 15, false, false, &ids, &n));
    CHECK(n > 3);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 50256);
    free(ids);
    al_tokenizer_free(t);

    t = open_vocab("phi-3");
    REQUIRE(t);
    CHECK(al_tokenizer_model(t) == AL_TOK_MODEL_SPM);
    CHECK(al_tokenizer_bos(t) == 1 && al_tokenizer_eos(t) == 32000 && al_tokenizer_unk(t) == 0);
    CHECK(al_tokenizer_pad(t) == 32000);
    CHECK(al_tokenizer_add_bos(t) && !al_tokenizer_add_eos(t));
    CHECK(al_tokenizer_find(t, "<|end|>", 7) == al_tokenizer_eot(t));
    CHECK(al_tokenizer_is_eog(t, al_tokenizer_eot(t)) && al_tokenizer_is_eog(t, 32000));
    const char *tmpl = al_tokenizer_chat_template(t);
    CHECK(tmpl && strncmp(tmpl, "{{ bos_token }}{% for message in messages %}", 44) == 0);
    /* SPM: BOS added, space prefixed; "<|user|>" is parsed and (phi-3) eats the next space */
    REQUIRE_OK(al_tokenizer_encode(t, "Hello", 5, true, false, &ids, &n));
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 15043); /* "▁Hello" as in the llama-spm reference */
    free(ids);
    char *text;
    size_t tl;
    int32_t hello[] = {1, 15043, 3186};
    REQUIRE_OK(al_tokenizer_decode(t, hello, 3, AL_DETOK_SKIP_BOS_EOS | AL_DETOK_STRIP_SPACE, &text, &tl));
    CHECK(strcmp(text, "Hello world") == 0);
    free(text);
    REQUIRE_OK(al_tokenizer_decode(t, hello, 3, AL_DETOK_SPECIAL, &text, &tl));
    CHECK(strcmp(text, "<s> Hello world") == 0);
    free(text);
    al_tokenizer_free(t);
}

/* Other byte-level vocabularies: they load and encode->decode reproduces every test string. */
static void test_roundtrip_families(void) {
    static const char *const names[] = {"gpt-2", "deepseek-llm", "falcon", "starcoder", "deepseek-coder", "mpt", "refact"};
    cases c;
    REQUIRE(load_cases(&c, "gpt-2"));
    for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
        al_tokenizer *t = open_vocab(names[v]);
        if (!t) continue;
        CHECK(al_tokenizer_model(t) == AL_TOK_MODEL_BPE);
        int bad = 0;
        for (int i = 0; i < c.n; i++) {
            int32_t *ids;
            size_t n;
            char *text;
            size_t tl;
            al_status s = al_tokenizer_encode(t, c.s[i], c.len[i], false, true, &ids, &n);
            CHECK_OK(s);
            if (s.code) continue;
            s = al_tokenizer_decode(t, ids, n, AL_DETOK_SPECIAL, &text, &tl);
            CHECK_OK(s);
            if (!s.code && (tl != c.len[i] || memcmp(text, c.s[i], tl) != 0)) {
                bad++;
                al_test_fail(__FILE__, __LINE__, "%s: '%s' decodes to '%s'", names[v], c.s[i], text);
            }
            free(text);
            free(ids);
        }
        CHECKF(bad == 0, "%s: %d round trips failed", names[v], bad);
        al_tokenizer_free(t);
    }
    free_cases(&c);
}

/* Known ids of families without reference files, spot-checked against their own vocab: digits
 * are split one by one (starcoder/refact) or in threes (falcon) by the pre-tokenizer. */
static void test_family_splits(void) {
    struct { const char *name; const char *text; const char *pieces[8]; } cases_[] = {
        {"starcoder", "x=12345", {"x", "=", "1", "2", "3", "4", "5", NULL}},
        {"refact", "x=12345", {"x", "=", "1", "2", "3", "4", "5", NULL}},
        {"deepseek-coder", "a123", {"a", "1", "2", "3", NULL}},
    };
    for (size_t k = 0; k < sizeof cases_ / sizeof cases_[0]; k++) {
        al_tokenizer *t = open_vocab(cases_[k].name);
        if (!t) continue;
        int32_t *ids;
        size_t n;
        REQUIRE_OK(al_tokenizer_encode(t, cases_[k].text, strlen(cases_[k].text), false, false, &ids, &n));
        size_t want = 0;
        while (cases_[k].pieces[want]) want++;
        CHECKF(n == want, "%s: %zu tokens, want %zu", cases_[k].name, n, want);
        for (size_t i = 0; i < n && i < want; i++) {
            const char *p;
            size_t pl = al_tokenizer_token_to_piece(t, ids[i], false, &p);
            CHECKF(pl == strlen(cases_[k].pieces[i]) && memcmp(p, cases_[k].pieces[i], pl) == 0,
                   "%s: piece %zu '%.*s'", cases_[k].name, i, (int)pl, p);
        }
        free(ids);
        al_tokenizer_free(t);
    }
}

/* ---- streaming detokenizer ---- */

static bool valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80) return false;
        i += k;
    }
    return true;
}

static void stream_check(al_tokenizer *t, const char *text, unsigned flags, bool want_split) {
    int32_t *ids;
    size_t n;
    REQUIRE_OK(al_tokenizer_encode(t, text, strlen(text), false, false, &ids, &n));
    al_detok *d;
    REQUIRE_OK(al_detok_init(&d, t, flags));
    char acc[1024];
    size_t al = 0;
    bool split_seen = false; /* some token ended inside a character */
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t pl = al_tokenizer_token_to_piece(t, ids[i], false, &p);
        if (pl && !valid_utf8(p, pl)) split_seen = true;
        const char *o;
        size_t ol;
        CHECK_OK(al_detok_push(d, ids[i], &o, &ol));
        CHECKF(valid_utf8(o, ol), "token %zu: partial UTF-8 emitted", i);
        if (al + ol < sizeof acc) memcpy(acc + al, o, ol), al += ol;
    }
    const char *o;
    size_t ol;
    CHECK_OK(al_detok_flush(d, &o, &ol));
    CHECK(ol == 0);
    CHECKF(al == strlen(text) && memcmp(acc, text, al) == 0, "stream gives '%.*s'", (int)al, acc);
    if (want_split) CHECKF(split_seen, "'%s' never split a character across tokens", text);
    al_detok_free(d);
    free(ids);
}

static void test_detok_stream(void) {
    al_tokenizer *t = open_vocab("gpt-2");
    REQUIRE(t);
    /* GPT-2 splits these into byte tokens that cut characters (e.g. 🦙 = 12520 99 247) */
    stream_check(t, " this is \xf0\x9f\xa6\x99.cpp", 0, true);
    stream_check(t, "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple\xe5\xb7\xa5\xe4\xbd\x9c \xf0\x9f\x98\x81 ?", 0, true);
    al_tokenizer_free(t);
    t = open_vocab("llama-spm");
    REQUIRE(t);
    /* SPM byte fallback: <0xF0><0x9F>... for characters missing from the vocabulary */
    stream_check(t, "\xf0\x9f\xa6\x99\xf0\x9f\x9a\x80 \xe1\x9e\x80", AL_DETOK_STRIP_SPACE, true);
    al_tokenizer_free(t);

    /* invalid bytes become U+FFFD; a dangling lead byte at the end is flushed as U+FFFD */
    t = open_vocab("llama-spm");
    REQUIRE(t);
    al_detok *d;
    REQUIRE_OK(al_detok_init(&d, t, 0));
    const char *o;
    size_t ol;
    int32_t e2 = al_tokenizer_find(t, "<0xE2>", 6), x82 = al_tokenizer_find(t, "<0x82>", 6), a = al_tokenizer_find(t, "A", 1);
    REQUIRE(e2 >= 0 && x82 >= 0 && a >= 0);
    CHECK_OK(al_detok_push(d, e2, &o, &ol));
    CHECK(ol == 0);
    CHECK_OK(al_detok_push(d, x82, &o, &ol));
    CHECK(ol == 0);
    CHECK_OK(al_detok_push(d, a, &o, &ol)); /* E2 82 'A': one U+FFFD for the bad subpart, then A */
    CHECK(ol == 4 && memcmp(o, "\xef\xbf\xbd" "A", 4) == 0);
    CHECK_OK(al_detok_push(d, e2, &o, &ol));
    CHECK(ol == 0);
    CHECK_OK(al_detok_flush(d, &o, &ol));
    CHECK(ol == 3 && memcmp(o, "\xef\xbf\xbd", 3) == 0);
    CHECK_ERR(al_detok_push(d, 1 << 30, &o, &ol), AL_ERR_RANGE);
    al_detok_free(d);
    al_detok_free(NULL);
    al_tokenizer_free(t);
}

/* Invalid UTF-8 input never fails; out-of-range ids are rejected by decode. */
static void test_robustness(void) {
    al_tokenizer *t = open_vocab("gpt-2");
    REQUIRE(t);
    int32_t *ids;
    size_t n;
    const char bad[] = "a\xff\xc3(b\xe2\x82";
    REQUIRE_OK(al_tokenizer_encode(t, bad, sizeof bad - 1, false, true, &ids, &n));
    char *text;
    size_t tl;
    REQUIRE_OK(al_tokenizer_decode(t, ids, n, 0, &text, &tl));
    /* each bad byte reads as U+FFFD, as llama.cpp does */
    CHECK(strcmp(text, "a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd") == 0);
    free(text);
    free(ids);
    REQUIRE_OK(al_tokenizer_encode(t, "", 0, false, true, &ids, &n));
    CHECK(n == 0);
    free(ids);
    int32_t oob[] = {5, 50257};
    CHECK_ERR(al_tokenizer_decode(t, oob, 2, 0, &text, &tl), AL_ERR_RANGE);
    const char *p;
    CHECK(al_tokenizer_token_to_piece(t, -1, true, &p) == 0 && p && !*p);
    al_tokenizer_free(t);
    al_tokenizer_free(NULL);
}


/* ---- tokenizer.json ---- */

static bool ids_are(const al_tokenizer *t, const char *text, bool add_special, bool parse_special,
                    const int32_t *want, size_t nw) {
    int32_t *ids;
    size_t n;
    al_status s = al_tokenizer_encode(t, text, strlen(text), add_special, parse_special, &ids, &n);
    if (s.code) return false;
    bool ok = n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!ok) {
        fprintf(stderr, "  '%s' ->", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}
#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

/* tests/data/tokenizers/hf-bytelevel: byte-level BPE, vocab
 *   a=0 b=1 c=2 Ġ=3 ab=4 abc=5 Ġa=6 Ġab=7, added <|end|>=8 (special), <extra>=9 (not special)
 * merges by rank: (a,b)=0 (ab,c)=1 (Ġ,a)=2 (Ġa,b)=3.
 * "abc ab" pre-splits (GPT-2 regex) into "abc" and " ab" = "Ġab" (byte-level: space -> Ġ).
 *   "abc": (a,b) rank 0 -> ab; (ab,c) rank 1 -> abc                      => 5
 *   "Ġab": (a,b) rank 0 beats (Ġ,a) rank 2 -> Ġ ab; no merge (Ġ,ab)     => 3 4
 * so [5 3 4] (a wrong, left-to-right merge order would give 7).
 * tokenizer_config.json: bos = eos = <|end|>, add_bos_token true, a chat_template. */
static void test_hf_bytelevel(void) {
    al_tokenizer *t;
    REQUIRE_OK(al_tokenizer_from_hf(&t, al_test_path("tokenizers/hf-bytelevel")));
    CHECK(al_tokenizer_vocab_size(t) == 10);
    CHECK(al_tokenizer_model(t) == AL_TOK_MODEL_BPE);
    CHECK(ids_are(t, "abc ab", false, false, IDS(5, 3, 4)));
    CHECK(ids_are(t, "abc ab", true, false, IDS(8, 5, 3, 4)));      /* BOS from the config */
    CHECK(ids_are(t, "ab<|end|>c<extra>", false, true, IDS(4, 8, 2, 9)));
    CHECK(ids_are(t, "ab<extra>", false, false, IDS(4, 9)));         /* added, non-special: always */
    CHECK(al_tokenizer_bos(t) == 8 && al_tokenizer_eos(t) == 8 && al_tokenizer_add_bos(t));
    CHECK(al_tokenizer_is_eog(t, 8) && al_tokenizer_is_control(t, 8) && !al_tokenizer_is_control(t, 9));
    const char *tmpl = al_tokenizer_chat_template(t);
    CHECK(tmpl && strcmp(tmpl, "{% for m in messages %}{{ m.content }}<|end|>{% endfor %}") == 0);
    char *text;
    size_t tl;
    REQUIRE_OK(al_tokenizer_decode(t, IDS(8, 5, 3, 4, 9), AL_DETOK_SKIP_BOS_EOS, &text, &tl));
    CHECK(strcmp(text, "abc ab<extra>") == 0);
    free(text);
    al_tokenizer_free(t);
}

/* tests/data/tokenizers/hf-metaspace: SentencePiece-style BPE (Metaspace "▁", prepend_scheme
 * first, NFC normalizer, byte_fallback), vocab
 *   <unk>=0 <s>=1 </s>=2 <0x21>=3 <0xC3>=4 <0xA9>=5 ▁=6 h=7 i=8 ▁h=9 ▁hi=10 hi=11
 * merges by rank: (▁,h)=0 (h,i)=1 (▁h,i)=2; TemplateProcessing adds <s>.
 *   "hi hi!" -> "▁hi▁hi!": both (▁,h) merge first, then (▁h,i); "!" is not in the vocab -> its
 *   byte <0x21>                                                           => 10 10 3
 *   "e\u0301" NFC -> "é" (C3 A9) -> "▁é": no merges; é by byte fallback   => 6 4 5
 *   "<s>hi" (parse special): the text after <s> is not first -> no "▁" => 1 11 */
static void test_hf_metaspace(void) {
    al_tokenizer *t;
    REQUIRE_OK(al_tokenizer_from_hf(&t, al_test_path("tokenizers/hf-metaspace")));
    CHECK(al_tokenizer_model(t) == AL_TOK_MODEL_BPE_SPM);
    CHECK(ids_are(t, "hi hi!", false, false, IDS(10, 10, 3)));
    CHECK(ids_are(t, "hi hi!", true, false, IDS(1, 10, 10, 3)));
    CHECK(ids_are(t, "e\xcc\x81", false, false, IDS(6, 4, 5)));
    CHECK(ids_are(t, "<s>hi", false, true, IDS(1, 11)));
    CHECK(al_tokenizer_bos(t) == 1 && al_tokenizer_unk(t) == 0 && al_tokenizer_chat_template(t) == NULL);
    char *text;
    size_t tl;
    REQUIRE_OK(al_tokenizer_decode(t, IDS(1, 10, 10, 3, 6, 4, 5), AL_DETOK_SKIP_BOS_EOS | AL_DETOK_STRIP_SPACE, &text, &tl));
    CHECK(strcmp(text, "hi hi! \xc3\xa9") == 0);
    free(text);
    al_tokenizer_free(t);

    /* malformed / unsupported input gives errors, not crashes */
    static const char *const bad[] = {
        "", "[]", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [3]}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
        "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        al_status s = al_tokenizer_from_hf_json(&t, bad[k], strlen(bad[k]), NULL, 0);
        CHECKF(s.code != AL_OK && t == NULL, "case %zu accepted", k);
    }
    CHECK_ERR(al_tokenizer_from_hf(&t, "/nonexistent"), AL_ERR_IO);
}

int main(void) {
    AL_RUN(test_gpt2);
    AL_RUN(test_llama_spm);
    AL_RUN(test_phi3);
    AL_RUN(test_deepseek_llm);
    AL_RUN(test_gguf_metadata);
    AL_RUN(test_roundtrip_families);
    AL_RUN(test_family_splits);
    AL_RUN(test_detok_stream);
    AL_RUN(test_robustness);
    AL_RUN(test_hf_bytelevel);
    AL_RUN(test_hf_metaspace);
    return al_test_finish();
}
