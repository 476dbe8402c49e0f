/*
 * views_check.c -- hlr-read's --views helpers (examples/common.c): the
 * stretch of a canvas's columns, the parsing of the factors, and the choice
 * among readings, checked against a CTC log-likelihood summed by brute force
 * over every path.  Built and run by `make cli-test`; exits non-zero with a
 * line on stderr per failure.
 */
#include "../../examples/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "views_check:%d: ", __LINE__);                                                             \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

enum { T = 4, C = 3 }; /* the blank 0, 'a' 1, 'b' 2 */

/* log p(labels | logits) summed over all C^T paths that collapse to them (repeats merged, blanks dropped) */
static double brute_log_likelihood(const float *logits, const int32_t *labels, int n)
{
    double lse[T], total = 0.0;
    for (int t = 0; t < T; t++) {
        double s = 0.0;
        for (int c = 0; c < C; c++)
            s += exp(logits[t * C + c]);
        lse[t] = log(s);
    }
    int path[T];
    for (int code = 0; code < 81; code++) { /* 3^4 paths */
        int v = code, out[T], m = 0, prev = 0;
        double lp = 0.0;
        for (int t = 0; t < T; t++, v /= C) {
            path[t] = v % C;
            lp += logits[t * C + path[t]] - lse[t];
            if (path[t] && path[t] != prev)
                out[m++] = path[t];
            prev = path[t];
        }
        if (m == n && !memcmp(out, labels, (size_t)n * sizeof *out))
            total += exp(lp);
    }
    return log(total);
}

/* a reading whose steps give a, b and the blank these probabilities (the rest of each step is the blank) */
static void reading(float *logits, const float (*ab)[2])
{
    for (int t = 0; t < T; t++) {
        logits[t * C + 0] = logf(1.0f - ab[t][0] - ab[t][1]);
        logits[t * C + 1] = logf(ab[t][0]);
        logits[t * C + 2] = logf(ab[t][1]);
    }
}

int main(void)
{
    /* the stretch: linear between the columns' centres, zero past the new width */
    float src[2 * 8] = {0, 1, 2, 3, 9, 9, 9, 9, 4, 4, 4, 4, 9, 9, 9, 9}, dst[2 * 8];
    example_stretch_columns(src, 8, dst, 2, 8, 4, 4);
    CHECK(!memcmp(dst, (float[]){0, 1, 2, 3, 0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0}, sizeof dst),
          "a stretch by 1 keeps the line and clears the rest");
    example_stretch_columns(src, 8, dst, 2, 8, 4, 8);
    const float twice[8] = {0.0f, 0.25f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 2.25f}; /* the ends fade to 0 */
    for (int x = 0; x < 8; x++)
        CHECK(fabsf(dst[x] - twice[x]) < 1e-6f && dst[8 + x] == (x == 0 || x == 7 ? 3.0f : 4.0f),
              "column %d of a line stretched twice: %g, %g", x, dst[x], dst[8 + x]);
    CHECK(example_stretched_width(100, 1.15, 256) == 115 && example_stretched_width(200, 1.35, 256) == 256 &&
              example_stretched_width(1, 0.5, 256) == 1,
          "stretched widths");

    /* the factors */
    double f[EXAMPLE_MAX_VIEWS];
    CHECK(example_parse_views("views_check", "1.15,1.35", f) == 2 && f[0] == 1.15 && f[1] == 1.35, "1.15,1.35");
    fprintf(stderr, "views_check: the next five lines are the refusals it checks:\n");
    CHECK(example_parse_views("views_check", "1.15,x", f) == -1, "1.15,x");
    CHECK(example_parse_views("views_check", "1.15,", f) == -1, "a trailing comma");
    CHECK(example_parse_views("views_check", "3", f) == -1, "a factor past 2");
    CHECK(example_parse_views("views_check", "1,1,1,1,1", f) == -1, "five factors");
    CHECK(example_parse_views("views_check", "", f) == -1, "no factor");

    /* the choice: view 0 reads "a" by a little, views 1 and 2 read "b" by a lot -> "b", from view 1 */
    float v0[T * C], v1[T * C], v2[T * C];
    reading(v0, (const float[T][2]){{0.50f, 0.45f}, {0.02f, 0.02f}, {0.02f, 0.02f}, {0.02f, 0.02f}});
    reading(v1, (const float[T][2]){{0.02f, 0.02f}, {0.05f, 0.90f}, {0.02f, 0.02f}, {0.02f, 0.02f}});
    reading(v2, (const float[T][2]){{0.02f, 0.02f}, {0.02f, 0.02f}, {0.05f, 0.90f}, {0.05f, 0.90f}});
    const float *rows[3] = {v0, v1, v2};
    const int steps[3] = {T, T, T};
    int32_t got[T], from = -1;
    const int32_t a[1] = {1}, b[1] = {2};
    int n = example_ctc_views(rows, steps, 3, C, got, &from);
    CHECK(n == 1 && got[0] == 2 && from == 1, "the readings together choose b from view 1: %d labels, %d, view %d", n,
          n > 0 ? got[0] : -1, from);
    double sa = 0.0, sb = 0.0; /* the oracle agrees that b is likelier over the three */
    for (int v = 0; v < 3; v++) {
        const double la = example_ctc_log_likelihood(rows[v], T, C, a, 1),
                     lb = example_ctc_log_likelihood(rows[v], T, C, b, 1);
        CHECK(fabs(la - brute_log_likelihood(rows[v], a, 1)) < 1e-5 &&
                  fabs(lb - brute_log_likelihood(rows[v], b, 1)) < 1e-5,
              "view %d: log p(a) %g (brute force %g), log p(b) %g (%g)", v, la, brute_log_likelihood(rows[v], a, 1), lb,
              brute_log_likelihood(rows[v], b, 1));
        sa += la, sb += lb;
    }
    CHECK(sb > sa, "b likelier than a over the views: %g against %g", sb, sa);
    /* one reading alone: its own best path; a reading no other text fits: an empty text's likelihood too */
    n = example_ctc_views(rows, steps, 1, C, got, &from);
    CHECK(n == 1 && got[0] == 1 && from == 0, "view 0 alone reads a");
    const int32_t ab[2] = {1, 2};
    CHECK(isinf(example_ctc_log_likelihood(v0, 1, C, ab, 2)), "two labels in one step: no alignment");
    CHECK(fabs(example_ctc_log_likelihood(v0, T, C, ab, 0) - brute_log_likelihood(v0, ab, 0)) < 1e-5, "the empty text");
    if (failures)
        fprintf(stderr, "views_check: %d failures\n", failures);
    else
        printf("views_check: all passed\n");
    return failures != 0;
}
