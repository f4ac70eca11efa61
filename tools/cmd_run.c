/*
 * cmd_run.c — `alloy run` (one prompt, streamed), `alloy chat` (interactive, with the model's chat
 * template and line editing; Ctrl-C stops a reply) and `alloy tokenize`.
 */
#include <editline/readline.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloy/gguf.h"
#include "alloy/model.h"
#include "alloy/sampler.h"
#include "alloy/template.h"
#include "alloy/tokenizer.h"
#include "cli.h"

/* ChatML, used when a model ships no template. */
static const char fallback_template[] =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static volatile sig_atomic_t g_interrupted; /* CLI process state, set by SIGINT during a reply */

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct run_opts {
    int n_predict;
    al_sampler_params sp;
} run_opts;

static run_opts parse_run_opts(int argc, char **argv) {
    run_opts o;
    o.n_predict = cli_int(argc, argv, "-n", "--n-predict", 128);
    o.sp = al_sampler_default_params();
    o.sp.temp = (float)cli_num(argc, argv, NULL, "--temp", o.sp.temp);
    o.sp.top_p = (float)cli_num(argc, argv, NULL, "--top-p", o.sp.top_p);
    o.sp.top_k = cli_int(argc, argv, NULL, "--top-k", o.sp.top_k);
    o.sp.min_p = (float)cli_num(argc, argv, NULL, "--min-p", o.sp.min_p);
    o.sp.repeat_penalty = (float)cli_num(argc, argv, NULL, "--repeat-penalty", o.sp.repeat_penalty);
    o.sp.presence_penalty = (float)cli_num(argc, argv, NULL, "--presence-penalty", 0);
    o.sp.frequency_penalty = (float)cli_num(argc, argv, NULL, "--frequency-penalty", 0);
    const char *seed = cli_opt(argc, argv, NULL, "--seed");
    o.sp.seed = seed ? strtoull(seed, NULL, 10) : (uint64_t)(al_time_sec() * 1e6);
    return o;
}

static al_status load_model(int argc, char **argv, al_model **m, const al_tokenizer **tok) {
    al_model_params mp = al_model_default_params();
    mp.n_threads = cli_int(argc, argv, "-t", "--threads", 0);
    const char *path = cli_opt(argc, argv, "-m", "--model");
    AL_TRY(al_model_load(m, path ? path : cli_default_model(), &mp));
    al_status st = al_model_tokenizer(*m, tok);
    if (al_failed(&st)) {
        al_model_free(*m);
        *m = NULL;
    }
    return st;
}

/* Renders one user turn (plus history) with the model's template. */
static al_status render_chat(const al_tokenizer *tok, json_t *messages, char **out) {
    const char *src = al_tokenizer_chat_template(tok);
    if (!src) src = fallback_template;
    al_template *t;
    AL_TRY(al_template_init(&t, src, strlen(src)));
    const char *bos = NULL, *eos = NULL;
    size_t n;
    if (al_tokenizer_bos(tok) >= 0) bos = al_tokenizer_token_text(tok, al_tokenizer_bos(tok), &n);
    if (al_tokenizer_eos(tok) >= 0) eos = al_tokenizer_token_text(tok, al_tokenizer_eos(tok), &n);
    size_t len;
    al_status st = al_chat_render(t, messages, NULL, true, NULL, bos, eos, NULL, out, &len);
    al_template_free(t);
    return st;
}

typedef struct gen_stats {
    int n_prompt, n_gen;
    double t_prompt, t_gen;
} gen_stats;

/* Feeds `text`, then samples up to n_predict tokens, streaming them to stdout; appends the reply to
 * *reply if non-NULL. Stops at end-of-generation, n_predict, a full context or Ctrl-C. */
static al_status generate(cli_session *s, const al_tokenizer *tok, al_sampler *smp, const char *text, bool add_special,
                          int n_predict, char **reply, gen_stats *gs) {
    int32_t *ids = NULL;
    size_t n = 0;
    AL_TRY(al_tokenizer_encode(tok, text, strlen(text), add_special, true, &ids, &n));
    if (n == 0) {
        free(ids);
        return al_err(AL_ERR_INVALID, "empty prompt");
    }
    int V = al_tokenizer_vocab_size(tok);
    float *lg = malloc(sizeof(float) * (size_t)(V > 0 ? V : 1));
    al_detok *dt = NULL;
    al_status st = lg ? al_detok_init(&dt, tok, 0) : al_err(AL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !al_failed(&st); i++) al_sampler_accept(smp, ids[i]);
    double t0 = al_time_sec();
    if (!al_failed(&st)) st = cli_session_eval(s, ids, (int)n, lg, false);
    gs->t_prompt += al_time_sec() - t0;
    gs->n_prompt += (int)n;
    size_t cap = 256, used = 0;
    char *acc = reply ? malloc(cap) : NULL;
    t0 = al_time_sec();
    g_interrupted = 0;
    const float *cur = lg; /* logits of the last step: lg, or the GPU session's pinned buffer */
    for (int i = 0; i < n_predict && !al_failed(&st) && !g_interrupted; i++) {
        int32_t t = al_sampler_sample(smp, cur, NULL);
        if (al_tokenizer_is_eog(tok, t)) break;
        const char *piece;
        size_t plen;
        st = al_detok_push(dt, t, &piece, &plen);
        if (al_failed(&st)) break;
        fwrite(piece, 1, plen, stdout);
        fflush(stdout);
        if (acc) {
            size_t ncap = cap;
            while (used + plen + 1 > ncap) ncap *= 2;
            char *na = ncap != cap ? realloc(acc, ncap) : acc;
            if (!na) {
                st = al_err(AL_ERR_NOMEM, "out of memory");
                break;
            }
            acc = na;
            cap = ncap;
            memcpy(acc + used, piece, plen);
            used += plen;
        }
        al_sampler_accept(smp, t);
        gs->n_gen++;
        if (cli_session_pos(s) >= cli_session_n_ctx(s)) break;
        st = cli_session_decode(s, t, lg, &cur);
    }
    const char *piece;
    size_t plen;
    if (dt && !al_failed(&st) && (st = al_detok_flush(dt, &piece, &plen)).code == AL_OK) fwrite(piece, 1, plen, stdout);
    gs->t_gen += al_time_sec() - t0;
    if (acc) {
        acc[used] = '\0';
        *reply = acc;
    }
    al_detok_free(dt);
    free(lg);
    free(ids);
    return st;
}

static void print_stats(const gen_stats *gs) {
    fprintf(stderr, "\nprompt: %d tokens, %.2f tokens/s | generation: %d tokens, %.2f tokens/s\n", gs->n_prompt,
            gs->t_prompt > 0 ? gs->n_prompt / gs->t_prompt : 0, gs->n_gen, gs->t_gen > 0 ? gs->n_gen / gs->t_gen : 0);
}

int cmd_run(int argc, char **argv) {
    const char *prompt = cli_opt(argc, argv, "-p", "--prompt");
    if (!prompt) {
        fprintf(stderr, "usage: alloy run -m MODEL -p TEXT [-n N] [--temp T --top-p P --top-k K --min-p M --seed S] [--chat] [--device cpu|cuda] [-ngl N]\n");
        return 2;
    }
    run_opts o = parse_run_opts(argc, argv);
    al_model *m;
    const al_tokenizer *tok;
    al_status st = load_model(argc, argv, &m, &tok);
    if (al_failed(&st)) return cli_fail(st);
    cli_session *s = NULL;
    al_sampler *smp = NULL;
    char *text = NULL;
    bool chat = cli_flag(argc, argv, "--chat");
    st = cli_session_init(&s, m, cli_int(argc, argv, "-c", "--ctx-size", 0), argc, argv);
    if (!al_failed(&st)) st = al_sampler_init(&smp, &o.sp, al_model_n_vocab(m));
    if (!al_failed(&st) && chat) {
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", prompt);
        st = render_chat(tok, msgs, &text);
        json_decref(msgs);
    }
    gen_stats gs = {0};
    if (!al_failed(&st)) {
        if (!chat) fputs(prompt, stdout);
        st = generate(s, tok, smp, chat ? text : prompt, !chat, o.n_predict, NULL, &gs);
        print_stats(&gs);
    }
    free(text);
    al_sampler_free(smp);
    cli_session_free(s);
    al_model_free(m);
    return al_failed(&st) ? cli_fail(st) : 0;
}

int cmd_chat(int argc, char **argv) {
    run_opts o = parse_run_opts(argc, argv);
    o.n_predict = cli_int(argc, argv, "-n", "--n-predict", 512);
    al_model *m;
    const al_tokenizer *tok;
    al_status st = load_model(argc, argv, &m, &tok);
    if (al_failed(&st)) return cli_fail(st);
    cli_session *s = NULL;
    al_sampler *smp = NULL;
    st = cli_session_init(&s, m, cli_int(argc, argv, "-c", "--ctx-size", 0), argc, argv);
    if (!al_failed(&st)) st = al_sampler_init(&smp, &o.sp, al_model_n_vocab(m));
    if (al_failed(&st)) {
        cli_session_free(s);
        al_model_free(m);
        return cli_fail(st);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    json_t *msgs = json_array();
    const char *sys = cli_opt(argc, argv, "-s", "--system");
    if (sys) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", sys));
    fprintf(stderr, "alloy chat — empty line or Ctrl-D to quit, Ctrl-C stops a reply\n");
    /* Text the session holds: the rendered prompt plus the reply. Next turn, when the new rendering
     * extends it (the usual case), only the difference is tokenized and fed, as llama.cpp's
     * conversation mode does; otherwise the session restarts from the full rendering. */
    char *cached = NULL;
    for (;;) {
        char *line = readline("> ");
        if (!line || !*line) {
            free(line);
            break;
        }
        add_history(line);
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", line));
        free(line);
        char *full = NULL;
        st = render_chat(tok, msgs, &full);
        if (al_failed(&st)) break;
        size_t clen = cached ? strlen(cached) : 0;
        const char *delta = full;
        bool fresh = !cached || strncmp(full, cached, clen) != 0;
        if (fresh) {
            cli_session_reset(s);
            al_sampler_reset(smp, o.sp.seed);
        } else {
            delta = full + clen;
        }
        gen_stats gs = {0};
        char *reply = NULL;
        st = generate(s, tok, smp, delta, fresh, o.n_predict, &reply, &gs);
        if (g_interrupted) fprintf(stderr, " [stopped]");
        print_stats(&gs);
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "assistant", "content", reply ? reply : ""));
        free(cached);
        size_t fl = strlen(full), rl = reply ? strlen(reply) : 0;
        cached = malloc(fl + rl + 1);
        if (cached) {
            memcpy(cached, full, fl);
            if (rl) memcpy(cached + fl, reply, rl);
            cached[fl + rl] = '\0';
        }
        free(reply);
        free(full);
        if (al_failed(&st)) break;
    }
    free(cached);
    json_decref(msgs);
    al_sampler_free(smp);
    cli_session_free(s);
    al_model_free(m);
    return al_failed(&st) ? cli_fail(st) : 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *text = cli_opt(argc, argv, "-p", "--prompt"), *file = cli_opt(argc, argv, "-f", "--file");
    if (!text && !file) {
        fprintf(stderr, "usage: alloy tokenize -m MODEL (-p TEXT | -f FILE) [--bos]\n");
        return 2;
    }
    char *buf = NULL;
    size_t len = 0;
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) return cli_fail(al_err(AL_ERR_IO, "cannot open %s", file));
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)(sz > 0 ? sz : 0) + 1);
        len = buf ? fread(buf, 1, (size_t)(sz > 0 ? sz : 0), f) : 0;
        fclose(f);
        if (!buf) return cli_fail(al_err(AL_ERR_NOMEM, "out of memory"));
        text = buf;
    } else {
        len = strlen(text);
    }
    /* only the tokenizer is needed: vocab-only GGUF files and HF folders without weights work too */
    const char *path = cli_opt(argc, argv, "-m", "--model");
    if (!path) path = cli_default_model();
    al_tokenizer *own = NULL;
    struct stat sb;
    al_status st = stat(path, &sb) != 0 ? al_err(AL_ERR_IO, "%s: no such file or folder", path) : al_ok();
    if (!al_failed(&st) && S_ISDIR(sb.st_mode)) st = al_tokenizer_from_hf(&own, path);
    else if (!al_failed(&st)) {
        al_gguf *g;
        st = al_gguf_open(&g, path);
        if (!al_failed(&st)) {
            st = al_tokenizer_from_gguf(&own, g);
            al_gguf_free(g);
        }
    }
    if (al_failed(&st)) {
        free(buf);
        return cli_fail(st);
    }
    const al_tokenizer *tok = own;
    int32_t *ids = NULL;
    size_t n = 0;
    bool bos = cli_flag(argc, argv, "--bos");
    st = al_tokenizer_encode(tok, text, len, false, true, &ids, &n);
    if (!al_failed(&st)) {
        if (bos && al_tokenizer_bos(tok) >= 0) printf("%d%s", al_tokenizer_bos(tok), n ? " " : "");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    free(buf);
    al_tokenizer_free(own);
    return al_failed(&st) ? cli_fail(st) : 0;
}
