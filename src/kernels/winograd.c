/*
 * winograd.c -- 3x3 convolutions (stride 1, dilation 1) by Winograd's
 * minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015).
 *
 * The output is cut into 2x2 tiles; tile t reads a 4x4 patch d of the
 * zero-padded input.  With the fixed matrices
 *
 *       | 1  0 -1  0 |        | 1    0    0  |
 *   B^T=| 0  1  1  0 |    G = | 1/2  1/2  1/2|    A^T = | 1  1  1  0 |
 *       | 0 -1  1  0 |        | 1/2 -1/2  1/2|          | 0  1 -1 -1 |
 *       | 0  1  0 -1 |        | 0    0    1  |
 *
 * the 2x2 output of channel k is A^T [ sum over c of U[k][c] . V[c][t] ] A,
 * with U = G g G^T (4x4, per filter) and V = B^T d B (4x4, per patch) and
 * "." the element-wise product.  Each of the 16 positions xi of the 4x4
 * grid is then one matrix product M[xi] (Cout, T) = U[xi] (Cout, Cin)
 * V[xi] (Cin, T) over all tiles T at once, done by the caller through
 * cblas_sgemm: 16 Cout Cin multiply-adds per tile instead of im2col's
 * 36 Cout Cin (2.25 times fewer).
 *
 * The backward pass is the adjoint of each linear step: dM = A dY A^T,
 * dV[xi] = U[xi]^T dM[xi], dd = B dV B^T folded back over the overlapping
 * patches, and dU[xi] = sum over tiles of dM[xi] V[xi]^T, dg = G^T dU G.
 * So the gradients are exact for the function computed.
 *
 * Layouts: U and dU (16, Cout, Cin); V (16, C, ldv) and M (16, Cout, ldm),
 * of which one sample uses the columns [0, tiles): the caller offsets the
 * pointer to place a sample among the tiles of a block of samples.  Tiles
 * run row-major over the output, ceil(Ho/2) x ceil(Wo/2) of them; an odd
 * last row or column of tiles computes one row or column beyond the output
 * (dropped, and given a zero gradient).
 *
 * Every transform is one loop over the tiles, vectorised across them.  The
 * patches' rows come from four copies of the padded input plane: its even
 * and its odd rows, each from column 0 (E, O) and from column 2 (E2, O2),
 * all with rows of 2 tw floats.  Element q of patch row r of tile t
 * (tile row i, tile column j, t = i tw + j) is then at index 2 t + q % 2
 * of one of them (shifted by a row for r >= 2): a uniform stride-2 access
 * for every tile.  The output goes the same way into the even and odd
 * output rows (Z0, Z1), then row by row into y with the bias and ReLU.
 *
 * Only additions, subtractions and multiplications by 1/2: the bits do not
 * depend on the instruction set the loops are compiled for.
 */
#include "kernels.h"

static int64_t tiles_h(const hlrk_conv_geom *g) { return (g->Ho + 1) / 2; }
static int64_t tiles_w(const hlrk_conv_geom *g) { return (g->Wo + 1) / 2; }

int64_t hlrk_wino_tiles(const hlrk_conv_geom *g) { return tiles_h(g) * tiles_w(g); }

/* One of the scratch's row copies: th + 1 rows of L = 2 tw floats, and a
 * tail for the vector loops' last reads. */
static int64_t copy_floats(const hlrk_conv_geom *g) { return ((tiles_h(g) + 1) * 2 * tiles_w(g) + 47) / 16 * 16; }

/* Eight row copies (E, O, E2, O2, then the same for the lower half of the
 * patches in the backward pass), Z0, Z1, and one row of zeros. */
int64_t hlrk_wino_scratch(const hlrk_conv_geom *g) { return 10 * copy_floats(g) + 2 * tiles_w(g) + 32; }

HLR_KERNEL
void hlrk_wino_filter(float *U, const float *w, int64_t cout, int64_t cin)
{
    const int64_t xs = cout * cin; /* from one grid position to the next */
    for (int64_t k = 0; k < cout; k++)
        for (int64_t c = 0; c < cin; c++) {
            const float *g = w + (k * cin + c) * 9;
            float t[4][3]; /* G g */
            #pragma GCC unroll 4
            for (int q = 0; q < 3; q++) {
                t[0][q] = g[q];
                t[1][q] = 0.5f * (g[q] + g[3 + q] + g[6 + q]);
                t[2][q] = 0.5f * (g[q] - g[3 + q] + g[6 + q]);
                t[3][q] = g[6 + q];
            }
            float *u = U + k * cin + c;
            #pragma GCC unroll 4
            for (int a = 0; a < 4; a++) { /* (G g) G^T */
                u[(4 * a + 0) * xs] = t[a][0];
                u[(4 * a + 1) * xs] = 0.5f * (t[a][0] + t[a][1] + t[a][2]);
                u[(4 * a + 2) * xs] = 0.5f * (t[a][0] - t[a][1] + t[a][2]);
                u[(4 * a + 3) * xs] = t[a][2];
            }
        }
}

HLR_KERNEL
void hlrk_wino_filter_backward(float *dw, const float *dU, int64_t cout, int64_t cin)
{
    const int64_t xs = cout * cin;
    for (int64_t k = 0; k < cout; k++)
        for (int64_t c = 0; c < cin; c++) {
            const float *du = dU + k * cin + c;
            float h[4][3]; /* dU G */
            #pragma GCC unroll 4
            for (int a = 0; a < 4; a++) {
                float d0 = du[(4 * a) * xs], d1 = du[(4 * a + 1) * xs], d2 = du[(4 * a + 2) * xs],
                      d3 = du[(4 * a + 3) * xs];
                h[a][0] = d0 + 0.5f * (d1 + d2);
                h[a][1] = 0.5f * (d1 - d2);
                h[a][2] = 0.5f * (d1 + d2) + d3;
            }
            float *g = dw + (k * cin + c) * 9; /* G^T (dU G) */
            #pragma GCC unroll 4
            for (int q = 0; q < 3; q++) {
                g[q] = h[0][q] + 0.5f * (h[1][q] + h[2][q]);
                g[3 + q] = 0.5f * (h[1][q] - h[2][q]);
                g[6 + q] = 0.5f * (h[1][q] + h[2][q]) + h[3][q];
            }
        }
}

/*
 * Short rows (a few dozen floats) are moved as whole 16-float vectors, or
 * 8-float ones where the AVX-512 clones do not run (an AVX2 clone keeps a
 * 16-float vector in memory, kernels.h: the copies through it were half
 * of the input transform's time at batch 1): a row may be written up to
 * 15 floats past its end, into the next row of the same buffer (written
 * afterwards) or a buffer's tail, and read as far.  `room` is how many
 * floats from the row's start may be touched: the rest of the sample
 * (other samples may belong to another thread), or of a scratch buffer;
 * past it, one float at a time.
 */
typedef hlrk_v16 v16;
typedef hlrk_v16i v16i;
typedef hlrk_v8 v8;

static inline __attribute__((always_inline)) void copy_row(float *out, const float *in, int64_t n, int64_t room)
{
    int64_t i = 0;
    if (hlrk_avx512_runs())
        for (; i < n && i + 16 <= room; i += 16)
            *(v16 *)(out + i) = *(const v16 *)(in + i);
    else
        for (; i < n && i + 8 <= room; i += 8)
            *(v8 *)(out + i) = *(const v8 *)(in + i);
    for (; i < n; i++)
        out[i] = in[i];
}

/* row[C] = in[C - shift] where 0 <= C - shift < n, else 0, for C in [0, L);
 * `room` floats may be read from in (row has a tail of 16). */
static inline __attribute__((always_inline)) void shifted_row(float *row, int64_t L, const float *in, int64_t n,
                                                              int64_t shift, int64_t room)
{
    int64_t a = shift < 0 ? 0 : shift < L ? shift : L, b = shift + n < a ? a : shift + n < L ? shift + n : L;
    if (b > a)
        copy_row(row + a, in + (a - shift), b - a, room - (a - shift));
    for (int64_t C = 0; C < a; C++)
        row[C] = 0.0f;
    for (int64_t C = b; C < L; C++)
        row[C] = 0.0f;
}

/*
 * Row a of V = B^T d B for tiles [0, n) into v0..v3 (grid positions 4a..4a+3):
 * row a of B^T d is patch row P plus (or minus) patch row Q, each given by
 * its row copies from column 0 (p, q) and column 2 (p2, q2).  Four stores
 * through restrict pointers: sixteen through one would need run-time alias
 * checks, and GCC would not vectorise the loop.
 */
static inline __attribute__((always_inline)) void input_row(float *restrict v0, float *restrict v1,
                                                            float *restrict v2, float *restrict v3,
                                                            const float *restrict p, const float *restrict p2,
                                                            const float *restrict q, const float *restrict q2,
                                                            int plus, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        float a0 = plus ? p[2 * t] + q[2 * t] : p[2 * t] - q[2 * t];
        float a1 = plus ? p[2 * t + 1] + q[2 * t + 1] : p[2 * t + 1] - q[2 * t + 1];
        float a2 = plus ? p2[2 * t] + q2[2 * t] : p2[2 * t] - q2[2 * t];
        float a3 = plus ? p2[2 * t + 1] + q2[2 * t + 1] : p2[2 * t + 1] - q2[2 * t + 1];
        v0[t] = a0 - a2; /* times B */
        v1[t] = a1 + a2;
        v2[t] = a2 - a1;
        v3[t] = a1 - a3;
    }
}

/* V[xi][t] for tiles [0, n); patch row 0 is in e (e2), 1 in o (o2), 2 and 3 a row further on. */
static inline __attribute__((always_inline)) void input_tiles(float *v, int64_t xs, const float *e, const float *e2,
                                                              const float *o, const float *o2, int64_t L, int64_t n)
{
    const float *f = e + L, *f2 = e2 + L, *g = o + L, *g2 = o2 + L;
    input_row(v, v + xs, v + 2 * xs, v + 3 * xs, e, e2, f, f2, 0, n);                  /* d0 - d2 */
    input_row(v + 4 * xs, v + 5 * xs, v + 6 * xs, v + 7 * xs, o, o2, f, f2, 1, n);     /* d1 + d2 */
    input_row(v + 8 * xs, v + 9 * xs, v + 10 * xs, v + 11 * xs, f, f2, o, o2, 0, n);   /* d2 - d1 */
    input_row(v + 12 * xs, v + 13 * xs, v + 14 * xs, v + 15 * xs, o, o2, g, g2, 0, n); /* d1 - d3 */
}

HLR_KERNEL
void hlrk_wino_input(float *V, int64_t ldv, const float *x, const hlrk_conv_geom *g, float *scratch)
{
    const int64_t th = tiles_h(g), tw = tiles_w(g), L = 2 * tw, cf = copy_floats(g), xs = g->C * ldv;
    const int64_t sample = g->C * g->H * g->W;
    float *E = scratch, *O = E + cf, *E2 = O + cf, *O2 = E2 + cf;
    for (int64_t c = 0; c < g->C; c++) {
        for (int64_t R = 0; R < 2 * th + 2; R++) { /* padded row R, in order (see copy_row) */
            float *row = (R & 1 ? O : E) + (R >> 1) * L, *row2 = (R & 1 ? O2 : E2) + (R >> 1) * L;
            int64_t h = R - g->pad, inside = h >= 0 && h < g->H, in = (inside ? c * g->H + h : 0) * g->W;
            shifted_row(row, L, x + in, inside ? g->W : 0, g->pad, sample - in);
            shifted_row(row2, L, x + in, inside ? g->W : 0, g->pad - 2, sample - in);
        }
        input_tiles(V + c * ldv, xs, E, E2, O, O2, L, th * tw);
    }
}

/* The adjoint of input_tiles: patch rows 0, 1 into e.. o2, rows 2, 3 into eh.. oh2 (a row down). */
static inline __attribute__((always_inline)) void input_tiles_backward(
    const float *restrict dv, int64_t xs, float *restrict e, float *restrict e2, float *restrict o,
    float *restrict o2, float *restrict eh, float *restrict eh2, float *restrict oh, float *restrict oh2, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        float u[4][4]; /* dV B^T */
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            float d0 = dv[(4 * r) * xs + t], d1 = dv[(4 * r + 1) * xs + t], d2 = dv[(4 * r + 2) * xs + t],
                  d3 = dv[(4 * r + 3) * xs + t];
            u[r][0] = d0;
            u[r][1] = d1 - d2 + d3;
            u[r][2] = d1 + d2 - d0;
            u[r][3] = -d3;
        }
        float dd[4][4]; /* B (dV B^T) */
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            dd[0][q] = u[0][q];
            dd[1][q] = u[1][q] - u[2][q] + u[3][q];
            dd[2][q] = u[1][q] + u[2][q] - u[0][q];
            dd[3][q] = -u[3][q];
        }
        e[2 * t] = dd[0][0], e[2 * t + 1] = dd[0][1], e2[2 * t] = dd[0][2], e2[2 * t + 1] = dd[0][3];
        o[2 * t] = dd[1][0], o[2 * t + 1] = dd[1][1], o2[2 * t] = dd[1][2], o2[2 * t + 1] = dd[1][3];
        eh[2 * t] = dd[2][0], eh[2 * t + 1] = dd[2][1], eh2[2 * t] = dd[2][2], eh2[2 * t + 1] = dd[2][3];
        oh[2 * t] = dd[3][0], oh[2 * t + 1] = dd[3][1], oh2[2 * t] = dd[3][2], oh2[2 * t + 1] = dd[3][3];
    }
}

/* The gradient of padded column C of one row: the tiles on its left (row
 * copies "2", column C - 2) and right, the lower halves of the tile row
 * above first, as the forward's patches overlap. */
static inline float edge_sum(const float *lo, const float *lo2, const float *up, const float *up2, int64_t C,
                             int64_t L)
{
    float s = 0.0f;
    if (C >= 2)
        s += lo2[C - 2];
    if (C < L)
        s += lo[C];
    if (C >= 2)
        s += up2[C - 2];
    if (C < L)
        s += up[C];
    return s;
}

HLR_KERNEL
void hlrk_wino_input_backward(float *dx, const float *dV, int64_t ldv, const hlrk_conv_geom *g, float *scratch)
{
    const int64_t th = tiles_h(g), tw = tiles_w(g), L = 2 * tw, cf = copy_floats(g), xs = g->C * ldv;
    const int64_t H = g->H, W = g->W, pad = g->pad;
    float *E = scratch, *O = E + cf, *E2 = O + cf, *O2 = E2 + cf, *Eh = O2 + cf, *Oh = Eh + cf, *Eh2 = Oh + cf,
          *Oh2 = Eh2 + cf, *zero = scratch + 10 * cf;
    for (int64_t col = 0; col < L + 16; col++)
        zero[col] = 0.0f;
    /* Columns C = w + pad with both C - 2 >= 0 and C < L: [wa, wb), no test. */
    const int64_t wa = 2 - pad > 0 ? 2 - pad : 0, wb = L - pad < W ? L - pad : W;
    for (int64_t c = 0; c < g->C; c++) {
        input_tiles_backward(dV + c * ldv, xs, E, E2, O, O2, Eh, Eh2, Oh, Oh2, th * tw);
        float *dxc = dx + c * H * W;
        for (int64_t h = 0; h < H; h++) {
            /* Padded row R: the upper half of tile row R / 2 and the lower half of the one above. */
            int64_t R = h + pad, i = R >> 1, odd = R & 1;
            const float *up = i < th ? (odd ? O : E) + i * L : zero, *up2 = i < th ? (odd ? O2 : E2) + i * L : zero;
            const float *lo = i > 0 ? (odd ? Oh : Eh) + (i - 1) * L : zero,
                        *lo2 = i > 0 ? (odd ? Oh2 : Eh2) + (i - 1) * L : zero;
            float *out = dxc + h * W;
            const int64_t a = wa < W ? wa : W, b = wb > a ? wb : a, room = (g->C - c) * H * W - h * W;
            int64_t w = a;
            for (; w < b && w + 16 <= room; w += 16) /* in the order of edge_sum; see copy_row */
                *(v16 *)(out + w) = *(const v16 *)(lo2 + w + pad - 2) + *(const v16 *)(lo + w + pad) +
                                    *(const v16 *)(up2 + w + pad - 2) + *(const v16 *)(up + w + pad);
            for (; w < b; w++)
                out[w] = lo2[w + pad - 2] + lo[w + pad] + up2[w + pad - 2] + up[w + pad];
            for (w = 0; w < a; w++)
                out[w] = edge_sum(lo, lo2, up, up2, w + pad, L);
            for (w = b; w < W; w++)
                out[w] = edge_sum(lo, lo2, up, up2, w + pad, L);
        }
    }
}

/* s = m A for tile t (m[(4 a + b) xs + t], its 4 x 4 grid, times A: 4 x 2).  A macro: as an inline
 * function GCC no longer vectorised the loops over the tiles that use it. */
#define TIMES_A(s, m, xs, t)                                                                                           \
    _Pragma("GCC unroll 4") for (int a = 0; a < 4; a++)                                                               \
    {                                                                                                                  \
        float m0 = m[(4 * a) * xs + t], m1 = m[(4 * a + 1) * xs + t], m2 = m[(4 * a + 2) * xs + t],                    \
              m3 = m[(4 * a + 3) * xs + t];                                                                            \
        s[a][0] = m0 + m1 + m2;                                                                                        \
        s[a][1] = m1 - m2 - m3;                                                                                        \
    }

/* Z0, Z1 (output rows 2i and 2i + 1 of tile row i, L = 2 tw floats each) from M[xi][t]. */
static inline __attribute__((always_inline)) void output_tiles(float *restrict z0, float *restrict z1,
                                                               const float *restrict m, int64_t xs, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        float s[4][2]; /* m A */
        TIMES_A(s, m, xs, t)
        #pragma GCC unroll 4
        for (int b = 0; b < 2; b++) { /* A^T (m A) */
            z0[2 * t + b] = s[0][b] + s[1][b] + s[2][b];
            z1[2 * t + b] = s[1][b] - s[2][b] - s[3][b];
        }
    }
}

/* Row w < Wo of the output plus b, then the ReLU (as hlrk_copy_add_relu), in vectors of L floats while
 * `room` floats may be written from yr (see copy_row); returns where the vectors stopped. */
#define OUTPUT_ROW(name, V, VI, L)                                                                                    \
    static inline __attribute__((always_inline)) int64_t name(float *yr, const float *z, float b, int relu,          \
                                                              int64_t Wo, int64_t room)                              \
    {                                                                                                                \
        int64_t w = 0;                                                                                               \
        for (; w < Wo && w + L <= room; w += L) {                                                                    \
            V v = *(const V *)(z + w) + b;                                                                           \
            *(V *)(yr + w) = relu ? (V)((VI)v & ~(v < 0.0f)) : v;                                                    \
        }                                                                                                            \
        return w;                                                                                                    \
    }
OUTPUT_ROW(output_row16, v16, v16i, 16)
OUTPUT_ROW(output_row8, hlrk_v8, hlrk_v8i, 8)

HLR_KERNEL
void hlrk_wino_output(float *y, const float *M, int64_t ldm, int64_t cout, const float *bias, int relu,
                      int split_rows, const hlrk_conv_geom *g, float *scratch)
{
    const int64_t th = tiles_h(g), tw = tiles_w(g), L = 2 * tw, Ho = g->Ho, Wo = g->Wo, xs = cout * ldm;
    float *Z0 = scratch + 8 * copy_floats(g), *Z1 = Z0 + copy_floats(g);
    const int wide = hlrk_v16_fits();
    for (int64_t k = 0; k < cout; k++) {
        output_tiles(Z0, Z1, M + k * ldm, xs, th * tw);
        const float b = bias ? bias[k] : 0.0f;
        for (int64_t r = 0; r < Ho; r++) { /* y's rows in memory order: see copy_row */
            const int64_t h = split_rows ? (r < Ho / 2 ? 2 * r : 2 * (r - Ho / 2) + 1) : r; /* output row */
            const float *z = (h & 1 ? Z1 : Z0) + (h >> 1) * L;
            float *yr = y + (k * Ho + r) * Wo;
            const int64_t room = (cout - k) * Ho * Wo - r * Wo;
            int64_t w = wide ? output_row16(yr, z, b, relu, Wo, room) : output_row8(yr, z, b, relu, Wo, room);
            for (; w < Wo; w++) {
                float v = z[w] + b;
                yr[w] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

/* A window's value as hlrk_maxpool2x2_win gives it: its scan's maximum, or the last NaN among c0..c3. */
static inline __attribute__((always_inline)) float window_of(float c0, float c1, float c2, float c3)
{
    float m = hlrk_window_max(c0, c1, c2, c3);
    m = c0 != c0 ? c0 : m;
    m = c1 != c1 ? c1 : m;
    m = c2 != c2 ? c2 : m;
    return c3 != c3 ? c3 : m;
}

/* Output tile t's four values, plus b and rectified as output_row does, pooled: the tiles are the
 * windows, so one loop over all of them, vectorised across them as output_tiles is, writes y's plane
 * without the full map or the split-row copy that hlrk_maxpool2x2_win would read back. */
static inline __attribute__((always_inline)) void pooled_tiles(float *restrict y, const float *restrict m,
                                                               int64_t xs, int64_t n, float b, int relu)
{
    for (int64_t t = 0; t < n; t++) {
        float s[4][2]; /* m A */
        TIMES_A(s, m, xs, t)
        float c[4];
        #pragma GCC unroll 2
        for (int q = 0; q < 2; q++) { /* A^T (m A), plus b */
            c[q] = s[0][q] + s[1][q] + s[2][q] + b;
            c[2 + q] = s[1][q] - s[2][q] - s[3][q] + b;
        }
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            c[q] = relu && c[q] < 0.0f ? 0.0f : c[q];
        y[t] = window_of(c[0], c[1], c[2], c[3]);
    }
}

HLR_KERNEL
void hlrk_wino_output_pooled(float *y, const float *M, int64_t ldm, int64_t cout, const float *bias, int relu,
                             const hlrk_conv_geom *g)
{
    const int64_t n = tiles_h(g) * tiles_w(g), xs = cout * ldm;
    for (int64_t k = 0; k < cout; k++)
        pooled_tiles(y + k * n, M + k * ldm, xs, n, bias ? bias[k] : 0.0f, relu);
}

/*
 * The adjoint of output_tiles, one row a of dM = A dY A^T at a time into
 * m0..m3 (restrict, as in input_row): with e_r = row r of dY A^T,
 * row 0 = e_0, row 1 = e_0 + e_1, row 2 = e_0 - e_1, row 3 = -e_1.
 */
static inline __attribute__((always_inline)) void output_row_backward(float *restrict m0, float *restrict m1,
                                                                      float *restrict m2, float *restrict m3,
                                                                      const float *restrict z0,
                                                                      const float *restrict z1, int a, int64_t n)
{
    for (int64_t t = 0; t < n; t++) {
        const float d00 = z0[2 * t], d01 = z0[2 * t + 1], d10 = z1[2 * t], d11 = z1[2 * t + 1];
        /* the rows of dY A^T: (d_r0, d_r0 + d_r1, d_r0 - d_r1, -d_r1) */
        const float e00 = d00, e01 = d00 + d01, e02 = d00 - d01, e03 = -d01;
        const float e10 = d10, e11 = d10 + d11, e12 = d10 - d11, e13 = -d11;
#define ROW_A(x0, x1) (a == 0 ? (x0) : a == 1 ? (x0) + (x1) : a == 2 ? (x0) - (x1) : -(x1))
        m0[t] = ROW_A(e00, e10);
        m1[t] = ROW_A(e01, e11);
        m2[t] = ROW_A(e02, e12);
        m3[t] = ROW_A(e03, e13);
#undef ROW_A
    }
}

HLR_KERNEL
void hlrk_wino_output_backward(float *dM, int64_t ldm, const float *dy, int64_t cout, const hlrk_conv_geom *g,
                               float *scratch)
{
    const int64_t th = tiles_h(g), tw = tiles_w(g), L = 2 * tw, Ho = g->Ho, Wo = g->Wo, xs = cout * ldm;
    float *Z0 = scratch + 8 * copy_floats(g), *Z1 = Z0 + copy_floats(g);
    for (int64_t k = 0; k < cout; k++) {
        /* dy's rows, with zeros where the last tiles overhang the output */
        for (int64_t h = 0; h < 2 * th; h++)
            shifted_row((h & 1 ? Z1 : Z0) + (h >> 1) * L, L, dy + (k * Ho + (h < Ho ? h : 0)) * Wo, h < Ho ? Wo : 0,
                        0, (cout * Ho - (k * Ho + (h < Ho ? h : 0))) * Wo);
        float *m = dM + k * ldm;
        /* a constant per call: GCC vectorises none of them when a is a loop variable */
        output_row_backward(m, m + xs, m + 2 * xs, m + 3 * xs, Z0, Z1, 0, th * tw);
        output_row_backward(m + 4 * xs, m + 5 * xs, m + 6 * xs, m + 7 * xs, Z0, Z1, 1, th * tw);
        output_row_backward(m + 8 * xs, m + 9 * xs, m + 10 * xs, m + 11 * xs, Z0, Z1, 2, th * tw);
        output_row_backward(m + 12 * xs, m + 13 * xs, m + 14 * xs, m + 15 * xs, Z0, Z1, 3, th * tw);
    }
}
