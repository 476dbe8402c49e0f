/*
 * exp_approx.h -- e^x, erf(x), and tanh and the logistic sigmoid for the
 * recurrent gates, in plain float arithmetic that the compiler vectorises (a
 * call to expf or erff keeps a loop scalar), for the kernels of recurrent.c,
 * softmax.c and eltwise.c.  Against double precision on every float
 * (scripts/approx-ulp.c 1; every 7th float gives a little less): e^x within
 * 1.0 ulp, erf 2.8 (|x| < 6), the gates' tanh 6.3 ulp and sigmoid 2.2e-7
 * absolute.  The same bits in every clone: no reassociation, no contraction
 * into FMA.  (Fused
 * multiply-adds in the polynomials made an LSTM step's gate arithmetic a
 * quarter faster on CPUs with FMA, but the baseline clone can only match
 * their bits with a library call or an exact emulation per multiply-add,
 * which made it 15-20 times slower: not kept, docs/design.md.)
 */
#ifndef HLR_EXP_APPROX_H
#define HLR_EXP_APPROX_H

#include <stdint.h>

/* c ? a : b through the bits, so the compiler keeps both sides and the loop
 * branch-free: with a plain ?: it splits the paths and then will not
 * vectorise them, since float operations may trap. */
static inline float select_bits(int c, float a, float b)
{
    union {
        float f;
        uint32_t u;
    } ua = {a}, ub = {b}, r;
    uint32_t m = 0u - (uint32_t)c;
    r.u = (ua.u & m) | (ub.u & ~m);
    return r.f;
}

/* e^x, x clamped to [-87, 88] (NaN stays NaN).  x = n ln2 + r with n
 * rounded by the 1.5 * 2^23 trick, ln2 split in two for an exact n ln2;
 * e^r on |r| <= ln2 / 2 by a degree-7 minimax polynomial (Cephes' expf
 * coefficients); 2^n built in the exponent bits. */
static inline float exp_approx(float x)
{
    x = select_bits(x < -87.0f, -87.0f, x);
    x = select_bits(x > 88.0f, 88.0f, x);
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union {
        float f;
        uint32_t u;
    } bits = {t}, scale;
    scale.u = (bits.u - 0x4B400000u + 127u) << 23; /* the low bits of t hold n */
    return p * scale.f;
}

/* erf(x), odd: x P(x^2) below |x| = 0.921875; above, 1 - e^(-x^2) S(s) with
 * s = 2.3959 / |x| - 1.5990 in [-1, 1]; 1 from |x| = 4 (where erfc rounds
 * away).  Both sides are computed and one is kept, so the loop stays
 * branch-free; a NaN stays NaN.  The coefficients and the error bound (2.3
 * ulp with a correctly rounded e^x) come from scripts/fit-erf.py. */
static inline __attribute__((always_inline)) float erf_approx(float x)
{
    const float ax = select_bits(x < 0.0f, -x, x), t = ax * ax;
    float p = 8.477423398e-05f;
    p = p * t - 8.168499917e-04f;
    p = p * t + 5.203345325e-03f;
    p = p * t - 2.686034888e-02f;
    p = p * t + 1.128371283e-01f;
    p = p * t - 3.761263490e-01f;
    p = p * t + 1.128379226e+00f;
    const float small = ax * p;
    const float bx = select_bits(ax < 0.921875f, 0.921875f, ax), s = 2.395939112e+00f / bx - 1.598984718e+00f;
    float q = 8.765822713e-06f;
    q = q * s + 7.987331685e-08f;
    q = q * s - 6.086718349e-05f;
    q = q * s + 1.958435314e-04f;
    q = q * s - 4.627752933e-04f;
    q = q * s + 4.372787080e-04f;
    q = q * s + 3.411716782e-03f;
    q = q * s - 2.902391553e-02f;
    q = q * s + 1.535583138e-01f;
    q = q * s + 3.218453228e-01f;
    const float large = 1.0f - exp_approx(-t) * q;
    const float r = select_bits(ax >= 4.0f, 1.0f, select_bits(ax >= 0.921875f, large, small));
    return select_bits(x < 0.0f, -r, r);
}

/* tanh for the recurrent layers' gates, where it runs five times a unit and step (an LSTM's gate
 * arithmetic was 30 % of its inference at batch 256 through e^x: 1 / (1 + e^-x), and 1 - 2 / (e^2x + 1)
 * beside an odd polynomial near 0): x P(u) / Q(u), u = x^2 / 81, P and Q of degree 4 fitted on [0, 9] by
 * scripts/fit-tanh.py, with |x| clamped to 7.9, where the fit reaches 1 (beyond, it would pass 1 by up
 * to 2.4e-7 and make a gate's derivative 1 - t^2 negative; tanh(7.9) is 4.6 ulp below 1): every result
 * within [-1, 1] (checked over every float).  No e^x and no second branch: about half the operations of
 * that tanh, for an error of at most 6.3 ulp (scripts/approx-ulp.c 1: every float; 6.0 on every 7th)
 * against the 1.4 of the e^x formula it replaced.  A NaN stays NaN. */
static inline float tanh_gate(float x)
{
    x = select_bits(x < -7.9f, -7.9f, x);
    x = select_bits(x > 7.9f, 7.9f, x);
    const float u = x * x * (1.0f / 81.0f);
    float p = 5.7487440109e-01f;
    p = p * u + 1.0952513695e+01f;
    p = p * u + 2.2934556961e+01f;
    p = p * u + 1.0838630676e+01f;
    p = p * u + 1.0f;
    float q = 3.3475540161e+01f;
    q = q * u + 1.7461213684e+02f;
    q = q * u + 1.6977888489e+02f;
    q = q * u + 3.7838615417e+01f;
    q = q * u + 1.0f;
    return p * x / q;
}

/* The logistic sigmoid for the gates, 1/2 + tanh(x/2) / 2, within [0, 1]: within 2.2e-7 of it (absolute;
 * unlike 1 / (1 + e^-x), not relative to tiny results far below 0, which a gate's product with a state
 * of order 1 does not see). */
static inline float sigmoid_gate(float x)
{
    return 0.5f * tanh_gate(0.5f * x) + 0.5f;
}

#endif
