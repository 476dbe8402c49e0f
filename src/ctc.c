/*
 * ctc.c -- Connectionist Temporal Classification (Graves et al. 2006): the
 * loss with its gradient, exactly as torch.nn.functional.ctc_loss defines
 * them, and decoding (best path, prefix beam search, beam search within a
 * lexicon).
 *
 * The loss works in log space in double: per sample the log-softmax of
 * every step, then alpha (forward) and beta (backward) over the extended
 * label sequence l' = (blank, l1, blank, l2, ..., blank) of L = 2S + 1
 * symbols, where a step may stay on a symbol, move to the next, or skip a
 * blank between two different labels.  The gradient with respect to the
 * logits is softmax - exp(logsumexp_{s: l'_s = k} (alpha + beta) - lp + nll)
 * (beta includes the step's own emission, hence the - lp).  Samples are
 * independent and run in parallel.
 */
#include "internal.h"
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

static inline double lse2(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* lp = log-softmax of each of `rows` rows of C logits, in double. */
static void log_softmax_rows(double *lp, const float *x, int64_t rows, int64_t C)
{
    for (int64_t t = 0; t < rows; t++) {
        const float *xt = x + t * C;
        double mx = xt[0], s = 0;
        for (int64_t c = 1; c < C; c++)
            mx = xt[c] > mx ? xt[c] : mx;
        for (int64_t c = 0; c < C; c++)
            s += exp((double)xt[c] - mx);
        const double lz = mx + log(s);
        for (int64_t c = 0; c < C; c++)
            lp[t * C + c] = (double)xt[c] - lz;
    }
}

/* Doubles of workspace per sample: softmax numerators or log-probabilities (T C), alpha (T L), beta (T L
 * in log space; two rows in the scaled recursion, which also keeps two numbers per step and each
 * symbol's label and whether it may be skipped), L = 2 S + 1. */
static inline int64_t per_sample(int64_t T, int64_t C, int64_t S)
{
    return T * C + 2 * T * (2 * S + 1) + 3 * (2 * S + 1) + 2 * T;
}

/* What each sample's part needs. */
typedef struct ctc_job {
    const float *x;          /* (N, T, C) */
    const int32_t *in_len, *tgt, *tgt_len;
    int64_t T, C, S;         /* S: the targets' padded length */
    int blank, zero_infinity, reduction;
    double *nll;             /* (N): each sample's loss */
    float *grad;             /* (N, T, C) or NULL */
    double *work;            /* per sample: lp (T C), alpha and beta (T L each) */
    int64_t work_per;
    int64_t N;
} ctc_job;

/* One sample in log space (lse2 per cell): slow, but exact wherever probabilities underflow double;
 * the scaled recursion below hands a sample over to it then. */
static void ctc_sample_log(const ctc_job *j, int64_t n)
{
    const int64_t T = j->T, C = j->C, Lmax = 2 * j->S + 1;
    const float *x = j->x + n * T * C;
    const int32_t *l = j->tgt + n * j->S;
    const int64_t Ti = j->in_len[n], Si = j->tgt_len[n], L = 2 * Si + 1;
    double *lp = j->work + n * j->work_per, *alpha = lp + T * C, *beta = alpha + T * Lmax;
    log_softmax_rows(lp, x, Ti, C); /* each valid step */
#define LAB(s) ((s) % 2 ? (int64_t)l[(s) / 2] : (int64_t)j->blank)
    /* alpha */
    for (int64_t s = 0; s < L; s++)
        alpha[s] = s < 2 ? lp[LAB(s)] : -INFINITY;
    for (int64_t t = 1; t < Ti; t++) {
        const double *prev = alpha + (t - 1) * Lmax;
        double *cur = alpha + t * Lmax;
        for (int64_t s = 0; s < L; s++) {
            double a = prev[s];
            if (s >= 1)
                a = lse2(a, prev[s - 1]);
            if (s >= 2 && LAB(s) != j->blank && LAB(s) != LAB(s - 2))
                a = lse2(a, prev[s - 2]);
            cur[s] = a == -INFINITY ? -INFINITY : a + lp[t * C + LAB(s)];
        }
    }
    const double *last = alpha + (Ti - 1) * Lmax;
    double ll = L >= 2 ? lse2(last[L - 1], last[L - 2]) : last[L - 1];
    double nll = -ll;
    int impossible = !isfinite(nll);
    if (impossible && j->zero_infinity)
        nll = 0.0;
    j->nll[n] = nll;
    if (!j->grad)
        return;
    float *g = j->grad + n * T * C;
    memset(g, 0, (size_t)(T * C) * sizeof *g);
    if (impossible)
        return; /* zero gradient: torch's is NaN without zero_infinity; ours never is */
    double scale = 1.0;
    if (j->reduction == HLR_REDUCTION_MEAN)
        scale = 1.0 / ((double)(Si > 0 ? Si : 1) * (double)j->N);
    /* beta */
    double *bl = beta + (Ti - 1) * Lmax;
    for (int64_t s = 0; s < L; s++)
        bl[s] = s >= L - 2 ? lp[(Ti - 1) * C + LAB(s)] : -INFINITY;
    for (int64_t t = Ti - 2; t >= 0; t--) {
        const double *next = beta + (t + 1) * Lmax;
        double *cur = beta + t * Lmax;
        for (int64_t s = 0; s < L; s++) {
            double v = next[s];
            if (s + 1 < L)
                v = lse2(v, next[s + 1]);
            if (s + 2 < L && LAB(s) != j->blank && LAB(s) != LAB(s + 2))
                v = lse2(v, next[s + 2]);
            cur[s] = v == -INFINITY ? -INFINITY : v + lp[t * C + LAB(s)];
        }
    }
    /* gradient: per step, the alpha-beta mass of each symbol */
    for (int64_t t = 0; t < Ti; t++) {
        const double *at = alpha + t * Lmax, *bt = beta + t * Lmax;
        float *gt = g + t * C;
        for (int64_t c = 0; c < C; c++)
            gt[c] = (float)(exp(lp[t * C + c]) * scale);
        for (int64_t s = 0; s < L; s++) {
            double ab = at[s] + bt[s];
            if (ab == -INFINITY)
                continue;
            int64_t k = LAB(s);
            gt[k] -= (float)(exp(ab - lp[t * C + k] + nll) * scale);
        }
    }
#undef LAB
}

/*
 * One sample by the scaled recursion (Rabiner's scaling, as Graves's thesis
 * describes it): in probability space, each step's alpha (and beta) divided
 * by its sum, the logarithms of those sums adding up to the likelihood.  The
 * inner loops are then sums and products, no exp or log per cell.  The
 * emissions are exp(x - max) per step (softmax numerators); beta here
 * leaves out the step's own emission, so that alpha_t(s) beta_t(s) is the
 * mass of the alignments passing through s at t, and the gradient of step t
 * is softmax - that mass (normalised per step) summed per label.  Returns 0,
 * or -1 when a probability underflowed double (extreme logits): the caller
 * then redoes the sample in log space.
 */
static int ctc_sample_scaled(const ctc_job *j, int64_t n)
{
    const int64_t T = j->T, C = j->C, Lmax = 2 * j->S + 1;
    const float *x = j->x + n * T * C;
    const int32_t *l = j->tgt + n * j->S;
    const int64_t Ti = j->in_len[n], Si = j->tgt_len[n], L = 2 * Si + 1;
    double *base = j->work + n * j->work_per, *alpha = base + T * C, *beta = alpha + T * Lmax;
    float *q = (float *)base;           /* (T, C) softmax numerators, in float */
    double *qsum = beta + 2 * Lmax;     /* per step: their sum */
    int32_t *lab = (int32_t *)(qsum + T), *skip = lab + Lmax; /* per symbol: its label; may alpha skip to it */
    /* the fewest steps an alignment needs: a step per label, and a blank between repeats */
    int64_t need = Si;
    for (int64_t s = 1; s < Si; s++)
        need += l[s] == l[s - 1];
    if (need > Ti) {
        j->nll[n] = j->zero_infinity ? 0.0 : INFINITY;
        if (j->grad) /* zero gradient: torch's is NaN without zero_infinity; ours never is */
            memset(j->grad + n * T * C, 0, (size_t)(T * C) * sizeof(float));
        return 0;
    }
    for (int64_t s = 0; s < L; s++) {
        lab[s] = s % 2 ? l[s / 2] : j->blank;
        skip[s] = s >= 2 && s % 2 && l[s / 2] != l[s / 2 - 1]; /* from s - 2: a label after another label */
    }
    hlrk_exp_shifted_rows(q, qsum, x, Ti, C);
    double ll = 0;
    for (int64_t t = 0; t < Ti; t++) {
        const float *qt = q + t * C;
        const double *prev = alpha + (t - 1) * Lmax;
        double *cur = alpha + t * Lmax, c = 0;
        if (t == 0) {
            for (int64_t s = 0; s < L; s++)
                c += cur[s] = s < 2 ? (double)qt[lab[s]] : 0.0;
        } else {
            for (int64_t s = 0; s < L; s++) {
                double a = prev[s];
                if (s >= 1)
                    a += prev[s - 1];
                if (skip[s])
                    a += prev[s - 2];
                c += cur[s] = a * (double)qt[lab[s]];
            }
        }
        if (!(c > DBL_MIN) || !isfinite(c))
            return -1;
        const double inv = 1.0 / c;
        for (int64_t s = 0; s < L; s++)
            cur[s] *= inv;
        ll += log(c / qsum[t]);
    }
    const double *last = alpha + (Ti - 1) * Lmax;
    const double end = L >= 2 ? last[L - 1] + last[L - 2] : last[L - 1];
    if (!(end > DBL_MIN))
        return -1;
    j->nll[n] = -(ll + log(end));
    if (!j->grad)
        return 0;
    float *g = j->grad + n * T * C;
    if (Ti < T)
        memset(g + Ti * C, 0, (size_t)((T - Ti) * C) * sizeof *g);
    double scale = 1.0;
    if (j->reduction == HLR_REDUCTION_MEAN)
        scale = 1.0 / ((double)(Si > 0 ? Si : 1) * (double)j->N);
    double *bcur = beta, *bnext = beta + Lmax;
    for (int64_t s = 0; s < L; s++)
        bcur[s] = s >= L - 2 ? 1.0 : 0.0;
    for (int64_t t = Ti - 1; t >= 0; t--) {
        const double *at = alpha + t * Lmax;
        const float *qt = q + t * C;
        double z = 0;
        for (int64_t s = 0; s < L; s++)
            z += at[s] * bcur[s];
        if (!(z > DBL_MIN))
            return -1;
        const double zi = scale / z;
        const float si = (float)(scale / qsum[t]);
        float *gt = g + t * C;
        for (int64_t c = 0; c < C; c++)
            gt[c] = qt[c] * si;
        for (int64_t s = 0; s < L; s++)
            gt[lab[s]] -= (float)(at[s] * bcur[s] * zi);
        if (t == 0)
            break;
        /* beta of step t - 1: through step t's emissions */
        double c = 0;
        for (int64_t s = 0; s < L; s++) {
            double v = bcur[s] * (double)qt[lab[s]];
            if (s + 1 < L)
                v += bcur[s + 1] * (double)qt[lab[s + 1]];
            if (s + 2 < L && skip[s + 2])
                v += bcur[s + 2] * (double)qt[lab[s + 2]];
            bnext[s] = v;
            c += v;
        }
        if (!(c > DBL_MIN) || !isfinite(c))
            return -1;
        const double inv = 1.0 / c;
        for (int64_t s = 0; s < L; s++)
            bnext[s] *= inv;
        double *tmp = bcur;
        bcur = bnext;
        bnext = tmp;
    }
    return 0;
}

static void ctc_part(void *ctx, int64_t b, int64_t e)
{
    const ctc_job *j = ctx;
    for (int64_t n = b; n < e; n++)
        if (ctc_sample_scaled(j, n) != 0)
            ctc_sample_log(j, n);
}

/* Run the loss over N samples with a workspace of hlr__ctc_work_doubles(); returns each sample's loss
 * (inside the workspace). */
static const double *ctc_run(const float *x, int64_t N, int64_t T, int64_t C, const int32_t *il, const int32_t *tg,
                             int64_t S, const int32_t *tl, int blank, int zero_infinity, hlr_reduction reduction,
                             double *work, float *grad)
{
    const int64_t per = per_sample(T, C, S);
    double *nll = work + N * per;
    ctc_job j = {x, il, tg, tl, T, C, S, blank, zero_infinity, (int)reduction, nll, grad, work, per, N};
    hlr__parallel_for(N, 1, ctc_part, &j);
    return nll;
}

hlr_status hlr_ctc_loss(const hlr_tensor *logits, const hlr_tensor *input_lengths, const hlr_tensor *targets,
                        const hlr_tensor *target_lengths, int blank, hlr_reduction reduction, int zero_infinity,
                        float *loss, hlr_tensor *grad)
{
    const char *fn = "hlr_ctc_loss";
    hlr_status st;
    if (!loss)
        return hlr__fail(HLR_EINVAL, "%s: loss is NULL", fn);
    if ((st = hlr__check_tensor(logits, HLR_F32, "hlr_ctc_loss: logits")) != HLR_OK ||
        (st = hlr__check_tensor(input_lengths, HLR_I32, "hlr_ctc_loss: input_lengths")) != HLR_OK ||
        (st = hlr__check_tensor(targets, HLR_I32, "hlr_ctc_loss: targets")) != HLR_OK ||
        (st = hlr__check_tensor(target_lengths, HLR_I32, "hlr_ctc_loss: target_lengths")) != HLR_OK)
        return st;
    if (logits->ndim != 3)
        return hlr__fail(HLR_ESHAPE, "%s: logits must be (N, T, C)", fn);
    const int64_t N = logits->shape[0], T = logits->shape[1], C = logits->shape[2];
    if (targets->ndim != 2 || targets->shape[0] != N)
        return hlr__fail(HLR_ESHAPE, "%s: targets must be (N, S) with N = %lld", fn, (long long)N);
    const int64_t S = targets->shape[1];
    if (input_lengths->ndim != 1 || input_lengths->shape[0] != N || target_lengths->ndim != 1 ||
        target_lengths->shape[0] != N)
        return hlr__fail(HLR_ESHAPE, "%s: input_lengths and target_lengths must hold N = %lld values", fn,
                         (long long)N);
    if (grad && ((st = hlr__check_tensor(grad, HLR_F32, "hlr_ctc_loss: grad")) != HLR_OK))
        return st;
    if (grad && (grad->ndim != 3 || grad->shape[0] != N || grad->shape[1] != T || grad->shape[2] != C))
        return hlr__fail(HLR_ESHAPE, "%s: grad must have the logits' shape (%lld, %lld, %lld)", fn, (long long)N,
                         (long long)T, (long long)C);
    if (blank < 0 || blank >= C)
        return hlr__fail(HLR_EINVAL, "%s: blank %d outside [0, %lld)", fn, blank, (long long)C);
    if ((unsigned)reduction > HLR_REDUCTION_MEAN)
        return hlr__fail(HLR_EINVAL, "%s: unknown reduction %d", fn, (int)reduction);
    if (T > (1 << 24) || S > (1 << 20))
        return hlr__fail(HLR_EINVAL, "%s: %lld steps and %lld target symbols are more than supported", fn,
                         (long long)T, (long long)S);
    const int32_t *il = input_lengths->data, *tl = target_lengths->data, *tg = targets->data;
    for (int64_t n = 0; n < N; n++) {
        if (il[n] < 1 || il[n] > T)
            return hlr__fail(HLR_EINVAL, "%s: input_lengths[%lld] = %d outside [1, %lld]", fn, (long long)n, il[n],
                             (long long)T);
        if (tl[n] < 0 || tl[n] > S)
            return hlr__fail(HLR_EINVAL, "%s: target_lengths[%lld] = %d outside [0, %lld]", fn, (long long)n, tl[n],
                             (long long)S);
        for (int64_t s = 0; s < tl[n]; s++)
            if (tg[n * S + s] < 0 || tg[n * S + s] >= C || tg[n * S + s] == blank)
                return hlr__fail(HLR_EINVAL, "%s: targets[%lld][%lld] = %d is not a label in [0, %lld) other than "
                                 "the blank %d", fn, (long long)n, (long long)s, tg[n * S + s], (long long)C, blank);
    }
    int64_t doubles;
    if (N == 0)
        return hlr__fail(HLR_ESHAPE, "%s: the batch is empty", fn);
    if (hlr__ctc_work_doubles(N, T, C, S, &doubles) != 0)
        return hlr__fail(HLR_ENOMEM, "%s: the workspace overflows", fn);
    double *work = hlr__alloc_or_fail((size_t)doubles, sizeof(double), fn);
    if (!work)
        return HLR_ENOMEM;
    const double *nll = ctc_run(logits->data, N, T, C, il, tg, S, tl, blank, zero_infinity != 0, reduction, work,
                                grad ? (float *)grad->data : NULL);
    double sum = 0.0;
    for (int64_t n = 0; n < N; n++) {
        if (reduction == HLR_REDUCTION_NONE)
            loss[n] = (float)nll[n];
        else
            sum += reduction == HLR_REDUCTION_MEAN ? nll[n] / (double)(tl[n] > 0 ? tl[n] : 1) : nll[n];
    }
    if (reduction == HLR_REDUCTION_SUM)
        *loss = (float)sum;
    else if (reduction == HLR_REDUCTION_MEAN)
        *loss = (float)(sum / (double)N);
    hlr__free(work);
    return HLR_OK;
}

int hlr__ctc_work_doubles(int64_t N, int64_t T, int64_t C, int64_t S, int64_t *doubles)
{
    int64_t per = 0, t2 = 0;
    if (S > (INT64_MAX >> 8) || T > (INT64_MAX >> 8) || hlr__mul_overflows(T, 2 * (2 * S + 1), &t2) ||
        hlr__mul_overflows(T, C, &per) || per > (INT64_MAX >> 2) - t2 - 2 * (2 * S + 1) - 2 * T ||
        hlr__mul_overflows(per_sample(T, C, S) + 2, N, doubles))
        return -1;
    return 0;
}

/* Each row's label count: the entries before its first negative one. */
static void target_lengths(const int32_t *targets, int64_t N, int64_t S, int32_t *tl)
{
    for (int64_t n = 0; n < N; n++) {
        int64_t k = 0;
        while (k < S && targets[n * S + k] >= 0)
            k++;
        tl[n] = (int32_t)k;
    }
}

double hlr__ctc_model_loss(const float *out, int64_t N, int64_t T, int64_t C, const int32_t *in_len,
                           const int32_t *targets, int64_t S, double *work, float *dy)
{
    int32_t *il = (int32_t *)(work + N * per_sample(T, C, S) + N), *tl = il + N; /* the last N doubles */
    if (!in_len) {
        for (int64_t n = 0; n < N; n++)
            il[n] = (int32_t)T;
        in_len = il;
    }
    target_lengths(targets, N, S, tl);
    const double *nll = ctc_run(out, N, T, C, in_len, targets, S, tl, 0, 1, HLR_REDUCTION_MEAN, work, dy);
    double sum = 0.0;
    for (int64_t n = 0; n < N; n++)
        sum += nll[n] / (double)(tl[n] > 0 ? tl[n] : 1);
    return sum / (double)N;
}

/* The Levenshtein distance with a row of m + 1 int64 given. */
static int64_t edit_distance_row(const int32_t *ref, int64_t n, const int32_t *hyp, int64_t m, int64_t *row)
{
    if (n == 0 || m == 0)
        return n + m;
    for (int64_t j = 0; j <= m; j++)
        row[j] = j;
    for (int64_t i = 1; i <= n; i++) {
        int64_t diag = row[0];
        row[0] = i;
        for (int64_t j = 1; j <= m; j++) {
            int64_t up = row[j], best = diag + (ref[i - 1] != hyp[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

/* Best path of (T, C) scores (blank 0): argmax per step, repeats merged, blanks dropped. */
static int64_t best_path(const float *x, int64_t T, int64_t C, int32_t *out)
{
    int64_t len = 0;
    int32_t prev = -1;
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C;
        int32_t k = 0;
        for (int32_t c = 1; c < (int32_t)C; c++)
            k = xt[c] > xt[k] ? c : k;
        if (k != 0 && k != prev)
            out[len++] = k;
        prev = k;
    }
    return len;
}

void hlr__ctc_score(const float *out, int64_t N, int64_t T, int64_t C, const int32_t *in_len, const int32_t *targets,
                    int64_t S, double *work, hlr__ctc_tally *tally)
{
    int32_t *hyp = (int32_t *)work;
    int64_t *row = (int64_t *)(work + (T + 1) / 2 + 1);
    for (int64_t n = 0; n < N; n++) {
        const int32_t *ref = targets + n * S;
        int64_t len = 0;
        while (len < S && ref[len] >= 0)
            len++;
        int64_t got = best_path(out + n * T * C, in_len ? in_len[n] : T, C, hyp);
        int64_t e = edit_distance_row(ref, len, hyp, got, row);
        tally->edits += e;
        tally->chars += len;
        tally->right += e == 0;
        tally->strings++;
    }
}

/* ---- lexicons: word lists as tries of labels ---- */

typedef struct trie_node {
    int32_t label;
    int32_t first_child, next_sibling; /* -1: none */
    int terminal;                      /* a word ends here */
} trie_node;

struct hlr_lexicon {
    trie_node *nodes;
    int32_t n, cap;
    int64_t words;
};

hlr_lexicon *hlr_lexicon_new(void)
{
    hlr_lexicon *x = hlr__alloc_or_fail(1, sizeof *x, "hlr_lexicon_new");
    if (!x)
        return NULL;
    x->nodes = hlr__alloc_or_fail(64, sizeof *x->nodes, "hlr_lexicon_new");
    if (!x->nodes) {
        hlr__free(x);
        return NULL;
    }
    x->cap = 64;
    x->n = 1;
    x->nodes[0] = (trie_node){.label = -1, .first_child = -1, .next_sibling = -1};
    return x;
}

void hlr_lexicon_free(hlr_lexicon *x)
{
    if (!x)
        return;
    hlr__free(x->nodes);
    hlr__free(x);
}

int64_t hlr_lexicon_size(const hlr_lexicon *x) { return x ? x->words : 0; }

static int32_t trie_child(const hlr_lexicon *x, int32_t node, int32_t label)
{
    for (int32_t c = x->nodes[node].first_child; c >= 0; c = x->nodes[c].next_sibling)
        if (x->nodes[c].label == label)
            return c;
    return -1;
}

hlr_status hlr_lexicon_add(hlr_lexicon *x, const int32_t *labels, int n)
{
    const char *fn = "hlr_lexicon_add";
    if (!x || (!labels && n > 0))
        return hlr__fail(HLR_EINVAL, "%s: %s is NULL", fn, x ? "labels" : "lexicon");
    if (n < 1 || n > 4096)
        return hlr__fail(HLR_EINVAL, "%s: a word of %d labels; expected 1 to 4096", fn, n);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0)
            return hlr__fail(HLR_EINVAL, "%s: label %d at %d is negative", fn, labels[i], i);
    if (x->n > INT32_MAX - n)
        return hlr__fail(HLR_ENOMEM, "%s: the lexicon is full", fn);
    if (x->n + n > x->cap) { /* room for the whole word first: a failed add changes nothing */
        int64_t cap = (int64_t)x->cap * 2 > x->n + n ? (int64_t)x->cap * 2 : x->n + n;
        cap = cap > INT32_MAX ? INT32_MAX : cap;
        trie_node *nodes = hlr__realloc(x->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return hlr__fail(HLR_ENOMEM, "%s: out of memory", fn);
        x->nodes = nodes;
        x->cap = (int32_t)cap;
    }
    int32_t node = 0;
    for (int i = 0; i < n; i++) {
        int32_t c = trie_child(x, node, labels[i]);
        if (c < 0) {
            c = x->n++;
            x->nodes[c] = (trie_node){.label = labels[i], .first_child = -1,
                                      .next_sibling = x->nodes[node].first_child};
            x->nodes[node].first_child = c;
        }
        node = c;
    }
    x->words += !x->nodes[node].terminal;
    x->nodes[node].terminal = 1;
    return HLR_OK;
}

/* ---- decoding ---- */

/* One prefix of the beam: its labels (in seq, its own stretch of T), probabilities of ending in a
 * blank and in its last label, its hash and trie node. */
typedef struct prefix {
    int32_t *seq;
    int len;
    double pb, pnb;
    uint64_t hash;
    int32_t node;
} prefix;

static double total(const prefix *p) { return lse2(p->pb, p->pnb); }

/* The labels' best alignment (Viterbi on the CTC topology) gives each label the steps it spans;
 * its confidence is the largest probability among them.  lp: (T, C) log-probabilities. */
static void label_confidence(const double *lp, int T, int C, int blank, const int32_t *l, int S, float *conf,
                             double *scratch, int32_t *back)
{
    const int L = 2 * S + 1;
    double *prev = scratch, *cur = scratch + L;
#define LB(s) ((s) % 2 ? l[(s) / 2] : blank)
    for (int s = 0; s < L; s++)
        prev[s] = s < 2 ? lp[LB(s)] : -INFINITY;
    for (int t = 1; t < T; t++) {
        for (int s = 0; s < L; s++) {
            double best = prev[s];
            int from = s;
            if (s >= 1 && prev[s - 1] > best)
                best = prev[s - 1], from = s - 1;
            if (s >= 2 && LB(s) != blank && LB(s) != LB(s - 2) && prev[s - 2] > best)
                best = prev[s - 2], from = s - 2;
            cur[s] = best + lp[(int64_t)t * C + LB(s)];
            back[(int64_t)t * L + s] = from;
        }
        double *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    int s = L >= 2 && prev[L - 2] > prev[L - 1] ? L - 2 : L - 1;
    for (int i = 0; i < S; i++)
        conf[i] = 0.0f;
    for (int t = T - 1; t >= 0; t--) {
        if (s % 2) {
            float p = (float)exp(lp[(int64_t)t * C + l[s / 2]]);
            conf[s / 2] = p > conf[s / 2] ? p : conf[s / 2];
        }
        if (t > 0)
            s = back[(int64_t)t * L + s];
    }
#undef LB
}

hlr_status hlr_ctc_decode(const float *logits, int T, int C, int blank, int beam_width, const hlr_lexicon *lexicon,
                          int32_t *labels, float *confidence, int cap, int *len, double *log_prob)
{
    const char *fn = "hlr_ctc_decode";
    if (!logits || !len || (!labels && cap > 0))
        return hlr__fail(HLR_EINVAL, "%s: NULL argument", fn);
    if (T < 1 || C < 2 || T > (1 << 20) || C > (1 << 20) || blank < 0 || blank >= C || cap < 0)
        return hlr__fail(HLR_EINVAL, "%s: need T >= 1, C >= 2, blank in [0, C) and cap >= 0 (got %d, %d, %d, %d)", fn,
                         T, C, blank, cap);
    if (beam_width < 0 || beam_width > 4096 || (lexicon && beam_width < 1))
        return hlr__fail(HLR_EINVAL, "%s: beam_width %d outside [0, 4096] (at least 1 with a lexicon)", fn,
                         beam_width);
    const int W = beam_width;
    /* log-softmax, and the workspaces: T C doubles; beams and candidates; the alignment */
    size_t cands = W ? (size_t)W * (size_t)C : 0;
    double *lp = hlr__alloc_or_fail((size_t)T * (size_t)C, sizeof *lp, fn);
    int32_t *best = hlr__alloc_or_fail((size_t)T + 1, sizeof *best, fn);
    prefix *beams = W ? hlr__alloc_or_fail(2 * (size_t)W, sizeof *beams, fn) : NULL;
    int32_t *seqs = W ? hlr__alloc_or_fail(2 * (size_t)W * ((size_t)T + 1), sizeof *seqs, fn) : NULL;
    prefix *cand = W ? hlr__alloc_or_fail(cands + (size_t)W, sizeof *cand, fn) : NULL;
    int32_t *cand_seq = W ? hlr__alloc_or_fail((cands + (size_t)W) * ((size_t)T + 1), sizeof *cand_seq, fn) : NULL;
    size_t slots = 16;
    while (W && slots < 2 * (cands + (size_t)W))
        slots *= 2;
    int32_t *table = W ? hlr__alloc_or_fail(slots, sizeof *table, fn) : NULL; /* candidate index + 1, 0: free */
    hlr_status st = HLR_OK;
    if (!lp || !best || (W && (!beams || !seqs || !cand || !cand_seq || !table))) {
        st = HLR_ENOMEM;
        goto done;
    }
    log_softmax_rows(lp, logits, T, C);
    int n = 0;
    double score = 0.0;
    if (W == 0) { /* best path */
        int prev = -1;
        for (int t = 0; t < T; t++) {
            const double *r = lp + (int64_t)t * C;
            int k = 0;
            for (int c = 1; c < C; c++)
                k = r[c] > r[k] ? c : k;
            score += r[k];
            if (k != blank && k != prev)
                best[n++] = k;
            prev = k;
        }
    } else { /* prefix beam search */
        const uint64_t P = 1000003u;
        int nb = 1;
        beams[0] = (prefix){.seq = seqs, .len = 0, .pb = 0.0, .pnb = -INFINITY, .hash = 0, .node = 0};
        for (int t = 0; t < T; t++) {
            const double *r = lp + (int64_t)t * C;
            int nc = 0;
            memset(table, 0, slots * sizeof *table);
            for (int i = 0; i < nb; i++) {
                const prefix *b = &beams[i];
                const int last = b->len ? b->seq[b->len - 1] : -1;
                for (int c = -1; c < C; c++) { /* -1: the same prefix (a blank, or the last label again) */
                    if (c == blank)
                        continue;
                    int32_t node = b->node;
                    if (c >= 0 && lexicon && (node = trie_child(lexicon, b->node, c)) < 0)
                        continue;
                    double pb = -INFINITY, pnb = -INFINITY;
                    if (c < 0) {
                        pb = total(b) + r[blank];
                        if (last >= 0)
                            pnb = b->pnb + r[last];
                    } else {
                        pnb = (c == last ? b->pb : total(b)) + r[c];
                    }
                    const uint64_t h = c < 0 ? b->hash : b->hash * P + (uint64_t)c + 1;
                    const int len_new = b->len + (c >= 0);
                    /* the same prefix reached another way: add to it (open addressing on the hash) */
                    int found = -1;
                    size_t slot = (size_t)((h ^ (h >> 29) ^ (uint64_t)len_new * 0x9E3779B97F4A7C15u) & (slots - 1));
                    for (; table[slot]; slot = (slot + 1) & (slots - 1)) {
                        const prefix *k = &cand[table[slot] - 1];
                        if (k->hash == h && k->len == len_new &&
                            !memcmp(k->seq, b->seq, (size_t)b->len * sizeof *b->seq) &&
                            (c < 0 || k->seq[b->len] == c)) {
                            found = table[slot] - 1;
                            break;
                        }
                    }
                    if (found < 0) {
                        table[slot] = nc + 1;
                        found = nc++;
                        int32_t *s = cand_seq + (size_t)found * ((size_t)T + 1);
                        memcpy(s, b->seq, (size_t)b->len * sizeof *s);
                        if (c >= 0)
                            s[b->len] = c;
                        cand[found] = (prefix){.seq = s, .len = len_new, .pb = -INFINITY, .pnb = -INFINITY,
                                               .hash = h, .node = node};
                    }
                    cand[found].pb = lse2(cand[found].pb, pb);
                    cand[found].pnb = lse2(cand[found].pnb, pnb);
                }
            }
            /* keep the W most likely (a partial selection: W is small) */
            int keep = nc < W ? nc : W;
            for (int k = 0; k < keep; k++) {
                int m = k;
                for (int q = k + 1; q < nc; q++)
                    if (total(&cand[q]) > total(&cand[m]))
                        m = q;
                prefix tmp = cand[k];
                cand[k] = cand[m];
                cand[m] = tmp;
            }
            /* copy them into the beam's own storage (candidates are rebuilt next step) */
            int32_t *store = seqs + (size_t)(t % 2 ? 0 : W) * ((size_t)T + 1);
            for (int k = 0; k < keep; k++) {
                int32_t *s = store + (size_t)k * ((size_t)T + 1);
                memcpy(s, cand[k].seq, (size_t)cand[k].len * sizeof *s);
                beams[k] = cand[k];
                beams[k].seq = s;
            }
            nb = keep;
        }
        int pick = -1;
        for (int i = 0; i < nb; i++)
            if ((!lexicon || lexicon->nodes[beams[i].node].terminal) &&
                (pick < 0 || total(&beams[i]) > total(&beams[pick])))
                pick = i;
        if (pick < 0) {
            st = hlr__fail(HLR_ENOTFOUND, "%s: no word of the lexicon fits these %d steps within a beam of %d", fn, T,
                           W);
            goto done;
        }
        n = beams[pick].len;
        memcpy(best, beams[pick].seq, (size_t)n * sizeof *best);
        score = total(&beams[pick]);
    }
    *len = n;
    if (log_prob)
        *log_prob = score;
    if (n > 0 && cap > 0)
        memcpy(labels, best, (size_t)(n < cap ? n : cap) * sizeof *labels);
    if (confidence && n > 0) {
        const int L = 2 * n + 1;
        double *scratch = hlr__alloc_or_fail(2 * (size_t)L, sizeof *scratch, fn);
        int32_t *back = hlr__alloc_or_fail((size_t)T * (size_t)L, sizeof *back, fn);
        float *conf = hlr__alloc_or_fail((size_t)n, sizeof *conf, fn);
        if (!scratch || !back || !conf) {
            st = HLR_ENOMEM;
        } else {
            label_confidence(lp, T, C, blank, best, n, conf, scratch, back);
            if (cap > 0)
                memcpy(confidence, conf, (size_t)(n < cap ? n : cap) * sizeof *confidence);
        }
        hlr__free(scratch);
        hlr__free(back);
        hlr__free(conf);
    }
    if (st == HLR_OK && n > cap)
        st = hlr__fail(HLR_ESHAPE, "%s: the result has %d labels, more than cap (%d): the first %d were written", fn, n,
                       cap, cap);
done:
    hlr__free(lp);
    hlr__free(best);
    hlr__free(beams);
    hlr__free(seqs);
    hlr__free(cand);
    hlr__free(cand_seq);
    hlr__free(table);
    return st;
}

/* ---- edit distance, for character and word error rates ---- */

int64_t hlr_edit_distance(const int32_t *ref, int64_t n, const int32_t *hyp, int64_t m)
{
    const char *fn = "hlr_edit_distance";
    if (n < 0 || m < 0 || (n > 0 && !ref) || (m > 0 && !hyp)) {
        hlr__fail(HLR_EINVAL, "%s: NULL sequence or negative length", fn);
        return -1;
    }
    if (n == 0 || m == 0)
        return n + m;
    int64_t *row = hlr__alloc_or_fail((size_t)m + 1, sizeof *row, fn);
    if (!row)
        return -1;
    int64_t d = edit_distance_row(ref, n, hyp, m, row);
    hlr__free(row);
    return d;
}
