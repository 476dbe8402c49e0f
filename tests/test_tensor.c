/*
 * test_tensor.c -- the tensor API (construction, copying, wrapping, shape
 * queries, typed access) and the core utilities (versions, status names,
 * the thread-local error message, the thread count, the log callback),
 * failure paths included.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

Suite *suite_tensor(void);

static const hlr_dtype all_dtypes[] = {HLR_F32, HLR_I32};
#define NUM_DTYPES ((int)(sizeof all_dtypes / sizeof all_dtypes[0]))

static const char *dtype_name(hlr_dtype dt) { return dt == HLR_I32 ? "int32" : "float32"; }

/* Fill n elements of dtype dt with 1, 2, 3, ... (exact in both types). */
static void fill_counting(hlr_dtype dt, void *data, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == HLR_I32)
            ((int32_t *)data)[i] = (int32_t)(i + 1);
        else
            ((float *)data)[i] = (float)(i + 1);
    }
}

/* Element i of a buffer of dtype dt, as a double. */
static double element(hlr_dtype dt, const void *data, int64_t i)
{
    return dt == HLR_I32 ? (double)((const int32_t *)data)[i] : (double)((const float *)data)[i];
}

/*
 * The three constructors under one signature, so each failure case can be
 * run against all of them.  `which` is 0 (new), 1 (from), 2 (wrap); data
 * points to a buffer big enough for any shape that passes validation here.
 */
static hlr_tensor *make(int which, hlr_dtype dt, int ndim, const int64_t *shape, void *data)
{
    switch (which) {
    case 0: return hlr_tensor_new(dt, ndim, shape);
    case 1: return hlr_tensor_from(dt, ndim, shape, data);
    default: return hlr_tensor_wrap(dt, ndim, shape, data);
    }
}

static const char *const maker_names[] = {"hlr_tensor_new", "hlr_tensor_from", "hlr_tensor_wrap"};

/* ---- construction ---- */

START_TEST(test_tensor_new_is_zero_filled_for_every_dtype)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        hlr_dtype dt = all_dtypes[k];
        int64_t shape[] = {3, 5, 7};
        hlr_tensor *t = hlr_tensor_new(dt, 3, shape);
        ck_assert_msg(t != NULL, "hlr_tensor_new(%s, (3, 5, 7)) failed: %s", dtype_name(dt), hlr_last_error());
        ck_assert_int_eq(hlr_tensor_dtype(t), (int)dt);
        ck_assert_int_eq(hlr_tensor_ndim(t), 3);
        ck_assert_int_eq(hlr_tensor_numel(t), 105);
        ck_assert_ptr_nonnull(hlr_tensor_data(t));
        for (int64_t i = 0; i < 105; i++)
            ck_assert_msg(element(dt, hlr_tensor_data(t), i) == 0.0, "%s element %lld is %g, expected 0",
                          dtype_name(dt), (long long)i, element(dt, hlr_tensor_data(t), i));
        hlr_tensor_free(t);
    }
}
END_TEST

START_TEST(test_tensor_from_copies_the_source_for_every_dtype)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        hlr_dtype dt = all_dtypes[k];
        int64_t shape[] = {2, 3};
        union {
            float f[6];
            int32_t i[6];
        } src;
        fill_counting(dt, &src, 6);
        hlr_tensor *t = hlr_tensor_from(dt, 2, shape, &src);
        ck_assert_msg(t != NULL, "hlr_tensor_from(%s) failed: %s", dtype_name(dt), hlr_last_error());
        ck_assert_msg(hlr_tensor_data(t) != (void *)&src, "hlr_tensor_from(%s) did not copy", dtype_name(dt));
        /* Changing the source afterwards must not reach the tensor. */
        memset(&src, 0x7f, sizeof src);
        for (int64_t i = 0; i < 6; i++)
            ck_assert_msg(element(dt, hlr_tensor_data(t), i) == (double)(i + 1),
                          "%s element %lld is %g after the source changed, expected %g", dtype_name(dt),
                          (long long)i, element(dt, hlr_tensor_data(t), i), (double)(i + 1));
        hlr_tensor_free(t);
    }
}
END_TEST

START_TEST(test_tensor_wrap_shares_the_buffer_and_never_frees_it)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        hlr_dtype dt = all_dtypes[k];
        int64_t shape[] = {4, 2};
        /* A heap buffer: if hlr_tensor_free() freed it, ASan would report the
         * writes and the free() below; without ASan, free() would abort. */
        void *buf = malloc(8 * sizeof(float));
        ck_assert_ptr_nonnull(buf);
        fill_counting(dt, buf, 8);
        hlr_tensor *t = hlr_tensor_wrap(dt, 2, shape, buf);
        ck_assert_msg(t != NULL, "hlr_tensor_wrap(%s) failed: %s", dtype_name(dt), hlr_last_error());
        ck_assert_ptr_eq(hlr_tensor_data(t), buf);
        ck_assert_int_eq(hlr_tensor_numel(t), 8);
        /* Writes through the tensor reach the caller's buffer... */
        if (dt == HLR_I32)
            hlr_tensor_i32(t)[5] = -77;
        else
            hlr_tensor_f32(t)[5] = -77.5f;
        double want = dt == HLR_I32 ? -77.0 : -77.5;
        ck_assert_msg(element(dt, buf, 5) == want, "%s buffer element 5 is %g after a write through the tensor, "
                      "expected %g", dtype_name(dt), element(dt, buf, 5), want);
        /* ...and the caller's writes are seen by the tensor. */
        if (dt == HLR_I32)
            ((int32_t *)buf)[0] = 42;
        else
            ((float *)buf)[0] = 42.0f;
        ck_assert_msg(element(dt, hlr_tensor_data(t), 0) == 42.0, "%s tensor element 0 is %g after the caller "
                      "wrote 42 into the buffer", dtype_name(dt), element(dt, hlr_tensor_data(t), 0));
        hlr_tensor_free(t);
        /* The buffer is still ours: readable, writable and freeable once. */
        fill_counting(dt, buf, 8);
        ck_assert(element(dt, buf, 7) == 8.0);
        free(buf);
    }
}
END_TEST

START_TEST(test_tensor_wrap_of_a_stack_buffer_is_not_freed)
{
    int32_t buf[3] = {10, 20, 30};
    int64_t shape[] = {3};
    hlr_tensor *t = hlr_tensor_wrap(HLR_I32, 1, shape, buf);
    ck_assert_msg(t != NULL, "hlr_tensor_wrap failed: %s", hlr_last_error());
    ck_assert_int_eq(hlr_tensor_i32(t)[2], 30);
    hlr_tensor_free(t); /* freeing a stack buffer would crash or be reported by ASan */
    ck_assert_int_eq(buf[0] + buf[1] + buf[2], 60);
}
END_TEST

START_TEST(test_tensor_scalar_has_ndim_0_and_one_element)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        hlr_dtype dt = all_dtypes[k];
        union {
            float f;
            int32_t i;
        } v, w;
        fill_counting(dt, &v, 1);
        fill_counting(dt, &w, 1);
        /* A NULL shape is fine when ndim is 0. */
        hlr_tensor *ts[3] = {hlr_tensor_new(dt, 0, NULL), hlr_tensor_from(dt, 0, NULL, &v),
                             hlr_tensor_wrap(dt, 0, NULL, &w)};
        for (int m = 0; m < 3; m++) {
            ck_assert_msg(ts[m] != NULL, "%s(%s, ndim 0) failed: %s", maker_names[m], dtype_name(dt),
                          hlr_last_error());
            ck_assert_int_eq(hlr_tensor_ndim(ts[m]), 0);
            ck_assert_int_eq(hlr_tensor_numel(ts[m]), 1);
            ck_assert_int_eq(hlr_tensor_dim(ts[m], 0), 0);
            ck_assert_int_eq(hlr_tensor_dim(ts[m], -1), 0);
        }
        ck_assert(element(dt, hlr_tensor_data(ts[0]), 0) == 0.0);
        ck_assert(element(dt, hlr_tensor_data(ts[1]), 0) == 1.0);
        ck_assert_ptr_eq(hlr_tensor_data(ts[2]), &w);
        for (int m = 0; m < 3; m++)
            hlr_tensor_free(ts[m]);
    }
}
END_TEST

START_TEST(test_tensor_accepts_exactly_max_dims)
{
    int64_t shape[HLR_MAX_DIMS];
    for (int i = 0; i < HLR_MAX_DIMS; i++)
        shape[i] = i % 3 == 0 ? 2 : 1;
    int64_t numel = 1;
    for (int i = 0; i < HLR_MAX_DIMS; i++)
        numel *= shape[i];
    hlr_tensor *t = hlr_tensor_new(HLR_F32, HLR_MAX_DIMS, shape);
    ck_assert_msg(t != NULL, "hlr_tensor_new with %d dims failed: %s", HLR_MAX_DIMS, hlr_last_error());
    ck_assert_int_eq(hlr_tensor_ndim(t), HLR_MAX_DIMS);
    ck_assert_int_eq(hlr_tensor_numel(t), numel);
    for (int i = 0; i < HLR_MAX_DIMS; i++)
        ck_assert_msg(hlr_tensor_dim(t, i) == shape[i], "dim %d is %lld, expected %lld", i,
                      (long long)hlr_tensor_dim(t, i), (long long)shape[i]);
    hlr_tensor_free(t);
}
END_TEST

/* ---- construction failures: NULL and a message naming the problem ---- */

/* Run one invalid request through all three constructors and both dtypes. */
static void expect_all_constructors_fail(hlr_dtype dt, int ndim, const int64_t *shape, const char *fragment)
{
    float buf[64] = {0};
    for (int m = 0; m < 3; m++) {
        hlr_tensor *t = make(m, dt, ndim, shape, buf);
        ck_assert_msg(t == NULL, "%s(dtype %d, ndim %d) succeeded, expected NULL", maker_names[m], (int)dt, ndim);
        ck_assert_error_mentions(maker_names[m]);
        ck_assert_error_mentions(fragment);
    }
}

START_TEST(test_tensor_rejects_unknown_dtype)
{
    int64_t shape[] = {2};
    expect_all_constructors_fail((hlr_dtype)2, 1, shape, "dtype 2");
    expect_all_constructors_fail((hlr_dtype)-1, 1, shape, "dtype -1");
}
END_TEST

START_TEST(test_tensor_rejects_ndim_outside_0_to_max_dims)
{
    int64_t shape[HLR_MAX_DIMS + 1];
    for (int i = 0; i <= HLR_MAX_DIMS; i++)
        shape[i] = 1;
    for (int k = 0; k < NUM_DTYPES; k++) {
        expect_all_constructors_fail(all_dtypes[k], -1, shape, "ndim -1");
        expect_all_constructors_fail(all_dtypes[k], HLR_MAX_DIMS + 1, shape, "ndim");
        expect_all_constructors_fail(all_dtypes[k], INT_MIN, shape, "ndim");
    }
}
END_TEST

START_TEST(test_tensor_rejects_null_shape_with_dims)
{
    for (int k = 0; k < NUM_DTYPES; k++)
        expect_all_constructors_fail(all_dtypes[k], 2, NULL, "shape is NULL");
}
END_TEST

START_TEST(test_tensor_rejects_dimension_below_1)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        int64_t zero[] = {3, 0, 2};
        expect_all_constructors_fail(all_dtypes[k], 3, zero, "dimension 1 is 0");
        int64_t negative[] = {-4};
        expect_all_constructors_fail(all_dtypes[k], 1, negative, "dimension 0 is -4");
        int64_t last[] = {2, 2, 2, INT64_MIN};
        expect_all_constructors_fail(all_dtypes[k], 4, last, "dimension 3");
    }
}
END_TEST

START_TEST(test_tensor_rejects_size_overflow)
{
    for (int k = 0; k < NUM_DTYPES; k++) {
        int64_t square[] = {(int64_t)1 << 40, (int64_t)1 << 40};
        expect_all_constructors_fail(all_dtypes[k], 2, square, "overflow");
        int64_t wide[] = {INT64_MAX, 2};
        expect_all_constructors_fail(all_dtypes[k], 2, wide, "overflow");
        /* Fits in int64 as an element count, but not as a byte count. */
        int64_t bytes[] = {(int64_t)1 << 62};
        expect_all_constructors_fail(all_dtypes[k], 1, bytes, "overflow");
        int64_t many[] = {1 << 16, 1 << 16, 1 << 16, 1 << 16};
        expect_all_constructors_fail(all_dtypes[k], 4, many, "overflow");
    }
}
END_TEST

START_TEST(test_tensor_from_and_wrap_reject_null_data)
{
    int64_t shape[] = {2, 2};
    for (int k = 0; k < NUM_DTYPES; k++) {
        hlr_dtype dt = all_dtypes[k];
        ck_assert_ptr_null(hlr_tensor_from(dt, 2, shape, NULL));
        ck_assert_error_mentions("hlr_tensor_from");
        ck_assert_error_mentions("data is NULL");
        ck_assert_ptr_null(hlr_tensor_wrap(dt, 2, shape, NULL));
        ck_assert_error_mentions("hlr_tensor_wrap");
        ck_assert_error_mentions("data is NULL");
        /* Even a scalar needs its one element. */
        ck_assert_ptr_null(hlr_tensor_from(dt, 0, NULL, NULL));
        ck_assert_error_mentions("data is NULL");
        ck_assert_ptr_null(hlr_tensor_wrap(dt, 0, NULL, NULL));
        ck_assert_error_mentions("data is NULL");
    }
}
END_TEST

/* ---- shape queries and typed access ---- */

START_TEST(test_tensor_dim_counts_negative_index_from_the_end)
{
    int64_t shape[] = {2, 3, 5, 7};
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 4, shape);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(hlr_tensor_dim(t, i) == shape[i], "dim(%d) = %lld, expected %lld", i,
                      (long long)hlr_tensor_dim(t, i), (long long)shape[i]);
        ck_assert_msg(hlr_tensor_dim(t, i - 4) == shape[i], "dim(%d) = %lld, expected %lld", i - 4,
                      (long long)hlr_tensor_dim(t, i - 4), (long long)shape[i]);
    }
    const int outside[] = {4, 5, -5, -6, INT_MAX, INT_MIN, INT_MIN + 3};
    for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++)
        ck_assert_msg(hlr_tensor_dim(t, outside[k]) == 0, "dim(%d) = %lld, expected 0 (out of range)", outside[k],
                      (long long)hlr_tensor_dim(t, outside[k]));
    ck_assert_int_eq(hlr_tensor_numel(t), 210);
    hlr_tensor_free(t);
}
END_TEST

START_TEST(test_tensor_queries_on_null_give_0_and_dtype_minus_1)
{
    ck_assert_int_eq(hlr_tensor_ndim(NULL), 0);
    ck_assert_int_eq(hlr_tensor_dim(NULL, 0), 0);
    ck_assert_int_eq(hlr_tensor_dim(NULL, -1), 0);
    ck_assert_int_eq(hlr_tensor_numel(NULL), 0);
    ck_assert_int_eq(hlr_tensor_dtype(NULL), HLR_DTYPE_NONE);
    ck_assert_int_eq(HLR_DTYPE_NONE, -1); /* the value the getters had before they returned hlr_dtype */
    ck_assert_ptr_null(hlr_tensor_data(NULL));
    ck_assert_ptr_null(hlr_tensor_f32(NULL));
    ck_assert_error_mentions("hlr_tensor_f32");
    ck_assert_error_mentions("NULL");
    ck_assert_ptr_null(hlr_tensor_i32(NULL));
    ck_assert_error_mentions("hlr_tensor_i32");
    ck_assert_error_mentions("NULL");
}
END_TEST

START_TEST(test_tensor_typed_access_refuses_the_other_dtype)
{
    int64_t shape[] = {3};
    hlr_tensor *ti = hlr_tensor_new(HLR_I32, 1, shape);
    hlr_tensor *tf = hlr_tensor_new(HLR_F32, 1, shape);
    ck_assert_ptr_nonnull(ti);
    ck_assert_ptr_nonnull(tf);

    ck_assert_ptr_null(hlr_tensor_f32(ti));
    ck_assert_error_mentions("hlr_tensor_f32");
    ck_assert_error_mentions("int32");
    ck_assert_ptr_null(hlr_tensor_i32(tf));
    ck_assert_error_mentions("hlr_tensor_i32");
    ck_assert_error_mentions("float32");

    ck_assert_ptr_eq(hlr_tensor_i32(ti), hlr_tensor_data(ti));
    ck_assert_ptr_eq(hlr_tensor_f32(tf), hlr_tensor_data(tf));
    hlr_tensor_free(ti);
    hlr_tensor_free(tf);
}
END_TEST

START_TEST(test_tensor_free_null_is_a_noop)
{
    hlr_tensor_free(NULL);
    /* Still usable afterwards. */
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 0, NULL);
    ck_assert_ptr_nonnull(t);
    hlr_tensor_free(t);
}
END_TEST

/* ---- core: versions and status names ---- */

START_TEST(test_version_matches_the_header)
{
    ck_assert_str_eq(hlr_version(), HLR_VERSION_STRING);
    ck_assert_int_eq(hlr_version_number(), HLR_VERSION_NUMBER);
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", HLR_VERSION_MAJOR, HLR_VERSION_MINOR, HLR_VERSION_PATCH);
    ck_assert_str_eq(HLR_VERSION_STRING, expect);
    ck_assert_int_eq(HLR_VERSION_NUMBER, HLR_VERSION_MAJOR * 10000 + HLR_VERSION_MINOR * 100 + HLR_VERSION_PATCH);
}
END_TEST

START_TEST(test_strerror_names_every_code_distinctly)
{
    const hlr_status codes[] = {HLR_OK,    HLR_EINVAL,   HLR_ENOMEM,       HLR_ESHAPE,   HLR_EIO,       HLR_EFORMAT,
                                HLR_ESTATE, HLR_ENOTFOUND, HLR_EUNSUPPORTED, HLR_ENUMERIC, HLR_ECANCELLED};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = hlr_strerror(codes[i]);
        ck_assert_msg(s != NULL && s[0] != '\0', "hlr_strerror(%d) is empty", (int)codes[i]);
        ck_assert_msg(strcmp(s, "unknown status") != 0, "hlr_strerror(%d) is \"unknown status\"", (int)codes[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, hlr_strerror(codes[j])) != 0, "hlr_strerror(%d) and hlr_strerror(%d) are both "
                          "\"%s\"", (int)codes[i], (int)codes[j], s);
    }
    /* The header's own example. */
    ck_assert_str_eq(hlr_strerror(HLR_EINVAL), "invalid argument");
    /* Codes are never renumbered. */
    ck_assert_int_eq(HLR_OK, 0);
    ck_assert_int_eq(HLR_EINVAL, -1);
    ck_assert_int_eq(HLR_ECANCELLED, -10);
}
END_TEST

START_TEST(test_strerror_of_unlisted_value_is_unknown_status)
{
    const int others[] = {1, 2, -11, -100, 12345, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert_msg(strcmp(hlr_strerror((hlr_status)others[i]), "unknown status") == 0,
                      "hlr_strerror(%d) = \"%s\", expected \"unknown status\"", others[i],
                      hlr_strerror((hlr_status)others[i]));
}
END_TEST

/* ---- core: the thread-local error message ---- */

typedef struct thread_report {
    char before[512]; /* the new thread's message before anything failed in it */
    char after[512];  /* after its own failure */
    int got_null;
} thread_report;

static void *fail_in_thread(void *arg)
{
    thread_report *r = arg;
    snprintf(r->before, sizeof r->before, "%s", hlr_last_error());
    int64_t shape[] = {2};
    hlr_tensor *t = hlr_tensor_new((hlr_dtype)9, 1, shape);
    r->got_null = t == NULL;
    hlr_tensor_free(t);
    snprintf(r->after, sizeof r->after, "%s", hlr_last_error());
    return NULL;
}

START_TEST(test_last_error_is_thread_local)
{
    ck_assert_ptr_null(hlr_tensor_new(HLR_F32, -3, NULL));
    char mine[512];
    snprintf(mine, sizeof mine, "%s", hlr_last_error());
    ck_assert_msg(strstr(mine, "ndim -3") != NULL, "main thread message \"%s\" does not mention ndim -3", mine);

    thread_report r;
    memset(&r, 0, sizeof r);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fail_in_thread, &r), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);

    ck_assert_msg(r.before[0] == '\0', "a new thread starts with message \"%s\", expected \"\"", r.before);
    ck_assert(r.got_null);
    ck_assert_msg(strstr(r.after, "dtype 9") != NULL, "thread message \"%s\" does not mention dtype 9", r.after);
    ck_assert_msg(strcmp(hlr_last_error(), mine) == 0, "main thread message changed from \"%s\" to \"%s\" by a "
                  "failure in another thread", mine, hlr_last_error());
}
END_TEST

START_TEST(test_last_error_survives_a_later_success)
{
    ck_assert_ptr_null(hlr_tensor_from(HLR_I32, 1, NULL, NULL));
    char msg[512];
    snprintf(msg, sizeof msg, "%s", hlr_last_error());
    ck_assert_msg(msg[0] != '\0', "a failure left an empty message");
    hlr_tensor *t = hlr_tensor_new(HLR_I32, 0, NULL);
    ck_assert_ptr_nonnull(t);
    hlr_tensor_free(t);
    ck_assert_msg(strcmp(hlr_last_error(), msg) == 0, "a successful call changed the message from \"%s\" to \"%s\"",
                  msg, hlr_last_error());
}
END_TEST

/* ---- core: the thread count ---- */

START_TEST(test_set_num_threads_rejects_out_of_range_and_restores)
{
    int before = hlr_get_num_threads();
    ck_assert_msg(before >= 1 && before <= 1024, "hlr_get_num_threads() = %d, expected 1..1024", before);

    const int bad[] = {0, -1, 1025, 2000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_status(hlr_set_num_threads(bad[i]), HLR_EINVAL);
        char want[32];
        snprintf(want, sizeof want, "%d", bad[i]);
        ck_assert_error_mentions(want);
        ck_assert_msg(hlr_get_num_threads() == before, "rejected hlr_set_num_threads(%d) changed the count from %d "
                      "to %d", bad[i], before, hlr_get_num_threads());
    }

    ck_assert_ok(hlr_set_num_threads(1));
    ck_assert_int_eq(hlr_get_num_threads(), 1);
    ck_assert_ok(hlr_set_num_threads(before));
    ck_assert_int_eq(hlr_get_num_threads(), before);
}
END_TEST

/* ---- core: the log callback ---- */

typedef struct log_record {
    int calls;
    int debug_calls;
    hlr_log_level level;
    char message[512];
} log_record;

static void record_log(hlr_log_level level, const char *message, void *user)
{
    log_record *r = user;
    r->calls++;
    if (level == HLR_LOG_DEBUG)
        r->debug_calls++;
    r->level = level;
    snprintf(r->message, sizeof r->message, "%s", message ? message : "(null)");
}

START_TEST(test_log_callback_receives_failures_at_debug_level)
{
    log_record rec;
    memset(&rec, 0, sizeof rec);
    hlr_set_log_callback(record_log, &rec);

    int64_t shape[] = {4, 0};
    hlr_tensor *t = hlr_tensor_new(HLR_F32, 2, shape);
    int calls = rec.calls, debug_calls = rec.debug_calls;
    hlr_log_level level = rec.level;
    char logged[512], last[512];
    snprintf(logged, sizeof logged, "%s", rec.message);
    snprintf(last, sizeof last, "%s", hlr_last_error());
    hlr_set_log_callback(NULL, NULL); /* remove it before any assertion can leave the test */

    ck_assert_ptr_null(t);
    ck_assert_msg(calls >= 1, "the failure reached the callback %d times, expected at least once", calls);
    ck_assert_msg(debug_calls >= 1 && level == HLR_LOG_DEBUG, "the failure was logged at level %d, expected "
                  "HLR_LOG_DEBUG (%d)", (int)level, (int)HLR_LOG_DEBUG);
    ck_assert_msg(strcmp(logged, last) == 0, "logged \"%s\", but hlr_last_error() is \"%s\"", logged, last);

    /* Once removed, failures are silent again. */
    ck_assert_ptr_null(hlr_tensor_new(HLR_F32, 2, shape));
    ck_assert_msg(rec.calls == calls, "the callback was called %d times after removal", rec.calls - calls);
}
END_TEST

Suite *suite_tensor(void)
{
    Suite *s = suite_create("tensor");

    TCase *tc = tcase_create("construct");
    tcase_add_test(tc, test_tensor_new_is_zero_filled_for_every_dtype);
    tcase_add_test(tc, test_tensor_from_copies_the_source_for_every_dtype);
    tcase_add_test(tc, test_tensor_wrap_shares_the_buffer_and_never_frees_it);
    tcase_add_test(tc, test_tensor_wrap_of_a_stack_buffer_is_not_freed);
    tcase_add_test(tc, test_tensor_scalar_has_ndim_0_and_one_element);
    tcase_add_test(tc, test_tensor_accepts_exactly_max_dims);
    suite_add_tcase(s, tc);

    tc = tcase_create("construct_errors");
    tcase_add_test(tc, test_tensor_rejects_unknown_dtype);
    tcase_add_test(tc, test_tensor_rejects_ndim_outside_0_to_max_dims);
    tcase_add_test(tc, test_tensor_rejects_null_shape_with_dims);
    tcase_add_test(tc, test_tensor_rejects_dimension_below_1);
    tcase_add_test(tc, test_tensor_rejects_size_overflow);
    tcase_add_test(tc, test_tensor_from_and_wrap_reject_null_data);
    suite_add_tcase(s, tc);

    tc = tcase_create("queries");
    tcase_add_test(tc, test_tensor_dim_counts_negative_index_from_the_end);
    tcase_add_test(tc, test_tensor_queries_on_null_give_0_and_dtype_minus_1);
    tcase_add_test(tc, test_tensor_typed_access_refuses_the_other_dtype);
    tcase_add_test(tc, test_tensor_free_null_is_a_noop);
    suite_add_tcase(s, tc);

    tc = tcase_create("core");
    tcase_add_test(tc, test_version_matches_the_header);
    tcase_add_test(tc, test_strerror_names_every_code_distinctly);
    tcase_add_test(tc, test_strerror_of_unlisted_value_is_unknown_status);
    tcase_add_test(tc, test_last_error_is_thread_local);
    tcase_add_test(tc, test_last_error_survives_a_later_success);
    tcase_add_test(tc, test_set_num_threads_rejects_out_of_range_and_restores);
    tcase_add_test(tc, test_log_callback_receives_failures_at_debug_level);
    suite_add_tcase(s, tc);

    return s;
}
