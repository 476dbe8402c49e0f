/*
 * width.c -- which of a kernel's two vector loops runs (kernels.h, hlrk_v16_fits): the 16-float one
 * on CPUs with AVX-512, the 8-float one elsewhere, or the one a test asks for.
 */
#include "kernels.h"

int hlrk_width_for_tests;
int hlrk_no_fma_for_tests;
