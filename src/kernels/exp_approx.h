/*
 * exp_approx.h -- e^x in plain float arithmetic that the compiler
 * vectorises (a call to expf keeps a loop scalar), for the kernels of
 * recurrent.c and softmax.c.  Within 2 ulp of e^x, the same bits in every
 * clone: no reassociation, no contraction into FMA.
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

#endif
