/*
 * fdcheck.h -- model-level checks shared by the attention and transformer
 * suites (fdcheck.c).  The finite-difference check: L = sum(y * r) for a fixed random r,
 * so dL/dy = r.  Before every forward the model's generator goes back to
 * where it was, so dropout draws the same masks each time and finite
 * differences apply.
 */
#ifndef HLR_FDCHECK_H
#define HLR_FDCHECK_H

#include <hlr/hlr.h>

#include <stdint.h>

/*
 * Build m for samples of `shape`, batch n (with per-sample lengths, or
 * NULL), give every parameter that starts constant (biases, norms, a class
 * token) random values, and check dL/dx and every parameter's gradient
 * against central differences at up to 30 positions per tensor.  Frees m.
 */
void fd_gradcheck(hlr_model *m, int ndim, const int64_t *shape, int64_t n, unsigned long long seed,
                  const int32_t *lengths);

/* What a PyTorch fixture of an attention layer gives (fixtures/attn_ref.h's mha_ref_case,
 * fixtures/transformer_ref.h's enc_ref_case). */
typedef struct torch_attention_fixture {
    const char *name;
    int64_t N, T, E, heads;
    const int32_t *lengths; /* NULL: every step valid */
    const float *x, *dy, *y, *weights, *dx;
    const char *const *names; /* the parameters, in the layer's order */
    const float *const *params, *const *grads;
    int nparams;
} torch_attention_fixture;

/*
 * Put l in a model for (T, E) sequences, copy the fixture's parameters in
 * (their names and order must be the layer's), then compare with PyTorch's:
 * the training forward's y and attention weights, the backward's dx and
 * every parameter's gradient; with inference, also the inference forward's
 * y.  Frees the model.
 */
void expect_attention_matches_torch(hlr_layer *l, const torch_attention_fixture *c, int inference);

/*
 * Train m on (x, labels) for `steps` batches after a first one: the loop must
 * allocate nothing (the library's allocation counter stays put) and the loss
 * must fall below half of its first value.  m, o, x and labels stay the
 * caller's.
 */
void expect_learns_without_allocating(hlr_model *m, hlr_optimizer *o, const hlr_tensor *x, const hlr_tensor *labels,
                                      int steps);

#endif
