/* metrics.c — counters and histograms of `alloy serve`, rendered in the Prometheus text
 * exposition format 0.0.4. Endpoint labels come from a fixed set (the route paths), so the
 * series count is bounded. */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

#define N_BUCKETS 12
#define MAX_SERIES 96

static const double buckets[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

typedef struct series {
    const char *endpoint;
    int status;
    uint64_t count;
} series;

typedef struct histo {
    uint64_t le[N_BUCKETS];
    uint64_t count;
    double sum;
} histo;

typedef struct endpoint_lat {
    const char *endpoint;
    histo h;
} endpoint_lat;

struct srv_metrics {
    pthread_mutex_t mu;
    series req[MAX_SERIES];
    int n_req;
    endpoint_lat lat[32];
    int n_lat;
    uint64_t tokens_prompt, tokens_gen, generations;
    histo ttft, gen_time;
};

al_status srv_metrics_init(srv_metrics **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return al_err(AL_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&(*out)->mu, NULL);
    return al_ok();
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(histo *h, double v) {
    for (int i = 0; i < N_BUCKETS; i++)
        if (v <= buckets[i]) h->le[i]++;
    h->count++;
    h->sum += v;
}

void srv_metrics_request(srv_metrics *m, const char *endpoint, int status, double seconds) {
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_req; i++)
        if (m->req[i].endpoint == endpoint && m->req[i].status == status) break;
    if (i == m->n_req && m->n_req < MAX_SERIES) m->req[m->n_req++] = (series){endpoint, status, 0};
    if (i < m->n_req) m->req[i].count++;
    for (i = 0; i < m->n_lat; i++)
        if (m->lat[i].endpoint == endpoint) break;
    if (i == m->n_lat && m->n_lat < (int)(sizeof m->lat / sizeof *m->lat)) {
        memset(&m->lat[i], 0, sizeof m->lat[i]);
        m->lat[m->n_lat++].endpoint = endpoint;
    }
    if (i < m->n_lat) observe(&m->lat[i].h, seconds);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_gen, double ttft, double seconds) {
    pthread_mutex_lock(&m->mu);
    m->tokens_prompt += (uint64_t)(n_prompt > 0 ? n_prompt : 0);
    m->tokens_gen += (uint64_t)(n_gen > 0 ? n_gen : 0);
    m->generations++;
    observe(&m->ttft, ttft);
    observe(&m->gen_time, seconds);
    pthread_mutex_unlock(&m->mu);
}

static void render_histo(sbuf *o, const char *name, const char *labels, const histo *h) {
    for (int i = 0; i < N_BUCKETS; i++)
        sbuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", buckets[i], (unsigned long long)h->le[i]);
    sbuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", (unsigned long long)h->count);
    sbuf_printf(o, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels, (unsigned long long)h->count);
}

void srv_metrics_render(srv_metrics *m, const al_engine_stats *st, int in_flight, sbuf *o) {
    pthread_mutex_lock(&m->mu);
    sbuf_adds(o, "# HELP alloy_requests_total HTTP requests by endpoint and status.\n# TYPE alloy_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        sbuf_printf(o, "alloy_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", m->req[i].endpoint, m->req[i].status,
                    (unsigned long long)m->req[i].count);
    sbuf_adds(o, "# HELP alloy_request_duration_seconds Time from request to the last byte, by endpoint.\n"
                 "# TYPE alloy_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n_lat; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "endpoint=\"%s\"", m->lat[i].endpoint);
        render_histo(o, "alloy_request_duration_seconds", labels, &m->lat[i].h);
    }
    sbuf_adds(o, "# HELP alloy_time_to_first_token_seconds Queue wait plus prompt processing.\n"
                 "# TYPE alloy_time_to_first_token_seconds histogram\n");
    render_histo(o, "alloy_time_to_first_token_seconds", "", &m->ttft);
    sbuf_adds(o, "# HELP alloy_generation_seconds Queue wait, prompt and generation of one request.\n"
                 "# TYPE alloy_generation_seconds histogram\n");
    render_histo(o, "alloy_generation_seconds", "", &m->gen_time);
    sbuf_printf(o,
                "# HELP alloy_prompt_tokens_total Prompt tokens processed.\n# TYPE alloy_prompt_tokens_total counter\n"
                "alloy_prompt_tokens_total %llu\n"
                "# HELP alloy_generated_tokens_total Tokens generated.\n# TYPE alloy_generated_tokens_total counter\n"
                "alloy_generated_tokens_total %llu\n"
                "# HELP alloy_generations_total Generations finished.\n# TYPE alloy_generations_total counter\n"
                "alloy_generations_total %llu\n",
                (unsigned long long)m->tokens_prompt, (unsigned long long)m->tokens_gen, (unsigned long long)m->generations);
    pthread_mutex_unlock(&m->mu);
    sbuf_printf(o,
                "# HELP alloy_queue_depth Requests waiting for a slot.\n# TYPE alloy_queue_depth gauge\nalloy_queue_depth %d\n"
                "# HELP alloy_active_slots Slots generating.\n# TYPE alloy_active_slots gauge\nalloy_active_slots %d\n"
                "# HELP alloy_slots Slots in total.\n# TYPE alloy_slots gauge\nalloy_slots %d\n"
                "# HELP alloy_requests_in_flight Generation requests accepted and not finished.\n"
                "# TYPE alloy_requests_in_flight gauge\nalloy_requests_in_flight %d\n"
                "# HELP alloy_prompt_tokens_cached_total Prompt tokens served by prefix reuse (not evaluated again).\n"
                "# TYPE alloy_prompt_tokens_cached_total counter\nalloy_prompt_tokens_cached_total %llu\n"
                "# HELP alloy_backend_errors_total Failed forward passes (prefill or decode).\n"
                "# TYPE alloy_backend_errors_total counter\nalloy_backend_errors_total %llu\n",
                st->queued, st->active, st->n_parallel, in_flight, (unsigned long long)st->tokens_cached,
                (unsigned long long)st->backend_errors);
}
