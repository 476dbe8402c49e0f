/*
 * test_ctc.c -- CTC (issue 17): the loss and its gradient against
 * torch.nn.functional.ctc_loss (fixtures from tests/fixtures/gen_ctc_ref.py),
 * warp-ctc's analytic two-step case, finite differences, the refusals; and
 * decoding: best path by hand, prefix beam search against brute-force
 * enumeration of every path, width 1 against best path, and a lexicon that
 * only ever yields its words.
 */
#include "testutil.h"

#include "fixtures/ctc_ref.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

Suite *suite_ctc(void);

static hlr_tensor *i32(int ndim, const int64_t *shape, const int32_t *v)
{
    hlr_tensor *t = hlr_tensor_from(HLR_I32, ndim, shape, v);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(test_ctc_matches_torch)
{
    const ctc_ref_case *rc = &ctc_ref_cases[_i];
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, (int64_t[]){rc->N, rc->T, rc->C}, rc->x);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 3, (int64_t[]){rc->N, rc->T, rc->C});
    hlr_tensor *il = i32(1, (int64_t[]){rc->N}, rc->input_lengths), *tl = i32(1, (int64_t[]){rc->N}, rc->target_lengths);
    hlr_tensor *tg = i32(2, (int64_t[]){rc->N, rc->S}, rc->targets);
    float loss[16];
    ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, rc->blank, (hlr_reduction)rc->reduction, rc->zero_infinity, loss, g));
    int nl = rc->reduction == HLR_REDUCTION_NONE ? rc->N : 1;
    for (int i = 0; i < nl; i++) {
        if (isinf(rc->loss[i]))
            ck_assert_msg(isinf(loss[i]) && loss[i] > 0, "%s: loss[%d] = %g, torch inf", rc->name, i, (double)loss[i]);
        else
            expect_torch_close(rc->name, "loss", loss + i, rc->loss + i, 1);
    }
    expect_torch_close(rc->name, "grad", hlr_tensor_f32(g), rc->grad, (int64_t)rc->N * rc->T * rc->C);
    /* without grad the same loss */
    float again[16];
    ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, rc->blank, (hlr_reduction)rc->reduction, rc->zero_infinity, again, NULL));
    ck_assert_mem_eq(again, loss, (size_t)nl * sizeof *loss);
    hlr_tensor_free(x);
    hlr_tensor_free(g);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_tensor_free(tg);
}
END_TEST

/* warp-ctc's small test: two steps, labels (1, 2), so one alignment: p = y0(1) y1(2). */
START_TEST(test_ctc_two_steps_is_analytic)
{
    const float a[10] = {0.1f, 0.6f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.6f, 0.1f, 0.1f};
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, (int64_t[]){1, 2, 5}, a);
    hlr_tensor *il = i32(1, (int64_t[]){1}, (int32_t[]){2}), *tl = i32(1, (int64_t[]){1}, (int32_t[]){2});
    hlr_tensor *tg = i32(2, (int64_t[]){1, 2}, (int32_t[]){1, 2});
    float loss;
    ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_SUM, 0, &loss, NULL));
    double z = 4 * exp(0.1) + exp(0.6), y = exp(0.6) / z;
    ck_assert_close(loss, -2 * log(y), 1e-6, 0);
    hlr_tensor_free(x);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_tensor_free(tg);
}
END_TEST

START_TEST(test_ctc_survives_probabilities_below_double_range)
{
    /* Class 2, never a label, outscores the others by 800 nats: their probabilities (e^-800) underflow
     * double, so the scaled recursion hands the sample to the log-space one.  Target [1] in 2 steps:
     * paths 11, 01 and 10, each e^-1600, so the loss is 1600 - ln 3; at step 0 label 1 carries 2/3 of
     * them, the blank 1/3. */
    const float x[6] = {0, 0, 800, 0, 0, 800};
    hlr_tensor *lg = hlr_tensor_from(HLR_F32, 3, (int64_t[]){1, 2, 3}, x);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 2, 3});
    hlr_tensor *il = i32(1, (int64_t[]){1}, (int32_t[]){2}), *tl = i32(1, (int64_t[]){1}, (int32_t[]){1});
    hlr_tensor *tg = i32(2, (int64_t[]){1, 1}, (int32_t[]){1});
    float loss;
    ck_assert_ok(hlr_ctc_loss(lg, il, tg, tl, 0, HLR_REDUCTION_SUM, 0, &loss, g));
    ck_assert_close(loss, 1600.0 - log(3.0), 1e-6, 1e-3);
    const float *d = hlr_tensor_f32(g);
    ck_assert_close(d[0], -1.0 / 3.0, 1e-5, 1e-6);
    ck_assert_close(d[1], -2.0 / 3.0, 1e-5, 1e-6);
    ck_assert_close(d[2], 1.0, 1e-5, 1e-6);
    hlr_tensor_free(lg);
    hlr_tensor_free(g);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_tensor_free(tg);
}
END_TEST

START_TEST(test_ctc_gradient_matches_finite_differences)
{
    enum { N = 2, T = 6, C = 4, S = 3 };
    float xv[N * T * C];
    test_fill(xv, N * T * C, 21, -2, 2);
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 3, (int64_t[]){N, T, C}, xv);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 3, (int64_t[]){N, T, C});
    hlr_tensor *il = i32(1, (int64_t[]){N}, (int32_t[]){6, 5}), *tl = i32(1, (int64_t[]){N}, (int32_t[]){3, 2});
    hlr_tensor *tg = i32(2, (int64_t[]){N, S}, (int32_t[]){1, 2, 2, 3, 1, 0});
    float loss;
    ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, g));
    float *xd = hlr_tensor_f32(x);
    for (int k = 0; k < N * T * C; k++) {
        const float keep = xd[k], h = 1e-2f;
        float up, down;
        xd[k] = keep + h;
        ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &up, NULL));
        xd[k] = keep - h;
        ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &down, NULL));
        xd[k] = keep;
        double fd = ((double)up - down) / (2 * h);
        ck_assert_msg(fabs(fd - hlr_tensor_f32(g)[k]) < 2e-3 + 2e-2 * fabs(fd), "d/dx[%d]: %g vs %g", k, fd,
                      (double)hlr_tensor_f32(g)[k]);
    }
    /* past sample 1's input length the gradient is zero */
    for (int c = 0; c < C; c++)
        ck_assert(hlr_tensor_f32(g)[(1 * T + 5) * C + c] == 0.0f);
    hlr_tensor_free(x);
    hlr_tensor_free(g);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_tensor_free(tg);
}
END_TEST

START_TEST(test_ctc_refusals)
{
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 4, 3});
    hlr_tensor *il = i32(1, (int64_t[]){1}, (int32_t[]){4}), *tl = i32(1, (int64_t[]){1}, (int32_t[]){2});
    hlr_tensor *tg = i32(2, (int64_t[]){1, 2}, (int32_t[]){1, 2});
    float loss;
    ck_assert_ok(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL));
    ck_assert_status(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_ctc_loss(NULL, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    ck_assert_status(hlr_ctc_loss(x, il, tg, tl, 3, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("blank");
    ck_assert_status(hlr_ctc_loss(x, il, tg, tl, 1, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL); /* label = blank */
    ck_assert_status(hlr_ctc_loss(x, il, tg, tl, 0, (hlr_reduction)7, 0, &loss, NULL), HLR_EINVAL);
    hlr_tensor *bad_il = i32(1, (int64_t[]){1}, (int32_t[]){5}), *bad_tl = i32(1, (int64_t[]){1}, (int32_t[]){3});
    ck_assert_status(hlr_ctc_loss(x, bad_il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    ck_assert_error_mentions("input_lengths[0] = 5");
    ck_assert_status(hlr_ctc_loss(x, il, tg, bad_tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    hlr_tensor *big = i32(2, (int64_t[]){1, 2}, (int32_t[]){1, 3});
    ck_assert_status(hlr_ctc_loss(x, il, big, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    hlr_tensor *g = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, 4, 4});
    ck_assert_status(hlr_ctc_loss(x, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, g), HLR_ESHAPE);
    ck_assert_status(hlr_ctc_loss(x, tl, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_OK); /* length 2 fits */
    hlr_tensor *x2 = hlr_tensor_new(HLR_F32, 2, (int64_t[]){4, 3});
    ck_assert_status(hlr_ctc_loss(x2, il, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_ESHAPE);
    hlr_tensor *fl = hlr_tensor_new(HLR_F32, 1, (int64_t[]){1});
    ck_assert_status(hlr_ctc_loss(x, fl, tg, tl, 0, HLR_REDUCTION_MEAN, 0, &loss, NULL), HLR_EINVAL);
    hlr_tensor_free(fl);
    hlr_tensor_free(x2);
    hlr_tensor_free(g);
    hlr_tensor_free(big);
    hlr_tensor_free(bad_il);
    hlr_tensor_free(bad_tl);
    hlr_tensor_free(x);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_tensor_free(tg);
}
END_TEST

/* ---- decoding ---- */

START_TEST(test_best_path_by_hand)
{
    /* steps' argmax: 1 1 0 1 2 2 0 -> "1 1 2" (a blank separates the two 1s) */
    const int argmax[7] = {1, 1, 0, 1, 2, 2, 0};
    float x[7 * 3];
    for (int t = 0; t < 7; t++)
        for (int c = 0; c < 3; c++)
            x[t * 3 + c] = c == argmax[t] ? 2.0f : 0.0f;
    int32_t out[8];
    float conf[8];
    int n;
    double lp;
    ck_assert_ok(hlr_ctc_decode(x, 7, 3, 0, 0, NULL, out, conf, 8, &n, &lp));
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 1);
    ck_assert_int_eq(out[2], 2);
    const double p = exp(2.0) / (exp(2.0) + 2);
    for (int i = 0; i < 3; i++)
        ck_assert_close(conf[i], p, 1e-6, 0);
    ck_assert_close(lp, 7 * log(p), 1e-9, 0);
    /* cap: the first labels and HLR_ESHAPE */
    ck_assert_status(hlr_ctc_decode(x, 7, 3, 0, 0, NULL, out, NULL, 2, &n, NULL), HLR_ESHAPE);
    ck_assert_int_eq(n, 3);
    ck_assert_status(hlr_ctc_decode(x, 7, 3, 3, 0, NULL, out, NULL, 8, &n, NULL), HLR_EINVAL);
    ck_assert_status(hlr_ctc_decode(x, 7, 3, 0, -1, NULL, out, NULL, 8, &n, NULL), HLR_EINVAL);
    ck_assert_status(hlr_ctc_decode(NULL, 7, 3, 0, 0, NULL, out, NULL, 8, &n, NULL), HLR_EINVAL);
}
END_TEST

/* Every path of T steps over C symbols, collapsed: the most likely label sequence and its probability. */
static double brute_force(const float *x, int T, int C, int blank, int32_t *best, int *best_n)
{
    double lp[6 * 4];
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY, s = 0;
        for (int c = 0; c < C; c++)
            mx = x[t * C + c] > mx ? x[t * C + c] : mx;
        for (int c = 0; c < C; c++)
            s += exp(x[t * C + c] - mx);
        for (int c = 0; c < C; c++)
            lp[t * C + c] = x[t * C + c] - mx - log(s);
    }
    /* sequences as base-C numbers with their length; at most C^T of them */
    enum { MAXSEQ = 4096 };
    static int32_t seqs[MAXSEQ][6];
    static int lens[MAXSEQ];
    static double probs[MAXSEQ];
    int nseq = 0;
    int paths = 1;
    for (int t = 0; t < T; t++)
        paths *= C;
    for (int p = 0; p < paths; p++) {
        int q = p, prev = -1, n = 0;
        int32_t s[6];
        double lpp = 0;
        for (int t = 0; t < T; t++) {
            int k = q % C;
            q /= C;
            lpp += lp[t * C + k];
            if (k != blank && k != prev)
                s[n++] = k;
            prev = k;
        }
        int f = -1;
        for (int i = 0; i < nseq && f < 0; i++)
            if (lens[i] == n && !memcmp(seqs[i], s, (size_t)n * sizeof *s))
                f = i;
        if (f < 0) {
            f = nseq++;
            lens[f] = n;
            memcpy(seqs[f], s, (size_t)n * sizeof *s);
            probs[f] = 0;
        }
        probs[f] += exp(lpp);
    }
    int b = 0;
    for (int i = 1; i < nseq; i++)
        b = probs[i] > probs[b] ? i : b;
    *best_n = lens[b];
    memcpy(best, seqs[b], (size_t)lens[b] * sizeof *best);
    return probs[b];
}

START_TEST(test_beam_search_finds_the_most_likely_sequence)
{
    enum { T = 5, C = 4 };
    unsigned long long seed = 5;
    for (int trial = 0; trial < 40; trial++) {
        float x[T * C];
        for (int k = 0; k < T * C; k++)
            x[k] = 3 * test_rand(&seed);
        int32_t want[T], got[T];
        int wn, gn;
        double p = brute_force(x, T, C, trial % C, want, &wn), lp;
        ck_assert_ok(hlr_ctc_decode(x, T, C, trial % C, 64, NULL, got, NULL, T, &gn, &lp));
        ck_assert_msg(gn == wn && !memcmp(got, want, (size_t)wn * sizeof *got), "trial %d: beam and brute force differ",
                      trial);
        ck_assert_close(exp(lp), p, 1e-9, 0);
    }
}
END_TEST

START_TEST(test_beam_of_one_agrees_with_best_path_when_steps_are_decided)
{
    enum { T = 30, C = 6 };
    unsigned long long seed = 8;
    for (int trial = 0; trial < 50; trial++) {
        float x[T * C];
        for (int t = 0; t < T; t++) {
            int win = (int)(test_rand(&seed) * C);
            for (int c = 0; c < C; c++)
                x[t * C + c] = test_rand(&seed) + (c == win ? 3.0f : 0.0f); /* the winner has > half */
        }
        int32_t a[T], b[T];
        int na, nb;
        ck_assert_ok(hlr_ctc_decode(x, T, C, 0, 0, NULL, a, NULL, T, &na, NULL));
        ck_assert_ok(hlr_ctc_decode(x, T, C, 0, 1, NULL, b, NULL, T, &nb, NULL));
        ck_assert_msg(na == nb && !memcmp(a, b, (size_t)na * sizeof *a), "trial %d", trial);
    }
}
END_TEST

START_TEST(test_lexicon_decoding_yields_only_its_words)
{
    hlr_lexicon *lex = hlr_lexicon_new();
    const int32_t words[4][4] = {{1, 2, 3}, {1, 2}, {3, 3, 1}, {2}};
    const int lens[4] = {3, 2, 3, 1};
    for (int w = 0; w < 4; w++)
        ck_assert_ok(hlr_lexicon_add(lex, words[w], lens[w]));
    ck_assert_ok(hlr_lexicon_add(lex, words[0], 3)); /* again: still 4 words */
    ck_assert_int_eq(hlr_lexicon_size(lex), 4);
    ck_assert_status(hlr_lexicon_add(lex, words[0], 0), HLR_EINVAL);
    ck_assert_status(hlr_lexicon_add(lex, (int32_t[]){-1}, 1), HLR_EINVAL);
    enum { T = 12, C = 4 };
    unsigned long long seed = 3;
    for (int trial = 0; trial < 60; trial++) {
        float x[T * C];
        for (int k = 0; k < T * C; k++)
            x[k] = 4 * test_rand(&seed);
        int32_t out[T];
        float conf[T];
        int n;
        ck_assert_ok(hlr_ctc_decode(x, T, C, 0, 8, lex, out, conf, T, &n, NULL));
        int listed = 0;
        for (int w = 0; w < 4; w++)
            listed |= n == lens[w] && !memcmp(out, words[w], (size_t)n * sizeof *out);
        ck_assert_msg(listed, "trial %d: decoded a word that is not in the lexicon", trial);
        for (int i = 0; i < n; i++)
            ck_assert_msg(conf[i] > 0.0f && conf[i] <= 1.0f, "confidence %g", (double)conf[i]);
    }
    /* a word too long for the steps: nothing fits */
    hlr_lexicon *longer = hlr_lexicon_new();
    ck_assert_ok(hlr_lexicon_add(longer, (int32_t[]){1, 1, 1}, 3));
    float two[2 * C] = {0};
    int32_t out[4];
    int n;
    ck_assert_status(hlr_ctc_decode(two, 2, C, 0, 4, longer, out, NULL, 4, &n, NULL), HLR_ENOTFOUND);
    ck_assert_status(hlr_ctc_decode(two, 2, C, 0, 0, longer, out, NULL, 4, &n, NULL), HLR_EINVAL);
    hlr_lexicon_free(longer);
    hlr_lexicon_free(lex);
    hlr_lexicon_free(NULL);
}
END_TEST

START_TEST(test_edit_distance)
{
    const int32_t kitten[] = {'k', 'i', 't', 't', 'e', 'n'}, sitting[] = {'s', 'i', 't', 't', 'i', 'n', 'g'};
    ck_assert_int_eq(hlr_edit_distance(kitten, 6, sitting, 7), 3);
    ck_assert_int_eq(hlr_edit_distance(sitting, 7, kitten, 6), 3);
    ck_assert_int_eq(hlr_edit_distance(kitten, 6, kitten, 6), 0);
    ck_assert_int_eq(hlr_edit_distance(kitten, 6, NULL, 0), 6);
    ck_assert_int_eq(hlr_edit_distance(NULL, 0, sitting, 7), 7);
    ck_assert_int_eq(hlr_edit_distance(kitten, 2, kitten + 4, 2), 2);
    ck_assert_int_eq(hlr_edit_distance(NULL, 3, kitten, 6), -1);
    ck_assert_int_eq(hlr_last_status(), HLR_EINVAL);
    ck_assert_int_eq(hlr_edit_distance(kitten, -1, kitten, 6), -1);
}
END_TEST

/* ---- a CRNN trained with the CTC loss in a hand-written loop ---- */

enum { CR_H = 8, CR_MAXLEN = 3, CR_W = 4 * CR_MAXLEN, CR_CLASSES = 4 };

/* A string of 1..3 labels in 1..3 drawn as bars: label k is a bar on rows 2k-1..2k of a 4-column
 * cell (two columns of ink, two of gap); the image is as wide as the longest string. */
static int draw_string(unsigned long long *seed, float *img, int32_t *labels)
{
    int n = 1 + (int)(test_rand(seed) * CR_MAXLEN);
    memset(img, 0, CR_H * CR_W * sizeof *img);
    for (int i = 0; i < n; i++) {
        labels[i] = 1 + (int)(test_rand(seed) * (CR_CLASSES - 1));
        for (int r = 2 * labels[i] - 1; r <= 2 * labels[i]; r++)
            for (int c = 4 * i; c < 4 * i + 2; c++)
                img[r * CR_W + c] = 0.6f + 0.4f * test_rand(seed);
    }
    return n;
}

static hlr_model *crnn(void)
{
    hlr_model *m = hlr_model_new(11);
    ck_assert_ok(hlr_model_add(m, hlr_feature_map_columns()));                                   /* (12, 8) */
    ck_assert_ok(hlr_model_add(m, hlr_gru(CR_H, 16, 1, HLR_RETURN_SEQUENCES | HLR_BIDIRECTIONAL, 0.0f))); /* (12, 32) */
    ck_assert_ok(hlr_model_add(m, hlr_dense(32, CR_CLASSES, 1)));                                /* (12, 4) */
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, CR_H, CR_W}));
    return m;
}

START_TEST(test_a_crnn_learns_to_read_strings_with_ctc)
{
    enum { B = 16, STEPS = 300, TEST = 100 };
    hlr_model *m = crnn();
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){B, 1, CR_H, CR_W});
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, CR_W, CR_CLASSES});
    hlr_tensor *dy = hlr_tensor_new(HLR_F32, 3, (int64_t[]){B, CR_W, CR_CLASSES});
    hlr_tensor *tg = hlr_tensor_new(HLR_I32, 2, (int64_t[]){B, CR_MAXLEN});
    hlr_tensor *tl = hlr_tensor_new(HLR_I32, 1, (int64_t[]){B}), *il = hlr_tensor_new(HLR_I32, 1, (int64_t[]){B});
    unsigned long long seed = 1;
    float first = 0, loss = 0;
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < B; i++) {
            hlr_tensor_i32(tl)[i] = draw_string(&seed, hlr_tensor_f32(x) + i * CR_H * CR_W,
                                                hlr_tensor_i32(tg) + i * CR_MAXLEN);
            hlr_tensor_i32(il)[i] = CR_W;
        }
        ck_assert_ok(hlr_model_forward(m, x, y, 1));
        ck_assert_ok(hlr_ctc_loss(y, il, tg, tl, 0, HLR_REDUCTION_MEAN, 1, &loss, dy));
        ck_assert_ok(hlr_model_backward(m, dy, NULL));
        ck_assert_ok(hlr_optimizer_step(o, m));
        if (step == 0)
            first = loss;
    }
    ck_assert_msg(loss < 0.2f * first, "the CTC loss went from %g to %g", (double)first, (double)loss);
    /* read new strings: greedy decoding, whole-string accuracy */
    int right = 0;
    hlr_tensor *one = hlr_tensor_new(HLR_F32, 4, (int64_t[]){1, 1, CR_H, CR_W});
    hlr_tensor *out = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, CR_W, CR_CLASSES});
    for (int k = 0; k < TEST; k++) {
        int32_t want[CR_MAXLEN], got[CR_W];
        int n = draw_string(&seed, hlr_tensor_f32(one), want), len;
        ck_assert_ok(hlr_model_forward(m, one, out, 0));
        ck_assert_ok(hlr_ctc_decode(hlr_tensor_f32(out), CR_W, CR_CLASSES, 0, 0, NULL, got, NULL, CR_W, &len, NULL));
        right += len == n && !memcmp(got, want, (size_t)n * sizeof *got);
    }
    ck_assert_msg(right >= 95, "%d of %d strings read right", right, TEST);
    /* a model file keeps it: the same logits, so the same readings */
    void *buf = NULL;
    size_t size = 0;
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &size));
    hlr_model *back = hlr_model_load_buffer(buf, size, NULL);
    ck_assert_ptr_nonnull(back);
    hlr_tensor *out2 = hlr_tensor_new(HLR_F32, 3, (int64_t[]){1, CR_W, CR_CLASSES});
    ck_assert_ok(hlr_model_forward(m, one, out, 0));
    ck_assert_ok(hlr_model_forward(back, one, out2, 0));
    ck_assert_mem_eq(hlr_tensor_f32(out), hlr_tensor_f32(out2), CR_W * CR_CLASSES * sizeof(float));
    hlr_buffer_free(buf);
    hlr_model_free(back);
    hlr_tensor_free(out2);
    hlr_tensor_free(one);
    hlr_tensor_free(out);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(dy);
    hlr_tensor_free(tg);
    hlr_tensor_free(tl);
    hlr_tensor_free(il);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* ---- the CTC loss in the model: sequence data sets, fit, evaluate, lengths through convolutions ---- */

enum { SQ_H = 8, SQ_MAXLEN = 5, SQ_W = 4 * SQ_MAXLEN, SQ_CLASSES = 4 };

/* n strings of 1..SQ_MAXLEN labels, drawn as test_ctc's bars, each padded on the right to SQ_W: the
 * images, their widths (four columns a label) and their targets (-1 padded). */
static hlr_dataset *sequence_set(int64_t n, unsigned long long seed)
{
    float *x = calloc((size_t)n * SQ_H * SQ_W, sizeof *x);
    int32_t *widths = malloc((size_t)n * sizeof *widths), *targets = malloc((size_t)n * SQ_MAXLEN * sizeof *targets);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++) {
        float *img = x + i * SQ_H * SQ_W;
        int32_t *t = targets + i * SQ_MAXLEN;
        int len = 1 + (int)(test_rand(&seed) * SQ_MAXLEN);
        for (int k = 0; k < SQ_MAXLEN; k++)
            t[k] = k < len ? 1 + (int)(test_rand(&seed) * (SQ_CLASSES - 1)) : -1;
        for (int k = 0; k < len; k++)
            for (int r = 2 * t[k] - 1; r <= 2 * t[k]; r++)
                for (int c = 4 * k; c < 4 * k + 2; c++)
                    img[r * SQ_W + c] = 0.6f + 0.4f * test_rand(&seed);
        widths[i] = 4 * len;
    }
    hlr_dataset *d = hlr_dataset_from_sequences(3, (int64_t[]){1, SQ_H, SQ_W}, n, x, widths, targets, SQ_MAXLEN,
                                                SQ_CLASSES);
    ck_assert_ptr_nonnull(d);
    free(x);
    free(widths);
    free(targets);
    return d;
}

/* conv (1 -> 4) - ReLU - 2x2 max pooling - columns - bidirectional GRU of 16 - dense: (10, 4). */
static hlr_model *sequence_model(void)
{
    hlr_model *m = hlr_model_new(5);
    ck_assert_ok(hlr_model_add(m, hlr_conv2d(1, 4, &(hlr_conv2d_options){.kernel = 3, .padding = 1})));
    ck_assert_ok(hlr_model_add(m, hlr_relu()));
    ck_assert_ok(hlr_model_add(m, hlr_maxpool2d(2, 2, 0)));
    ck_assert_ok(hlr_model_add(m, hlr_feature_map_columns()));
    ck_assert_ok(hlr_model_add(m, hlr_gru(4 * SQ_H / 2, 16, 1, HLR_RETURN_SEQUENCES | HLR_BIDIRECTIONAL, 0.0f)));
    ck_assert_ok(hlr_model_add(m, hlr_dense(32, SQ_CLASSES, 1)));
    ck_assert_ok(hlr_model_set_loss(m, HLR_LOSS_CTC, 0.0f));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, SQ_H, SQ_W}));
    return m;
}

/* Widths go through a rectangular pooling's width alone: 2 x 1 keeps them, a 1 x 3 window with stride
 * 1 x 2 and padding 0 x 1 maps W to (W - 1) / 2 + 1 (its height's 1, 1, 0 would keep them). */
START_TEST(test_rectangular_poolings_map_widths_by_their_width)
{
    hlr_model *m = hlr_model_new(5);
    ck_assert_ok(hlr_model_add(m, hlr_conv2d(1, 2, &(hlr_conv2d_options){.kernel = 3, .padding = 1})));
    ck_assert_ok(hlr_model_add(m, hlr_maxpool2d_hw(2, 1, 0, 0, 0, 0)));
    ck_assert_ok(hlr_model_add(m, hlr_maxpool2d_hw(1, 3, 1, 2, 0, 1)));
    ck_assert_ok(hlr_model_add(m, hlr_feature_map_columns()));
    ck_assert_ok(hlr_model_add(m, hlr_gru(2 * 4, 3, 1, HLR_RETURN_SEQUENCES, 0.0f)));
    ck_assert_ok(hlr_model_build(m, 3, (int64_t[]){1, 8, 20}));
    int64_t shape[HLR_MAX_DIMS];
    int nd;
    ck_assert_ok(hlr_model_output_shape(m, &nd, shape));
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(shape[0], 10);
    int32_t widths[4] = {1, 4, 9, 20}, steps[4];
    ck_assert_ok(hlr_model_set_lengths(m, widths, 4));
    ck_assert_ok(hlr_model_output_lengths(m, steps, 4));
    ck_assert_int_eq(steps[0], 1);
    ck_assert_int_eq(steps[1], 2);
    ck_assert_int_eq(steps[2], 5);
    ck_assert_int_eq(steps[3], 10);
    hlr_model_free(m);
}
END_TEST

static int epochs_seen;
static double last_val_cer;
static int note_epoch(const hlr_epoch_stats *s, void *user)
{
    (void)user;
    epochs_seen++;
    last_val_cer = s->val_cer;
    ck_assert(s->val_accuracy >= 0.0 && s->val_accuracy <= 1.0);
    return 0;
}

START_TEST(test_fit_trains_a_ctc_model_on_a_sequence_data_set)
{
    hlr_dataset *train = sequence_set(768, 3), *val = sequence_set(200, 4);
    hlr_model *m = sequence_model();
    /* each image's width reaches the recurrent layer and the loss: 4 L pixels -> 2 L columns */
    int32_t widths[3] = {4, 12, 20}, steps[3];
    ck_assert_ok(hlr_model_set_lengths(m, widths, 3));
    ck_assert_ok(hlr_model_output_lengths(m, steps, 3));
    ck_assert_int_eq(steps[0], 2);
    ck_assert_int_eq(steps[1], 6);
    ck_assert_int_eq(steps[2], 10);
    ck_assert_status(hlr_model_output_lengths(m, steps, 2), HLR_ESHAPE);
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    ck_assert_status(hlr_model_output_lengths(m, steps, 3), HLR_ESTATE);

    hlr_metrics before, after;
    ck_assert_ok(hlr_model_evaluate(m, val, 64, 1, &before, NULL));
    hlr_optimizer *o = hlr_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.epochs = 12;
    fo.batch_size = 32;
    fo.validation_data = val;
    fo.on_epoch = note_epoch;
    epochs_seen = 0;
    ck_assert_ok(hlr_model_fit(m, o, train, &fo));
    ck_assert_int_eq(epochs_seen, 12);
    ck_assert_ok(hlr_model_evaluate(m, val, 64, 1, &after, NULL));
    ck_assert_int_eq(after.count, 200);
    ck_assert_msg(after.loss < 0.2 * before.loss, "the CTC loss went from %g to %g", before.loss, after.loss);
    ck_assert_msg(after.cer < 0.03 && after.accuracy > 0.9, "CER %g, strings read right %g (before: %g, %g)",
                  after.cer, after.accuracy, before.cer, before.accuracy);
    ck_assert(fabs(last_val_cer - after.cer) < 1e-12); /* fit's last validation is evaluate's */
    /* a model file keeps the loss and the weights: the same figures, and it trains on */
    void *buf = NULL;
    size_t size = 0;
    ck_assert_ok(hlr_model_save_buffer(m, NULL, &buf, &size));
    hlr_model *back = hlr_model_load_buffer(buf, size, NULL);
    ck_assert_ptr_nonnull(back);
    hlr_metrics again;
    ck_assert_ok(hlr_model_evaluate(back, val, 64, 1, &again, NULL));
    ck_assert(again.loss == after.loss && again.cer == after.cer && again.accuracy == after.accuracy);
    hlr_optimizer *o2 = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    fo.epochs = 1;
    fo.on_epoch = NULL;
    ck_assert_ok(hlr_model_fit(back, o2, train, &fo));
    hlr_buffer_free(buf);
    hlr_optimizer_free(o2);
    hlr_model_free(back);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(train);
    hlr_dataset_free(val);
}
END_TEST

START_TEST(test_train_batch_with_the_ctc_loss_uses_the_output_lengths)
{
    /* the same batch with and without widths: the loss differs (the steps past each width are not
     * aligned), and with widths it equals hlr_ctc_loss on the forward's output and mapped lengths */
    hlr_dataset *d = sequence_set(8, 9);
    hlr_model *m = sequence_model();
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){8, 1, SQ_H, SQ_W}, hlr_dataset_inputs(d));
    int max_target;
    const int32_t *tg = hlr_dataset_targets(d, &max_target);
    ck_assert_int_eq(max_target, SQ_MAXLEN);
    hlr_tensor *t = i32(2, (int64_t[]){8, SQ_MAXLEN}, tg);
    int32_t steps[8], tlen[8];
    ck_assert_ok(hlr_model_set_lengths(m, hlr_dataset_lengths(d), 8));
    ck_assert_ok(hlr_model_output_lengths(m, steps, 8));
    for (int i = 0; i < 8; i++) {
        tlen[i] = 0;
        while (tlen[i] < SQ_MAXLEN && tg[i * SQ_MAXLEN + tlen[i]] >= 0)
            tlen[i]++;
        ck_assert_int_eq(steps[i], hlr_dataset_lengths(d)[i] / 2);
    }
    hlr_tensor *y = hlr_tensor_new(HLR_F32, 3, (int64_t[]){8, SQ_W / 2, SQ_CLASSES});
    ck_assert_ok(hlr_model_forward(m, x, y, 0));
    hlr_tensor *il = i32(1, (int64_t[]){8}, steps), *tl = i32(1, (int64_t[]){8}, tlen);
    float want, with, without;
    ck_assert_ok(hlr_ctc_loss(y, il, t, tl, 0, HLR_REDUCTION_MEAN, 1, &want, NULL));
    hlr_optimizer *o = hlr_sgd(1e-30f, 0.0f, 0, 0.0f); /* so small a step that the weights stay */
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_model_train_batch(m, o, x, t, &with));
    ck_assert_close(with, want, 1e-5, 1e-6);
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    ck_assert_ok(hlr_model_train_batch(m, o, x, t, &without));
    ck_assert(fabsf(with - without) > 1e-3f);
    hlr_optimizer_free(o);
    hlr_tensor_free(x);
    hlr_tensor_free(y);
    hlr_tensor_free(t);
    hlr_tensor_free(il);
    hlr_tensor_free(tl);
    hlr_model_free(m);
    hlr_dataset_free(d);
}
END_TEST

extern _Atomic long hlr__alloc_count;

START_TEST(test_ctc_training_allocates_nothing_per_batch)
{
    hlr_dataset *d = sequence_set(96, 2), *val = sequence_set(40, 6);
    hlr_model *m = sequence_model();
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    hlr_tensor *x = hlr_tensor_from(HLR_F32, 4, (int64_t[]){16, 1, SQ_H, SQ_W}, hlr_dataset_inputs(d));
    hlr_tensor *t = i32(2, (int64_t[]){16, SQ_MAXLEN}, hlr_dataset_targets(d, NULL));
    const int32_t *w = hlr_dataset_lengths(d);
    ck_assert_ok(hlr_model_set_lengths(m, w, 16));
    ck_assert_ok(hlr_model_train_batch(m, o, x, t, NULL)); /* sizes the buffers and the CTC workspace */
    long before = atomic_load(&hlr__alloc_count);
    for (int i = 0; i < 20; i++) {
        ck_assert_ok(hlr_model_set_lengths(m, w + (i % 2) * 16, 16));
        ck_assert_ok(hlr_model_train_batch(m, o, x, t, NULL));
    }
    ck_assert_msg(atomic_load(&hlr__alloc_count) == before, "%ld allocations in 20 CTC training steps",
                  atomic_load(&hlr__alloc_count) - before);
    ck_assert_ok(hlr_model_set_lengths(m, NULL, 0));
    /* fit: its set-up allocates, its epochs do not: 1 and 3 epochs allocate alike */
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    fo.batch_size = 32;
    fo.validation_data = val;
    long counts[3];
    for (int k = 0; k < 3; k++) { /* the first fit sizes the model's buffers for batches of 32 */
        fo.epochs = k == 2 ? 3 : 1;
        long b0 = atomic_load(&hlr__alloc_count);
        ck_assert_ok(hlr_model_fit(m, o, d, &fo));
        counts[k] = atomic_load(&hlr__alloc_count) - b0;
    }
    ck_assert_msg(counts[1] == counts[2], "fit allocated %ld times for 1 epoch, %ld for 3", counts[1], counts[2]);
    hlr_tensor_free(x);
    hlr_tensor_free(t);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_dataset_free(d);
    hlr_dataset_free(val);
}
END_TEST

START_TEST(test_ctc_model_refusals)
{
    hlr_model *m = sequence_model();
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    ck_assert_status(hlr_model_set_loss(m, HLR_LOSS_CTC, 0.1f), HLR_EINVAL);
    ck_assert_error_mentions("cross-entropy only");
    hlr_tensor *x = hlr_tensor_new(HLR_F32, 4, (int64_t[]){2, 1, SQ_H, SQ_W});
    hlr_tensor *blank = i32(2, (int64_t[]){2, 3}, (int32_t[]){1, 0, -1, 2, -1, -1});
    ck_assert_status(hlr_model_train_batch(m, o, x, blank, NULL), HLR_EINVAL);
    ck_assert_error_mentions("the blank (0)");
    hlr_tensor *big = i32(2, (int64_t[]){2, 3}, (int32_t[]){1, 4, -1, 2, -1, -1});
    ck_assert_status(hlr_model_train_batch(m, o, x, big, NULL), HLR_EINVAL);
    ck_assert_error_mentions("outside the labels");
    hlr_tensor *after = i32(2, (int64_t[]){2, 3}, (int32_t[]){1, -1, 2, 2, -1, -1});
    ck_assert_status(hlr_model_train_batch(m, o, x, after, NULL), HLR_EINVAL);
    ck_assert_error_mentions("after the -1 padding");
    hlr_tensor *flat = i32(1, (int64_t[]){2}, (int32_t[]){1, 2});
    ck_assert_status(hlr_model_train_batch(m, o, x, flat, NULL), HLR_ESHAPE);
    /* a data set of class labels for a CTC model, and a sequence data set for a classifier */
    float img[2 * SQ_H * SQ_W] = {0};
    hlr_dataset *classes = hlr_dataset_from(3, (int64_t[]){1, SQ_H, SQ_W}, 2, img, (int32_t[]){0, 1}, 2);
    hlr_fit_options fo;
    hlr_fit_options_default(&fo);
    ck_assert_status(hlr_model_fit(m, o, classes, &fo), HLR_EINVAL);
    ck_assert_error_mentions("sequence data set");
    hlr_dataset *seq = sequence_set(4, 1);
    hlr_model *clf = TEST_MODEL(1, hlr_flatten(), hlr_dense(SQ_H * SQ_W, 4, 1));
    ck_assert_ok(hlr_model_build(clf, 3, (int64_t[]){1, SQ_H, SQ_W}));
    ck_assert_status(hlr_model_fit(clf, o, seq, &fo), HLR_EINVAL);
    ck_assert_error_mentions("HLR_LOSS_CTC");
    /* a CTC model whose output is not a sequence */
    ck_assert_ok(hlr_model_set_loss(clf, HLR_LOSS_CTC, 0.0f));
    ck_assert_status(hlr_model_fit(clf, o, seq, &fo), HLR_ESHAPE);
    ck_assert_error_mentions("CTC needs (T, C)");
    fo.augment.rotate = 5;
    ck_assert_status(hlr_model_fit(m, o, seq, &fo), HLR_EUNSUPPORTED);
    ck_assert_status(hlr_model_evaluate(m, seq, 4, 1, &(hlr_metrics){0}, (int64_t[16]){0}), HLR_EINVAL);
    /* bad sequence data sets */
    int32_t w_bad[2] = {4, SQ_W + 1}, t_ok[2 * 2] = {1, -1, 2, 3}, t_gap[2 * 2] = {-1, 1, 2, 3};
    ck_assert_ptr_null(hlr_dataset_from_sequences(3, (int64_t[]){1, SQ_H, SQ_W}, 2, img, w_bad, t_ok, 2, 4));
    ck_assert_error_mentions("width");
    ck_assert_ptr_null(hlr_dataset_from_sequences(3, (int64_t[]){1, SQ_H, SQ_W}, 2, img, NULL, t_gap, 2, 4));
    ck_assert_error_mentions("after the -1 padding");
    ck_assert_ptr_null(hlr_dataset_from_sequences(3, (int64_t[]){1, SQ_H, SQ_W}, 2, img, NULL, t_ok, 2, 1));
    ck_assert_ptr_null(hlr_dataset_from_sequences(3, (int64_t[]){1, SQ_H, SQ_W}, 2, img, NULL, NULL, 2, 4));
    ck_assert_ptr_null(hlr_dataset_labels(seq));
    hlr_dataset_free(classes);
    hlr_dataset_free(seq);
    hlr_tensor_free(x);
    hlr_tensor_free(blank);
    hlr_tensor_free(big);
    hlr_tensor_free(after);
    hlr_tensor_free(flat);
    hlr_model_free(clf);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_sequence_sets_shuffle_and_slice_keep_targets_with_samples)
{
    hlr_dataset *d = sequence_set(50, 7);
    int S;
    const int32_t *t0 = hlr_dataset_targets(d, &S);
    /* a signature per sample: its first pixel column sums and its target */
    int32_t *before = malloc(50 * (size_t)(S + 1) * sizeof *before);
    memcpy(before, t0, 50 * (size_t)S * sizeof *before);
    int32_t wsum = 0;
    for (int i = 0; i < 50; i++)
        wsum += hlr_dataset_lengths(d)[i];
    ck_assert_ok(hlr_dataset_shuffle(d, 3));
    const float *x = hlr_dataset_inputs(d);
    const int32_t *t = hlr_dataset_targets(d, NULL), *w = hlr_dataset_lengths(d);
    int32_t wsum2 = 0;
    for (int i = 0; i < 50; i++) {
        int len = 0;
        while (len < S && t[i * S + len] >= 0)
            len++;
        ck_assert_int_eq(w[i], 4 * len); /* the width stayed with its target */
        for (int k = 0; k < len; k++) /* and the image: label k's bar lies on rows 2t-1, 2t */
            ck_assert(x[i * SQ_H * SQ_W + (2 * t[i * S + k]) * SQ_W + 4 * k] > 0.5f);
        wsum2 += w[i];
    }
    ck_assert_int_eq(wsum, wsum2);
    hlr_dataset *tail = hlr_dataset_split(d, 0.2);
    ck_assert_ptr_nonnull(tail);
    ck_assert_int_eq(hlr_dataset_size(tail), 10);
    ck_assert_mem_eq(hlr_dataset_targets(tail, NULL), t + 40 * S, 10 * (size_t)S * sizeof *t);
    free(before);
    hlr_dataset_free(tail);
    hlr_dataset_free(d);
}
END_TEST

Suite *suite_ctc(void)
{
    Suite *s = suite_create("ctc");
    TCase *t = tcase_create("loss");
    tcase_add_loop_test(t, test_ctc_matches_torch, 0, (int)(sizeof ctc_ref_cases / sizeof ctc_ref_cases[0]));
    tcase_add_test(t, test_ctc_two_steps_is_analytic);
    tcase_add_test(t, test_ctc_gradient_matches_finite_differences);
    tcase_add_test(t, test_ctc_survives_probabilities_below_double_range);
    tcase_add_test(t, test_ctc_refusals);
    suite_add_tcase(s, t);
    t = tcase_create("decode");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_best_path_by_hand);
    tcase_add_test(t, test_beam_search_finds_the_most_likely_sequence);
    tcase_add_test(t, test_beam_of_one_agrees_with_best_path_when_steps_are_decided);
    tcase_add_test(t, test_lexicon_decoding_yields_only_its_words);
    tcase_add_test(t, test_edit_distance);
    suite_add_tcase(s, t);
    t = tcase_create("crnn");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_crnn_learns_to_read_strings_with_ctc);
    tcase_add_test(t, test_fit_trains_a_ctc_model_on_a_sequence_data_set);
    tcase_add_test(t, test_train_batch_with_the_ctc_loss_uses_the_output_lengths);
    tcase_add_test(t, test_rectangular_poolings_map_widths_by_their_width);
    tcase_add_test(t, test_ctc_model_refusals);
    tcase_add_test(t, test_ctc_training_allocates_nothing_per_batch);
    tcase_add_test(t, test_sequence_sets_shuffle_and_slice_keep_targets_with_samples);
    suite_add_tcase(s, t);
    return s;
}
