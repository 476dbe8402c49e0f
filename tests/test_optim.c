/*
 * test_optim.c -- the optimizers' failure paths and the semantics that need
 * no reference implementation: impossible hyper-parameters are refused,
 * NULL handles, unbuilt and foreign models, step counting, clipping and the
 * schedule past its end.  Agreement with torch.optim is in test_torch.c.
 */
#include "testutil.h"
#include "../src/kernels/kernels.h"

#include <float.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

Suite *suite_optim(void);

/*
 * A refusal is proved by NULL plus a fresh status and message: each check
 * first plants an unrelated failure (HLR_ESTATE), then requires
 * hlr_last_status() == HLR_EINVAL and a message naming the constructor and
 * the offending hyper-parameter.
 */
static void plant_unrelated_error(void)
{
    hlr_model *m = hlr_model_new(0);
    int nd;
    int64_t shape[HLR_MAX_DIMS];
    ck_assert_status(hlr_model_output_shape(m, &nd, shape), HLR_ESTATE);
    ck_assert_int_eq(hlr_last_status(), HLR_ESTATE);
    hlr_model_free(m);
}

static void expect_refused(hlr_optimizer *o, const char *call, const char *fn, const char *mentions)
{
    if (o)
        hlr_optimizer_free(o);
    ck_assert_msg(o == NULL, "%s was accepted", call);
    ck_assert_msg(hlr_last_status() == HLR_EINVAL, "%s: last status %d, expected HLR_EINVAL", call,
                  (int)hlr_last_status());
    ck_assert_msg(strstr(hlr_last_error(), fn) != NULL && strstr(hlr_last_error(), mentions) != NULL,
                  "%s: message \"%s\" should name %s and mention \"%s\"", call, hlr_last_error(), fn, mentions);
}

#define EXPECT_REFUSED(call, fn, mentions)                                                                             \
    do {                                                                                                               \
        plant_unrelated_error();                                                                                       \
        expect_refused((call), #call, (fn), (mentions));                                                               \
    } while (0)

static void expect_accepted(hlr_optimizer *o, const char *call)
{
    ck_assert_msg(o != NULL, "%s was refused: %s", call, hlr_last_error());
    hlr_optimizer_free(o);
}

#define EXPECT_ACCEPTED(call) expect_accepted((call), #call)

/* A built dense(4, 3) model whose gradients are all `g`. */
static hlr_model *dense_model(float g)
{
    hlr_model *m = hlr_model_new(3);
    ck_assert_ptr_nonnull(m);
    ck_assert_ok(hlr_model_add(m, hlr_dense(4, 3, 1)));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    hlr_layer *l = hlr_model_layer(m, 0);
    float *gw = hlr_tensor_f32(hlr_layer_grad(l, "weight"));
    float *gb = hlr_tensor_f32(hlr_layer_grad(l, "bias"));
    ck_assert(gw && gb);
    for (int i = 0; i < 12; i++)
        gw[i] = g;
    for (int i = 0; i < 3; i++)
        gb[i] = g;
    return m;
}

static float *weight_of(hlr_model *m)
{
    return hlr_tensor_f32(hlr_layer_param(hlr_model_layer(m, 0), "weight"));
}
static float *weight_grad_of(hlr_model *m)
{
    return hlr_tensor_f32(hlr_layer_grad(hlr_model_layer(m, 0), "weight"));
}
static float *bias_grad_of(hlr_model *m)
{
    return hlr_tensor_f32(hlr_layer_grad(hlr_model_layer(m, 0), "bias"));
}

/* ---- constructors ---- */

START_TEST(test_sgd_rejects_impossible_hyperparameters)
{
    EXPECT_REFUSED(hlr_sgd(0.0f, 0.0f, 0, 0.0f), "hlr_sgd", "learning rate");
    EXPECT_REFUSED(hlr_sgd(-0.1f, 0.0f, 0, 0.0f), "hlr_sgd", "learning rate");
    EXPECT_REFUSED(hlr_sgd(NAN, 0.0f, 0, 0.0f), "hlr_sgd", "learning rate");
    EXPECT_REFUSED(hlr_sgd(INFINITY, 0.0f, 0, 0.0f), "hlr_sgd", "learning rate");
    EXPECT_REFUSED(hlr_sgd(0.1f, 1.0f, 0, 0.0f), "hlr_sgd", "momentum");
    EXPECT_REFUSED(hlr_sgd(0.1f, 1.5f, 0, 0.0f), "hlr_sgd", "momentum");
    EXPECT_REFUSED(hlr_sgd(0.1f, -0.1f, 0, 0.0f), "hlr_sgd", "momentum");
    EXPECT_REFUSED(hlr_sgd(0.1f, NAN, 0, 0.0f), "hlr_sgd", "momentum");
    EXPECT_REFUSED(hlr_sgd(0.1f, 0.0f, 1, 0.0f), "hlr_sgd", "Nesterov");
    EXPECT_REFUSED(hlr_sgd(0.1f, 0.0f, 0, -0.01f), "hlr_sgd", "weight decay");
    EXPECT_REFUSED(hlr_sgd(0.1f, 0.0f, 0, NAN), "hlr_sgd", "weight decay");
    EXPECT_REFUSED(hlr_sgd(0.1f, 0.0f, 0, INFINITY), "hlr_sgd", "weight decay");
}
END_TEST

START_TEST(test_sgd_accepts_boundary_hyperparameters)
{
    EXPECT_ACCEPTED(hlr_sgd(FLT_MIN, 0.0f, 0, 0.0f));
    EXPECT_ACCEPTED(hlr_sgd(0.1f, 0.0f, 0, 0.0f));
    EXPECT_ACCEPTED(hlr_sgd(0.1f, 0.999f, 1, 0.0f));
    EXPECT_ACCEPTED(hlr_sgd(0.1f, 0.9f, 0, 1e-4f));
}
END_TEST

static void check_adam_family(hlr_optimizer *(*make)(float, float, float, float, float), const char *fn)
{
    EXPECT_REFUSED(make(0.0f, 0.9f, 0.999f, 1e-8f, 0.0f), fn, "learning rate");
    EXPECT_REFUSED(make(-1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f), fn, "learning rate");
    EXPECT_REFUSED(make(NAN, 0.9f, 0.999f, 1e-8f, 0.0f), fn, "learning rate");
    EXPECT_REFUSED(make(INFINITY, 0.9f, 0.999f, 1e-8f, 0.0f), fn, "learning rate");
    EXPECT_REFUSED(make(1e-3f, 1.0f, 0.999f, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, -0.1f, 0.999f, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, NAN, 0.999f, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 1.0f, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, 0.9f, -0.5f, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, 0.9f, NAN, 1e-8f, 0.0f), fn, "betas");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, 0.0f, 0.0f), fn, "eps");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, -1e-8f, 0.0f), fn, "eps");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, NAN, 0.0f), fn, "eps");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, INFINITY, 0.0f), fn, "eps");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, 1e-8f, -0.01f), fn, "weight decay");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, 1e-8f, NAN), fn, "weight decay");
    EXPECT_REFUSED(make(1e-3f, 0.9f, 0.999f, 1e-8f, INFINITY), fn, "weight decay");
    /* The boundaries that are allowed. */
    EXPECT_ACCEPTED(make(1e-3f, 0.0f, 0.0f, 1e-8f, 0.0f));
    EXPECT_ACCEPTED(make(1e-3f, 0.99f, 0.9999f, FLT_MIN, 0.5f));
}

START_TEST(test_adam_rejects_impossible_hyperparameters)
{
    check_adam_family(hlr_adam, "hlr_adam");
}
END_TEST

START_TEST(test_adamw_rejects_impossible_hyperparameters)
{
    check_adam_family(hlr_adamw, "hlr_adamw");
}
END_TEST

/* ---- settings ---- */

START_TEST(test_set_clip_norm_rejects_bad_values)
{
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_status(hlr_optimizer_set_clip_norm(o, -1.0f), HLR_EINVAL);
    ck_assert_error_mentions("max_norm");
    ck_assert_status(hlr_optimizer_set_clip_norm(o, NAN), HLR_EINVAL);
    ck_assert_error_mentions("max_norm");
    ck_assert_status(hlr_optimizer_set_clip_norm(o, INFINITY), HLR_EINVAL);
    ck_assert_error_mentions("max_norm");
    ck_assert_status(hlr_optimizer_set_clip_norm(NULL, 1.0f), HLR_EINVAL);
    ck_assert_error_mentions("NULL");
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 0.0f));
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 5.0f));
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_set_schedule_rejects_bad_values)
{
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    const char *fn = "hlr_optimizer_set_schedule";
    ck_assert_status(hlr_optimizer_set_schedule(NULL, HLR_SCHEDULE_STEP, 3, 0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, (hlr_schedule_kind)99, 3, 0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("unknown schedule");
    ck_assert_status(hlr_optimizer_set_schedule(o, (hlr_schedule_kind)-1, 3, 0.5, 0, 1.0), HLR_EINVAL);
    /* STEP: step_size >= 1, gamma > 0, both finite. */
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 0, 0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("step_size");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 0.5, 0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, 0.0, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("gamma");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, -0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, NAN, 0.5, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 3, NAN, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, INFINITY, 0.5, 0, 1.0), HLR_EINVAL);
    /* gamma > 1 grows the rate without bound: 1e300 once gave lr = inf (issue 23) */
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 1e300, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("gamma in (0, 1]");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 1.5, 0, 1.0), HLR_EINVAL);
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 1.0, 0, 1.0));
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 1e-300, 0, 1.0));
    for (int i = 0; i < 5; i++)
        ck_assert_ok(hlr_optimizer_schedule_step(o));
    ck_assert_msg(isfinite(hlr_optimizer_lr(o)) && hlr_optimizer_lr(o) >= 0.0f, "lr %g", (double)hlr_optimizer_lr(o));
    /* COSINE: T >= 1, eta_min >= 0. */
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 0, 0.0, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("cosine");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, -0.001, 0, 1.0), HLR_EINVAL);
    ck_assert_error_mentions("eta_min");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, NAN, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, 1e300, 0, 1.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, 0.2, 0, 1.0), HLR_EINVAL); /* lr is 0.1 */
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 10, 0.1, 0, 1.0));
    /* Warm-up: steps >= 0, start factor in (0, 1]. */
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, -1, 0.5), HLR_EINVAL);
    ck_assert_error_mentions("warm-up");
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 5, 0.0), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 5, 1.5), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 5, NAN), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 5, -0.1), HLR_EINVAL);
    ck_assert_error_mentions(fn);
    /* None of the refusals changed the learning rate. */
    ck_assert_close(hlr_optimizer_lr(o), 0.1f, 0.0, 0.0);
    /* The edges that are allowed. */
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 1, 0.0, 1, 1.0));
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_CONSTANT, 0, 0, 3, 1e-6));
    hlr_optimizer_free(o);
}
END_TEST

/* ---- NULL handles and state ---- */

START_TEST(test_null_handles_give_einval)
{
    hlr_optimizer_free(NULL); /* a no-op */
    hlr_model *m = dense_model(0.5f);
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_status(hlr_optimizer_step(NULL, m), HLR_EINVAL);
    ck_assert_error_mentions("optimizer");
    ck_assert_status(hlr_optimizer_step(o, NULL), HLR_EINVAL);
    ck_assert_error_mentions("model");
    ck_assert_status(hlr_optimizer_step(NULL, NULL), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_schedule_step(NULL), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_clip_norm(NULL, 0.0f), HLR_EINVAL);
    ck_assert_status(hlr_optimizer_set_schedule(NULL, HLR_SCHEDULE_CONSTANT, 0, 0, 0, 1.0), HLR_EINVAL);
    ck_assert_float_eq(hlr_optimizer_lr(NULL), 0.0f);
    ck_assert_int_eq(hlr_optimizer_steps(NULL), 0);
    /* The NULL calls did not bind or count anything: o still steps m. */
    ck_assert_int_eq(hlr_optimizer_steps(o), 0);
    ck_assert_ok(hlr_optimizer_step(o, m));
    ck_assert_int_eq(hlr_optimizer_steps(o), 1);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_step_on_unbuilt_model_gives_estate)
{
    hlr_model *unbuilt = hlr_model_new(1);
    ck_assert_ptr_nonnull(unbuilt);
    ck_assert_ok(hlr_model_add(unbuilt, hlr_dense(4, 3, 1)));
    hlr_optimizer *o = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_status(hlr_optimizer_step(o, unbuilt), HLR_ESTATE);
    ck_assert_error_mentions("not built");
    ck_assert_int_eq(hlr_optimizer_steps(o), 0);
    /* The refusal did not bind the optimizer: a built model is accepted. */
    hlr_model *m = dense_model(0.5f);
    ck_assert_ok(hlr_optimizer_step(o, m));
    ck_assert_int_eq(hlr_optimizer_steps(o), 1);
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_model_free(unbuilt);
}
END_TEST

/* _i: 0 plain SGD (no state), 1 SGD with momentum, 2 Adam. */
START_TEST(test_optimizer_refuses_a_second_model)
{
    hlr_optimizer *o = _i == 0   ? hlr_sgd(0.1f, 0.0f, 0, 0.0f)
                       : _i == 1 ? hlr_sgd(0.1f, 0.9f, 0, 0.0f)
                                 : hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);
    hlr_model *first = dense_model(0.5f), *second = dense_model(0.5f);
    ck_assert_ok(hlr_optimizer_step(o, first));
    float before[12];
    memcpy(before, weight_of(second), sizeof before);
    ck_assert_status(hlr_optimizer_step(o, second), HLR_ESTATE);
    ck_assert_error_mentions("another model");
    ck_assert_int_eq(hlr_optimizer_steps(o), 1);
    ck_assert_msg(memcmp(before, weight_of(second), sizeof before) == 0, "the refused model's weights changed");
    /* The first model still trains. */
    ck_assert_ok(hlr_optimizer_step(o, first));
    ck_assert_int_eq(hlr_optimizer_steps(o), 2);
    hlr_optimizer_free(o);
    hlr_model_free(first);
    hlr_model_free(second);
}
END_TEST

/*
 * An optimizer bound to a freed model refuses the model allocated at the same
 * address (with glibc; under AddressSanitizer, whose quarantine keeps freed
 * blocks, the address differs and the refusal is the ordinary one).  Before models had serial numbers, a bigger model
 * at the old address was stepped with the old state: a heap-buffer-overflow in hlrk_sgd. _i: 0 plain SGD (no state), 1
 * SGD with momentum, 2 Adam.
 */
START_TEST(test_optimizer_refuses_a_model_at_a_freed_models_address)
{
    hlr_optimizer *o = _i == 0   ? hlr_sgd(0.1f, 0.0f, 0, 0.0f)
                       : _i == 1 ? hlr_sgd(0.1f, 0.9f, 0, 0.0f)
                                 : hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    /* A block in use just below the model, so that glibc cannot merge the
     * freed model with a free neighbour below it (whose address the merged
     * block would then have): the model is the next block taken from the top
     * of the heap after the fence, once the bins hold nothing of its size. */
    hlr_model *probe = hlr_model_new(1);
    size_t block = malloc_usable_size(probe);
    hlr_model_free(probe);
    void *drain[64];
    for (int t = 0; t < 64; t++) /* whatever free blocks of the model's size the heap holds */
        ck_assert_ptr_nonnull(drain[t] = calloc(1, block));
    void *fence = calloc(1, block);
    ck_assert_ptr_nonnull(fence);
#endif
    hlr_model *a = dense_model(0.5f);
    ck_assert_ok(hlr_optimizer_step(o, a));
    const uintptr_t old = (uintptr_t)a;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    /* Fill glibc's per-thread cache for the model's block size, so the freed
     * model goes where calloc looks (calloc skips that cache): the next model
     * then gets the very same address. */
    void *fill[7];
    for (int t = 0; t < 7; t++)
        ck_assert_ptr_nonnull(fill[t] = malloc(block));
    for (int t = 0; t < 7; t++)
        free(fill[t]);
#endif
    hlr_model_free(a);
    hlr_model *b = hlr_model_new(3);
    ck_assert_ptr_nonnull(b);
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    ck_assert_msg((uintptr_t)b == old,
                  "the second model is at %p, not at the first one's %p: the test needs glibc's reuse", (void *)b,
                  (void *)old);
    free(fence);
    for (int t = 0; t < 64; t++)
        free(drain[t]);
#endif
    ck_assert_ok(hlr_model_add(b, hlr_dense(256, 256, 1))); /* bigger tensors than the first model's */
    int64_t in[] = {256};
    ck_assert_ok(hlr_model_build(b, 1, in));
    ck_assert_status(hlr_optimizer_step(o, b), HLR_ESTATE);
    ck_assert_error_mentions("another model");
    ck_assert_int_eq(hlr_optimizer_steps(o), 1);
    hlr_model_free(b);
    hlr_optimizer_free(o);
}
END_TEST

/* Fine-tuning: a frozen layer's parameters stay bit for bit; the others move; unfreezing resumes updates. */
START_TEST(test_frozen_layers_are_left_alone)
{
    hlr_model *m = hlr_model_new(4);
    ck_assert_ok(hlr_model_add(m, hlr_dense(4, 5, 1)));
    ck_assert_ok(hlr_model_add(m, hlr_dense(5, 3, 1)));
    ck_assert_ok(hlr_model_build(m, 1, (int64_t[]){4}));
    hlr_layer *a = hlr_model_layer(m, 0), *b = hlr_model_layer(m, 1);
    ck_assert_int_eq(hlr_layer_trainable(a), 1);
    ck_assert_ok(hlr_layer_set_trainable(a, 0));
    ck_assert_int_eq(hlr_layer_trainable(a), 0);
    ck_assert_status(hlr_layer_set_trainable(NULL, 0), HLR_EINVAL);
    ck_assert_int_eq(hlr_layer_trainable(NULL), 0);
    for (int i = 0; i < 2; i++) {
        hlr_layer *l = hlr_model_layer(m, i);
        test_fill(hlr_tensor_f32(hlr_layer_grad(l, "weight")), hlr_tensor_numel(hlr_layer_grad(l, "weight")), 3 + i,
                  -1, 1);
        test_fill(hlr_tensor_f32(hlr_layer_grad(l, "bias")), hlr_tensor_numel(hlr_layer_grad(l, "bias")), 5 + i, -1, 1);
    }
    /* NaN gradients on the frozen layer: clipping's norm leaves them out */
    hlr_tensor_f32(hlr_layer_grad(a, "bias"))[0] = NAN;
    float wa[20], wb[15];
    memcpy(wa, hlr_tensor_f32(hlr_layer_param(a, "weight")), sizeof wa);
    memcpy(wb, hlr_tensor_f32(hlr_layer_param(b, "weight")), sizeof wb);
    hlr_optimizer *o = hlr_adamw(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f); /* with decoupled weight decay */
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    for (int s = 0; s < 3; s++)
        ck_assert_ok(hlr_optimizer_step(o, m));
    ck_assert_msg(memcmp(wa, hlr_tensor_f32(hlr_layer_param(a, "weight")), sizeof wa) == 0, "a frozen weight moved");
    ck_assert_msg(memcmp(wb, hlr_tensor_f32(hlr_layer_param(b, "weight")), sizeof wb) != 0, "the trainable layer stood");
    hlr_tensor_f32(hlr_layer_grad(a, "bias"))[0] = 0.5f;
    ck_assert_ok(hlr_layer_set_trainable(a, 1));
    ck_assert_ok(hlr_optimizer_step(o, m));
    ck_assert_msg(memcmp(wa, hlr_tensor_f32(hlr_layer_param(a, "weight")), sizeof wa) != 0, "unfrozen, still stood");
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_steps_counts_parameter_updates_only)
{
    hlr_model *m = dense_model(0.1f);
    hlr_optimizer *o = hlr_adamw(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(hlr_optimizer_steps(o), 0);
    for (int i = 1; i <= 5; i++) {
        ck_assert_ok(hlr_optimizer_step(o, m));
        ck_assert_int_eq(hlr_optimizer_steps(o), i);
    }
    /* Advancing the schedule is not an update. */
    ck_assert_ok(hlr_optimizer_schedule_step(o));
    ck_assert_int_eq(hlr_optimizer_steps(o), 5);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* ---- schedules ---- */

START_TEST(test_lr_without_schedule_is_the_base_lr)
{
    hlr_optimizer *o = hlr_adam(3e-4f, 0.9f, 0.999f, 1e-8f, 0.0f);
    ck_assert_ptr_nonnull(o);
    for (int t = 0; t < 5; t++) {
        ck_assert_close(hlr_optimizer_lr(o), 3e-4f, 0.0, 0.0);
        ck_assert_ok(hlr_optimizer_schedule_step(o));
    }
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_cosine_stays_at_eta_min_past_t)
{
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_COSINE, 4, 0.01, 0, 1.0));
    for (int t = 0; t <= 50; t++) {
        float lr = hlr_optimizer_lr(o);
        if (t >= 4)
            ck_assert_msg(fabs(lr - 0.01) <= 1e-6 * 0.01, "lr at position %d (past T = 4) is %.9g, expected 0.01", t,
                          (double)lr);
        else
            ck_assert_msg(lr > 0.01f && lr <= 0.1f, "lr at position %d is %.9g, outside (0.01, 0.1]", t, (double)lr);
        ck_assert_ok(hlr_optimizer_schedule_step(o));
    }
    hlr_optimizer_free(o);
}
END_TEST

START_TEST(test_step_uses_the_scheduled_lr)
{
    hlr_model *m = dense_model(1.0f);
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_schedule(o, HLR_SCHEDULE_STEP, 1, 0.5, 0, 1.0));
    ck_assert_ok(hlr_optimizer_schedule_step(o));
    ck_assert_ok(hlr_optimizer_schedule_step(o)); /* lr = 0.1 * 0.5^2 */
    float w0 = weight_of(m)[5];
    ck_assert_ok(hlr_optimizer_step(o, m));
    ck_assert_close(weight_of(m)[5], w0 - 0.025f * 1.0f, 1e-6, 1e-7);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* ---- clipping ---- */

START_TEST(test_clipping_scales_the_global_norm_to_max_norm)
{
    hlr_model *m = dense_model(3.0f); /* 15 gradients of 3: norm 3 sqrt(15) */
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 2.0f));
    ck_assert_ok(hlr_optimizer_step(o, m));
    double sq = 0.0;
    for (int i = 0; i < 12; i++)
        sq += (double)weight_grad_of(m)[i] * weight_grad_of(m)[i];
    for (int i = 0; i < 3; i++)
        sq += (double)bias_grad_of(m)[i] * bias_grad_of(m)[i];
    ck_assert_close(sqrt(sq), 2.0, 1e-5, 0.0);
    /* Every gradient scaled alike. */
    ck_assert_close(bias_grad_of(m)[2], 2.0 / sqrt(15.0), 1e-5, 0.0);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

START_TEST(test_clipping_leaves_small_gradients_and_zero_disables)
{
    hlr_model *m = dense_model(0.01f); /* norm 0.0387 */
    hlr_optimizer *o = hlr_sgd(0.1f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    ck_assert_ok(hlr_optimizer_step(o, m));
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq(weight_grad_of(m)[i], 0.01f);
    /* max_norm 0 turns clipping off: large gradients pass unchanged. */
    for (int i = 0; i < 12; i++)
        weight_grad_of(m)[i] = 100.0f;
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 0.0f));
    ck_assert_ok(hlr_optimizer_step(o, m));
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq(weight_grad_of(m)[i], 100.0f);
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

/* _i: 0 a NaN gradient, 1 +inf, 2 finite values whose squares overflow float. */
START_TEST(test_clipping_non_finite_gradient_gives_enumeric)
{
    hlr_model *m = dense_model(0.5f);
    float bad[] = {NAN, INFINITY, FLT_MAX};
    for (int i = 0; i < 12; i++)
        weight_grad_of(m)[i] = _i == 2 ? bad[2] : 0.5f;
    weight_grad_of(m)[7] = bad[_i];
    hlr_optimizer *o = hlr_sgd(0.1f, 0.9f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    ck_assert_ok(hlr_optimizer_set_clip_norm(o, 1.0f));
    float before[12];
    memcpy(before, weight_of(m), sizeof before);
    if (_i == 2) {
        /* A norm of ~1.2e39 exceeds float but not double: that one is finite and clips. */
        ck_assert_ok(hlr_optimizer_step(o, m));
        double sq = 0.0;
        for (int i = 0; i < 12; i++)
            sq += (double)weight_grad_of(m)[i] * weight_grad_of(m)[i];
        for (int i = 0; i < 3; i++)
            sq += (double)bias_grad_of(m)[i] * bias_grad_of(m)[i];
        ck_assert_close(sqrt(sq), 1.0, 1e-4, 0.0);
        for (int i = 0; i < 12; i++)
            ck_assert_msg(isfinite(weight_of(m)[i]), "weight[%d] = %g after clipping huge gradients", i,
                          (double)weight_of(m)[i]);
        ck_assert_int_eq(hlr_optimizer_steps(o), 1);
    } else {
        ck_assert_status(hlr_optimizer_step(o, m), HLR_ENUMERIC);
        ck_assert_error_mentions("norm");
        ck_assert_int_eq(hlr_optimizer_steps(o), 0);
        ck_assert_msg(memcmp(before, weight_of(m), sizeof before) == 0, "a refused step changed the weights");
    }
    hlr_optimizer_free(o);
    hlr_model_free(m);
}
END_TEST

static int count_subnormal(const float *x, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += fpclassify(x[i]) == FP_SUBNORMAL;
    return c;
}

/*
 * Fading gradients (each step half the last, through the subnormals to zero) drive torch's Adam and
 * SGD-momentum state through the subnormal range, where every multiply costs an Intel CPU a microcode
 * assist.  The kernels flush that state (update.c): none of it is ever subnormal, and the weights come out
 * bit for bit as those of the same updates written out here without the flush.  Three settings: Adam's
 * first moment fading before its second (b1 0.9, b2 0.95; SGD with momentum) and after it (0.99, 0.9; SGD
 * with Nesterov's momentum), and both with weight decay (Adam's L2 term, SGD's), which keeps the moments
 * normal while the gradients' own part is flushed.
 */
START_TEST(test_fading_gradients_leave_no_subnormal_state_and_the_same_weights)
{
    enum { N = 40, STEPS = 1600 };
    static const struct {
        float b1, b2, l2, wd;
        int nesterov;
    } cfg[3] = {{0.9f, 0.95f, 0.0f, 0.0f, 0}, {0.99f, 0.9f, 0.0f, 0.0f, 1}, {0.9f, 0.999f, 1e-4f, 1e-4f, 1}};
    const float b1 = cfg[_i].b1, b2 = cfg[_i].b2, l2 = cfg[_i].l2, wd = cfg[_i].wd, eps = 1e-8f, lr = 1e-3f;
    const float mu = 0.9f;
    float p[N], g[N], m[N] = {0}, v[N] = {0}, buf[N] = {0};
    float rp[N], rm[N] = {0}, rv[N] = {0}, rbuf[N] = {0}, sp[N], rsp[N];
    int ref_subnormal = 0;
    for (int i = 0; i < N; i++) {
        p[i] = rp[i] = sp[i] = rsp[i] = 0.05f * (float)(i + 1) - 1.05f; /* 0.05 to 1 in magnitude, and 0 */
        g[i] = 1e-3f * (float)((i * 7) % 11 + 1) * (i % 2 ? -1.0f : 1.0f);
    }
    for (int step = 1; step <= STEPS; step++) {
        const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
        const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        hlrk_adam(p, g, m, v, N, b1, b2, step_size, bc2_sqrt, eps, l2, 1.0f);
        hlrk_sgd(sp, g, buf, N, lr, wd, mu, cfg[_i].nesterov, step == 1);
        for (int i = 0; i < N; i++) { /* torch's order, no flush */
            const float d = g[i] + l2 * rp[i], ds = g[i] + wd * rsp[i];
            rm[i] = b1 * rm[i] + (1.0f - b1) * d;
            rv[i] = b2 * rv[i] + (1.0f - b2) * d * d;
            rp[i] = rp[i] - step_size * (rm[i] / (sqrtf(rv[i]) / bc2_sqrt + eps));
            rbuf[i] = step == 1 ? ds : mu * rbuf[i] + ds;
            rsp[i] -= lr * (cfg[_i].nesterov ? ds + mu * rbuf[i] : rbuf[i]);
            g[i] *= 0.5f;
        }
        ck_assert_int_eq(count_subnormal(m, N) + count_subnormal(v, N) + count_subnormal(buf, N), 0);
        ref_subnormal += count_subnormal(rm, N) + count_subnormal(rv, N) + count_subnormal(rbuf, N);
    }
    if (l2 == 0.0f) /* with weight decay the moments follow the weights and stay normal */
        ck_assert_msg(ref_subnormal > 0, "the unflushed updates never went subnormal: the test proves nothing");
    for (int i = 0; i < N; i++) {
        ck_assert_msg(p[i] == rp[i], "Adam weight %d: %.9g, without the flush %.9g", i, p[i], rp[i]);
        ck_assert_msg(sp[i] == rsp[i], "SGD weight %d: %.9g, without the flush %.9g", i, sp[i], rsp[i]);
    }
}
END_TEST

/* hlrk_adam_v_tiny's promise: a second moment just below it, through Adam's denominator, leaves eps as it
 * is, so flushing it to zero cannot change the step. */
START_TEST(test_adam_second_moments_flushed_cannot_change_a_step)
{
    static const float eps[] = {1e-3f, 1e-6f, 1e-8f, 1e-12f, 1e-16f};
    static const float bc2_sqrt[] = {0.0316227766f, 0.1f, 0.5f, 1.0f};
    for (size_t e = 0; e < sizeof eps / sizeof eps[0]; e++)
        for (size_t b = 0; b < sizeof bc2_sqrt / sizeof bc2_sqrt[0]; b++) {
            const float t = hlrk_adam_v_tiny(eps[e], bc2_sqrt[b]), below = nextafterf(t, 0.0f);
            ck_assert_msg(t >= 0.0f && t <= 0x1p-100f, "v_tiny %g", (double)t); /* 0: nothing flushed */
            ck_assert_msg(sqrtf(below) / bc2_sqrt[b] + eps[e] == eps[e], "eps %g, bc2_sqrt %g: v %g moves eps",
                          (double)eps[e], (double)bc2_sqrt[b], (double)below);
        }
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");

    TCase *tc = tcase_create("constructors");
    tcase_add_test(tc, test_sgd_rejects_impossible_hyperparameters);
    tcase_add_test(tc, test_sgd_accepts_boundary_hyperparameters);
    tcase_add_test(tc, test_adam_rejects_impossible_hyperparameters);
    tcase_add_test(tc, test_adamw_rejects_impossible_hyperparameters);
    suite_add_tcase(s, tc);

    tc = tcase_create("settings");
    tcase_add_test(tc, test_set_clip_norm_rejects_bad_values);
    tcase_add_test(tc, test_set_schedule_rejects_bad_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_test(tc, test_null_handles_give_einval);
    tcase_add_test(tc, test_step_on_unbuilt_model_gives_estate);
    tcase_add_loop_test(tc, test_optimizer_refuses_a_second_model, 0, 3);
    tcase_add_loop_test(tc, test_optimizer_refuses_a_model_at_a_freed_models_address, 0, 3);
    tcase_add_test(tc, test_steps_counts_parameter_updates_only);
    tcase_add_test(tc, test_frozen_layers_are_left_alone);
    tcase_add_loop_test(tc, test_fading_gradients_leave_no_subnormal_state_and_the_same_weights, 0, 3);
    tcase_add_test(tc, test_adam_second_moments_flushed_cannot_change_a_step);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedules");
    tcase_add_test(tc, test_lr_without_schedule_is_the_base_lr);
    tcase_add_test(tc, test_cosine_stays_at_eta_min_past_t);
    tcase_add_test(tc, test_step_uses_the_scheduled_lr);
    suite_add_tcase(s, tc);

    tc = tcase_create("clipping");
    tcase_add_test(tc, test_clipping_scales_the_global_norm_to_max_norm);
    tcase_add_test(tc, test_clipping_leaves_small_gradients_and_zero_disables);
    tcase_add_loop_test(tc, test_clipping_non_finite_gradient_gives_enumeric, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
