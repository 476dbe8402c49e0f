/*
 * fdcheck.h -- finite-difference gradient checks shared by the attention
 * and transformer suites (fdcheck.c): L = sum(y * r) for a fixed random r,
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

#endif
