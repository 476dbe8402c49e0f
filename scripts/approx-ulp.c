/*
 * approx-ulp.c -- the worst error, in units in the last place, of
 * src/kernels/exp_approx.h's e^x, gate tanh and erf (and the gate sigmoid's,
 * absolute) against double precision, over every STEP-th float (7 by
 * default; every float with STEP 1, 8 minutes), and how many gate values
 * fall outside their range.  Not part of the build; the figures in
 * exp_approx.h came from
 *   cc -O2 -std=c11 scripts/approx-ulp.c -o /tmp/approx-ulp -lm && /tmp/approx-ulp 1
 * (-std=c11 as the library: no contraction into FMA, the kernels' own bits):
 * e^x 0.99 ulp, sigmoid 2.2e-7 absolute, tanh 6.29 ulp, erf 2.76, none outside.
 */
#include "../src/kernels/exp_approx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* |got - want| in ulps of want (of the smallest normal below it). */
static double ulps(float got, double want)
{
    int e;
    frexp(fmax(fabs(want), 0x1p-126), &e);
    return fabs((double)got - want) / ldexp(1.0, e - 24);
}

typedef struct worst {
    double err;
    float at;
} worst;

static void note(worst *w, double err, float x)
{
    if (err > w->err) {
        w->err = err;
        w->at = x;
    }
}

int main(int argc, char **argv)
{
    const unsigned step = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 7u;
    if (step == 0) {
        fprintf(stderr, "approx-ulp: STEP must be >= 1\n");
        return 2;
    }
    worst e = {0}, s = {0}, t = {0}, f = {0};
    unsigned long outside = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFu; u += step) {
        const uint32_t bits = (uint32_t)u;
        float x;
        memcpy(&x, &bits, sizeof x);
        if (isnan(x) || fabsf(x) > 87.0f)
            continue;
        const double xd = x;
        if (exp(xd) >= 0x1p-126) /* e^x of normal results; below, the result is flushed by the callers */
            note(&e, ulps(exp_approx(x), exp(xd)), x);
        const float sg = sigmoid_gate(x), tg = tanh_gate(x);
        note(&s, fabs((double)sg - 1.0 / (1.0 + exp(-xd))), x); /* absolute */
        note(&t, ulps(tg, tanh(xd)), x);
        outside += !(sg >= 0.0f && sg <= 1.0f) || !(tg >= -1.0f && tg <= 1.0f); /* a gate's range */
        if (fabsf(x) < 6.0f && fabs(erf(xd)) >= 0x1p-126)
            note(&f, ulps(erf_approx(x), erf(xd)), x);
    }
    printf("every %u-th float in [-87, 87]: e^x %.2f ulp (at %.9g), the gates' sigmoid %.2g absolute (at %.9g) "
           "and tanh %.2f ulp (at %.9g), erf %.2f (|x| < 6, at %.9g)\n",
           step, e.err, e.at, s.err, s.at, t.err, t.at, f.err, f.at);
    printf("gate values outside [0, 1] (sigmoid) or [-1, 1] (tanh): %lu\n", outside);
    return 0;
}
