/* ops_basic.c — norms, activations and rotary embeddings (reference CPU backend). */
#include <float.h>
#include <math.h>

#include "alloy/ops.h"

void al_op_rms_norm(const float *x, const float *w, float *y, int64_t rows, int64_t n, int64_t group, float eps) {
    if (group <= 0 || group > n) group = n;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        for (int64_t g0 = 0; g0 < n; g0 += group) {
            double ss = 0;
            for (int64_t i = g0; i < g0 + group; i++) ss += (double)xr[i] * xr[i];
            float inv = 1.0f / sqrtf((float)(ss / (double)group) + eps);
            for (int64_t i = g0; i < g0 + group; i++) yr[i] = w ? (xr[i] * inv) * w[i] : xr[i] * inv;
        }
    }
}

void al_op_silu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

void al_op_relu2(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] > 0 ? x[i] : 0;
        y[i] = v * v;
    }
}

void al_op_gelu_erf(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void al_op_gelu_tanh(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    }
}

float al_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

void al_op_swiglu(const float *gate, const float *up, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void al_op_add(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void al_op_moe_route(const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights) {
    float p[1024];
    for (int64_t t = 0; t < n_tok; t++) {
        const float *lg = logits + t * E;
        float mx = -FLT_MAX, sum = 0;
        for (int e = 0; e < E; e++) mx = fmaxf(mx, lg[e]);
        for (int e = 0; e < E; e++) sum += (p[e] = expf(lg[e] - mx));
        for (int e = 0; e < E; e++) p[e] /= sum;
        uint8_t used[1024] = {0};
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!used[e] && (best < 0 || p[e] > p[best])) best = e;
            used[best] = 1;
            ids[t * k + j] = best;
            weights[t * k + j] = p[best];
        }
    }
}

void al_rope_inv_freq(const al_rope_cfg *cfg, float *inv_freq) {
    int half = cfg->n_dims / 2;
    for (int i = 0; i < half; i++) {
        /* as torch: 1 / theta^(2i/d) computed in float64 then rounded */
        double f = 1.0 / pow((double)cfg->theta, (double)(2 * i) / (double)cfg->n_dims);
        if (cfg->freq_factors) f /= cfg->freq_factors[i];
        inv_freq[i] = (float)f;
    }
}

void al_op_rope(float *x, int64_t n_tok, int n_head, int head_dim, const int32_t *pos, const al_rope_cfg *cfg,
                const float *inv_freq) {
    int half = cfg->n_dims / 2;
    for (int64_t t = 0; t < n_tok; t++) {
        for (int i = 0; i < half; i++) {
            float ang = (float)pos[t] * inv_freq[i];
            float c = cosf(ang), s = sinf(ang);
            for (int h = 0; h < n_head; h++) {
                float *v = x + (t * n_head + h) * head_dim;
                int a = cfg->mode == 1 ? 2 * i : i;
                int b = cfg->mode == 1 ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x1 * c + x0 * s;
            }
        }
    }
}
