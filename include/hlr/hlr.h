/**
 * @file hlr.h
 * @brief The public interface of libhlr, a C library for training and
 * running neural networks for handwriting recognition.
 *
 * This header is the manual: each function's comment says what it does,
 * what it returns, which errors it reports and when, who owns what, and
 * which threads may call it.  `make docs` renders it with Doxygen, one page
 * per area (see the topics list), and fails on any undocumented function,
 * parameter or member.
 *
 * Overview
 * --------
 * libhlr trains and runs dense, convolutional and recurrent networks on the
 * CPU.  Every object is an opaque handle created by a constructor and
 * released by a matching hlr_*_free() function:
 *
 * - hlr_tensor: an n-dimensional array of float32 or int32 values
 * - hlr_layer: one layer (dense, ReLU, dropout, ...); owned by a model once
 *   added to it
 * - hlr_model: a sequential list of layers that trains, evaluates and
 *   predicts
 * - hlr_optimizer: SGD (momentum, Nesterov), Adam or AdamW, with gradient
 *   clipping and a learning-rate schedule
 * - hlr_model_info: what a model file holds, read without loading the model
 * - hlr_metadata: a model's class names, data set, strings and history
 *   (borrowed from its model or hlr_model_info, never freed)
 * - hlr_dataset: a set of samples with int32 class labels or label
 *   sequences (MNIST idx files, caller arrays, pictures of lines)
 *
 * Data layout: float32, contiguous, row-major, batch first.  Images are
 * (N, C, H, W); a dense layer sees (N, features); class labels are int32.
 * Shapes passed to hlr_model_build() leave out the batch dimension.
 *
 * A typical program (train: an hlr_dataset, e.g. from hlr_dataset_load_idx;
 * `make test` compiles this example, tests/docs/check_snippets.py):
 *
 * @code
 *   hlr_model *m = hlr_model_new(42);
 *   hlr_model_add(m, hlr_flatten());
 *   hlr_model_add(m, hlr_dense(784, 256, 1));
 *   hlr_model_add(m, hlr_relu());
 *   hlr_model_add(m, hlr_dense(256, 10, 1));
 *   int64_t in[] = {1, 28, 28};
 *   if (hlr_model_build(m, 3, in) != HLR_OK)  // also after a failed add
 *       fprintf(stderr, "%s\n", hlr_last_error());
 *   hlr_optimizer *opt = hlr_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f);
 *   hlr_fit_options fo;
 *   hlr_fit_options_default(&fo);
 *   if (hlr_model_fit(m, opt, train, &fo) != HLR_OK)
 *       fprintf(stderr, "%s\n", hlr_last_error());
 *   hlr_metrics met;
 *   if (hlr_model_evaluate(m, train, 256, 1, &met, NULL) == HLR_OK)
 *       printf("accuracy %.2f%%\n", 100 * met.accuracy);
 *   hlr_optimizer_free(opt);
 *   hlr_model_free(m);
 * @endcode
 *
 * Errors
 * ------
 * A function that can fail returns an hlr_status (HLR_OK, zero, on success;
 * a negative code otherwise) or, for constructors, NULL.  In both cases it
 * leaves a specific message for the calling thread, read with
 * hlr_last_error().  The library never prints, exits or aborts because of
 * anything a caller passes in; it logs only through a callback the caller
 * installs with hlr_set_log_callback().
 *
 * Ownership
 * ---------
 * Each function says who owns what it returns.  "Owned" means the caller
 * frees it with the named function; "borrowed" means the pointer stays valid
 * until the named event and must not be freed.  Every hlr_*_free(NULL) is a
 * no-op.
 *
 * Threads
 * -------
 * Distinct handles may be used from distinct threads at the same time.  One
 * handle must not be used from two threads at once unless its function says
 * so.  The error message is thread-local.  hlr_set_num_threads() is global:
 * it sizes the library's own thread pool, inside which OpenBLAS runs
 * single-threaded.  To serve one model from several threads, give each its
 * own hlr_model_clone_shared().
 */
#ifndef HLR_HLR_H
#define HLR_HLR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Marks the functions libhlr exports.  While the library itself is built
 * (HLR_BUILDING_LIBRARY, with -fvisibility=hidden) it gives them default
 * visibility, so only they leave libhlr.so; for a program that includes
 * this header it expands to nothing.
 */
#if defined(HLR_BUILDING_LIBRARY) && defined(__GNUC__)
#define HLR_API __attribute__((visibility("default")))
#else
#define HLR_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */
/** @defgroup versions Versions
 * @{ */

/** Major version of this header: the 0 of "0.1.0". */
#define HLR_VERSION_MAJOR 0
/** Minor version of this header: the 1 of "0.1.0". */
#define HLR_VERSION_MINOR 1
/** Patch version of this header: the last 0 of "0.1.0". */
#define HLR_VERSION_PATCH 0
/**
 * Version of this header as a string, "MAJOR.MINOR.PATCH".
 * Compare it with hlr_version() to detect a header/library mismatch.
 */
#define HLR_VERSION_STRING "0.1.0"
/**
 * One number that grows with every release.
 * It is `10000 * major + 100 * minor + patch` (100 for 0.1.0); compare it
 * with hlr_version_number().
 */
#define HLR_VERSION_NUMBER (HLR_VERSION_MAJOR * 10000 + HLR_VERSION_MINOR * 100 + HLR_VERSION_PATCH)

/**
 * The version of the library actually loaded.
 *
 * @return a static string such as "0.1.0": the HLR_VERSION_STRING the
 *   library was built with.  Compare it with HLR_VERSION_STRING to detect
 *   a header/library mismatch.
 * @ownership static storage; never free it.
 * @threadsafety safe.
 */
HLR_API const char *hlr_version(void);

/**
 * HLR_VERSION_NUMBER of the library actually loaded.
 *
 * @return `10000 * major + 100 * minor + patch` of the library the program
 *   runs with; compare it with HLR_VERSION_NUMBER to detect a
 *   header/library mismatch.
 * @threadsafety safe.
 */
HLR_API int hlr_version_number(void);

/** @} */

/* ------------------------------------------------------------------------ */
/* Status codes and messages                                                 */
/* ------------------------------------------------------------------------ */
/** @defgroup errors Status codes, messages and logging
 *
 * A libhlr function that can fail returns an hlr_status, HLR_OK (zero) on
 * success and a negative code otherwise, or, for a constructor, NULL.  In
 * both cases it leaves a specific message for the calling thread, read with
 * hlr_last_error(), and the code, read with hlr_last_status(); both are
 * thread-local, and a later success does not clear them.  hlr_strerror()
 * names a code.  hlr_status is the library's status codes table: a
 * published code is never renumbered or reused, and a retired code stays
 * listed as obsolete.
 *
 * The library never prints, exits or aborts because of anything a caller
 * passes in; it logs only through a callback the caller installs with
 * hlr_set_log_callback().
 * @{ */

/**
 * Status codes: what a function returns, and hlr_last_status() reports.
 * HLR_OK is zero, errors are negative.  A published value is never
 * renumbered or reused; a retired code stays listed as obsolete.
 * hlr_strerror() names each code.
 */
typedef enum hlr_status {
    HLR_OK = 0,           /**< Success: the call did what was asked.  Also
                               what hlr_last_status() returns while nothing
                               has failed yet in the thread. */
    HLR_EINVAL = -1,      /**< An argument is NULL, out of range or
                               inconsistent with another, or a tensor is of
                               the wrong dtype (hlr_tensor_f32() on an int32
                               tensor, say).  Any function that checks its
                               arguments can return it. */
    HLR_ENOMEM = -2,      /**< Memory could not be allocated, or the size
                               asked for overflows.  Any function that
                               allocates can return it: constructors,
                               hlr_model_build(), training, file loading. */
    HLR_ESHAPE = -3,      /**< Tensor or layer shapes do not fit together:
                               a layer cannot take the shape it is given
                               when its model is built; an input, target,
                               output or gradient tensor has the wrong shape
                               for the model, loss or decoder; a data set's
                               samples or classes do not match the model; or
                               a caller's output buffer is too small for the
                               result. */
    HLR_EIO = -4,         /**< A file could not be opened, read or written:
                               a path that is missing, unreadable or not a
                               regular file (model files, idx data sets,
                               images, label files), a failed read or seek,
                               or a failed write of a model file or of
                               hlr_model_fit()'s CSV log. */
    HLR_EFORMAT = -5,     /**< A file's contents are malformed or truncated:
                               a damaged or truncated model file (bad CRC,
                               unknown layer type, an architecture that does
                               not build or does not match its tensors), an
                               idx file with a wrong magic number or sizes,
                               an image that cannot be decoded or is too
                               large, a malformed line of a labels file. */
    HLR_ESTATE = -6,      /**< The call is not valid in the object's state,
                               for instance: the model is not built (or, for
                               hlr_model_add() and hlr_model_build(), is
                               built already); the layer belongs to another
                               model; hlr_model_backward() without a
                               training forward pass first; training or
                               gradients asked of an inference-only clone
                               from hlr_model_clone_shared(); an optimizer
                               that already trains another model; a layer's
                               parameters before its model is built. */
    HLR_ENOTFOUND = -7,   /**< A named item does not exist:
                               hlr_layer_param() or hlr_layer_grad() with a
                               name the layer has no parameter of, or
                               hlr_ctc_decode() with a lexicon none of whose
                               words fits the steps within the beam. */
    HLR_EUNSUPPORTED = -8,/**< A valid request the library does not
                               implement: a model file of a newer format or
                               needing features this library lacks;
                               hlr_model_save() of a model beyond the file
                               format's limits or with a layer type that
                               cannot be saved; class weights with label
                               smoothing, or class weights or augmentation
                               with the CTC loss; input gradients of a model
                               that takes token ids; hlr_model_clone_shared()
                               of a layer that cannot be rebuilt from its
                               configuration. */
    HLR_ENUMERIC = -9,    /**< A loss or gradient became NaN or infinite:
                               the loss in hlr_model_train_batch() (the
                               parameters are then left unchanged) or
                               hlr_model_fit(), or the gradient norm when
                               hlr_optimizer_step() clips gradients. */
    HLR_ECANCELLED = -10  /**< A caller's callback asked to stop:
                               hlr_model_fit() when its epoch or batch
                               callback returns nonzero. */
} hlr_status;

/**
 * The name of a status code, such as "invalid argument" for HLR_EINVAL.
 *
 * @param code  the code; any value is accepted.
 * @return a static string ("success" for HLR_OK); "unknown status" for a
 *   value not listed in hlr_status.
 * @ownership static storage; never free it.
 * @threadsafety safe.
 */
HLR_API const char *hlr_strerror(hlr_status code);

/**
 * The message of the last failure in this thread.
 * For example "dense (layer 2): input has 780 features, layer expects 784".
 *
 * @return a NUL-terminated string of at most 511 bytes (a longer message
 *   is cut short), "" when nothing has failed yet in this thread.  A
 *   successful call does not clear it.
 * @ownership borrowed, valid until the next libhlr call in the same thread;
 *   never free it.
 * @threadsafety the message is thread-local.
 */
HLR_API const char *hlr_last_error(void);

/**
 * The code of the last failure in this thread.
 * With it a constructor's NULL can be told apart: HLR_EINVAL or HLR_ENOMEM,
 * say.  Like the message, a success does not clear it.
 *
 * @return the code of the last failure, HLR_OK when nothing has failed yet
 *   in this thread.
 * @threadsafety thread-local.
 */
HLR_API hlr_status hlr_last_status(void);

/** Log levels passed to the log callback. */
typedef enum hlr_log_level {
    HLR_LOG_DEBUG = 0, /**< Detail for debugging: every failure is logged at
                            this level, with the message hlr_last_error()
                            then returns. */
    HLR_LOG_INFO = 1,  /**< Information (this version logs none). */
    HLR_LOG_WARN = 2   /**< A warning (this version logs none). */
} hlr_log_level;

/**
 * The type of the function that receives the library's log messages.
 * Install one with hlr_set_log_callback().  It is called on the thread
 * whose libhlr call logs the message, possibly on several threads at once.
 *
 * @param level    the message's severity; this version logs each failure,
 *   at HLR_LOG_DEBUG.
 * @param message  the text: NUL-terminated, never NULL, at most 511 bytes
 *   (a longer message is cut short); for a failure, the text
 *   hlr_last_error() then returns.  Borrowed, valid only during the call:
 *   copy it to keep it.
 * @param user     the user pointer given to hlr_set_log_callback(),
 *   passed through unchanged.
 */
typedef void (*hlr_log_fn)(hlr_log_level level, const char *message, void *user);

/**
 * Install (or, with fn NULL, remove) the function that receives the
 * library's log messages.  Without one the library is silent.  There is one
 * callback for the whole process; a call replaces the previous one.
 *
 * @param fn    the callback, or NULL to remove it.
 * @param user  passed unchanged to every call of fn; may be NULL.
 * @ownership the library keeps fn and user until the next call; it never
 *   dereferences or frees user, which must stay valid while fn is installed.
 * @threadsafety call it before using the library from several threads
 *   (it sets process-wide state without a lock); the callback itself may be
 *   called from any thread that calls libhlr.
 */
HLR_API void hlr_set_log_callback(hlr_log_fn fn, void *user);

/** @} */

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */
/* ------------------------------------------------------------------------ */
/** @defgroup threads Threads
 * @{ */

/**
 * Set the number of threads libhlr's arithmetic may use.
 * They form the library's own pool, the calling thread included.  OpenBLAS
 * runs single-threaded inside it, so a call into libhlr never runs more
 * arithmetic threads than this.  The pool runs one job at a time: another
 * application thread that calls in while it is busy runs its loops serially
 * on itself.  The pool holds at most 64 threads (63 workers and the
 * caller): a larger n is accepted, and hlr_get_num_threads() reports it,
 * but 64 run.  If the system refuses to start a worker, the pool runs with
 * fewer, silently.
 *
 * The default is the HLR_NUM_THREADS environment variable when it is a
 * whole number from 1 to 1024 (other values are ignored), else the number
 * of online processors.  The variable is read once, when the first model is
 * made or the thread count is first set or read; until then, arithmetic
 * outside a model (hlr_ctc_loss(), say) runs on the calling thread alone.
 * Results are bit-identical for the same seed and thread count (other
 * thread counts agree to float rounding).
 *
 * @param n  the thread count, 1 to 1024; 1 runs all arithmetic on the
 *   calling thread.
 * @return HLR_OK, or HLR_EINVAL.
 * @errors HLR_EINVAL when n is below 1 or above 1024; the count in force
 *   is then unchanged.
 * @threadsafety global; call it while no other thread is inside libhlr.
 */
HLR_API hlr_status hlr_set_num_threads(int n);

/**
 * The thread count now in force.
 *
 * @return the count last set with hlr_set_num_threads(), else the default
 *   described there; at least 1.  It may exceed the 64 threads the pool
 *   actually runs.
 * @threadsafety safe, except while another thread is inside
 *   hlr_set_num_threads().
 */
HLR_API int hlr_get_num_threads(void);

/** @} */

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */
/** @defgroup tensors Tensors
 *
 * A tensor is an n-dimensional array of float32 or int32 values, stored
 * contiguously in row-major order.  The caller owns a tensor made by
 * hlr_tensor_new(), hlr_tensor_from() or hlr_tensor_wrap() and frees it
 * with hlr_tensor_free(); the views returned by hlr_layer_param() and
 * hlr_layer_grad() are borrowed from their layer.  The shape queries accept
 * a NULL tensor: it gives 0 (and -1 for hlr_tensor_dtype()).
 * @{ */

/** The most dimensions a tensor may have. */
#define HLR_MAX_DIMS 8

/** The type of a tensor's elements. */
typedef enum hlr_dtype {
    HLR_DTYPE_NONE = -1, /**< no type: what the getters return for a NULL handle */
    HLR_F32 = 0,         /**< float (IEEE-754 binary32) */
    HLR_I32 = 1          /**< int32_t: class labels, token ids */
} hlr_dtype;

/**
 * An n-dimensional array of float32 or int32 values (an opaque handle).
 * Its 0 to HLR_MAX_DIMS dimensions are each at least 1; its elements are
 * contiguous, in row-major order.
 */
typedef struct hlr_tensor hlr_tensor;

/**
 * A new tensor of the given type and shape, zero-filled.
 *
 * @param dtype  the element type, HLR_F32 or HLR_I32.
 * @param ndim   the number of dimensions, 0 to HLR_MAX_DIMS; 0 makes a
 *   scalar of one element.
 * @param shape  ndim sizes, each at least 1; may be NULL when ndim is 0.
 * @return the tensor, or NULL on error.
 * @errors HLR_EINVAL (bad dtype, ndim outside 0..HLR_MAX_DIMS, shape NULL
 *   with ndim above 0, a dimension below 1, total size overflowing),
 *   HLR_ENOMEM.
 * @ownership owned; free with hlr_tensor_free().  shape stays the caller's
 *   (it is copied).
 * @threadsafety safe.
 */
HLR_API hlr_tensor *hlr_tensor_new(hlr_dtype dtype, int ndim, const int64_t *shape);

/**
 * Like hlr_tensor_new(), but filled with a copy of data.
 *
 * @param dtype  the element type, HLR_F32 or HLR_I32.
 * @param ndim   the number of dimensions, 0 to HLR_MAX_DIMS.
 * @param shape  ndim sizes, each at least 1; may be NULL when ndim is 0.
 * @param data   numel elements of dtype (numel: the product of the sizes),
 *   in row-major order; not NULL.
 * @return the tensor, or NULL on error.
 * @errors as hlr_tensor_new(); HLR_EINVAL when data is NULL.
 * @ownership owned; free with hlr_tensor_free().  data and shape stay the
 *   caller's: both are copied.
 * @threadsafety safe.
 */
HLR_API hlr_tensor *hlr_tensor_from(hlr_dtype dtype, int ndim, const int64_t *shape, const void *data);

/**
 * A tensor that uses the caller's buffer without copying.
 * Writes through the tensor reach the buffer.
 *
 * @param dtype  the element type, HLR_F32 or HLR_I32.
 * @param ndim   the number of dimensions, 0 to HLR_MAX_DIMS.
 * @param shape  ndim sizes, each at least 1 (copied); may be NULL when ndim
 *   is 0.
 * @param data   the buffer, not NULL.  It must hold numel elements of dtype,
 *   suitably aligned for it, and outlive the tensor; the library can check
 *   neither.
 * @return the tensor, or NULL on error.
 * @errors as hlr_tensor_from(): HLR_EINVAL (data NULL, or as
 *   hlr_tensor_new()), HLR_ENOMEM.
 * @ownership the handle is owned (free with hlr_tensor_free()); the buffer
 *   stays the caller's and is never freed by the library.
 * @threadsafety safe.
 */
HLR_API hlr_tensor *hlr_tensor_wrap(hlr_dtype dtype, int ndim, const int64_t *shape, void *data);

/**
 * Release a tensor made by hlr_tensor_new(), hlr_tensor_from() or
 * hlr_tensor_wrap(), or returned owned by another function.
 * For a wrapped tensor only the handle is freed, not the caller's buffer.
 *
 * @param t  the tensor.  A NULL tensor, and a borrowed view returned by
 *   hlr_layer_param() or hlr_layer_grad(), are left alone.
 * @ownership takes back t, which must not be used afterwards (a borrowed
 *   view stays its layer's).
 * @threadsafety no other thread may be using t.
 */
HLR_API void hlr_tensor_free(hlr_tensor *t);

/**
 * The tensor's number of dimensions.
 *
 * @param t  the tensor, or NULL.
 * @return 0 to HLR_MAX_DIMS; 0 when t is NULL.
 * @ownership t stays the caller's.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API int hlr_tensor_ndim(const hlr_tensor *t);
/**
 * The size of dimension i.
 *
 * @param t  the tensor, or NULL.
 * @param i  the dimension, 0 to ndim - 1; a negative i counts from the end
 *   (-1 is the last).
 * @return the size, or 0 when t is NULL or i is out of range (any i, for a
 *   tensor of 0 dimensions).
 * @ownership t stays the caller's.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API int64_t hlr_tensor_dim(const hlr_tensor *t, int i);
/**
 * The tensor's number of elements: the product of its dimensions.
 *
 * @param t  the tensor, or NULL.
 * @return the element count (1 for a tensor of 0 dimensions), or 0 when t
 *   is NULL.
 * @ownership t stays the caller's.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API int64_t hlr_tensor_numel(const hlr_tensor *t);
/**
 * The type of the tensor's elements.
 *
 * @param t  the tensor, or NULL.
 * @return HLR_F32 or HLR_I32, or HLR_DTYPE_NONE (-1) when t is NULL.
 * @ownership t stays the caller's.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API hlr_dtype hlr_tensor_dtype(const hlr_tensor *t);

/**
 * The tensor's elements, row-major.
 *
 * @param t  the tensor, or NULL.
 * @return the buffer (for a wrapped tensor, the caller's buffer), or NULL
 *   when t is NULL.
 * @ownership borrowed, valid while the tensor (and, for a view, its layer)
 *   lives.
 * @threadsafety safe; several threads may query one tensor at once.  Access
 *   to the elements themselves is the caller's to synchronise.
 */
HLR_API void *hlr_tensor_data(const hlr_tensor *t);

/**
 * The elements of a float32 tensor, typed.
 *
 * @param t  the tensor, of dtype HLR_F32.
 * @return the buffer, or NULL when t is NULL or of the other dtype.
 * @errors HLR_EINVAL (t NULL or not HLR_F32), reported by hlr_last_status()
 *   and hlr_last_error().
 * @ownership borrowed, valid while the tensor (and, for a view, its layer)
 *   lives.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API float *hlr_tensor_f32(const hlr_tensor *t);
/**
 * As hlr_tensor_f32(), for an int32 tensor.
 *
 * @param t  the tensor, of dtype HLR_I32.
 * @return the buffer, or NULL when t is NULL or of the other dtype.
 * @errors HLR_EINVAL (t NULL or not HLR_I32), reported by hlr_last_status()
 *   and hlr_last_error().
 * @ownership borrowed, valid while the tensor (and, for a view, its layer)
 *   lives.
 * @threadsafety safe; several threads may query one tensor at once.
 */
HLR_API int32_t *hlr_tensor_i32(const hlr_tensor *t);

/** @} */
/* ------------------------------------------------------------------------ */
/* Layers                                                                    */
/* ------------------------------------------------------------------------ */
/** @defgroup layers Layers
 *
 * The layer constructors, the recurrent and attention layers' state
 * accessors, and what every layer shares: its type, its parameters and
 * whether optimizers train it.
 *
 * Layer constructors.  Each returns a new layer, or NULL with HLR_EINVAL
 * (impossible hyper-parameter) or HLR_ENOMEM, leaving the reason for
 * hlr_last_error().  The layer is owned by the caller until hlr_model_add()
 * takes it (hlr_model_add() takes a new layer even when it fails: it frees
 * it then); free an unused one with hlr_layer_free().  A constructor only
 * checks and records its hyper-parameters: it creates no parameters and
 * touches no global state (no random generator: hlr_model_build() creates
 * and initialises every layer's parameters from the model's own generator,
 * seeded by hlr_model_new()), so constructors may be called from any
 * thread, concurrently.  A layer whose input does not fit it is reported
 * when the model is built: hlr_model_build() fails with HLR_ESHAPE and a
 * message naming the layer.  Shapes below leave out the batch dimension N.
 * A layer's type name (hlr_layer_type()) is its constructor's name without
 * the "hlr_" prefix.
 *
 * Recurrent layers (hlr_lstm(), hlr_gru()).  A sequence is (T, F) per
 * sample, batch first: (N, T, F) with T steps of F features.  Their flags
 * combine HLR_RETURN_SEQUENCES and HLR_BIDIRECTIONAL; below, D = 1 or 2 is
 * the number of directions and H = hidden_size.
 *
 * Sequence layers (hlr_image_rows(), hlr_feature_map_rows(),
 * hlr_feature_map_columns(), hlr_seq_last(), hlr_seq_mean(),
 * hlr_seq_max(), hlr_seq_first()), so a model stays a plain list of
 * layers.  Those that reduce over steps respect the lengths of
 * hlr_model_set_lengths() (a sequence of length L has steps 0..L-1;
 * without lengths, all T).
 *
 * Transformers: hlr_multihead_attention() (flags HLR_ATTN_*),
 * hlr_layernorm(), hlr_positional_encoding() (kinds HLR_POS_*),
 * hlr_patch_embedding(), hlr_class_token(), hlr_seq_first() and the
 * composite hlr_transformer_encoder().
 * @{ */

/**
 * A layer: made by one of the constructors below, owned by the caller
 * until hlr_model_add() takes it, then by the model (hlr_model_layer()
 * borrows it back; hlr_model_free() frees it).
 */
typedef struct hlr_layer hlr_layer;

/**
 * A fully connected layer, y = x W^T + b, as torch.nn.Linear.
 * Input (in) and output (out); a (N, ..., in) input is treated as rows of
 * `in` features and gives (N, ..., out).  Parameters "weight" (out, in)
 * and, when bias != 0, "bias" (out), initialised as PyTorch's nn.Linear:
 * U(-1/sqrt(in), 1/sqrt(in)).
 *
 * @param in    input features, >= 1 (torch's in_features).
 * @param out   output features, >= 1 (torch's out_features).
 * @param bias  nonzero for a bias (torch's default, bias=True), 0 for none.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless in, out >= 1; HLR_ENOMEM; at build time
 *   HLR_ESHAPE unless the input's last dimension is `in`.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_dense(int in, int out, int bias);

/**
 * ReLU, y = max(x, 0), as torch.nn.ReLU.
 * Element-wise: any input shape, same output shape.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_relu(void);

/**
 * Leaky ReLU: y = x for x > 0, slope * x otherwise, as torch.nn.LeakyReLU.
 * Element-wise: any input shape, same output shape.  No parameters.
 *
 * @param slope  the slope for x <= 0; any finite value (PyTorch's default
 *               negative_slope is 0.01).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless slope is finite; HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_leaky_relu(float slope);

/**
 * The logistic sigmoid, y = 1 / (1 + exp(-x)), as torch.nn.Sigmoid.
 * Element-wise: any input shape, same output shape.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_sigmoid(void);

/**
 * The hyperbolic tangent, y = tanh(x), as torch.nn.Tanh.
 * Element-wise: any input shape, same output shape.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_tanh(void);

/**
 * GELU, y = x * Phi(x) with the exact normal CDF (PyTorch's default GELU).
 * Phi(x) = (1 + erf(x / sqrt(2))) / 2, as torch.nn.GELU() with
 * approximate='none' (erf computed within 3 ulp, in vectorised float
 * arithmetic).  Element-wise: any input shape, same output shape.
 * No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_gelu(void);

/**
 * Softmax over the last dimension, as torch.nn.Softmax(dim=-1).
 * Any input shape, same output shape.  For classification train with
 * HLR_LOSS_CROSS_ENTROPY on the logits instead (it fuses the softmax);
 * this layer is for models that need probabilities inside the network.
 * No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_softmax(void);

/**
 * Dropout, as torch.nn.Dropout.
 * In training, zero each element with probability p and scale the rest by
 * 1/(1-p) (inverted dropout, as PyTorch); identity in inference.  Any input
 * shape, same output shape.  Draws from the model's generator, in
 * training only.  No parameters.
 *
 * @param p  the probability of zeroing an element, 0 <= p < 1 (PyTorch's
 *           default is 0.5); 0 makes the layer the identity.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless 0 <= p < 1 (NaN included); HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state (the random draws
 *   happen in training passes, from the model's generator).
 */
HLR_API hlr_layer *hlr_dropout(float p);

/**
 * Flatten each sample: (N, d1, d2, ...) -> (N, d1*d2*...).
 * As torch.nn.Flatten(); the data do not move (no copy).  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_flatten(void);

/**
 * How hlr_conv2d() slides its kernel.  Every member's 0 is torch.nn.Conv2d's
 * default, so a compound literal names only what differs:
 * `hlr_conv2d(1, 32, &(hlr_conv2d_options){.kernel = 3, .padding = 1})`.
 */
typedef struct hlr_conv2d_options {
    int kernel;   /**< a square kernel's side, 1 to 65536 (or 0 when kernel_h and kernel_w give it) */
    int kernel_h; /**< a rectangular kernel's height, 1 to 65536; 0: kernel */
    int kernel_w; /**< its width, 1 to 65536; 0: kernel */
    int stride;   /**< step between windows, both directions, 1 to 65536; 0: 1 */
    int padding;  /**< zeros added on each side, both directions, 0 (default) to 65536 */
    int dilation; /**< spacing between kernel taps, 1 to 65536; 0: 1 */
    int groups;   /**< channel groups dividing both channel counts (groups = in_channels = out_channels
                       is a depthwise convolution); 0: 1 */
    int no_bias;  /**< nonzero: no bias (torch's bias=False); 0: a bias per output channel */
} hlr_conv2d_options;

/**
 * 2-D convolution (cross-correlation) as torch.nn.Conv2d.
 * Input (in_channels, H, W), output (out_channels, Ho, Wo) with
 * Ho = (H + 2 padding - dilation (kernel_h - 1) - 1) / stride + 1 (rounded
 * down) and likewise Wo.  Padding is zeros, the same on every side.
 * Parameters "weight" (out_channels, in_channels / groups, kernel_h,
 * kernel_w) and, unless no_bias, "bias" (out_channels), initialised as
 * torch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * fan_in = in_channels / groups * kernel_h * kernel_w.  Sequence lengths
 * (hlr_model_set_lengths()) are valid widths: the layer maps each to the
 * windows that start inside it.
 *
 * @param in_channels   input channels C, 1 to 2^20.
 * @param out_channels  output channels, 1 to 2^20.
 * @param options       the kernel's size and how it slides (read during
 *                      the call only); not NULL, since the kernel size has
 *                      no default.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL when options is NULL or gives no kernel size, unless
 *   channels, kernel, stride, dilation, groups >= 1 (after the defaults),
 *   padding >= 0, groups divides both channel counts, kernel, stride,
 *   padding, dilation <= 65536 and channels <= 2^20; HLR_ENOMEM; at build
 *   time HLR_ESHAPE unless the input is (in_channels, H, W), or when the
 *   kernel does not fit the padded input.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one); options stays the caller's.
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_conv2d(int in_channels, int out_channels, const hlr_conv2d_options *options);

/**
 * Max pooling over kernel x kernel windows of each channel.
 * As torch.nn.MaxPool2d(kernel, stride, padding) (dilation 1,
 * ceil_mode=False).  Input (C, H, W), output (C, Ho, Wo),
 * Ho = (H + 2 padding - kernel) / stride + 1 (rounded down), likewise Wo.
 * Padding counts as -inf.  Ties go to the first maximum; a window holding
 * a NaN gives NaN (the gradient goes to its last NaN), as torch.  No
 * parameters.  Sequence lengths (hlr_model_set_lengths()) are valid
 * widths: the layer maps each to the windows that start inside it.
 *
 * @param kernel   window side, 1 to 65536.
 * @param stride   step between windows, 1 to 65536; 0 means stride =
 *                 kernel (torch's default).
 * @param padding  on each side, 0 to kernel / 2 (torch's default 0).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless 1 <= kernel <= 65536, 0 <= stride <= 65536
 *   and 0 <= padding <= kernel / 2; HLR_ENOMEM; at build time HLR_ESHAPE
 *   unless the input is (C, H, W) and the window fits the padded input.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_maxpool2d(int kernel, int stride, int padding);

/**
 * Average pooling over kernel x kernel windows of each channel.
 * As torch.nn.AvgPool2d(kernel, stride, padding) with its defaults
 * (ceil_mode=False, count_include_pad=True): the padding counts in the
 * divisor, which is always kernel^2.  Shapes, parameters, lengths and
 * errors as hlr_maxpool2d().
 *
 * @param kernel   window side, 1 to 65536.
 * @param stride   step between windows, 1 to 65536; 0 means stride =
 *                 kernel (torch's default).
 * @param padding  zeros on each side, 0 to kernel / 2 (torch's default 0).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless 1 <= kernel <= 65536, 0 <= stride <= 65536
 *   and 0 <= padding <= kernel / 2; HLR_ENOMEM; at build time HLR_ESHAPE
 *   unless the input is (C, H, W) and the window fits the padded input.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_avgpool2d(int kernel, int stride, int padding);

/**
 * Max pooling over kernel_h x kernel_w windows, with a stride and padding
 * of its own on each axis: as torch.nn.MaxPool2d((kh, kw), (sh, sw),
 * (ph, pw)).  A 2 x 1 window with stride 2 x 1 halves the height and keeps
 * the width, as CRNNs pool once their columns are as few as the narrowest
 * character allows.  Ho = (H + 2 padding_h - kernel_h) / stride_h + 1, Wo
 * likewise; sequence lengths are mapped through the width's window as in
 * hlr_maxpool2d().  hlr_maxpool2d(k, s, p) is hlr_maxpool2d_hw(k, k, s, s,
 * p, p), and a model file stores a square window as before (older readers
 * load it) and a rectangle with six keys.
 *
 * @param kernel_h, kernel_w    window height and width, 1 to 65536.
 * @param stride_h, stride_w    steps, 1 to 65536; 0 means that axis's kernel.
 * @param padding_h, padding_w  on each side of that axis, 0 to its kernel / 2.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless each axis has 1 <= kernel <= 65536,
 *   0 <= stride <= 65536 and 0 <= padding <= kernel / 2; HLR_ENOMEM; at
 *   build time HLR_ESHAPE unless the input is (C, H, W) and the window fits
 *   the padded input.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_maxpool2d_hw(int kernel_h, int kernel_w, int stride_h, int stride_w, int padding_h,
                                    int padding_w);

/**
 * Average pooling over kernel_h x kernel_w windows (torch.nn.AvgPool2d with
 * pairs; the padding counts in the divisor, kernel_h kernel_w).  Arguments,
 * shapes, lengths and errors as hlr_maxpool2d_hw().
 *
 * @param kernel_h, kernel_w    window height and width, 1 to 65536.
 * @param stride_h, stride_w    steps, 1 to 65536; 0 means that axis's kernel.
 * @param padding_h, padding_w  zeros on each side of that axis, 0 to its kernel / 2.
 * @return the new layer, or NULL on error.
 * @errors as hlr_maxpool2d_hw().
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_avgpool2d_hw(int kernel_h, int kernel_w, int stride_h, int stride_w, int padding_h,
                                    int padding_w);

/**
 * Global average pooling: (C, H, W) -> (C), the mean of each channel.
 * As torch.nn.AdaptiveAvgPool2d(1) followed by a flatten.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (C, H, W).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_global_avgpool2d(void);

/**
 * Batch normalisation of (C, H, W) inputs, as torch.nn.BatchNorm2d.
 * In training, normalise each channel with the batch's mean and biased
 * variance and update running_mean / running_var (unbiased) with
 * momentum; in inference use the running statistics.  Parameters
 * "weight" (C, ones) and "bias" (C, zeros); buffers "running_mean" (C,
 * zeros) and "running_var" (C, ones), which optimizers never change.
 * Output shape = input shape.  Right after a conv2d (no ReLU between),
 * inference (hlr_model_predict(), hlr_model_evaluate(),
 * hlr_model_forward() with training 0) folds it into the convolution's
 * weights and bias, as ONNX Runtime does: the results equal the layers
 * run one by one within float rounding (about 1e-6 relative), not bit for
 * bit; hlr_model_input_gradient() and the explanations run them one by one.
 *
 * @param num_features  C, the number of channels, 1 to 2^24.
 * @param eps           added to the variance, finite and > 0 (torch's
 *                      default 1e-5).
 * @param momentum      running = (1 - momentum) running + momentum batch,
 *                      0 to 1 (torch's default 0.1; torch's
 *                      momentum=None, a cumulative average, has no
 *                      equivalent).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless 1 <= num_features <= 2^24, eps > 0 is finite
 *   and 0 <= momentum <= 1; HLR_ENOMEM; at build time HLR_ESHAPE unless
 *   the input is (num_features, H, W).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_batchnorm2d(int num_features, float eps, float momentum);

/**
 * Batch normalisation of (C) or (C, L) inputs, as torch.nn.BatchNorm1d.
 * The same as hlr_batchnorm2d(), with statistics per channel over the
 * batch (and L): parameters, buffers, training and inference as there.
 *
 * @param num_features  C, the number of channels, 1 to 2^24.
 * @param eps           added to the variance, finite and > 0 (torch's
 *                      default 1e-5).
 * @param momentum      of the running statistics, 0 to 1 (torch's
 *                      default 0.1).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless 1 <= num_features <= 2^24, eps > 0 is finite
 *   and 0 <= momentum <= 1; HLR_ENOMEM; at build time HLR_ESHAPE unless
 *   the input is (num_features) or (num_features, L).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_batchnorm1d(int num_features, float eps, float momentum);

/**
 * Recurrent flag: output every step of the last layer, (T, D H).
 * Directions concatenated (torch's `output`), zero past a sequence's end
 * (pad_packed_sequence).  Without it, the output is (D H): the last
 * layer's final state, forward then reverse (torch's
 * cat(h_n[-2], h_n[-1]) when bidirectional; for one direction, the output
 * at each sequence's last step).  D = 1 or 2, H = hidden_size.
 */
#define HLR_RETURN_SEQUENCES 1
/**
 * Recurrent flag: a second direction, D = 2.
 * It reads each sequence from its own last step back to the first
 * (torch's bidirectional=True).
 */
#define HLR_BIDIRECTIONAL 2

/**
 * An LSTM, as torch.nn.LSTM with batch_first=True.
 * It computes torch.nn.LSTM(input_size, hidden_size, num_layers,
 * dropout=dropout, bidirectional=..., batch_first=True), with the same
 * equations and gate order (i, f, g, o):
 *
 *     i  = sig(W_ii x + b_ii + W_hi h + b_hi)
 *     f  = sig(W_if x + b_if + W_hf h + b_hf)
 *     g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
 *     o  = sig(W_io x + b_io + W_ho h + b_ho)
 *     c' = f c + i g
 *     h' = o tanh(c')
 *
 * Input (T, input_size); output (T, D H) with HLR_RETURN_SEQUENCES, else
 * (D H).  Stacked layers feed each layer's output to the next, with
 * dropout (probability `dropout`, training only, drawn from the model's
 * generator) between them.  Parameters, torch's names and shapes, G = 4
 * gates: for each layer k and direction, `weight_ih_l<k>` (G H,
 * input_size for k = 0, else D H), `weight_hh_l<k>` (G H, H),
 * `bias_ih_l<k>`, `bias_hh_l<k>` (G H), the reverse direction's with the
 * suffix "_reverse"; all initialised U(-1/sqrt(H), 1/sqrt(H)) as torch.
 * The initial state is zero unless hlr_rnn_set_initial_state() gives one;
 * hlr_model_set_lengths() gives each sequence its length (packed-sequence
 * semantics: the steps past the end produce zeros and leave the state
 * alone).  hlr_rnn_final_state() reads the final state.
 *
 * @param input_size   F, features per step, >= 1.
 * @param hidden_size  H, features of the state, >= 1.
 * @param num_layers   stacked layers, 1 to 8, or 1 to 4 when bidirectional
 *                     (torch's default 1).
 * @param flags        0 or HLR_RETURN_SEQUENCES and/or HLR_BIDIRECTIONAL,
 *                     combined with |.
 * @param dropout      probability of zeroing an element between stacked
 *                     layers in training, 0 <= dropout < 1 (torch's
 *                     default 0); no effect with one layer.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless input_size, hidden_size >= 1, 1 <= num_layers
 *   <= 8 (4 when bidirectional), flags are known and 0 <= dropout < 1;
 *   HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (T, input_size).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_lstm(int input_size, int hidden_size, int num_layers, int flags, float dropout);

/**
 * A GRU, as torch.nn.GRU with batch_first=True.
 * As hlr_lstm() with G = 3 gates (r, z, n):
 *
 *     r  = sig(W_ir x + b_ir + W_hr h + b_hr)
 *     z  = sig(W_iz x + b_iz + W_hz h + b_hz)
 *     n  = tanh(W_in x + b_in + r (W_hn h + b_hn))
 *     h' = (1 - z) n + z h
 *
 * Parameter names, shapes, initialisation, options and errors as
 * hlr_lstm().  A GRU has no cell state: pass NULL for c0, c_n and dc0 in
 * hlr_rnn_set_initial_state(), hlr_rnn_final_state() and
 * hlr_rnn_initial_state_grad().
 *
 * @param input_size   F, features per step, >= 1.
 * @param hidden_size  H, features of the state, >= 1.
 * @param num_layers   stacked layers, 1 to 8, or 1 to 4 when bidirectional
 *                     (torch's default 1).
 * @param flags        0 or HLR_RETURN_SEQUENCES and/or HLR_BIDIRECTIONAL,
 *                     combined with |.
 * @param dropout      probability of zeroing an element between stacked
 *                     layers in training, 0 <= dropout < 1 (torch's
 *                     default 0); no effect with one layer.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless input_size, hidden_size >= 1, 1 <= num_layers
 *   <= 8 (4 when bidirectional), flags are known and 0 <= dropout < 1;
 *   HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (T, input_size).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_gru(int input_size, int hidden_size, int num_layers, int flags, float dropout);

/**
 * Set the state an LSTM or GRU layer starts every sequence from.
 * Instead of zeros, h0 and (LSTM only) c0, each (num_layers * D, N, H) as
 * torch orders them (layer 0 forward, layer 0 reverse, layer 1 ...).  The
 * values are copied.  The state stays in force for every forward pass
 * until cleared, and every forward pass must then have a batch of exactly
 * N (otherwise it fails with HLR_ESHAPE).  After a backward pass,
 * hlr_rnn_initial_state_grad() gives the state's gradient.
 *
 * @param l   an lstm or gru layer, built or not.
 * @param h0  float32 (num_layers * D, N, H); NULL for zeros.
 * @param c0  LSTM only: float32 (num_layers * D, N, H), the same N as h0;
 *            NULL for zeros (and it must be NULL for a GRU).  With h0 and
 *            c0 both NULL the state is cleared: zeros again, any batch.
 * @return HLR_OK, or an error code below; on error the previous state
 *   stays.
 * @errors HLR_EINVAL (l NULL or not lstm/gru, c0 for a GRU, a tensor not
 *   float32), HLR_ESHAPE (shapes), HLR_ENOMEM.
 * @ownership the tensors stay the caller's.
 * @threadsafety changes the layer; not while its model runs.
 */
HLR_API hlr_status hlr_rnn_set_initial_state(hlr_layer *l, const hlr_tensor *h0, const hlr_tensor *c0);

/**
 * Copy the final state of the layer's last forward pass to h_n and c_n.
 * h_n and (LSTM only) c_n are each (num_layers * D, N, H) as torch's h_n,
 * c_n, with N the last forward pass's batch: per sequence, the state after
 * its last step (the reverse direction's after step 0).
 *
 * @param l         an lstm or gru layer.
 * @param[out] h_n  float32 (num_layers * D, N, H), or NULL.
 * @param[out] c_n  LSTM only: float32 (num_layers * D, N, H), or NULL
 *                  (it must be NULL for a GRU).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (l NULL or not lstm/gru, c_n for a GRU, a tensor not
 *   float32), HLR_ESHAPE (another shape), HLR_ESTATE (no forward pass
 *   yet, or the buffers were re-planned for a larger batch since).
 * @ownership the tensors stay the caller's; only their data is written.
 * @threadsafety reads the layer; not while its model runs.
 */
HLR_API hlr_status hlr_rnn_final_state(hlr_layer *l, hlr_tensor *h_n, hlr_tensor *c_n);

/**
 * The gradient of the loss with respect to the initial state.
 * After hlr_model_backward(), dLoss/dh0 and (LSTM only) dLoss/dc0 for the
 * initial state (hlr_rnn_set_initial_state()) the forward pass used,
 * shapes as in hlr_rnn_set_initial_state().
 *
 * @param l         an lstm or gru layer.
 * @param[out] dh0  float32 (num_layers * D, N, H), or NULL.
 * @param[out] dc0  LSTM only: float32 (num_layers * D, N, H), or NULL (it
 *                  must be NULL for a GRU).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (l NULL or not lstm/gru, dc0 for a GRU, a tensor not
 *   float32), HLR_ESHAPE (another shape), HLR_ESTATE (unless the last
 *   forward pass used an initial state and a backward pass followed it;
 *   setting the state again also clears the gradient).
 * @ownership the tensors stay the caller's; only their data is written.
 * @threadsafety reads the layer; not while its model runs.
 */
HLR_API hlr_status hlr_rnn_initial_state_grad(hlr_layer *l, hlr_tensor *dh0, hlr_tensor *dc0);

/**
 * A lookup table of vectors, y = weight[id], as torch.nn.Embedding.
 * For int32 token ids.  Input: ids of any shape (...), at most
 * HLR_MAX_DIMS - 2 dimensions; output (..., dim).  It reads int32 ids, so
 * it must be the model's first layer, and the model then takes int32
 * input tensors (hlr_model_forward(), hlr_model_predict(),
 * hlr_model_train_batch(), data sets from hlr_dataset_from_tokens()).
 * Parameter "weight" (num_embeddings, dim), N(0, 1) as torch.  A forward
 * pass with an id outside [0, num_embeddings) fails with HLR_EINVAL
 * naming it.
 *
 * @param num_embeddings  the number of ids (rows), >= 1.
 * @param dim             the length of each vector, >= 1.
 * @param padding_idx     -1 <= padding_idx < num_embeddings; with
 *                        padding_idx >= 0 that row starts at zero and
 *                        never gets a gradient; -1 means no padding index
 *                        (torch's padding_idx=None).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless num_embeddings, dim >= 1 and
 *   -1 <= padding_idx < num_embeddings; HLR_ENOMEM; at build time
 *   HLR_ESHAPE when the embedding is not the first layer or its input has
 *   more than HLR_MAX_DIMS - 2 dimensions.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_embedding(int num_embeddings, int dim, int padding_idx);

/**
 * An image as the sequence of its rows: (1, H, W) -> (H, W).
 * H steps of W features; the data do not move (no copy).  For several
 * channels use hlr_feature_map_rows().  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (1, H, W).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_image_rows(void);

/**
 * A feature map as the sequence of its rows: (C, H, W) -> (H, C W).
 * H steps, top to bottom, channel-major within a step, as torch's
 * x.permute(0, 2, 1, 3).reshape(N, H, C * W).  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (C, H, W).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_feature_map_rows(void);

/**
 * A feature map as the sequence of its columns: (C, H, W) -> (W, C H).
 * W steps, left to right (a CRNN reading a line), channel-major within a
 * step, as torch's x.permute(0, 3, 1, 2).reshape(N, W, C * H).  No
 * parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input is
 *   (C, H, W).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_feature_map_columns(void);

/**
 * The last step of each sequence: (T, F...) -> (F...).
 * The step L - 1 of a sequence of length L (hlr_model_set_lengths();
 * without lengths, step T - 1), as output[i, L - 1] of a padded batch in
 * PyTorch.  The other steps get a zero gradient.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input has at
 *   least two dimensions.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_seq_last(void);

/**
 * The mean over the steps of each sequence: (T, F...) -> (F...).
 * The mean of steps 0..L-1 of a sequence of length L
 * (hlr_model_set_lengths(); without lengths, all T); the steps past its
 * end neither count nor get a gradient.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input has at
 *   least two dimensions.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_seq_mean(void);

/**
 * The maximum over the steps of each sequence: (T, F...) -> (F...).
 * Per feature, the maximum over steps 0..L-1 of a sequence of length L
 * (hlr_model_set_lengths(); without lengths, all T).  The gradient goes
 * to the first maximum; a NaN wins, as in torch.max.  No parameters.
 *
 * @return the new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input has at
 *   least two dimensions.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_seq_max(void);

/**
 * Attention flag: causal self-attention.
 * Query i attends only to keys 0..i (torch's
 * attn_mask = triu(ones(T, T), 1) as booleans).
 */
#define HLR_ATTN_CAUSAL 1
/**
 * Attention flag: mask the keys past each sequence's length.
 * Keys at or past each sequence's length (hlr_model_set_lengths()) are
 * masked (torch's key_padding_mask); queries there are still computed.
 */
#define HLR_ATTN_KEY_PADDING 2
/**
 * Attention flag: no output projection.
 * The output is the heads' outputs concatenated; there are no
 * "out_proj.weight" and "out_proj.bias" parameters.
 * hlr_multihead_attention() only.
 */
#define HLR_ATTN_NO_OUT_PROJ 4
/**
 * Attention flag: no biases.
 * No in_proj_bias and out_proj.bias (torch's bias=False).
 * hlr_multihead_attention() only.
 */
#define HLR_ATTN_NO_BIAS 8

/**
 * Multi-head self-attention, as torch.nn.MultiheadAttention.
 * It computes what torch.nn.MultiheadAttention(embed_dim, num_heads,
 * dropout, bias, batch_first=True) computes as mha(x, x, x).  Input and
 * output (T, E),
 * E = embed_dim, split into num_heads heads of d = E / num_heads:
 *
 *     [Q K V] = x in_proj_weight^T + in_proj_bias
 *     head h = softmax(Q_h K_h^T / sqrt(d) + mask) V_h
 *     y = [head 0 ... head H-1] out_proj.weight^T + out_proj.bias
 *
 * Parameters, torch's names: "in_proj_weight" (3E, E) (W_q, W_k, W_v
 * stacked), "in_proj_bias" (3E), "out_proj.weight" (E, E),
 * "out_proj.bias" (E), initialised as torch: xavier_uniform_ for
 * in_proj_weight, U(-1/sqrt(E), 1/sqrt(E)) for out_proj.weight
 * (nn.Linear), zero biases; HLR_ATTN_NO_BIAS leaves out the biases and
 * HLR_ATTN_NO_OUT_PROJ the output projection.  In training, dropout
 * (probability `dropout`) zeroes attention probabilities and scales the
 * rest by 1/(1-p), drawing from the model's generator.
 * hlr_attention_weights() reads the probabilities of the last forward
 * pass.
 *
 * @param embed_dim  E, features per step, >= 1, a multiple of num_heads,
 *                   at most INT32_MAX / 3.
 * @param num_heads  the number of heads, >= 1.
 * @param flags      0 or HLR_ATTN_CAUSAL, HLR_ATTN_KEY_PADDING,
 *                   HLR_ATTN_NO_OUT_PROJ, HLR_ATTN_NO_BIAS combined with |.
 * @param dropout    attention dropout, 0 <= dropout < 1 (torch's default
 *                   0).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless embed_dim, num_heads >= 1, num_heads divides
 *   embed_dim, embed_dim <= INT32_MAX / 3, flags are known and
 *   0 <= dropout < 1; HLR_ENOMEM; at build time HLR_ESHAPE unless the
 *   input is (T, embed_dim).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_multihead_attention(int embed_dim, int num_heads, int flags, float dropout);

/**
 * Copy the attention probabilities of the layer's last forward pass.
 * The probabilities before dropout go into weights (N, heads, T, T): row
 * i of head h is how query step i weighs key steps 0..T-1 (zero where
 * masked).  torch's need_weights=True with average_attn_weights=False.
 * hlr_attention_weights_shape() gives the shape to allocate.
 *
 * @param l             a multihead_attention layer or a
 *                      transformer_encoder (its self_attn).
 * @param[out] weights  float32 (N, heads, T, T), N the last forward
 *                      pass's batch.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (l or weights NULL, l neither layer type, weights not
 *   float32), HLR_ESHAPE (another shape), HLR_ESTATE (no forward pass
 *   yet, or the buffers were re-planned for a larger batch since).
 * @ownership weights stays the caller's; only its data is written.
 * @threadsafety reads the layer; not while its model runs.
 */
HLR_API hlr_status hlr_attention_weights(const hlr_layer *l, hlr_tensor *weights);

/**
 * The shape hlr_attention_weights() wants now.
 * shape[0..3] = the last forward pass's batch N, heads, T, T.
 *
 * @param l           a multihead_attention layer or a
 *                    transformer_encoder.
 * @param[out] shape  four int64_t.
 * @return HLR_OK, or an error code below.
 * @errors as hlr_attention_weights(): HLR_EINVAL (shape NULL, l NULL or
 *   neither layer type), HLR_ESTATE (no forward pass yet, or the buffers
 *   were re-planned for a larger batch since).
 * @ownership shape stays the caller's.
 * @threadsafety reads the layer; not while its model runs.
 */
HLR_API hlr_status hlr_attention_weights_shape(const hlr_layer *l, int64_t shape[4]);

/**
 * Layer normalisation over the last dimension, as torch.nn.LayerNorm.
 * As torch.nn.LayerNorm(dim, eps): each sample's last dimension (of size
 * dim) normalised to zero mean and unit (biased) variance, then
 * y = weight xhat + bias, in training and inference alike.  Input
 * (..., dim), same output shape.  Parameters "weight" (dim, ones) and
 * "bias" (dim, zeros).
 *
 * @param dim  the size of the last dimension, >= 1.
 * @param eps  added to the variance, finite and > 0 (torch's default
 *             1e-5).
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless dim >= 1 and eps > 0 is finite; HLR_ENOMEM;
 *   at build time HLR_ESHAPE unless the input ends in dim.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_layernorm(int dim, float eps);

/**
 * Positional-encoding kind: the fixed sinusoidal table.
 * The table of "Attention is all you need":
 * pe[pos, 2i] = sin(pos / 10000^(2i / dim)),
 * pe[pos, 2i + 1] = cos(pos / 10000^(2i / dim)); for an odd dim the last
 * column is a sine.  No parameters.
 */
#define HLR_POS_SINUSOIDAL 0
/** Positional-encoding kind: a trained table, the parameter "weight". */
#define HLR_POS_LEARNED 1

/**
 * Add a position's vector to each step: y[t] = x[t] + pe[t] for t < T.
 * Input and output (T, dim), T <= max_len.  HLR_POS_SINUSOIDAL has no
 * parameters (the table is computed in double and rounded to float).
 * HLR_POS_LEARNED has the parameter "weight" (max_len, dim), initialised
 * N(0, 0.02^2) (BERT's and timm's std 0.02; torch has no such module);
 * rows T.. get zero gradients.
 *
 * @param max_len  the most steps an input may have, >= 1.
 * @param dim      features per step, >= 1.
 * @param kind     HLR_POS_SINUSOIDAL or HLR_POS_LEARNED.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless max_len, dim >= 1 and kind is one of the two;
 *   HLR_ENOMEM; at build time HLR_ESHAPE unless the input is (T, dim) with
 *   T <= max_len.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_positional_encoding(int max_len, int dim, int kind);

/**
 * An image cut into patch x patch squares, each projected to dim features.
 * Non-overlapping squares: exactly torch's
 * Conv2d(in_channels, dim, kernel_size=patch, stride=patch) followed by
 * .flatten(2).transpose(1, 2).  Input (C, H, W) with H and W multiples of
 * patch, output (H/patch * W/patch, dim), patches in row-major order.
 * Parameters "weight" (dim, C, patch, patch) and "bias" (dim), initialised
 * as nn.Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C patch^2.
 * One GEMM over the whole batch's patches.
 *
 * @param in_channels  C, >= 1.
 * @param patch        the side of a square, >= 1.
 * @param dim          features per patch, >= 1.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless in_channels, patch, dim >= 1; HLR_ENOMEM; at
 *   build time HLR_ESHAPE unless the input is (in_channels, H, W) with H
 *   and W multiples of patch.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_patch_embedding(int in_channels, int patch, int dim);

/**
 * Prepend a learned token at step 0: (T, dim) -> (T + 1, dim).
 * y[0] = cls_token, y[t + 1] = x[t].  Parameter "cls_token" (dim),
 * initialised to zeros (as torchvision's VisionTransformer).
 * hlr_seq_first() reads the token's output back.  Sequence lengths
 * (hlr_model_set_lengths()) reach later layers unchanged: count the token
 * in them when a later layer masks padding.
 *
 * @param dim  features per step, >= 1.
 * @return the new layer, or NULL on error.
 * @errors HLR_EINVAL unless dim >= 1; HLR_ENOMEM; at build time
 *   HLR_ESHAPE unless the input is (T, dim).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_class_token(int dim);

/**
 * The first step of each sequence: (T, F...) -> (F...).
 * y = x[0] (torch's x[:, 0]); with hlr_class_token(), the token's output.
 * Step 0 is valid in every sequence, so lengths do not matter.  No
 * parameters.
 *
 * @return a new layer, or NULL with HLR_ENOMEM.
 * @errors HLR_ENOMEM; at build time HLR_ESHAPE unless the input has at
 *   least two dimensions.
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_seq_first(void);

/**
 * One pre-norm transformer encoder block.
 * Equal to torch 1.13's nn.TransformerEncoderLayer(d_model=dim,
 * nhead=heads, dim_feedforward=ff_dim, dropout=dropout,
 * activation='gelu', batch_first=True, norm_first=True) in training mode:
 *
 *     x = x + dropout1(self_attn(norm1(x)))
 *     y = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
 *
 * with self_attn as hlr_multihead_attention(dim, heads, flags, dropout)
 * (attention dropout too), norm1 and norm2 as hlr_layernorm(dim, 1e-5),
 * linear1 (dim -> ff_dim) and linear2 (ff_dim -> dim) as hlr_dense().  It
 * is one layer that owns its sub-layers, so a model stays a list.  Input
 * and output (T, dim).  Parameters, torch's state_dict names and
 * initialisation: "self_attn.in_proj_weight" (3 dim, dim) xavier-uniform,
 * "self_attn.in_proj_bias" (3 dim) zeros, "self_attn.out_proj.weight"
 * (dim, dim) U(-1/sqrt(dim), 1/sqrt(dim)), "self_attn.out_proj.bias"
 * (dim) zeros, "linear1.weight" (ff_dim, dim), "linear1.bias" (ff_dim)
 * U(-1/sqrt(dim), 1/sqrt(dim)), "linear2.weight" (dim, ff_dim),
 * "linear2.bias" (dim) U(-1/sqrt(ff_dim), 1/sqrt(ff_dim)),
 * "norm1.weight", "norm2.weight" (dim) ones, "norm1.bias", "norm2.bias"
 * (dim) zeros.  Dropout draws from the model's generator, in training
 * only.  hlr_attention_weights() reads its attention's probabilities.
 *
 * @param dim      d_model, features per step, >= 1, a multiple of heads,
 *                 at most INT32_MAX / 3.
 * @param heads    attention heads, >= 1.
 * @param ff_dim   the feed-forward width, >= 1 (torch's default 2048).
 * @param flags    0 or HLR_ATTN_CAUSAL and/or HLR_ATTN_KEY_PADDING, given
 *                 to the attention.
 * @param dropout  for the attention, dropout1, dropout and dropout2,
 *                 0 <= dropout < 1 (torch's default 0.1).
 * @return a new layer, or NULL on error.
 * @errors HLR_EINVAL unless dim, heads, ff_dim >= 1, heads divides dim,
 *   dim <= INT32_MAX / 3, flags are among the two above and
 *   0 <= dropout < 1; HLR_ENOMEM; at build time HLR_ESHAPE unless the
 *   input is (T, dim).
 * @ownership the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * @threadsafety any thread; touches no global state.
 */
HLR_API hlr_layer *hlr_transformer_encoder(int dim, int heads, int ff_dim, int flags, float dropout);

/**
 * Free a layer that was never added to a model.
 * Its parameters and buffers go with it.  Do not call it on a layer a
 * model owns (hlr_model_free() frees those); a layer given to
 * hlr_model_add() belongs to the model even when the add failed.
 *
 * @param l  the layer, or NULL (a no-op).
 * @ownership takes ownership of l: it is invalid afterwards.
 * @threadsafety l must not be in use by another thread.
 */
HLR_API void hlr_layer_free(hlr_layer *l);

/**
 * The layer's type name ("dense", "relu", ...).
 * Its constructor's name without "hlr_": "conv2d", "lstm",
 * "transformer_encoder", ...
 *
 * @param l  the layer, or NULL.
 * @return the name; "" for NULL.
 * @ownership static string; never free it.
 * @threadsafety safe from any thread (the type never changes).
 */
HLR_API const char *hlr_layer_type(const hlr_layer *l);

/**
 * Number of named parameters (0 for NULL).
 * The tensors hlr_layer_param_name() lists, buffers included (a batch
 * norm's running_mean and running_var); they exist once the layer's model
 * is built, so the count is 0 before.
 *
 * @param l  the layer, or NULL.
 * @return the count; 0 for NULL or before the model is built.
 * @threadsafety reads the layer; safe alongside other readers, not while
 *   its model is being built.
 */
HLR_API int hlr_layer_param_count(const hlr_layer *l);

/**
 * Freeze (0) or unfreeze (nonzero) a layer, for fine-tuning.
 * Optimizers leave a frozen layer's parameters and their own state for
 * them untouched (no update, no weight decay, not in gradient clipping's
 * norm), as torch skips parameters with requires_grad=False.  Gradients
 * are still computed, so earlier layers keep learning.  Batch norm's
 * running statistics still follow training batches (as torch's with
 * requires_grad=False).  A layer unfrozen later goes on from its
 * optimizer state, with Adam's bias correction at the optimizer's step
 * count (torch counts steps per parameter).  Not saved in model files.
 *
 * @param l          the layer, built or not.
 * @param trainable  0 to freeze, nonzero to unfreeze.
 * @return HLR_OK, or HLR_EINVAL.
 * @errors HLR_EINVAL (l NULL).
 * @threadsafety changes the layer; not while an optimizer steps on its
 *   model.
 */
HLR_API hlr_status hlr_layer_set_trainable(hlr_layer *l, int trainable);

/**
 * Whether optimizers train the layer.
 * 1 unless hlr_layer_set_trainable(l, 0) froze it.
 *
 * @param l  the layer, or NULL.
 * @return 1 or 0; 0 for NULL.
 * @threadsafety reads the layer; safe alongside other readers.
 */
HLR_API int hlr_layer_trainable(const hlr_layer *l);

/**
 * Name of parameter i, as PyTorch's state_dict names it.
 * For the equivalent module ("weight", "bias", "running_mean",
 * "self_attn.in_proj_weight", ...), in the layer's own order.
 *
 * @param l  the layer.
 * @param i  0 to hlr_layer_param_count() - 1 (no valid i before the
 *           model is built).
 * @return the name, or NULL (HLR_EINVAL) when l is NULL or i out of range.
 * @errors HLR_EINVAL (l NULL, i out of range).
 * @ownership borrowed, valid while the layer lives.
 * @threadsafety reads the layer; safe alongside other readers.
 */
HLR_API const char *hlr_layer_param_name(const hlr_layer *l, int i);

/**
 * The parameter, by name, as a float32 tensor view.
 * Parameters exist once the layer's model is built (before that:
 * HLR_ESTATE); buffers (running_mean, running_var) are found too.  The
 * view has the parameter's shape.  Writing into its data changes the
 * model.  A clone's layers (hlr_model_clone_shared()) have parameters,
 * shared with the original, so writing changes the original and every
 * clone.  Handing out a view costs inference a little: what the library
 * keeps made from those weights between passes (Winograd's filters, a
 * batch norm folded into a convolution, a transposed W_hh) is then
 * compared with them on every pass, in this model and every model that
 * shares them, where otherwise it is used without a look until the
 * library itself changes weights (a step, a load, ...).
 *
 * @param l     the layer.
 * @param name  a name that hlr_layer_param_name() lists.
 * @return a view, or NULL with HLR_ENOTFOUND / HLR_ESTATE / HLR_EINVAL.
 * @errors HLR_EINVAL (l or name NULL), HLR_ESTATE (the model is not
 *   built), HLR_ENOTFOUND (no such name).
 * @ownership borrowed, valid while the layer lives (for a clone's layer,
 *   while the original model lives too); hlr_tensor_free() on it does
 *   nothing.
 * @threadsafety reads the layer, and marks it (atomically) as one whose
 *   weights a caller may write; the view's data must not be read while
 *   its model trains, nor written while any model sharing it runs.
 */
HLR_API hlr_tensor *hlr_layer_param(hlr_layer *l, const char *name);

/**
 * The gradient of a parameter from the last backward pass, by name.
 * As hlr_layer_param(), for dLoss/dparameter: each backward pass
 * overwrites it (no accumulation); a buffer's stays zero.  A clone's
 * layers (hlr_model_clone_shared()) have no gradients (HLR_ESTATE).
 *
 * @param l     the layer.
 * @param name  a name that hlr_layer_param_name() lists.
 * @return a view, or NULL with HLR_ENOTFOUND / HLR_ESTATE / HLR_EINVAL.
 * @errors HLR_EINVAL (l or name NULL), HLR_ESTATE (the model is not
 *   built, or l belongs to a clone), HLR_ENOTFOUND (no such name).
 * @ownership borrowed, valid while the layer lives; hlr_tensor_free() on
 *   it does nothing.
 * @threadsafety reads the layer; the view's data must not be read while
 *   its model runs a backward pass.
 */
HLR_API hlr_tensor *hlr_layer_grad(hlr_layer *l, const char *name);

/** @} */

/* ------------------------------------------------------------------------ */
/* Losses                                                                    */
/* ------------------------------------------------------------------------ */
/** @defgroup losses Losses and sequence decoding
 *
 * The losses a model trains with (hlr_model_set_loss()), callable on their
 * own on tensors, with their gradients; hlr_ctc_decode() reads the label
 * sequence out of a CTC model's output, optionally within a lexicon, and
 * hlr_edit_distance() scores it against a reference.
 * @{ */

/** The loss a model trains with; see hlr_model_set_loss(). */
typedef enum hlr_loss_kind {
    HLR_LOSS_CROSS_ENTROPY = 0, /**< softmax + negative log-likelihood on int32 labels, mean over the batch
                                     (hlr_cross_entropy()) */
    HLR_LOSS_MSE = 1,           /**< mean squared error on float32 targets, mean over all elements
                                     (hlr_mse()) */
    HLR_LOSS_CTC = 2            /**< CTC on output (N, T, C) with blank 0, against int32 label sequences
                                     (N, S) padded with -1: hlr_ctc_loss() with torch's mean reduction and
                                     zero_infinity (a target too long for its input adds 0) */
} hlr_loss_kind;

/**
 * Softmax cross-entropy of logits (N, C) against int32 labels (N),
 * averaged over N.
 * Computed stably for any finite logits (`x - max` as torch computes it, in
 * double where float would overflow): the gradient is always finite, and
 * the loss is +inf only where its exact value exceeds FLT_MAX (a logit more
 * than about 3.4e38 below the largest one, on the label).  With
 * label_smoothing s the target is `(1 - s) * onehot + s / C`, as
 * torch.nn.CrossEntropyLoss(label_smoothing=s).
 *
 * @param logits           float32 scores (N, C); not NULL.
 * @param labels           int32 class labels (N), each in [0, C); not NULL.
 * @param label_smoothing  s, in [0, 1); 0 for plain cross-entropy.
 * @param[out] loss        receives the mean loss; not NULL.
 * @param[out] grad        NULL, or a float32 tensor of the logits' shape
 *   (N, C) that receives dLoss/dlogits (of the mean).
 * @return HLR_OK, or an error code below (nothing is written then).
 * @errors HLR_EINVAL (loss, logits or labels NULL; a tensor of the wrong
 *   dtype; a label outside [0, C); label_smoothing outside [0, 1)),
 *   HLR_ESHAPE (logits not 2-D, labels not 1-D of N values, grad not of
 *   the logits' shape).
 * @ownership nothing is retained; all tensors stay the caller's.
 * @threadsafety reads logits and labels only; any thread, as long as no
 *   other thread writes grad or the inputs meanwhile.
 */
HLR_API hlr_status hlr_cross_entropy(const hlr_tensor *logits, const hlr_tensor *labels, float label_smoothing,
                                     float *loss, hlr_tensor *grad);

/**
 * Mean squared error: the mean over all elements of `(pred - target)^2`.
 * The sum is taken in double.
 *
 * @param pred        float32 predictions, any shape; not NULL.
 * @param target      float32 targets of pred's shape; not NULL.
 * @param[out] loss   receives the mean; not NULL.
 * @param[out] grad   NULL, or a float32 tensor of pred's shape that
 *   receives `2 (pred - target) / numel`.
 * @return HLR_OK, or an error code below (nothing is written then).
 * @errors HLR_EINVAL (loss, pred or target NULL; a tensor not float32),
 *   HLR_ESHAPE (pred, target and grad not all of one shape).
 * @ownership nothing is retained; all tensors stay the caller's.
 * @threadsafety reads pred and target only; any thread, as long as no
 *   other thread writes grad or the inputs meanwhile.
 */
HLR_API hlr_status hlr_mse(const hlr_tensor *pred, const hlr_tensor *target, float *loss, hlr_tensor *grad);

/** How a loss over a batch reduces its samples' losses. */
typedef enum hlr_reduction {
    HLR_REDUCTION_NONE = 0, /**< one loss per sample */
    HLR_REDUCTION_SUM = 1,  /**< the sum of the samples' losses */
    HLR_REDUCTION_MEAN = 2  /**< for CTC as torch: each loss over its target length (a length of 0
                                 counting as 1), then the mean over the batch */
} hlr_reduction;

/**
 * Connectionist Temporal Classification loss of a batch, with its gradient.
 * Exactly torch.nn.functional.ctc_loss(
 * `logits.log_softmax(-1).transpose(0, 1)`, targets, input_lengths,
 * target_lengths, blank, reduction, zero_infinity), the log-softmax over C
 * done here.  A target that no alignment fits (too long for its input)
 * gives +inf, or 0 with zero_infinity, and a zero gradient (never NaN).
 * Computed in double, by the scaled forward-backward recursion, redone in
 * log space for a sample whose probabilities underflow; samples in
 * parallel.
 *
 * @param logits          float32 scores (N, T, C), batch first; not NULL.
 * @param input_lengths   int32 (N): each sample's number of valid steps, in
 *   [1, T]; not NULL.
 * @param targets         int32 (N, S): sample n's first target_lengths[n]
 *   entries are its labels, each in [0, C) and not the blank; the rest is
 *   ignored; not NULL.
 * @param target_lengths  int32 (N), each in [0, S]; not NULL.
 * @param blank           the blank's class, in [0, C).
 * @param reduction       HLR_REDUCTION_NONE, HLR_REDUCTION_SUM or
 *   HLR_REDUCTION_MEAN.
 * @param zero_infinity   nonzero: an impossible target's loss is 0
 *   instead of +inf.
 * @param[out] loss       receives one number (sum, mean) or N (none); not
 *   NULL.
 * @param[out] grad       NULL, or a float32 tensor (N, T, C) that receives
 *   the gradient of the reduced loss (for none: of the sum of the N losses)
 *   with respect to the logits; zero past each input length.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (loss or a tensor NULL, a tensor of the wrong dtype,
 *   a length or label out of range, the blank among the labels or outside
 *   [0, C), an unknown reduction, more than 2^24 steps T or 2^20 target
 *   columns S), HLR_ESHAPE (shapes disagree), HLR_ENOMEM.
 * @ownership nothing is retained; all tensors stay the caller's.
 * @threadsafety reads its input tensors only; any thread, as long as no
 *   other thread writes grad, loss or the inputs meanwhile.
 */
HLR_API hlr_status hlr_ctc_loss(const hlr_tensor *logits, const hlr_tensor *input_lengths, const hlr_tensor *targets,
                                const hlr_tensor *target_lengths, int blank, hlr_reduction reduction,
                                int zero_infinity, float *loss, hlr_tensor *grad);

/**
 * A word list for hlr_ctc_decode(): words as label sequences, in a trie.
 * Create with hlr_lexicon_new(), fill with hlr_lexicon_add(), free with
 * hlr_lexicon_free().
 */
typedef struct hlr_lexicon hlr_lexicon;

/**
 * Create an empty lexicon.
 *
 * @return the lexicon, or NULL.
 * @errors HLR_ENOMEM.
 * @ownership owned; free with hlr_lexicon_free().
 * @threadsafety any thread.
 */
HLR_API hlr_lexicon *hlr_lexicon_new(void);

/**
 * Free a lexicon.
 *
 * @param lexicon  the lexicon; NULL is a no-op.
 * @ownership frees lexicon, which the caller owned.
 * @threadsafety no other call may be using lexicon (an hlr_ctc_decode()
 *   reading it included).
 */
HLR_API void hlr_lexicon_free(hlr_lexicon *lexicon);

/**
 * Add a word of n labels to a lexicon.
 * The application maps its characters to labels.  Adding a word twice
 * keeps one.
 *
 * @param lexicon  the lexicon; not NULL.
 * @param labels   the word's n labels, each >= 0; not NULL.
 * @param n        the word's length, 1 to 4096.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (lexicon or labels NULL, n outside 1..4096, a
 *   negative label), HLR_ENOMEM (out of memory, or the trie would pass
 *   2^31 - 1 nodes; the lexicon is unchanged).
 * @ownership labels is copied and stays the caller's.
 * @threadsafety changes lexicon: no other call may use it meanwhile (an
 *   hlr_ctc_decode() reading it included).
 */
HLR_API hlr_status hlr_lexicon_add(hlr_lexicon *lexicon, const int32_t *labels, int n);

/**
 * The number of distinct words in a lexicon.
 *
 * @param lexicon  the lexicon, or NULL.
 * @return the number of words; 0 for NULL.
 * @ownership lexicon is only read.
 * @threadsafety reads lexicon only; safe alongside other readers of it,
 *   not alongside hlr_lexicon_add().
 */
HLR_API int64_t hlr_lexicon_size(const hlr_lexicon *lexicon);

/**
 * Decode the label sequence one sample's CTC output spells.
 * The log-softmax over C is taken here, in double.
 * beam_width 0: best path (greedy): the most likely label at every step,
 * repeats merged, blanks dropped.  beam_width 1 or more: prefix beam search
 * keeping that many prefixes, each scored by all of its alignments (with
 * width 1 it agrees with best path whenever each step's most likely label
 * has more than half the probability); with a lexicon only prefixes of its
 * words are followed and only a whole word is returned, so the result is
 * one word of the lexicon.
 *
 * @param logits           float32 scores of one sample, T rows of C,
 *   row-major; not NULL.
 * @param T                the number of steps, 1 to 2^20.
 * @param C                the number of classes, the blank included, 2 to
 *   2^20.
 * @param blank            the blank's class, in [0, C).
 * @param beam_width       0 for best path, else the beam's width, up to
 *   4096 (at least 1 with a lexicon).
 * @param lexicon          NULL, or the words the result must be one of.
 * @param[out] labels      receives the first cap labels of the result (all
 *   of them when there are no more than cap); may be NULL when cap is 0.
 * @param[out] confidence  NULL, or receives, for each label written to
 *   labels, the largest probability it has among the steps the labels'
 *   most likely alignment gives it.
 * @param cap              the room in labels (and confidence), >= 0.
 * @param[out] len         receives the result's number of labels, even
 *   when that is more than cap; not NULL.
 * @param[out] log_prob    NULL, or receives the best path's
 *   log-probability (greedy) or the result's total (beam).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (logits or len NULL, labels NULL with cap above 0,
 *   T outside [1, 2^20], C outside [2, 2^20], blank outside [0, C),
 *   cap negative, a width outside [0, 4096], a lexicon with width 0),
 *   HLR_ENOTFOUND (no word of the lexicon fits; nothing is written),
 *   HLR_ESHAPE (more than cap labels: the first cap labels and confidences
 *   are written, *len says how many there are, *log_prob is set),
 *   HLR_ENOMEM (when only the confidences could not be computed, labels,
 *   *len and *log_prob are written).
 * @ownership nothing is retained; lexicon is only read; all buffers stay
 *   the caller's.
 * @threadsafety any thread; several threads may decode with one lexicon at
 *   once, as long as no hlr_lexicon_add() runs on it meanwhile.
 */
HLR_API hlr_status hlr_ctc_decode(const float *logits, int T, int C, int blank, int beam_width,
                                  const hlr_lexicon *lexicon, int32_t *labels, float *confidence, int cap, int *len,
                                  double *log_prob);

/**
 * The Levenshtein distance between two label sequences.
 * Insertions, deletions and substitutions each cost 1.  Summed over a test
 * set and divided by the references' total length, the distance gives the
 * character error rate (CER); on word ids, the word error rate (WER).
 * Memory: one row of m + 1 int64.
 *
 * @param ref  the reference's n labels; may be NULL when n is 0.
 * @param n    the reference's length, >= 0.
 * @param hyp  the hypothesis's m labels; may be NULL when m is 0.
 * @param m    the hypothesis's length, >= 0.
 * @return the distance (at most the larger of n and m), or -1 on error.
 * @errors HLR_EINVAL (NULL with a length above 0, a negative length),
 *   HLR_ENOMEM.
 * @ownership ref and hyp are only read; nothing is retained.
 * @threadsafety any thread.
 */
HLR_API int64_t hlr_edit_distance(const int32_t *ref, int64_t n, const int32_t *hyp, int64_t m);

/** @} */

/* ------------------------------------------------------------------------ */
/* Optimizers and learning-rate schedules                                   */
/* ------------------------------------------------------------------------ */
/** @defgroup optimizers Optimizers and learning-rate schedules
 *
 * An optimizer updates a model's parameters from their gradients
 * (hlr_optimizer_step(), which hlr_model_train_batch() and hlr_model_fit()
 * call) with the update rules of torch.optim: SGD with momentum and
 * Nesterov momentum, Adam and AdamW.  It can clip the gradients' global
 * norm first and follow a learning-rate schedule with a linear warm-up.
 * @{ */

/**
 * An optimizer: SGD, Adam or AdamW with its hyper-parameters, its
 * per-parameter state, gradient clipping and learning-rate schedule.
 * Create with hlr_sgd(), hlr_adam() or hlr_adamw(); free with
 * hlr_optimizer_free().
 */
typedef struct hlr_optimizer hlr_optimizer;

/**
 * Create a stochastic gradient descent optimizer, exactly torch.optim.SGD.
 * Per parameter p with gradient g:
 * `g += weight_decay * p;  v = momentum * v + g` (`v = g` on the first
 * step); `p -= lr * (nesterov ? g + momentum * v : v)`.  torch's dampening
 * is always 0 (its default).  With momentum 0 no per-parameter buffer is
 * kept.
 *
 * @param lr            the learning rate (torch: lr; default 1e-3, none in
 *   older releases); positive and finite.
 * @param momentum      the momentum factor (torch: momentum, default 0); in
 *   [0, 1).
 * @param nesterov      nonzero for Nesterov momentum (torch: nesterov,
 *   default False); needs momentum above 0.
 * @param weight_decay  the L2 penalty added to the gradient (torch:
 *   weight_decay, default 0); >= 0 and finite.
 * @return the optimizer, or NULL.
 * @errors HLR_EINVAL (lr not positive or not finite, momentum outside
 *   [0, 1), weight_decay negative or not finite, nesterov with momentum
 *   0), HLR_ENOMEM.
 * @ownership owned; free with hlr_optimizer_free().  An optimizer keeps
 *   per-parameter state for the first model it steps and refuses another
 *   (HLR_ESTATE from hlr_optimizer_step()).
 * @threadsafety any thread.
 */
HLR_API hlr_optimizer *hlr_sgd(float lr, float momentum, int nesterov, float weight_decay);

/**
 * Create an Adam optimizer, exactly torch.optim.Adam (L2 weight decay
 * added to the gradient).
 * Per parameter p with gradient g, at step t (from 1):
 * `g += weight_decay * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;`
 * `p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.  torch's
 * amsgrad is always off (its default).
 *
 * @param lr            the learning rate (torch: lr, default 1e-3);
 *   positive and finite.
 * @param beta1         b1, the first moment's decay (torch: betas[0],
 *   default 0.9); in [0, 1).
 * @param beta2         b2, the second moment's decay (torch: betas[1],
 *   default 0.999); in [0, 1).
 * @param eps           added to the denominator (torch: eps, default
 *   1e-8); positive and finite.
 * @param weight_decay  the L2 penalty added to the gradient (torch:
 *   weight_decay, default 0); >= 0 and finite.
 * @return the optimizer, or NULL.
 * @errors HLR_EINVAL (lr or eps not positive or not finite, a beta outside
 *   [0, 1), weight_decay negative or not finite), HLR_ENOMEM.
 * @ownership owned; free with hlr_optimizer_free().  Like every optimizer
 *   it keeps state for the first model it steps and refuses another.
 * @threadsafety any thread.
 */
HLR_API hlr_optimizer *hlr_adam(float lr, float beta1, float beta2, float eps, float weight_decay);

/**
 * Create an AdamW optimizer, exactly torch.optim.AdamW.
 * As hlr_adam(), but the weight decay is decoupled: `p -= lr *
 * weight_decay * p` first (lr being the step's scheduled rate), and
 * nothing is added to the gradient.
 *
 * @param lr            the learning rate (torch: lr, default 1e-3);
 *   positive and finite.
 * @param beta1         the first moment's decay (torch: betas[0], default
 *   0.9); in [0, 1).
 * @param beta2         the second moment's decay (torch: betas[1], default
 *   0.999); in [0, 1).
 * @param eps           added to the denominator (torch: eps, default
 *   1e-8); positive and finite.
 * @param weight_decay  the decoupled decay (torch: weight_decay, default
 *   1e-2); >= 0 and finite.
 * @return the optimizer, or NULL.
 * @errors as hlr_adam(): HLR_EINVAL (lr or eps not positive or not finite,
 *   a beta outside [0, 1), weight_decay negative or not finite),
 *   HLR_ENOMEM.
 * @ownership owned; free with hlr_optimizer_free().  Like every optimizer
 *   it keeps state for the first model it steps and refuses another.
 * @threadsafety any thread.
 */
HLR_API hlr_optimizer *hlr_adamw(float lr, float beta1, float beta2, float eps, float weight_decay);

/**
 * Free an optimizer and its state.
 *
 * @param o  the optimizer; NULL is a no-op.
 * @ownership frees o, which the caller owned; the model it trained keeps
 *   its parameters.
 * @threadsafety no other call may be using o.
 */
HLR_API void hlr_optimizer_free(hlr_optimizer *o);

/**
 * Clip the gradients' global L2 norm before each step.
 * Before each step of hlr_optimizer_step(), all gradients are scaled by
 * `min(1, max_norm / (total_norm + 1e-6))` where total_norm is the L2 norm
 * of every gradient together (`torch.nn.utils.clip_grad_norm_`); frozen
 * layers' gradients are neither counted nor scaled.  A total norm that is
 * not finite makes the step fail with HLR_ENUMERIC.
 *
 * @param o         the optimizer; not NULL.
 * @param max_norm  the largest total norm, >= 0 and finite; 0 (the
 *   default) disables clipping.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (o NULL, max_norm negative or not finite).
 * @ownership o stays the caller's; nothing is retained.
 * @threadsafety changes o: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_optimizer_set_clip_norm(hlr_optimizer *o, float max_norm);

/**
 * The kind of learning-rate schedule, for hlr_optimizer_set_schedule()
 * (lr is the base learning rate, t the schedule position).
 */
typedef enum hlr_schedule_kind {
    HLR_SCHEDULE_CONSTANT = 0, /**< lr throughout (a warm-up still applies); the default */
    HLR_SCHEDULE_STEP = 1,  /**< lr * gamma^floor(t / step_size)            (torch StepLR) */
    HLR_SCHEDULE_COSINE = 2 /**< eta_min + (lr - eta_min)(1 + cos(pi t / T)) / 2, t <= T, then eta_min
                                 (CosineAnnealingLR) */
} hlr_schedule_kind;

/**
 * Set the learning-rate schedule, with an optional linear warm-up.
 * The learning rate at schedule position t is `rate(t) * warmup(t)`, with
 * rate given by kind (see hlr_schedule_kind; a = step_size and b = gamma
 * for STEP, a = T and b = eta_min for COSINE, both ignored for CONSTANT)
 * and `warmup(t) = start + (1 - start) * min(t, W) / W` for W =
 * warmup_steps above 0 (torch LinearLR with end factor 1), else 1.  For
 * COSINE, t past T stays at eta_min.  The position starts at 0 (each call
 * restarts it there) and advances by hlr_optimizer_schedule_step()
 * (hlr_model_fit() does it once per epoch, or per batch if asked).
 * Schedules only decay: the rate never exceeds base_lr.  On failure the
 * previous schedule stays.
 *
 * @param o             the optimizer; not NULL.
 * @param kind          HLR_SCHEDULE_CONSTANT, HLR_SCHEDULE_STEP or
 *   HLR_SCHEDULE_COSINE.
 * @param a             STEP: step_size, finite and >= 1; COSINE: T,
 *   finite and >= 1.
 * @param b             STEP: gamma, in (0, 1]; COSINE: eta_min, in
 *   [0, base_lr].
 * @param warmup_steps  W, >= 0; 0 for no warm-up.
 * @param warmup_start  the warm-up's start factor, in (0, 1]; ignored when
 *   warmup_steps is 0.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (o NULL, unknown kind, step_size below 1, gamma
 *   outside (0, 1], T below 1, eta_min outside [0, base_lr],
 *   warmup_steps negative, warmup_start outside (0, 1] with warm-up, a
 *   used value not finite).
 * @ownership o stays the caller's; nothing is retained.
 * @threadsafety changes o: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_optimizer_set_schedule(hlr_optimizer *o, hlr_schedule_kind kind, double a, double b,
                                              int warmup_steps, double warmup_start);

/**
 * Advance the schedule by one position.
 *
 * @param o  the optimizer; not NULL.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (o NULL).
 * @ownership o stays the caller's.
 * @threadsafety changes o: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_optimizer_schedule_step(hlr_optimizer *o);

/**
 * The learning rate the next step will use.
 * The base rate with the schedule and warm-up at the current position
 * applied.
 *
 * @param o  the optimizer, or NULL.
 * @return the learning rate; 0 for NULL.
 * @ownership o is only read.
 * @threadsafety reads o only; safe alongside other readers of it, not
 *   alongside a call that changes it.
 */
HLR_API float hlr_optimizer_lr(const hlr_optimizer *o);

/**
 * Change the base learning rate.
 * The base rate is the one the constructor took; a schedule still
 * multiplies it.  The optimizer's state (moments, step count, schedule
 * position) is kept.
 *
 * @param o   the optimizer; not NULL.
 * @param lr  the new base rate: positive, finite and, with a COSINE
 *   schedule, not below its eta_min.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (o NULL, lr not positive or not finite, lr below the
 *   eta_min of a COSINE schedule).
 * @ownership o stays the caller's.
 * @threadsafety changes o: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_optimizer_set_lr(hlr_optimizer *o, float lr);

/**
 * The base learning rate.
 *
 * @param o  the optimizer, or NULL.
 * @return the base rate (the constructor's, or hlr_optimizer_set_lr()'s);
 *   0 for NULL.
 * @ownership o is only read.
 * @threadsafety reads o only; safe alongside other readers of it, not
 *   alongside a call that changes it.
 */
HLR_API float hlr_optimizer_base_lr(const hlr_optimizer *o);

/**
 * How many parameter updates the optimizer has made.
 * Each successful hlr_optimizer_step() counts one; an optimizer loaded
 * with a model file goes on from its saved count.  Adam's and AdamW's bias
 * corrections use this count.
 *
 * @param o  the optimizer, or NULL.
 * @return the number of steps; 0 for NULL.
 * @ownership o is only read.
 * @threadsafety reads o only; safe alongside other readers of it, not
 *   alongside a call that changes it.
 */
HLR_API int64_t hlr_optimizer_steps(const hlr_optimizer *o);

/**
 * @ingroup model
 * A sequential model: a list of layers that trains, evaluates and predicts.
 * Opaque; made with hlr_model_new() (or loaded with hlr_model_load()) and
 * freed with hlr_model_free().  It owns its layers, its parameters, its
 * buffers, its metadata and its random generator.
 */
typedef struct hlr_model hlr_model;

/**
 * Update every parameter of m from its gradient: one step of optimizer o.
 * Parameters of frozen layers (hlr_layer_set_trainable()) and batch norm's
 * running statistics are left alone.  The step uses the current learning
 * rate (hlr_optimizer_lr()), first clips the gradients in place when a clip
 * norm is set (hlr_optimizer_set_clip_norm()), and counts in
 * hlr_optimizer_steps(); it does not advance the schedule
 * (hlr_optimizer_schedule_step()).  The first step binds o to m: from then
 * on o steps only m.
 *
 * @param o  the optimizer.
 * @param m  a built model whose gradients are set (hlr_model_backward()).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL), HLR_ESTATE (model not built, a clone made by
 *   hlr_model_clone_shared(), or optimizer bound to another model),
 *   HLR_ENUMERIC (non-finite gradient norm when clipping; nothing is
 *   updated), HLR_ENOMEM (first step only: the optimizer's state).
 * @ownership both stay the caller's; o keeps no pointer to m.
 * @threadsafety changes o and m's parameters: not while another thread
 *   uses either, or a clone of m.
 */
HLR_API hlr_status hlr_optimizer_step(hlr_optimizer *o, hlr_model *m);

/** @} */

/* ------------------------------------------------------------------------ */
/* Datasets                                                                  */
/* ------------------------------------------------------------------------ */
/** @defgroup data Data sets
 *
 * A data set holds n samples of one shape (float32 values, or int32 token
 * ids for a model that starts with an embedding), each with an int32 class
 * label or, for a CTC model, a label sequence, and optionally each
 * sample's sequence length.  hlr_model_fit() and hlr_model_evaluate() read
 * it.  Calls that only read a data set (those taking a const pointer) may
 * run on it from several threads at once, never alongside a call that
 * changes it.
 * @{ */

/**
 * A data set: samples with their class labels or label sequences, and
 * optionally their lengths.  Free with hlr_dataset_free().
 */
typedef struct hlr_dataset hlr_dataset;

/**
 * Load a data set from an idx image file and an idx label file (MNIST's
 * format).
 * The image file has magic 0x00000803 and uint8 pixels, the label file
 * magic 0x00000801 and uint8 labels; each may be raw or gzip-compressed.
 * Pixels are scaled to [0, 1] (exactly value / 255, as torchvision's
 * ToTensor); samples have shape (1, rows, cols); the number of classes is
 * the largest label + 1.  Magic, dimensions and sizes are checked against
 * the bytes present: 1 to 1e8 images of 1 to 4096 rows and columns, and
 * neither file may be shorter or longer than its header says.
 *
 * @param images_path  the image file's path; not NULL.
 * @param labels_path  the label file's path; not NULL.
 * @return the data set, or NULL.
 * @errors HLR_EINVAL (NULL path), HLR_EIO (cannot open or read, not a
 *   regular file), HLR_EFORMAT (bad magic, truncated or corrupt, longer
 *   than its header says, counts disagree, absurd sizes), HLR_ENOMEM.
 * @ownership owned; free with hlr_dataset_free().  The paths are only
 *   read.
 * @threadsafety any thread.
 */
HLR_API hlr_dataset *hlr_dataset_load_idx(const char *images_path, const char *labels_path);

/**
 * Create a data set of n samples copied from caller arrays.
 *
 * @param sample_ndim   the number of dimensions of one sample, 1 to
 *   HLR_MAX_DIMS - 1.
 * @param sample_shape  the sample_ndim sizes of one sample, each >= 1; not
 *   NULL.
 * @param n             the number of samples, >= 1.
 * @param x             n * prod(sample_shape) floats, sample after sample;
 *   not NULL.
 * @param labels        n class labels, each in [0, num_classes); not NULL.
 * @param num_classes   the number of classes, >= 1.
 * @return the data set, or NULL.
 * @errors HLR_EINVAL (NULL pointers, n below 1, num_classes below 1, bad
 *   shape: sample_ndim out of range, a size below 1 or a total too large;
 *   label out of range), HLR_ENOMEM.
 * @ownership owned; free with hlr_dataset_free().  The arrays are copied
 *   and stay the caller's.
 * @threadsafety any thread.
 */
HLR_API hlr_dataset *hlr_dataset_from(int sample_ndim, const int64_t *sample_shape, int64_t n, const float *x,
                                      const int32_t *labels, int num_classes);

/**
 * As hlr_dataset_from(), for models whose first layer is an embedding.
 *
 * @param sample_ndim   the number of dimensions of one sample, 1 to
 *   HLR_MAX_DIMS - 1.
 * @param sample_shape  the sample_ndim sizes of one sample, each >= 1; not
 *   NULL.
 * @param n             the number of samples, >= 1.
 * @param ids           n * prod(sample_shape) int32 token ids, sample
 *   after sample (checked against the embedding when the data set is
 *   used); not NULL.
 * @param labels        n class labels, each in [0, num_classes); not NULL.
 * @param num_classes   the number of classes, >= 1.
 * @return the data set, or NULL.
 * @errors as hlr_dataset_from(): HLR_EINVAL (NULL pointers, n below 1,
 *   num_classes below 1, bad shape, label out of range), HLR_ENOMEM.
 * @ownership as hlr_dataset_from(): owned; free with hlr_dataset_free().
 *   The arrays are copied and stay the caller's.
 * @threadsafety any thread.
 */
HLR_API hlr_dataset *hlr_dataset_from_tokens(int sample_ndim, const int64_t *sample_shape, int64_t n,
                                             const int32_t *ids, const int32_t *labels, int num_classes);

/**
 * Give each of a data set's samples its own sequence length, or remove the
 * lengths.
 * The samples are sequences of T steps; see hlr_model_set_lengths() (a
 * length is not checked against T here; one larger than a layer's number
 * of steps counts as all of them).  Shuffling, splitting and slicing keep
 * each length with its sample.  On failure d is unchanged.
 *
 * @param d        the data set; not NULL.
 * @param lengths  hlr_dataset_size(d) values, each >= 1; NULL removes the
 *   lengths.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL data set, a length below 1), HLR_ENOMEM.
 * @ownership lengths is copied and stays the caller's.
 * @threadsafety changes d: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_dataset_set_lengths(hlr_dataset *d, const int32_t *lengths);

/**
 * Create a data set for a CTC model (HLR_LOSS_CTC) from caller arrays.
 * hlr_model_fit() and hlr_model_evaluate() then train on and score the
 * label sequences.  The data set has no class labels
 * (hlr_dataset_labels() gives NULL); hlr_dataset_targets() reads the
 * sequences.
 *
 * @param sample_ndim   the number of dimensions of one sample, 1 to
 *   HLR_MAX_DIMS - 1.
 * @param sample_shape  the sample_ndim sizes of one sample, each >= 1 (for
 *   images (C, H, W), the width W being the widest image's, narrower ones
 *   padded with zeros on the right); not NULL.
 * @param n             the number of samples, >= 1.
 * @param x             n * prod(sample_shape) floats, sample after sample;
 *   not NULL.
 * @param widths        NULL (every sample is W wide), or n values in
 *   [1, W]: the last axis's valid part, kept as the samples' lengths (see
 *   hlr_model_set_lengths()).
 * @param targets       n rows of max_target int32: each sample's labels,
 *   in [1, num_classes), then -1 padding (a row may be all padding); 0 is
 *   the blank; not NULL.
 * @param max_target    the length of a row of targets, >= 1.
 * @param num_classes   the model's C, the blank included, >= 2.
 * @return the data set, or NULL.
 * @errors HLR_EINVAL (as hlr_dataset_from(): NULL pointers, n below 1, bad
 *   shape; and a width outside [1, W], a label outside [1, num_classes),
 *   a label after the padding, max_target below 1, num_classes below 2,
 *   n * max_target too large), HLR_ENOMEM.
 * @ownership owned; free with hlr_dataset_free().  The arrays are copied
 *   and stay the caller's.
 * @threadsafety any thread.
 */
HLR_API hlr_dataset *hlr_dataset_from_sequences(int sample_ndim, const int64_t *sample_shape, int64_t n,
                                                const float *x, const int32_t *widths, const int32_t *targets,
                                                int max_target, int num_classes);

/**
 * A sequence data set's targets: n rows of *max_target int32, -1 padded.
 *
 * @param d                the data set, or NULL.
 * @param[out] max_target  NULL, or receives the length of a row; 0 when
 *   the data set has no targets.
 * @return the targets, in the data set's current order; NULL for a data
 *   set of class labels or d NULL.
 * @ownership borrowed: valid until the data set changes or is freed.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API const int32_t *hlr_dataset_targets(const hlr_dataset *d, int *max_target);

/**
 * The type of a data set's samples.
 *
 * @param d  the data set, or NULL.
 * @return HLR_F32, HLR_I32 for token ids (hlr_dataset_from_tokens());
 *   HLR_DTYPE_NONE (-1) for NULL.
 * @ownership d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API hlr_dtype hlr_dataset_dtype(const hlr_dataset *d);

/**
 * Free a data set.
 *
 * @param d  the data set; NULL is a no-op.
 * @ownership frees d, which the caller owned; every view borrowed from it
 *   becomes invalid.
 * @threadsafety no other call may be using d.
 */
HLR_API void hlr_dataset_free(hlr_dataset *d);

/**
 * Permute the samples (Fisher-Yates) with a seeded generator.
 * The generator is xoshiro256** seeded through splitmix64: the same seed
 * gives the same order on every platform.  Labels, targets and lengths
 * move with their samples.
 *
 * @param d     the data set; not NULL.
 * @param seed  the generator's seed, any value.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (d NULL), HLR_ENOMEM (d is unchanged).
 * @ownership d stays the caller's.
 * @threadsafety changes d: no other call may use it meanwhile.
 */
HLR_API hlr_status hlr_dataset_shuffle(hlr_dataset *d, uint64_t seed);

/**
 * Move the last round(fraction * size) samples of d into a new data set
 * and return it; d keeps the rest.
 * The new data set keeps d's sample shape, number of classes, kind of
 * samples, lengths and targets.  A half rounds up.
 *
 * @param d         the data set; not NULL.
 * @param fraction  the part to move, in (0, 1).
 * @return the new data set, or NULL (d is then unchanged).
 * @errors HLR_EINVAL (NULL, fraction outside (0, 1), either part empty),
 *   HLR_ENOMEM.
 * @ownership owned; free with hlr_dataset_free().  d stays the caller's.
 * @threadsafety changes d: no other call may use it meanwhile.
 */
HLR_API hlr_dataset *hlr_dataset_split(hlr_dataset *d, double fraction);

/**
 * A copy of samples [start, start + count) of a data set.
 * The copy keeps d's sample shape, number of classes, kind of samples,
 * lengths and targets.
 *
 * @param d      the data set; not NULL.
 * @param start  the first sample, in [0, size).
 * @param count  the number of samples, >= 1, with start + count up to the
 *   size.
 * @return the new data set, or NULL.
 * @errors HLR_EINVAL (d NULL, range outside the data set, count below 1),
 *   HLR_ENOMEM.
 * @ownership owned; free with hlr_dataset_free().  d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API hlr_dataset *hlr_dataset_slice(const hlr_dataset *d, int64_t start, int64_t count);

/**
 * The number of samples of a data set.
 *
 * @param d  the data set, or NULL.
 * @return the number of samples; 0 for NULL.
 * @ownership d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API int64_t hlr_dataset_size(const hlr_dataset *d);

/**
 * The number of classes of a data set (for a sequence data set, the blank
 * included).
 *
 * @param d  the data set, or NULL.
 * @return the number of classes; 0 for NULL.
 * @ownership d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API int hlr_dataset_num_classes(const hlr_dataset *d);

/**
 * The number of dimensions of one sample (with hlr_dataset_sample_dim(),
 * the shape of one sample).
 *
 * @param d  the data set, or NULL.
 * @return the number of dimensions; 0 for NULL.
 * @ownership d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API int hlr_dataset_sample_ndim(const hlr_dataset *d);

/**
 * The size of dimension i of one sample (with hlr_dataset_sample_ndim(),
 * the shape of one sample).
 *
 * @param d  the data set, or NULL.
 * @param i  the dimension, in [0, hlr_dataset_sample_ndim(d)).
 * @return the size; 0 for NULL or i out of range.
 * @ownership d is only read.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API int64_t hlr_dataset_sample_dim(const hlr_dataset *d, int i);

/**
 * A borrowed view of all samples of a data set of floats.
 * hlr_dataset_size(d) * prod(sample shape) values, sample after sample.
 *
 * @param d  the data set, or NULL.
 * @return the samples; NULL for a data set of token ids or d NULL.
 * @ownership borrowed: valid until the data set changes or is freed.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API const float *hlr_dataset_inputs(const hlr_dataset *d);

/**
 * A borrowed view of all class labels of a data set.
 * hlr_dataset_size(d) values.
 *
 * @param d  the data set, or NULL.
 * @return the labels; NULL for a sequence data set (see
 *   hlr_dataset_targets()) or d NULL.
 * @ownership borrowed: valid until the data set changes or is freed.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API const int32_t *hlr_dataset_labels(const hlr_dataset *d);

/**
 * A borrowed view of all samples of a data set of token ids.
 * hlr_dataset_size(d) * prod(sample shape) values, sample after sample.
 *
 * @param d  the data set, or NULL.
 * @return the token ids; NULL for a data set of floats or d NULL.
 * @ownership borrowed: valid until the data set changes or is freed.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API const int32_t *hlr_dataset_tokens(const hlr_dataset *d);

/**
 * A borrowed view of the samples' lengths (hlr_dataset_set_lengths()).
 * hlr_dataset_size(d) values.
 *
 * @param d  the data set, or NULL.
 * @return the lengths; NULL when the samples have no lengths or d NULL.
 * @ownership borrowed: valid until the data set changes or is freed.
 * @threadsafety reads d only; safe alongside other readers of it.
 */
HLR_API const int32_t *hlr_dataset_lengths(const hlr_dataset *d);

/** @} */
/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */
/** @defgroup model Models: build, train, evaluate, predict
 * @{ */

/**
 * Create an empty sequential model whose random generator starts from seed.
 * The generator draws the weight initialisation (hlr_model_build()), the
 * dropout masks of training passes, and the shuffling and augmentation in
 * hlr_model_fit().  The loss starts as HLR_LOSS_CROSS_ENTROPY
 * (hlr_model_set_loss()).
 *
 * @param seed  seed of the model's random generator; any value.
 * @return the model, or NULL (HLR_ENOMEM).
 * @errors HLR_ENOMEM.
 * @ownership owned; free with hlr_model_free(), which frees its layers.
 * @threadsafety safe; threads may create models at the same time.
 */
HLR_API hlr_model *hlr_model_new(uint64_t seed);

/**
 * Free a model, every layer added to it, and its buffers and metadata.
 *
 * @param m  the model, or NULL (a no-op).
 * @ownership frees m and its layers: pointers from hlr_model_layer() and
 *   hlr_model_metadata() die with it.  Free every hlr_model_clone_shared()
 *   clone of m first.
 * @threadsafety not while another thread uses m or a clone of it.
 */
HLR_API void hlr_model_free(hlr_model *m);

/**
 * Append layer l to m, which takes ownership of l, even when the call fails.
 * The one exception is a layer that already belongs to a model (this one or
 * another; HLR_ESTATE): it stays with that model.  In every other case the
 * caller never frees l: it is added or, on failure, freed at once (also when
 * m is NULL or already built).
 *
 * Layers cannot be added after hlr_model_build().  A failed add to a model
 * not yet built (a NULL layer from a constructor that failed, say) is
 * remembered: hlr_model_build() then refuses the model, naming the missing
 * layer's position and why (for a NULL layer, the constructor's message),
 * so that unchecked calls such as `hlr_model_add(m, hlr_dropout(p))` cannot
 * build a model without that layer.
 *
 * @param m  the model, not built yet.
 * @param l  the layer, straight from a layer constructor; NULL fails.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL model or layer), HLR_ESTATE (already built, or
 *   the layer already belongs to a model), HLR_ENOMEM (the layer list could
 *   not grow).
 * @ownership takes ownership of l, even on failure (l is then freed), unless
 *   l already belongs to a model.  An added layer is freed by
 *   hlr_model_free(m); hlr_model_layer() lends it back.
 * @threadsafety changes m; not while m is used elsewhere.
 */
HLR_API hlr_status hlr_model_add(hlr_model *m, hlr_layer *l);

/**
 * Infer every layer's shapes from the shape of one sample and create and
 * initialise the parameters.
 * The initial weights are drawn from the model's generator
 * (hlr_model_new()).  A failed build leaves the model unbuilt, without
 * parameters.
 *
 * @param m             the model, with its layers added.
 * @param ndim          number of dimensions of one sample, 1 to
 *                      HLR_MAX_DIMS - 1.
 * @param sample_shape  the ndim sizes of one sample (no batch dimension),
 *                      each at least 1, their product at most 2^31; for
 *                      MNIST images {1, 28, 28}.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL model or sample_shape, bad shape, no layers, a
 *   failed hlr_model_add(), a layer's parameter too large), HLR_ESHAPE with
 *   a message naming the layer index and type that does not fit (also a
 *   layer of token ids, such as an embedding, that is not the first),
 *   HLR_ESTATE (built already), HLR_ENOMEM.
 * @ownership sample_shape stays the caller's; the model copies it.
 * @threadsafety changes m; not while m is used elsewhere.
 */
HLR_API hlr_status hlr_model_build(hlr_model *m, int ndim, const int64_t *sample_shape);

/**
 * The number of layers added to the model.
 *
 * @param m  the model, built or not, or NULL.
 * @return the number of layers (0 for NULL).
 * @ownership m is only read.
 * @threadsafety reads m only.
 */
HLR_API int hlr_model_num_layers(const hlr_model *m);

/**
 * Layer i of the model (0-based).
 *
 * @param m  the model.
 * @param i  index of the layer, from 0 to hlr_model_num_layers() - 1.
 * @return the layer, or NULL (HLR_EINVAL) when m is NULL or i out of range.
 * @errors HLR_EINVAL.
 * @ownership borrowed, owned by the model: valid until hlr_model_free(m);
 *   never free it.
 * @threadsafety reads m only; using the layer counts as using m.
 */
HLR_API hlr_layer *hlr_model_layer(hlr_model *m, int i);

/**
 * The total number of trainable scalars of the model.
 * Weights and biases count, frozen layers' (hlr_layer_set_trainable())
 * included; batch norm's running statistics do not.
 *
 * @param m  the model, or NULL.
 * @return the number of parameters (0 for NULL or before build).
 * @ownership m is only read.
 * @threadsafety reads m only.
 */
HLR_API int64_t hlr_model_param_count(const hlr_model *m);

/**
 * The shape of one output sample (after build), without the batch
 * dimension.
 *
 * @param m           a built model.
 * @param[out] ndim   receives the number of dimensions.
 * @param[out] shape  receives the ndim sizes: room for HLR_MAX_DIMS values
 *                    always suffices (at most HLR_MAX_DIMS - 1 are
 *                    written).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (a NULL argument), HLR_ESTATE (not built).
 * @ownership ndim and shape stay the caller's.
 * @threadsafety reads m only.
 */
HLR_API hlr_status hlr_model_output_shape(const hlr_model *m, int *ndim, int64_t *shape);

/**
 * The shape of one input sample, as given to hlr_model_build() (for a
 * loaded model: as stored in its file).
 * Written like hlr_model_output_shape() writes its shape.
 *
 * @param m           a built model.
 * @param[out] ndim   receives the number of dimensions.
 * @param[out] shape  receives the ndim sizes: room for HLR_MAX_DIMS values
 *                    always suffices.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (a NULL argument), HLR_ESTATE (not built).
 * @ownership ndim and shape stay the caller's.
 * @threadsafety reads m only.
 */
HLR_API hlr_status hlr_model_input_shape(const hlr_model *m, int *ndim, int64_t *shape);

/**
 * Write a table of layer, output shape and parameter count, then the
 * totals, as text into buf.
 * A header line and an "input" line come first, then one line per layer;
 * the last line gives the total parameters and their size as float32 in
 * KiB.  The text is cut to fit cap and is always NUL-terminated when cap is
 * not 0; a cut text still returns HLR_OK, so compare `*needed` with cap.
 * Call with buf NULL and cap 0 to size a buffer (it needs `*needed + 1`
 * bytes).
 *
 * @param m            a built model.
 * @param[out] buf     receives the text; may be NULL when cap is 0.
 * @param cap          size of buf in bytes, the NUL included.
 * @param[out] needed  if not NULL, receives the full length of the text
 *                     without the NUL, as snprintf returns it, also when
 *                     the text was cut.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL model, buf NULL with a nonzero cap), HLR_ESTATE
 *   (not built).
 * @ownership buf and needed stay the caller's.
 * @threadsafety reads m only.
 */
HLR_API hlr_status hlr_model_summary(const hlr_model *m, char *buf, size_t cap, size_t *needed);

/**
 * Run the model on a batch x and write its output to y.
 * With training nonzero, dropout is active and the activations (and a copy
 * of x) are kept for hlr_model_backward(); a pass with training 0 cancels a
 * training pass that has not had its backward yet.  Lengths set with
 * hlr_model_set_lengths() apply.  Buffers are sized when a batch larger
 * than any before arrives; batches of that size or smaller allocate
 * nothing.
 *
 * @param m         a built model.
 * @param x         the batch (N, sample shape...): float32, or int32 token
 *                  ids when the first layer is an embedding.
 * @param[out] y    float32 tensor (N, output shape...), overwritten.
 * @param training  nonzero for a training pass, 0 for inference.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, wrong dtype, a token id out of range),
 *   HLR_ESTATE (not built; training nonzero on a clone made by
 *   hlr_model_clone_shared()), HLR_ESHAPE (x or y does not match; a batch
 *   other than the one lengths or an initial state were set for),
 *   HLR_ENOMEM.
 * @ownership x and y stay the caller's; the model keeps no pointer to them.
 * @threadsafety uses the model's buffers; one thread at a time per model.
 */
HLR_API hlr_status hlr_model_forward(hlr_model *m, const hlr_tensor *x, hlr_tensor *y, int training);

/**
 * Propagate dy = dLoss/dy back through the model after a training forward,
 * overwriting every parameter's gradient.
 * Call it after hlr_model_forward(..., training=1).  Anything in between
 * that runs the model in inference (hlr_model_forward() with training 0,
 * hlr_model_predict(), hlr_model_evaluate(), hlr_model_input_gradient()) or
 * calls hlr_model_set_lengths() cancels that forward.  With this and an
 * optimizer (hlr_optimizer_step()) a caller can train on any loss.
 *
 * @param m       the model.
 * @param dy      float32 dLoss/dy, of the shape of that forward's y.
 * @param[out] dx NULL, or a float32 tensor (N, sample shape...) that
 *                receives dLoss/dx.  Token ids have no gradient: dx must
 *                be NULL for an embedding model.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL m or dy, a tensor not float32, dx for a model of
 *   token ids), HLR_ESTATE (not built, or no training forward before),
 *   HLR_ESHAPE (dy or dx does not match).
 * @ownership dy and dx stay the caller's.
 * @threadsafety uses the model's buffers; one thread at a time per model.
 */
HLR_API hlr_status hlr_model_backward(hlr_model *m, const hlr_tensor *dy, hlr_tensor *dx);

/**
 * Choose the loss hlr_model_train_batch() and hlr_model_fit() use.
 * HLR_LOSS_CROSS_ENTROPY (the default): targets int32 labels (N), output
 * (N, C).  HLR_LOSS_MSE: targets float32 of the output's shape.
 * HLR_LOSS_CTC: output (N, T, C), a sequence of scores over C - 1 labels
 * and the blank 0; targets int32 (N, S), each row's labels in [1, C)
 * followed by -1 padding; each sample's input length is its output length
 * for the lengths set (see hlr_model_output_lengths()), else T.  May be
 * called before or after hlr_model_build().  Model files keep the loss.
 *
 * @param m                the model.
 * @param kind             HLR_LOSS_CROSS_ENTROPY, HLR_LOSS_MSE or
 *                         HLR_LOSS_CTC.
 * @param label_smoothing  applies to cross-entropy, in [0, 1); 0 for the
 *                         others.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL model, unknown kind, label_smoothing outside
 *   [0, 1), or not 0 for another loss than cross-entropy).
 * @ownership m stays the caller's.
 * @threadsafety changes m; not while m is used elsewhere.
 */
HLR_API hlr_status hlr_model_set_loss(hlr_model *m, hlr_loss_kind kind, float label_smoothing);

/**
 * One training step on a batch: forward in training mode, loss, backward,
 * optimizer step.
 * The loss is the model's (hlr_model_set_loss()), with its label smoothing,
 * averaged as hlr_loss_kind says.
 *
 * @param m          a built model, not a clone.
 * @param o          the optimizer (see hlr_optimizer_step()).
 * @param x          the batch, as for hlr_model_forward().
 * @param target     for cross-entropy int32 labels (N) in [0, C); for MSE
 *                   float32 of the output's shape (N, output shape...); for
 *                   CTC int32 (N, S) label rows padded with -1.
 * @param[out] loss  if not NULL, receives the batch loss, also when it is
 *                   not finite.
 * @return HLR_OK, or an error code below.
 * @errors as hlr_model_forward(), hlr_model_backward(), the loss functions
 *   and hlr_optimizer_step(): HLR_EINVAL (NULL, wrong dtype, a label outside
 *   [0, C), a CTC target label that is 0 or not below C or follows the
 *   padding), HLR_ESTATE (not built, a clone), HLR_ESHAPE (x or target does
 *   not match; the output is not (N, C) for cross-entropy or (N, T, C)
 *   with C at least 2 for CTC), HLR_ENOMEM; HLR_ENUMERIC when the loss is
 *   not finite (the parameters are then left unchanged).
 * @ownership x, target and loss stay the caller's.
 * @threadsafety uses m's buffers and changes m and o: one thread at a time
 *   for both.
 */
HLR_API hlr_status hlr_model_train_batch(hlr_model *m, hlr_optimizer *o, const hlr_tensor *x,
                                         const hlr_tensor *target, float *loss);

/** What the per-epoch callback of hlr_model_fit() receives. */
typedef struct hlr_epoch_stats {
    int epoch;             /**< 1-based, counted within this hlr_model_fit()
                                call (hlr_model_epochs_trained() counts all) */
    int epochs;            /**< of the whole fit (the epochs option) */
    double train_loss;     /**< mean over the epoch's batches, weighted by
                                batch size */
    double train_accuracy; /**< fraction in [0, 1] of the training samples
                                classified right (CTC models: see val_cer) */
    double val_loss;       /**< on the validation part; NaN when there is
                                none (isnan()) */
    double val_accuracy;   /**< fraction in [0, 1]; NaN when there is no
                                validation part */
    double lr;             /**< learning rate (hlr_optimizer_lr()) read after
                                the epoch's last step: the rate its steps
                                used, but with schedule_per_batch the rate
                                for the step after it */
    double seconds;        /**< wall time of the epoch (training and
                                validation) */
    double samples_per_second; /**< training samples per second (training
                                    time only) */
    int best_epoch;        /**< the fit's epoch (1-based) with the best value
                                early stopping monitors so far; 0 when early
                                stopping is off */
    int stopping;          /**< 1: early stopping ends the fit after this
                                epoch */
    double val_cer;        /**< CTC models: the validation character error
                                rate (label edits of the best-path readings
                                over target labels); NaN otherwise.  Their
                                accuracies are the fractions of whole
                                sequences read right. */
} hlr_epoch_stats;

/**
 * The per-epoch callback of hlr_model_fit() (hlr_fit_options::on_epoch).
 * Called on the thread that called hlr_model_fit(), after each completed
 * epoch has been counted, added to the model's history, checkpointed and
 * logged, so it may save the model (hlr_model_save()) or run it
 * (hlr_model_predict(), hlr_model_evaluate(), on any batch size: buffers
 * the model grows for it are taken up by the fit, which then trains exactly
 * as without the call).  It must not free the model or the optimizer.
 *
 * @param stats  the epoch's figures; borrowed, valid during the call only.
 * @param user   the user pointer of the fit options.
 * @return nonzero to stop fitting after this epoch (fit then returns
 *   HLR_ECANCELLED), 0 to go on.
 */
typedef int (*hlr_epoch_fn)(const hlr_epoch_stats *stats, void *user);

/**
 * What the per-batch callback of hlr_model_fit() receives: progress within
 * the epoch.
 */
typedef struct hlr_batch_stats {
    int epoch, /**< as in hlr_epoch_stats */ epochs; /**< likewise */
    int64_t batch, /**< this batch (1-based) */ batches; /**< in the epoch */
    int64_t samples, /**< samples trained */ total; /**< of the epoch */
    double loss;              /**< mean training loss of the epoch so far */
    double accuracy;          /**< training accuracy of the epoch so far, in
                                   [0, 1] */
    double seconds;           /**< since the epoch began */
} hlr_batch_stats;

/**
 * The per-batch callback of hlr_model_fit() (hlr_fit_options::on_batch),
 * for progress.
 * Called on the thread that called hlr_model_fit(), after every training
 * batch's optimizer step.  As hlr_epoch_fn, it may save or run the model
 * but must not free the model or the optimizer.
 *
 * @param stats  progress within the epoch; borrowed, valid during the call
 *               only.
 * @param user   the user pointer of the fit options.
 * @return nonzero to stop fitting at once (fit then returns HLR_ECANCELLED;
 *   the unfinished epoch is not counted), 0 to go on.
 */
typedef int (*hlr_batch_fn)(const hlr_batch_stats *stats, void *user);

/**
 * The number early stopping, reduce-on-plateau and checkpoints watch, once
 * per epoch.  A NaN value never counts as an improvement.
 */
typedef enum hlr_monitor {
    HLR_MONITOR_VAL_LOSS = 0,      /**< lower is better; needs validation
                                        data */
    HLR_MONITOR_VAL_ACCURACY = 1,  /**< higher is better; needs validation
                                        data */
    HLR_MONITOR_TRAIN_LOSS = 2,    /**< lower is better */
    HLR_MONITOR_TRAIN_ACCURACY = 3 /**< higher is better */
} hlr_monitor;

/** Early stopping (Keras's EarlyStopping): stop after `patience` epochs in a
 * row without an improvement of more than min_delta. */
typedef struct hlr_early_stopping {
    int patience;      /**< epochs without improvement before stopping, at
                            least 0; 0 (default): off */
    hlr_monitor monitor; /**< the value watched; default
                              HLR_MONITOR_VAL_LOSS */
    double min_delta;  /**< an improvement must exceed this; at least 0;
                            default 0 */
    int restore_best;  /**< nonzero: end with the parameters (and batch-norm
                            statistics) of the best epoch, also when a
                            callback stopped the fit; default 0 */
} hlr_early_stopping;

/** Keras's ReduceLROnPlateau: after `patience` epochs without improvement,
 * multiply the optimizer's base learning rate (hlr_optimizer_base_lr()) by
 * factor (not below min_lr) with hlr_optimizer_set_lr(); the count then
 * starts again.  A rate that would not go down is left as it is. */
typedef struct hlr_lr_plateau {
    int patience;      /**< at least 0; 0 (default): off */
    hlr_monitor monitor; /**< the value watched; default
                              HLR_MONITOR_VAL_LOSS */
    double factor;     /**< in (0, 1); default 0.1 */
    double min_delta;  /**< an improvement must exceed this; at least 0;
                            default 0 */
    double min_lr;     /**< lowest rate, at least 0; default 0 */
} hlr_lr_plateau;

/** Save the model after each epoch (Keras's ModelCheckpoint), atomically, as
 * hlr_model_save() does, with the optimizer's state so training can resume. */
typedef struct hlr_checkpoint {
    const char *path;  /**< the file, overwritten by each save (borrowed
                            for the fit); NULL (default): off */
    hlr_monitor monitor; /**< the value best_only watches; default
                              HLR_MONITOR_VAL_LOSS */
    int best_only;     /**< nonzero: save only when the monitored value
                            improved; 0 (default): every epoch */
} hlr_checkpoint;

/** Geometric augmentation of (C, H, W) training images in hlr_model_fit(),
 * drawn per image from the model's generator (so reproducible) and applied
 * as one bilinear resampling about the image's centre, zero outside.  All 0
 * (the default): off.  Float32 images only, not with the CTC loss;
 * validation images are not augmented. */
typedef struct hlr_augment {
    double rotate;        /**< rotation by up to this many degrees either
                               way, in [0, 180] */
    double scale;         /**< scaling by a factor in [1 - scale,
                               1 + scale], scale in [0, 0.9] */
    double shear;         /**< horizontal shear by up to this many degrees
                               either way, in [0, 60] */
    double elastic_alpha; /**< elastic distortion (Simard, Steinkraus and
                               Platt 2003): displacements of up to about this
                               many pixels, smoothed by a Gaussian of
                               elastic_sigma; in [0, 1000]; 0: off */
    double elastic_sigma; /**< in (0, 64]; default 4 (used when
                               elastic_alpha is not 0) */
} hlr_augment;

/** Options of hlr_model_fit(); initialise with hlr_fit_options_default(). */
typedef struct hlr_fit_options {
    int epochs;               /**< at least 1; default 1 */
    int batch_size;           /**< at least 1; default 64 */
    int shuffle;              /**< shuffle each epoch: a new permutation of
                                   the data, drawn from the model's
                                   generator; default 1 */
    double validation_split;  /**< last fraction of the data (rounded to
                                   whole samples, never shuffled) kept for
                                   validation, [0, 1); default 0 */
    int schedule_per_batch;   /**< advance the lr schedule per batch instead
                                   of per epoch; default 0 */
    int augment_shift;        /**< shift each (C, H, W) training image by up
                                   to this many pixels (less than H and W)
                                   in x and y, drawn from the model's
                                   generator, zero-filling; default 0 (off);
                                   float32 images only, not with CTC */
    hlr_epoch_fn on_epoch;    /**< called after each epoch; default NULL */
    void *user;               /**< passed to on_epoch and on_batch; default
                                   NULL */
    hlr_batch_fn on_batch;    /**< after every training batch, for
                                   progress; default NULL */
    const hlr_dataset *validation_data; /**< evaluated after each epoch
                                             instead of a split; default NULL
                                             (validation_split must then be
                                             0) */
    const float *class_weight; /**< weight of each class in the training
                                    loss, as torch's
                                    CrossEntropyLoss(weight=w):
                                    sum w[y] loss / sum w[y]; each at least 0
                                    and finite; NULL (default): 1 */
    int class_weight_count;   /**< entries of class_weight: the model's
                                   number of classes */
    hlr_early_stopping early_stopping; /**< stop early; default off */
    hlr_lr_plateau reduce_lr; /**< lower the learning rate on a plateau;
                                   default off */
    hlr_checkpoint checkpoint; /**< save after each epoch; default off */
    const char *csv_log;      /**< append one line per epoch to this CSV file
                                   (a header line first when the file is new,
                                   empty or started afresh); NULL (default):
                                   none */
    int csv_append;           /**< 1: keep the file's lines; 0 (default):
                                   start it afresh */
    hlr_augment augment;      /**< rotation, scaling, shear, elastic
                                   distortion, after augment_shift; default
                                   off */
    const struct hlr_distributed *distributed; /**< data-parallel training
                                   across processes (see hlr_distributed);
                                   NULL (default): this process alone */
    const struct hlr_attack_options *adversarial; /**< adversarial training:
                                   the first adversarial_fraction of each
                                   training batch replaced by its
                                   adversarial examples (hlr_model_attack()
                                   on the model as it is, the random start
                                   drawn from the model's generator); NULL
                                   (default): off */
    double adversarial_fraction; /**< in (0, 1]; default 0.5 */
} hlr_fit_options;

/**
 * Fill `*o` with the defaults given for each member.
 * That is epochs 1, batch_size 64, shuffle 1, reduce_lr.factor 0.1,
 * augment.elastic_sigma 4, and 0 or NULL everywhere else (monitors
 * HLR_MONITOR_VAL_LOSS): no validation, callbacks, class weights, early
 * stopping, learning rate reduction, checkpoints, CSV log or augmentation.
 *
 * @param[out] o  the options to fill, or NULL (a no-op).
 * @ownership o stays the caller's.
 * @threadsafety writes only `*o`.
 */
HLR_API void hlr_fit_options_default(hlr_fit_options *o);

/**
 * Train on a data set for `opt->epochs` epochs in batches of
 * `opt->batch_size`.
 * The loss is cross-entropy on the data set's labels (with the model's
 * label smoothing) or, for a model with the CTC loss, CTC on the data set's
 * label sequences (hlr_dataset_from_sequences()); a model with the MSE loss
 * is refused.  A data set of token ids needs a model whose first layer is
 * an embedding, and only such a one; a data set's sequence lengths apply
 * batch by batch, and the model is left with no lengths set (see
 * hlr_model_set_lengths()).  Each completed epoch counts in
 * hlr_model_epochs_trained() and appends a record to the model's metadata
 * history (before on_epoch runs, so a callback may save a checkpoint that
 * resumes exactly).  Each epoch's order depends only on the generator's
 * state, which a model file's training state keeps: fitting 1 + 1 epochs
 * with a save and load in between gives the same bits as fitting 2 (same
 * thread count).
 *
 * Training control, all in opt: on_batch reports progress; validation comes
 * from validation_data or the tail split; class_weight weighs the training
 * loss (not the validation loss; not with label smoothing); early_stopping
 * ends the fit early, returning HLR_OK, and with restore_best leaves the
 * model with the best epoch's parameters (the optimizer's state stays the
 * last epoch's); reduce_lr lowers the learning rate on a plateau
 * (hlr_optimizer_set_lr()); checkpoint saves the model and optimizer after
 * each epoch or each improvement; csv_log writes the history as CSV (epoch,
 * train_loss, train_accuracy, val_loss, val_accuracy, lr, seconds;
 * validation fields empty without validation).  A monitor of val_* needs
 * validation data.  What these need is allocated before the first batch.
 * The library itself never prints.
 *
 * @param m      a built model, not a clone.
 * @param o      the optimizer (see hlr_optimizer_step()); its schedule
 *               advances once per epoch, or per batch with
 *               schedule_per_batch.
 * @param train  the training data set; its last validation_split part is
 *               kept for validation.
 * @param opt    the options (hlr_fit_options_default()).
 * @return HLR_OK (also when early stopping ended the fit), or an error code
 *   below.  Epochs completed before an error stay trained and counted.
 * @errors HLR_EINVAL (NULL, bad options, a model with the MSE loss, float
 *   samples for token ids or the other way round, a CTC model without a
 *   data set of label sequences or the other way round, a class_weight
 *   count that is not the number of classes or a negative or non-finite
 *   weight, both a split and validation_data, a split that leaves no
 *   training samples, a val_* monitor without validation), HLR_ESTATE (not
 *   built, a clone, an optimizer bound to another model), HLR_ESHAPE
 *   (samples do not fit the model, its output is not (N, C) (CTC:
 *   (N, T, C)), or the data set has more classes than it outputs),
 *   HLR_ENUMERIC (loss diverged), HLR_ECANCELLED (a callback asked to
 *   stop), HLR_EIO (a checkpoint or the CSV log could not be written),
 *   HLR_EUNSUPPORTED (class_weight with label smoothing; class_weight or
 *   augmentation with CTC), HLR_ENOMEM, and those of
 *   hlr_model_train_batch() and hlr_model_save().
 * @ownership m, o, train and opt (with what it points to) stay the
 *   caller's; they are borrowed for the call only.
 * @threadsafety uses m's buffers and changes m and o for the whole call;
 *   train and validation_data are only read.  The callbacks run on the
 *   calling thread.
 */
HLR_API hlr_status hlr_model_fit(hlr_model *m, hlr_optimizer *o, const hlr_dataset *train,
                                 const hlr_fit_options *opt);

/**
 * The settings the model's last hlr_model_fit() trained with, so that
 * training goes on the same way after hlr_model_load(): resuming is load,
 * this, set epochs, fit.  Model files keep them with the training state
 * (format 1.2, chunk FITS).
 *
 * o receives hlr_fit_options_default(), then the last fit's batch_size,
 * shuffle, validation_split, schedule_per_batch, augment_shift and augment.
 * The rest (epochs, callbacks, validation_data, class weights, early
 * stopping, learning-rate plateaus, checkpoints, the CSV log, distributed
 * and adversarial training) belong to each call and keep their defaults.
 *
 * @param m  the model.
 * @param o  receives the settings.
 * @return HLR_OK, or HLR_ENOTFOUND (o then holds the defaults).
 * @errors HLR_EINVAL (NULL); HLR_ENOTFOUND when m has never been fitted:
 *   built and trained with hlr_model_train_batch() only, or loaded from a
 *   file that records no fit (saved without training state, or before
 *   format 1.2).
 * @ownership both stay the caller's; o keeps no pointer into m.
 * @threadsafety reads m only; safe alongside other readers of it.
 */
HLR_API hlr_status hlr_model_fit_settings(const hlr_model *m, hlr_fit_options *o);

/** Results of hlr_model_evaluate(). */
typedef struct hlr_metrics {
    int64_t count;         /**< samples evaluated */
    double loss;           /**< mean cross-entropy, without label smoothing
                                or class weights (CTC models: mean CTC loss,
                                as in training) */
    double accuracy;       /**< top-1, in [0, 1] (CTC models: whole
                                sequences read right by best path) */
    double top_k_accuracy; /**< true class among the k highest, in [0, 1]
                                (CTC: the accuracy) */
    int top_k;             /**< the k used */
    double cer;            /**< CTC models: character error rate, edit
                                distance of the best-path readings over the
                                targets' labels (summed over the data set);
                                NaN otherwise */
} hlr_metrics;

/**
 * Inference over a data set in batches of batch_size.
 * The model runs as in hlr_model_predict() (no dropout, batch norm's
 * running statistics).  Token ids and sequence lengths as in
 * hlr_model_fit(): the model is left with no lengths set.  A sample whose
 * scores hold a NaN counts as wrong, for top-1 and top-k alike (and makes
 * the mean loss NaN).
 *
 * @param m              a built model (a clone will do).
 * @param d              the data set: class labels for a cross-entropy
 *                       model, label sequences for a CTC model.
 * @param batch_size     samples per forward pass, at least 1.
 * @param top_k          the k of top_k_accuracy, from 1 to the number of
 *                       classes (1 for a CTC model).
 * @param[out] out       receives the metrics.
 * @param[out] confusion NULL, or num_classes x num_classes counts, which it
 *                       overwrites: row = true class, column = predicted
 *                       class (num_classes of the data set, which must
 *                       equal the model's output width).  Not for CTC
 *                       models.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, batch_size below 1, top_k outside 1..classes,
 *   float samples for token ids or the other way round, a CTC model without
 *   a data set of label sequences or the other way round, confusion for a
 *   CTC model), HLR_ESHAPE (samples do not fit the model, its output is not
 *   (N, C), the data set has more classes than it outputs, or fewer when
 *   confusion is given), HLR_ESTATE (not built), HLR_ENOMEM.
 * @ownership d, out and confusion stay the caller's.
 * @threadsafety uses m's buffers; one thread at a time per model; d is only
 *   read.
 */
HLR_API hlr_status hlr_model_evaluate(hlr_model *m, const hlr_dataset *d, int batch_size, int top_k,
                                      hlr_metrics *out, int64_t *confusion);

/** One class's (or an average's) figures in hlr_classification_report(). */
typedef struct hlr_class_metrics {
    double precision; /**< of the samples predicted as the class, the
                           fraction that are */
    double recall;    /**< of the samples of the class, the fraction
                           predicted as it */
    double f1;        /**< 2 precision recall / (precision + recall); 0 when
                           both are 0 */
    int64_t support;  /**< samples of the class (for an average: all
                           samples) */
} hlr_class_metrics;

/**
 * Per-class precision, recall and F1 from a confusion matrix, and their
 * macro and weighted means.
 * The matrix is classes x classes (rows: true class, columns: predicted, as
 * hlr_model_evaluate() fills it); the macro mean is plain, over every
 * class, the weighted one weighs each class by its support.  As
 * scikit-learn's classification_report with zero_division=0: a class never
 * predicted has precision 0, one never present recall 0 (and F1 0).
 *
 * @param confusion       classes x classes counts, none negative.
 * @param classes         the number of classes, at least 1.
 * @param[out] per_class  NULL, or classes entries, one per class.
 * @param[out] macro      NULL, or receives the plain means.
 * @param[out] weighted   NULL, or receives the means weighted by support
 *                        (all 0 for an all-zero matrix).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL confusion, classes below 1, a negative count).
 * @ownership all arrays stay the caller's.
 * @threadsafety safe; touches only its arguments.
 */
HLR_API hlr_status hlr_classification_report(const int64_t *confusion, int classes, hlr_class_metrics *per_class,
                                             hlr_class_metrics *macro, hlr_class_metrics *weighted);

/**
 * Inference on a batch x: the arg-max class and the softmax probabilities
 * of the output.
 * No dropout, batch norm's running statistics, lengths as set with
 * hlr_model_set_lengths().  Like any pass with training 0, it cancels a
 * training forward that has not had its backward yet.
 *
 * @param m            a built model whose output is (N, C).
 * @param x            the batch, as for hlr_model_forward().
 * @param[out] classes NULL, or N int32 values: the arg-max class of each
 *                     sample.
 * @param[out] probs   NULL, or a float32 tensor (N, C): the softmax
 *                     probabilities of the output.
 * @return HLR_OK, or an error code below.
 * @errors as hlr_model_forward(): HLR_EINVAL (NULL m or x, wrong dtype of x
 *   or probs, a token id out of range), HLR_ESTATE (not built), HLR_ESHAPE
 *   (x does not fit, the output is not (N, C), probs is not (N, C), a batch
 *   other than the one lengths or an initial state were set for),
 *   HLR_ENOMEM.
 * @ownership x, classes and probs stay the caller's.
 * @threadsafety uses m's buffers; one thread at a time per model (give each
 *   thread its own hlr_model_clone_shared()).
 */
HLR_API hlr_status hlr_model_predict(hlr_model *m, const hlr_tensor *x, int32_t *classes, hlr_tensor *probs);

/**
 * The gradient, with respect to the input x (a batch), of one number per
 * sample, with the model as predict sees it.
 * Inference: batch norm's running statistics, no dropout, the lengths set.
 * The number is the class score (logit) of targets[i], or of the predicted
 * class when targets is NULL; with of_loss, the sample's cross-entropy loss
 * against label targets[i] instead (no mean over the batch).  For saliency
 * maps and adversarial examples.  Nothing a prediction depends on changes
 * (running statistics, the random generator); the parameters' gradient
 * buffers are overwritten, and a training forward still waiting for its
 * backward is cancelled.
 *
 * @param m          a built model of float32 input whose output is (N, C);
 *                   not a clone.
 * @param x          float32 batch (N, input shape...).
 * @param targets    NULL, or N int32 classes in [0, C).
 * @param of_loss    nonzero: differentiate the loss (needs targets); 0: the
 *                   class score.
 * @param[out] grad  float32 tensor of x's shape, overwritten.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, wrong dtype, a target outside the classes,
 *   of_loss without targets), HLR_ESHAPE (x or grad not (N, input shape),
 *   output not (N, C)), HLR_ESTATE (not built, a clone: clones keep no
 *   gradients), HLR_EUNSUPPORTED (a model of token ids), HLR_ENOMEM.
 * @ownership x, targets and grad stay the caller's.
 * @threadsafety uses m's buffers; one thread at a time per model.
 */
HLR_API hlr_status hlr_model_input_gradient(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int of_loss,
                                            hlr_tensor *grad);

/**
 * Give a batch of n sequences different lengths: sequence i has lengths[i]
 * valid steps, the rest of its T steps is padding.
 * Recurrent layers then follow PyTorch's packed sequences (a sequence's
 * steps past its end produce zeros and leave its state alone; the reverse
 * direction starts at its own last step), and hlr_seq_last(), hlr_seq_mean()
 * and hlr_seq_max() read only the valid steps; padding gets a zero
 * gradient.  The lengths are copied and stay in force for every forward
 * pass (and the backward pass after it) until replaced or cleared with
 * lengths NULL; meanwhile each forward pass must have a batch of exactly n
 * (otherwise HLR_ESHAPE).  A length larger than a layer's number of steps
 * counts as all of them.  Any call (also one that clears or fails) between
 * a training forward and its backward cancels that forward (backward then
 * fails with HLR_ESTATE).  hlr_model_fit() and hlr_model_evaluate() use the
 * data set's lengths (hlr_dataset_set_lengths()) and return with none set.
 *
 * For a model taking (C, H, W) images, the lengths are each image's valid
 * width in pixels (the rest is padding, zeros): every convolution and
 * pooling maps them to the windows that start inside them, so a CRNN's
 * recurrent layers and its CTC loss see each image's own number of columns
 * (hlr_feature_map_columns()).
 *
 * @param m        the model, built or not.
 * @param lengths  NULL to clear, or n valid step counts, each at least 1.
 * @param n        the number of sequences, at least 1; ignored when
 *                 lengths is NULL.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (model NULL, n below 1, a length below 1; the lengths
 *   in force then stay), HLR_ENOMEM (only when the model must make room:
 *   the first time, after layers were added, or when n exceeds the room
 *   made before, which covers the largest batch seen at the time).
 * @ownership lengths stays the caller's.
 * @threadsafety changes m; not while m is used elsewhere.
 */
HLR_API hlr_status hlr_model_set_lengths(hlr_model *m, const int32_t *lengths, int64_t n);

/**
 * The valid lengths of the output sequences for the lengths set by
 * hlr_model_set_lengths().
 * After every layer that shrinks the time axis (convolution and pooling map
 * an image's width), each in [1, the output's steps].  What a CTC decoder
 * reads of each sample's output.  Computed from the lengths set, without a
 * forward pass.
 *
 * @param m             a built model with lengths set.
 * @param[out] lengths  receives n values.
 * @param n             the number of lengths set.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL), HLR_ESTATE (not built, or no lengths set),
 *   HLR_ESHAPE (n is not the number of lengths set).
 * @ownership lengths stays the caller's.
 * @threadsafety reads m only.
 */
HLR_API hlr_status hlr_model_output_lengths(const hlr_model *m, int32_t *lengths, int64_t n);

/** @} */

/* ------------------------------------------------------------------------ */
/* Calibrated confidence                                                     */
/* ------------------------------------------------------------------------ */
/** @defgroup calibration Calibrated confidence
 *
 * How far a classifier's probabilities can be trusted, and temperature
 * scaling to make them trustworthy (Guo et al. 2017, "On calibration of
 * modern neural networks").  A model's confidence in a prediction is its
 * largest probability; the model is calibrated when, among the predictions
 * made with confidence p, a fraction p is right.  The expected calibration
 * error (ECE) measures the gap: predictions are put in equal-width bins of
 * confidence, ((b - 1)/B, b/B], and ECE = sum over bins of
 * (n_b / n) |accuracy_b - confidence_b|.  Temperature scaling divides the
 * logits by one number T > 0 fitted on held-out data by minimising the
 * negative log-likelihood: the arg-max, so the accuracy, cannot change.
 * @{ */

/** Most bins hlr_calibration_metrics() takes. */
#define HLR_CALIBRATION_MAX_BINS 100

/** What hlr_calibration_metrics() measures. */
typedef struct hlr_calibration {
    int64_t count;    /**< samples measured */
    int bins;         /**< the bins used for ECE and MCE */
    double ece;       /**< expected calibration error, in [0, 1] */
    double mce;       /**< maximum calibration error: the largest
                           |accuracy_b - confidence_b| over non-empty bins */
    double nll;       /**< mean negative log-likelihood of the true class
                           (natural log; a probability below FLT_MIN counts
                           as FLT_MIN) */
    double brier;     /**< mean over samples of sum over classes of
                           (p_c - [c = label])^2, in [0, 2] */
    double accuracy;  /**< fraction whose arg-max is the label */
} hlr_calibration;

/**
 * Calibration of a classifier's probabilities against the true labels:
 * ECE and MCE over `bins` equal-width confidence bins, NLL, Brier score and
 * accuracy; optionally the reliability diagram's bins.
 *
 * @param probs        n rows of `classes` probabilities (row-major), each
 *                     in [0, 1] (rows need not sum to exactly 1).
 * @param labels       n labels in [0, classes).
 * @param n            samples, >= 1.
 * @param classes      classes, >= 2.
 * @param bins         bins, 1 to HLR_CALIBRATION_MAX_BINS (15 as Guo et al.).
 * @param[out] out     receives the figures.
 * @param[out] bin_count       `bins` counts of samples per bin, or NULL.
 * @param[out] bin_confidence  `bins` mean confidences (0 for an empty bin),
 *                             or NULL.
 * @param[out] bin_accuracy    `bins` accuracies (0 for an empty bin), or
 *                             NULL.
 * @return HLR_OK, or HLR_EINVAL.
 * @errors HLR_EINVAL (NULL probs, labels or out; n below 1; classes below
 *   2; bins outside 1..HLR_CALIBRATION_MAX_BINS; a label outside
 *   [0, classes); a probability outside [0, 1] or NaN).
 * @ownership all arrays stay the caller's; nothing is retained.
 * @threadsafety safe; touches only its arguments.
 */
HLR_API hlr_status hlr_calibration_metrics(const float *probs, const int32_t *labels, int64_t n, int classes,
                                           int bins, hlr_calibration *out, int64_t *bin_count,
                                           double *bin_confidence, double *bin_accuracy);

/**
 * Fit the temperature T that minimises the mean negative log-likelihood of
 * softmax(logits / T) on a held-out data set (not the training data: a
 * model is over-confident on what it was trained on), and set it on the
 * model, as hlr_model_set_temperature() would.  The NLL is convex in 1/T;
 * Newton's method on 1/T, from the model's current temperature's 1/T,
 * safeguarded by bisection, finds it to 1e-9 relative.
 *
 * @param m           a built classifier (cross-entropy loss, output (N, C)).
 * @param val         held-out samples with their labels, matching the model.
 * @param batch_size  the batch of the inference passes, >= 1.
 * @param[out] t      receives T (may be NULL).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, batch_size below 1, a sequence data set),
 *   HLR_ESTATE (m not built), HLR_ESHAPE (the samples do not fit, or the
 *   output is not (N, C)), HLR_EUNSUPPORTED (a CTC or MSE model),
 *   HLR_ENUMERIC (the logits hold NaN or infinity), HLR_ENOMEM.
 * @ownership val stays the caller's; the model keeps T (in its file too).
 * @threadsafety uses m (inference passes): one thread at a time.
 */
HLR_API hlr_status hlr_model_fit_temperature(hlr_model *m, const hlr_dataset *val, int batch_size, double *t);

/**
 * Set the temperature T that hlr_model_predict() divides the logits by
 * before the softmax (1: none).  Classes, so accuracy, do not change;
 * hlr_model_forward() and hlr_model_evaluate()'s loss still see the raw
 * logits.  Saved in the model file (format 1.1, chunk `TEMP`) when T is
 * not 1; clones made afterwards inherit it.
 *
 * @param m  a built or unbuilt classifier (a CTC or MSE model is refused).
 * @param t  the temperature, finite, in [1e-3, 1e3].
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (m NULL, t out of range or not finite),
 *   HLR_EUNSUPPORTED (a CTC or MSE model).
 * @ownership nothing is retained beyond the number.
 * @threadsafety changes m: not while another thread uses it.
 */
HLR_API hlr_status hlr_model_set_temperature(hlr_model *m, double t);

/**
 * The model's temperature (see hlr_model_set_temperature()).
 *
 * @param m  the model, or NULL.
 * @return T; 1 for NULL or a model never calibrated.
 * @ownership nothing is retained.
 * @threadsafety reads m; safe alongside other readers.
 */
HLR_API double hlr_model_temperature(const hlr_model *m);

/**
 * Predict a whole data set and measure the calibration of the
 * probabilities hlr_model_predict() gives (the model's temperature
 * applied), as hlr_calibration_metrics() does.
 *
 * @param m           a built classifier.
 * @param d           samples with their labels, matching the model.
 * @param batch_size  the batch of the inference passes, >= 1.
 * @param bins        as for hlr_calibration_metrics().
 * @param[out] out    receives the figures.
 * @param[out] bin_count       as for hlr_calibration_metrics(), or NULL.
 * @param[out] bin_confidence  as for hlr_calibration_metrics(), or NULL.
 * @param[out] bin_accuracy    as for hlr_calibration_metrics(), or NULL.
 * @return HLR_OK, or an error code below.
 * @errors as hlr_model_fit_temperature() and hlr_calibration_metrics().
 * @ownership all arrays stay the caller's.
 * @threadsafety uses m (inference passes): one thread at a time.
 */
HLR_API hlr_status hlr_model_calibration(hlr_model *m, const hlr_dataset *d, int batch_size, int bins,
                                         hlr_calibration *out, int64_t *bin_count, double *bin_confidence,
                                         double *bin_accuracy);

/** @} */

/* ------------------------------------------------------------------------ */
/* Where the model looks                                                     */
/* ------------------------------------------------------------------------ */
/** @defgroup explain Where the model looks: saliency, SmoothGrad, integrated gradients, Grad-CAM
 *
 * Attribution maps of a classifier's decision over its input, each a
 * float32 tensor of the input's shape (N, input shape...), for the class
 * score (logit) of a target class (or the predicted one), computed with
 * the model as predict sees it (inference: running statistics, no dropout):
 *
 * - saliency (Simonyan et al. 2014): |d score / d x|;
 * - SmoothGrad (Smilkov et al. 2017): the mean of |d score / d x| over
 *   copies of x with Gaussian noise of standard deviation `noise` times
 *   the sample's value range;
 * - integrated gradients (Sundararajan et al. 2017): (x - baseline) times
 *   the mean gradient along the straight path from the baseline to x
 *   (midpoint rule, `steps` points); they add up to score(x) -
 *   score(baseline) (completeness), up to the rule's error;
 * - Grad-CAM (Selvaraju et al. 2017) for a convolution: ReLU(sum over
 *   channels k of a_k A_k), A the layer's output (after a ReLU or pooling
 *   fused into it) and a_k the mean over positions of d score / d A_k,
 *   upsampled bilinearly (as torch's interpolate with align_corners=False)
 *   to the input's height and width and written to every input channel.
 * @{ */

/** The attribution methods of hlr_model_explain(). */
typedef enum hlr_explain_method {
    HLR_EXPLAIN_SALIENCY = 0,   /**< |gradient| */
    HLR_EXPLAIN_SMOOTHGRAD = 1, /**< mean |gradient| over noisy copies */
    HLR_EXPLAIN_INTEGRATED_GRADIENTS = 2, /**< signed; completeness */
    HLR_EXPLAIN_GRADCAM = 3     /**< a convolution's class activation map */
} hlr_explain_method;

/** Options of hlr_model_explain(); initialise with hlr_explain_options_default(). */
typedef struct hlr_explain_options {
    hlr_explain_method method; /**< default HLR_EXPLAIN_SALIENCY */
    int steps;                 /**< SmoothGrad's noisy copies, integrated
                                    gradients' path points, 1 to 4096;
                                    default 32 */
    double noise;              /**< SmoothGrad: noise standard deviation as
                                    a fraction of each sample's value range,
                                    in [0, 10]; default 0.15 */
    const hlr_tensor *baseline; /**< integrated gradients: the baseline, of
                                    x's shape or one sample's; NULL (default):
                                    zeros */
    int layer;                 /**< Grad-CAM: the index of a conv2d layer in
                                    the model; -1 (default): the last one */
    uint64_t seed;             /**< SmoothGrad's noise; default 0 */
} hlr_explain_options;

/**
 * Fill `*o` with the defaults given for each member.
 *
 * @param[out] o  the options, or NULL (a no-op).
 * @ownership o stays the caller's.
 * @threadsafety writes only `*o`.
 */
HLR_API void hlr_explain_options_default(hlr_explain_options *o);

/**
 * An attribution map per sample of x: which of its values drive the score
 * of the target class (see the group's description for the methods).
 *
 * @param m           a built classifier of float32 input (not a clone:
 *                    clones keep no gradients).
 * @param x           float32 batch (N, input shape...); Grad-CAM needs
 *                    images (N, C, H, W).
 * @param targets     NULL (each sample's predicted class), or N classes.
 * @param opt         the method and its settings; NULL: saliency.
 * @param[out] map    float32 tensor of x's shape, overwritten.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL m, x or map, an unknown method, steps or noise
 *   out of range, a target outside the classes, a Grad-CAM layer that is
 *   not a conv2d or whose output is not (C, H, W)), HLR_ESHAPE (x, map or
 *   the baseline of another shape, output not (N, C)), HLR_ESTATE (not
 *   built, a clone), HLR_EUNSUPPORTED (token ids), HLR_ENOTFOUND
 *   (Grad-CAM without a conv2d layer), HLR_ENOMEM.
 * @ownership x, targets, opt, the baseline and map stay the caller's.
 * @threadsafety uses m's buffers (and overwrites its parameters'
 *   gradients, as hlr_model_input_gradient()); one thread at a time.
 */
HLR_API hlr_status hlr_model_explain(hlr_model *m, const hlr_tensor *x, const int32_t *targets,
                                     const hlr_explain_options *opt, hlr_tensor *map);

/** @} */

/* ------------------------------------------------------------------------ */
/* Robustness                                                                */
/* ------------------------------------------------------------------------ */
/** @defgroup robustness Robustness: adversarial examples and training
 *
 * L-infinity attacks on a classifier: FGSM (Goodfellow et al. 2015), one
 * step of step_size in the direction of the sign of the loss's gradient,
 * and PGD (Madry et al. 2018), `steps` such steps from x or from a random
 * point of the eps-ball, each projected back into the ball around x and
 * the valid input range.  The gradient is of the cross-entropy loss
 * against the true label, with the model as predict sees it (inference).
 * Adversarial training (hlr_fit_options::adversarial) trains on such
 * examples made from the model as it is at each batch.
 * @{ */

/** Options of hlr_model_attack(); initialise with hlr_attack_options_default(). */
typedef struct hlr_attack_options {
    double eps;        /**< the L-infinity radius, in [0, 10]; default 0.1 */
    int steps;         /**< 1: FGSM; more: PGD; 1 to 10000; default 1 */
    double step_size;  /**< each step's size, >= 0; 0 (default): eps for one
                            step, 2.5 eps / steps for more (Madry et al.) */
    int random_start;  /**< 1: start from a uniform point of the eps-ball;
                            default 0 */
    double clip_min;   /**< the smallest valid input value; default 0 */
    double clip_max;   /**< the largest valid input value; default 1 */
    uint64_t seed;     /**< hlr_model_attack()'s random start; default 0 */
} hlr_attack_options;

/**
 * Fill `*o` with the defaults given for each member (FGSM at 0.1).
 *
 * @param[out] o  the options, or NULL (a no-op).
 * @ownership o stays the caller's.
 * @threadsafety writes only `*o`.
 */
HLR_API void hlr_attack_options_default(hlr_attack_options *o);

/**
 * Adversarial examples of a batch: x moved within the eps-ball (and the
 * valid range) to increase each sample's loss against its label.
 *
 * @param m           a built classifier of float32 input (not a clone).
 * @param x           float32 batch (N, input shape...), values in
 *                    [clip_min, clip_max].
 * @param labels      N true classes.
 * @param o           the attack; NULL: the defaults.
 * @param[out] x_adv  float32 tensor of x's shape (may be x itself).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL m, x, labels or x_adv, options out of range,
 *   a label outside the classes), HLR_ESHAPE (x_adv not x's shape, x not
 *   the model's input, output not (N, C)), HLR_ESTATE (not built, a
 *   clone), HLR_EUNSUPPORTED (token ids), HLR_ENOMEM.
 * @ownership x, labels, o and x_adv stay the caller's.
 * @threadsafety uses m's buffers (and overwrites its parameters'
 *   gradients); one thread at a time.
 */
HLR_API hlr_status hlr_model_attack(hlr_model *m, const hlr_tensor *x, const int32_t *labels,
                                    const hlr_attack_options *o, hlr_tensor *x_adv);

/**
 * Robust accuracy: the fraction of a data set's samples still classified
 * right after hlr_model_attack() (each batch attacked with the options;
 * the random start seeded by o->seed and the batch's position).
 *
 * @param m           a built classifier.
 * @param d           samples with their labels, matching the model.
 * @param batch_size  the batch of the attack, >= 1.
 * @param o           the attack; NULL: the defaults.
 * @param[out] accuracy  receives the fraction, in [0, 1].
 * @return HLR_OK, or an error code below.
 * @errors as hlr_model_attack(); HLR_EINVAL (NULL d or accuracy,
 *   batch_size below 1, a sequence data set).
 * @ownership nothing is retained.
 * @threadsafety uses m's buffers; one thread at a time.
 */
HLR_API hlr_status hlr_model_robust_accuracy(hlr_model *m, const hlr_dataset *d, int batch_size,
                                             const hlr_attack_options *o, double *accuracy);

/** @} */

/* ------------------------------------------------------------------------ */
/* Data-parallel training                                                    */
/* ------------------------------------------------------------------------ */
/** @defgroup distributed Data-parallel training across processes
 *
 * One process per machine (or socket), each with a copy of the model, each
 * training on its own shard of the data: after every batch's backward pass
 * the gradients of all processes are averaged, and every process takes the
 * same optimizer step, so the copies stay equal.  The library knows no
 * transport: the caller gives it the collective operations in an
 * hlr_distributed, and the companion library libhlr-mpi (`make mpi`,
 * include/hlr/hlr_mpi.h) gives them from MPI.  With
 * hlr_fit_options::distributed set, hlr_model_fit():
 *
 * - broadcasts rank 0's parameters (and batch-norm statistics) and
 *   generator state before the first batch, so every process starts alike;
 * - shards each epoch's permutation as PyTorch's DistributedSampler does:
 *   the same permutation in every process, padded with its first samples to
 *   a multiple of `size`, process `rank` taking samples rank, rank + size,
 *   rank + 2 size, ...; so `batch_size` is the per-process batch and the
 *   global batch is `size` times it;
 * - averages the gradients of all trainable parameters in one fused buffer
 *   (one all-reduce of the model's trainable floats per batch; allocated
 *   before the first batch);
 * - sums the epoch's figures (training loss and accuracy, and validation,
 *   each process evaluating its contiguous part of the validation data)
 *   across processes, so hlr_epoch_stats, early stopping, reduce-on-plateau
 *   and the history agree everywhere;
 * - stops every process when any callback asks one to;
 * - writes the checkpoint and the CSV log in rank 0 only.
 *
 * Batch normalisation keeps per-process statistics, as PyTorch's
 * DistributedDataParallel does by default, or with
 * hlr_distributed::sync_batchnorm takes each training batch's statistics
 * over all the processes' batches, as torch.nn.SyncBatchNorm (then N
 * processes with batch B train as one process with batch N B, batch norm
 * included).  Dropout and augmentation draw
 * from each process's generator, which starts equal and stays equal.
 * @{ */

/**
 * The collective operations of data-parallel training, given by the
 * caller (libhlr-mpi's hlr_mpi_distributed() fills one from MPI).  Every
 * process calls them in the same order with the same counts; each must
 * return only when the operation is complete in this process.
 */
typedef struct hlr_distributed {
    int rank;  /**< this process, in [0, size) */
    int size;  /**< the number of processes, >= 1 */
    /** Sum `count` floats element-wise over all processes, the result in
     *  every process's `data` (MPI_Allreduce with MPI_SUM, in place).
     *  Returns HLR_OK, or an error code (with hlr_last_error() set by
     *  whoever failed) that ends the fit. */
    hlr_status (*allreduce_f32)(float *data, int64_t count, void *user);
    /** As allreduce_f32(), for doubles (the epoch's figures). */
    hlr_status (*allreduce_f64)(double *data, int64_t count, void *user);
    /** Copy rank 0's `bytes` bytes at `data` into every process's `data`
     *  (MPI_Bcast). */
    hlr_status (*broadcast)(void *data, int64_t bytes, void *user);
    void *user;  /**< passed to each function */
    int sync_batchnorm; /**< 1: batch normalisation computes a training
                             batch's statistics over every process's batch
                             (torch.nn.SyncBatchNorm: two all-reduces of its
                             per-channel sums in the forward pass, one in the
                             backward); 0 (default): each process's own, as
                             PyTorch's DistributedDataParallel */
} hlr_distributed;

/**
 * Give every process rank 0's parameters, batch-norm statistics and
 * generator state, for a training loop of one's own (hlr_model_fit() does
 * it itself when hlr_fit_options::distributed is set).
 *
 * @param m  a built model that may train (not a clone).
 * @param d  the collective operations; `d->size` 1 does nothing.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, a missing function, rank outside [0, size)),
 *   HLR_ESTATE (m not built, or a clone), HLR_ENOMEM, and what
 *   `d->broadcast` returns.
 * @ownership nothing is retained; the model keeps one buffer of its
 *   parameters' size for this and hlr_model_allreduce_gradients(), freed
 *   with it.
 * @threadsafety uses m; one thread at a time, and every process must call
 *   it.
 */
HLR_API hlr_status hlr_model_broadcast_parameters(hlr_model *m, const hlr_distributed *d);

/**
 * Average the gradients of the model's trainable parameters over all
 * processes, in one fused all-reduce, for a training loop of one's own:
 * call it after hlr_model_backward() and before hlr_optimizer_step().
 * Frozen layers' gradients and batch-norm statistics are left alone.
 *
 * @param m  a built model that may train.
 * @param d  the collective operations; `d->size` 1 does nothing.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL, a missing function, rank outside [0, size)),
 *   HLR_ESTATE (m not built, or a clone), HLR_ENOMEM (the first call
 *   allocates the fused buffer), and what `d->allreduce_f32` returns.
 * @ownership nothing is retained (the fused buffer is the model's).
 * @threadsafety uses m; one thread at a time, and every process must call
 *   it.
 */
HLR_API hlr_status hlr_model_allreduce_gradients(hlr_model *m, const hlr_distributed *d);

/** @} */

/* ------------------------------------------------------------------------ */
/* Model files                                                               */
/* ------------------------------------------------------------------------ */
/** @defgroup files Model files
 *
 * A model file (specified byte by byte in docs/format.md) holds everything
 * needed to rebuild a model in another process: its architecture (every
 * layer's type and configuration), its parameters and buffers, optionally
 * the optimizer's state and the training state (so that training resumes
 * bit-exactly), and metadata (writer version, class names, data set name,
 * per-epoch history, free key/value strings).  Files are little-endian,
 * versioned, zlib-compressed and CRC-32-checked.
 *
 * The reader treats every file as hostile: it checks every count, size and
 * dimension against the bytes present and sane limits before allocating,
 * and fails with HLR_EFORMAT and a message naming the chunk and offset,
 * for example `model file: chunk PARM #3 at payload offset 1932: ...`.  A
 * file of a newer major format version fails with HLR_EUNSUPPORTED; newer
 * minor versions load (chunks this library does not know are skipped).
 * @{ */

/** The major format version this library writes, and the one it reads
 *  (files of a newer major version fail with HLR_EUNSUPPORTED). */
#define HLR_FORMAT_MAJOR 1
/** The minor format version this library writes; it reads every minor
 *  version of HLR_FORMAT_MAJOR. */
#define HLR_FORMAT_MINOR 2

/** Options of hlr_model_save() and hlr_model_save_buffer(); initialise
 *  with hlr_save_options_default(). */
typedef struct hlr_save_options {
    int compression;                /**< zlib level: 0 (stored) to 9
                                       (smallest); default 6 */
    const hlr_optimizer *optimizer; /**< when not NULL, its state is saved
                                       so training can resume; it must be
                                       unused or bound to this model;
                                       default NULL */
    int training_state;             /**< nonzero: save the model's random
                                       generator and its epoch and batch
                                       counters; default 1 */
} hlr_save_options;

/**
 * Fill an hlr_save_options with the defaults: compression 6, optimizer
 * NULL, training_state 1 (every other byte zero).
 *
 * @param[out] o  the options to fill; NULL is allowed and does nothing.
 * @ownership o stays the caller's.
 * @threadsafety safe; writes only o.
 */
HLR_API void hlr_save_options_default(hlr_save_options *o);

/**
 * Write a built model to a model file, with the optimizer state and
 * training state the options ask for.
 * The file is written to a temporary file (`.hlr-save-PID-N.tmp`) in
 * path's folder, flushed to disk and renamed over path: a crash or a full
 * disk leaves the previous file (or none), never a partial one; on failure
 * the temporary file is removed.  docs/format.md specifies the bytes.
 *
 * @param m     the model to save; must be built.
 * @param path  the file to create or replace; not NULL, not empty.
 * @param opt   what to save besides the model (see hlr_save_options); NULL
 *              means the defaults of hlr_save_options_default().
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL model, NULL or empty path, compression outside
 *   0..9), HLR_ESTATE (not built; the optimizer trains another model),
 *   HLR_EUNSUPPORTED (a layer type that cannot be saved, or a model beyond
 *   the format's limits: more than 4096 layers, an input sample or one
 *   layer's output sample of more than 2^26 values, more than 2^28 values
 *   in the input and all layers' outputs together), HLR_EIO (the folder
 *   cannot be written, the disk is full: the message names the path and the
 *   system's reason), HLR_ENOMEM.
 * @ownership nothing is retained; m, path and opt stay the caller's.
 * @threadsafety reads the model (and optimizer): do not train them from
 *   another thread meanwhile.  Saving two models at once is fine.
 */
HLR_API hlr_status hlr_model_save(const hlr_model *m, const char *path, const hlr_save_options *opt);

/**
 * Write the same bytes as hlr_model_save() into memory instead of a file.
 *
 * @param m          the model to save; must be built.
 * @param opt        as for hlr_model_save(); NULL means the defaults.
 * @param[out] data  receives the file's bytes; NULL on failure.  Must not be
 *                   NULL.
 * @param[out] size  receives their number; 0 on failure.  Must not be NULL.
 * @return HLR_OK, or an error code below.
 * @errors as hlr_model_save() but no HLR_EIO; HLR_EINVAL also for a NULL
 *   data or size.
 * @ownership `*data` is owned by the caller; free it with hlr_buffer_free().
 *   m and opt are not retained.
 * @threadsafety as hlr_model_save().
 */
HLR_API hlr_status hlr_model_save_buffer(const hlr_model *m, const hlr_save_options *opt, void **data,
                                         size_t *size);

/**
 * Free a buffer from hlr_model_save_buffer().
 *
 * @param data  the buffer; NULL is allowed and does nothing.
 * @ownership takes ownership of data and frees it.
 * @threadsafety safe; distinct buffers may be freed from distinct threads.
 */
HLR_API void hlr_buffer_free(void *data);

/**
 * Read a model file and rebuild the model: layers from their
 * configurations, built with the stored input shape, parameters, buffers,
 * loss, metadata and (when saved) the training state.
 * Without training state the model's generator is where hlr_model_new(0)
 * and the build leave it.  docs/format.md specifies the bytes.
 *
 * @param path            the model file; not NULL.
 * @param[out] optimizer  NULL to ignore the file's optimizer state (it is
 *   still checked).  Otherwise `*optimizer` receives the saved optimizer,
 *   bound to the returned model with its moments, step count and schedule
 *   position (one saved before its first step comes back unbound, as it
 *   was), or NULL when the file holds none;
 *   `hlr_model_fit(m, *optimizer, ...)` then continues where the saved
 *   training stopped.
 * @return the built model, or NULL (then `*optimizer` is NULL too).
 * @errors HLR_EINVAL (NULL path), HLR_EIO (cannot open or read, not a
 *   regular file: FIFOs, devices and folders are refused without
 *   blocking), HLR_EFORMAT (not a model file, corrupt, truncated,
 *   inconsistent, a layer type this library does not know: the message
 *   names the path and says what and where), HLR_EUNSUPPORTED (newer major
 *   format version, or a required feature this library lacks), HLR_ENOMEM.
 * @ownership the model (free with hlr_model_free()) and `*optimizer` (free
 *   with hlr_optimizer_free()) are owned by the caller.  path is not
 *   retained.
 * @threadsafety safe; loads in different threads do not interfere.
 */
HLR_API hlr_model *hlr_model_load(const char *path, hlr_optimizer **optimizer);

/**
 * Do what hlr_model_load() does, from a file's whole contents in memory.
 *
 * @param data            the file's bytes; not NULL.
 * @param size            their number.
 * @param[out] optimizer  as for hlr_model_load(); may be NULL.
 * @return the built model, or NULL (then `*optimizer` is NULL too).
 * @errors as hlr_model_load() (HLR_EINVAL for NULL data), no HLR_EIO.
 * @ownership as hlr_model_load(); data stays the caller's and is not
 *   retained.
 * @threadsafety safe; only reads data.
 */
HLR_API hlr_model *hlr_model_load_buffer(const void *data, size_t size, hlr_optimizer **optimizer);

/**
 * Count the epochs hlr_model_fit() has completed on this model, over every
 * call and, through a file's training state, earlier processes.
 *
 * @param m  the model; NULL is allowed.
 * @return the number of epochs (0 for NULL, for a clone and for a model
 *   loaded from a file without training state).
 * @ownership m is only read.
 * @threadsafety as the model: not while it trains in another thread.
 */
HLR_API int64_t hlr_model_epochs_trained(const hlr_model *m);

/** @} */

/* ------------------------------------------------------------------------ */
/* ONNX                                                                      */
/* ------------------------------------------------------------------------ */
/** @defgroup onnx ONNX export and import
 *
 * A built model as an ONNX model (https://onnx.ai), for ONNX Runtime and
 * every other runtime that reads the format: opset HLR_ONNX_OPSET (IR
 * version 8), one input "input" of shape (N, the model's input
 * shape) with N, the batch, dynamic, and one output "logits" (what
 * hlr_model_forward() gives; a classifier's probabilities are their
 * softmax after dividing by the model's temperature, which the file's
 * metadata holds).  Each layer becomes the operators that compute what it
 * computes at inference, as torch.onnx.export writes the same PyTorch
 * modules: dense (Gemm, or MatMul and Add on sequences), conv2d (Conv, with
 * groups and dilation), maxpool2d, avgpool2d, global_avgpool2d,
 * batchnorm1d/2d (BatchNormalization with the running statistics), relu,
 * leaky_relu, sigmoid, tanh, gelu (through Erf), softmax, dropout
 * (Identity), flatten, image_rows, feature_map_rows/columns (Transpose and
 * Reshape), lstm and gru (ONNX's LSTM and GRU, gates re-ordered, stacked
 * and bidirectional), multihead_attention and transformer_encoder (MatMul,
 * Softmax, LayerNormalization; a causal mask as an added -inf triangle),
 * class_token (Expand, Concat), positional_encoding (Add of its table),
 * patch_embedding (Conv, Reshape, Transpose), embedding (Gather), seq_mean,
 * seq_max, seq_first, seq_last and layernorm.  A model over token ids (an
 * embedding first) takes int32 "input" (N, T) and a second input,
 * "lengths" (int32 (N)), each sequence's length as hlr_model_set_lengths()
 * gives it (at most T): it feeds the recurrent layers' sequence_lens and
 * masks seq_mean, seq_max and seq_last.  The metadata holds the file's
 * metadata keys,
 * "class_names" (a JSON array), "dataset" and "temperature".
 *
 * Not exported yet (HLR_EUNSUPPORTED naming the layer): key-padding masks
 * of attention, and sequence lengths of models over float input (their
 * graphs read every step).
 * @{ */

/** The ONNX operator set libhlr writes (ONNX 1.12; ONNX Runtime 1.12 and later read it). */
#define HLR_ONNX_OPSET 17

/**
 * Write a built model as an ONNX file.
 *
 * @param m      a built model (a clone too).
 * @param path   the file to write (replaced).
 * @param opset  HLR_ONNX_OPSET, or 0 for it.
 * @return HLR_OK, or an error code.
 * @errors HLR_EINVAL (NULL m or path), HLR_ESTATE (not built),
 *   HLR_EUNSUPPORTED (another opset; a layer with no export yet, named in
 *   the message), HLR_EIO (cannot write path; a partial file
 *   is removed), HLR_ENOMEM.
 * @ownership m is only read; path is not retained.
 * @threadsafety as a prediction: not while m trains.
 */
HLR_API hlr_status hlr_model_export_onnx(hlr_model *m, const char *path, int opset);

/**
 * hlr_model_export_onnx() into memory.
 *
 * @param m          a built model.
 * @param opset      HLR_ONNX_OPSET, or 0 for it.
 * @param[out] data  the ONNX model's bytes (NULL on error).
 * @param[out] size  their count (0 on error).
 * @return HLR_OK, or an error code.
 * @errors HLR_EINVAL (a NULL argument), HLR_ESTATE, HLR_EUNSUPPORTED,
 *   HLR_ENOMEM, as hlr_model_export_onnx().
 * @ownership `*data` is owned by the caller; free it with hlr_buffer_free().
 * @threadsafety as a prediction: not while m trains.
 */
HLR_API hlr_status hlr_model_export_onnx_buffer(hlr_model *m, int opset, void **data, size_t *size);

/**
 * Read an ONNX model into a new, built libhlr model (ready to predict; its
 * parameters are the file's).  The graph must be a chain of layers, as
 * torch.onnx.export writes an nn.Sequential (or a module that runs its
 * layers one after the other) and as hlr_model_export_onnx() writes: every
 * node reads the output of the one before, plus constants, from one float
 * input (N, fixed sizes...) to one output.  Read back: Gemm, MatMul (+ Add)
 * as dense; Conv; MaxPool; AveragePool; GlobalAveragePool + Flatten;
 * BatchNormalization; Relu, LeakyRelu, Sigmoid, Tanh, Softmax (last axis),
 * the Erf form of GELU; Flatten and Reshape (flatten, image_rows);
 * Transpose + Reshape (feature_map_rows/columns); Dropout and Identity
 * (dropped); LSTM and GRU (forward or bidirectional, zero initial states)
 * between the Transposes, Squeezes and Reshapes that exporters put around
 * them; Gather of the first or last step; ReduceMean and ReduceMax over the
 * steps; LayerNormalization.  The composite layers come back from the
 * patterns hlr_model_export_onnx() writes for them: multi-head attention
 * (with or without biases, output projection and causal mask), pre-norm
 * transformer encoder blocks, the class token, positional encodings (an Add
 * of a (steps, features) table, read as learned), patch embeddings, and a
 * model over token ids: int32 (or PyTorch's int64) input (N, T) read by an embedding, with an
 * optional second input of int32 lengths (N) feeding the recurrent layers'
 * sequence_lens and the masked seq_mean / seq_max (pass the lengths to the
 * imported model with hlr_model_set_lengths()).  The file's metadata
 * becomes the model's ("temperature" sets the temperature, "dataset" the
 * data set; "class_names" is left out).  PyTorch 1.13's own export of
 * nn.MultiheadAttention(batch_first=True) called as self-attention
 * attn(x, x, x) without masks, alone or inside
 * nn.TransformerEncoderLayer(batch_first=True, norm_first=True,
 * activation='gelu'), is read too: its run-time shape arithmetic (Shape, Gather, Div, Cast, Unsqueeze,
 * Concat) is evaluated to check the Slices of the in-projection, the split
 * into heads and the scale (in a file exported with a fixed batch size,
 * where the exporter folded it into constants, at that size); a near miss
 * is refused with a message saying what is read.
 *
 * The file is treated as hostile input: every count, shape and length is
 * checked before use, and a damaged file fails cleanly.
 *
 * @param path  the .onnx file.
 * @return the model (free with hlr_model_free()), or NULL.
 * @errors HLR_EINVAL (NULL path), HLR_EIO (cannot open or read the file;
 *   not a regular file), HLR_EFORMAT (not an ONNX model, inconsistent
 *   data; the message names the file), HLR_EUNSUPPORTED (an operator,
 *   attribute or graph shape that is not read: the message names the node
 *   and its operator; opsets outside 9 to 18), HLR_ENOMEM.
 * @ownership the model is the caller's; path is not retained.
 * @threadsafety safe: imports in different threads do not interfere.
 */
HLR_API hlr_model *hlr_model_import_onnx(const char *path);

/**
 * hlr_model_import_onnx() from bytes in memory.
 *
 * @param data  the ONNX model's bytes; not NULL.
 * @param size  their count, at least 1.
 * @return the model, or NULL.
 * @errors HLR_EINVAL (NULL data, no bytes), HLR_EFORMAT, HLR_EUNSUPPORTED,
 *   HLR_ENOMEM, as hlr_model_import_onnx() (messages name no file).
 * @ownership the model is the caller's; data is only read.
 * @threadsafety safe.
 */
HLR_API hlr_model *hlr_model_import_onnx_buffer(const void *data, size_t size);

/** @} */

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------ */
/** @defgroup metadata Metadata
 * @{ */

/**
 * A model's metadata, which model files keep.
 * Every model carries metadata that model files keep: a data set name,
 * class names, free key/value strings and the per-epoch history that
 * hlr_model_fit() records.  It is borrowed from its model
 * (hlr_model_metadata()) or from an hlr_model_info
 * (hlr_model_info_metadata()) and never freed by the caller.  Strings are
 * copied in, must be NUL-terminated and are meant to be UTF-8.  Limits
 * (HLR_EINVAL beyond them): data set name up to 255 bytes, up to 65536
 * class names of 1 to 255 bytes, up to 4096 keys of 1 to 255 bytes with
 * values up to 65535 bytes.
 */
typedef struct hlr_metadata hlr_metadata;

/**
 * Get the model's metadata, to read or change.
 *
 * @param m  the model.
 * @return the metadata, or NULL (HLR_EINVAL) for a NULL model.
 * @errors HLR_EINVAL (NULL model).
 * @ownership borrowed, valid while the model lives; never freed by the
 *   caller.
 * @threadsafety as the model.
 */
HLR_API hlr_metadata *hlr_model_metadata(hlr_model *m);

/**
 * Name the data set the model was trained on.
 *
 * @param md    the metadata.
 * @param name  the name, up to 255 bytes; NULL or "" clears it.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL metadata, name too long), HLR_ENOMEM.  On failure
 *   the old name stays.
 * @ownership name is copied.
 * @threadsafety as the model that owns md.
 */
HLR_API hlr_status hlr_metadata_set_dataset(hlr_metadata *md, const char *name);

/**
 * Get the data set name.
 *
 * @param md  the metadata; NULL is allowed.
 * @return the name, "" when none (or md NULL); never NULL.
 * @ownership borrowed, valid until the name changes or the owner is freed.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API const char *hlr_metadata_dataset(const hlr_metadata *md);

/**
 * Replace the class names with copies of the given ones.
 *
 * @param md     the metadata.
 * @param n      the number of names, 0 to 65536; 0 clears them.
 * @param names  n names (names[0..n)) of 1 to 255 bytes each, in class
 *               order; may be NULL when n is 0.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL metadata, names NULL with n > 0, n outside
 *   0..65536, a name NULL, empty or too long), HLR_ENOMEM.  On failure the
 *   old names stay.
 * @ownership the names are copied.
 * @threadsafety as the model that owns md.
 */
HLR_API hlr_status hlr_metadata_set_class_names(hlr_metadata *md, int n, const char *const *names);

/**
 * Count the class names.
 *
 * @param md  the metadata; NULL is allowed.
 * @return how many class names there are (0 for NULL).
 * @ownership md is only read.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API int hlr_metadata_num_classes(const hlr_metadata *md);

/**
 * Get class name i.
 *
 * @param md  the metadata.
 * @param i   the class, 0 to hlr_metadata_num_classes() - 1.
 * @return the name, or NULL (HLR_EINVAL) when md is NULL or i out of range.
 * @errors HLR_EINVAL (NULL metadata, i out of range).
 * @ownership borrowed, valid until the names change or the owner is freed.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API const char *hlr_metadata_class_name(const hlr_metadata *md, int i);

/**
 * Set key to a copy of value, replacing an earlier value, or remove it.
 * Keys keep the order they were first set in; removing one moves the later
 * keys one place forward.
 *
 * @param md     the metadata.
 * @param key    the key, 1 to 255 bytes; not NULL.
 * @param value  the value, 0 to 65535 bytes ("" is a value); NULL removes
 *               the key (nothing happens when it is absent).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL metadata or key, empty or too long key, too long
 *   value, a new key beyond 4096), HLR_ENOMEM.  On failure nothing changes.
 * @ownership key and value are copied.
 * @threadsafety as the model that owns md.
 */
HLR_API hlr_status hlr_metadata_set(hlr_metadata *md, const char *key, const char *value);

/**
 * Get the value of key.
 *
 * @param md   the metadata; NULL is allowed.
 * @param key  the key; NULL is allowed.
 * @return the value, or NULL when absent or md or key is NULL (no error
 *   set).
 * @ownership borrowed, valid until the key changes or the owner is freed.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API const char *hlr_metadata_get(const hlr_metadata *md, const char *key);

/**
 * Count the keys.
 *
 * @param md  the metadata; NULL is allowed.
 * @return the number of keys (0 for NULL).
 * @ownership md is only read.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API int hlr_metadata_count(const hlr_metadata *md);

/**
 * Get key i, in the order the keys were set.
 *
 * @param md  the metadata.
 * @param i   the key's place, 0 to hlr_metadata_count() - 1.
 * @return the key, or NULL (HLR_EINVAL) when md is NULL or i out of range.
 * @errors HLR_EINVAL (NULL metadata, i out of range).
 * @ownership borrowed, valid until the key is removed or the owner is
 *   freed.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API const char *hlr_metadata_key(const hlr_metadata *md, int i);

/**
 * Count the epochs recorded by hlr_model_fit().
 *
 * @param md  the metadata; NULL is allowed.
 * @return the number of records (0 for NULL).
 * @ownership md is only read.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API int hlr_metadata_history_length(const hlr_metadata *md);

/**
 * Copy epoch record i into an hlr_epoch_stats.
 * In the record, epoch is the model's epoch number (counting every fit,
 * from 1) and epochs the epoch number at which that fit was set to end
 * (the epochs before it plus its own count, even when early stopping ended
 * it sooner); the rest is as hlr_model_fit()'s callback saw it.  Model
 * files keep only epoch, epochs, the losses, accuracies, lr, seconds and
 * samples_per_second: a record read from a file has best_epoch, stopping
 * and val_cer 0.
 *
 * @param md        the metadata.
 * @param i         the record, 0 (the oldest) to
 *                  hlr_metadata_history_length() - 1.
 * @param[out] out  receives the record; not NULL.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL md or out, i out of range).
 * @ownership out is the caller's; md is only read.
 * @threadsafety only reads md: safe while no thread changes it.
 */
HLR_API hlr_status hlr_metadata_history(const hlr_metadata *md, int i, hlr_epoch_stats *out);

/**
 * Forget the recorded epochs.
 *
 * @param md  the metadata.
 * @return HLR_OK, or HLR_EINVAL for NULL.
 * @errors HLR_EINVAL (NULL metadata).
 * @ownership md is borrowed for the call.
 * @threadsafety as the model that owns md.
 */
HLR_API hlr_status hlr_metadata_clear_history(hlr_metadata *md);

/** @} */

/* ------------------------------------------------------------------------ */
/* Reading a model file without loading it                                   */
/* ------------------------------------------------------------------------ */
/** @defgroup info Reading a model file without loading it
 * @{ */

/**
 * What a model file holds, read without creating the model.
 * hlr_model_info_load() reads a model file's header, layer table, optimizer
 * and training state and metadata without creating the model or keeping
 * its weights (bin/hlr-inspect prints it).  The payload is inflated and
 * checked as by hlr_model_load(), with one difference: a payload CRC-32
 * mismatch is reported (crc_ok = 0) rather than refused, so a damaged file
 * can still be examined.  docs/format.md specifies the bytes.
 */
typedef struct hlr_model_info hlr_model_info;

/**
 * Read the model file at path into an hlr_model_info.
 *
 * @param path  the model file; not NULL.
 * @return the information, or NULL.
 * @errors as hlr_model_load() (the layer types and configurations are not
 *   checked against this library's layers, and a payload CRC-32 mismatch is
 *   no error).
 * @ownership owned; free with hlr_model_info_free().  path is not retained.
 * @threadsafety safe; reads in different threads do not interfere.
 */
HLR_API hlr_model_info *hlr_model_info_load(const char *path);

/**
 * Do what hlr_model_info_load() does, from a file's whole contents in
 * memory.
 *
 * @param data  the file's bytes; not NULL.
 * @param size  their number.
 * @return the information, or NULL.
 * @errors as hlr_model_info_load() (HLR_EINVAL for NULL data), no HLR_EIO.
 * @ownership owned; free with hlr_model_info_free().  data stays the
 *   caller's and is not retained.
 * @threadsafety safe; only reads data.
 */
HLR_API hlr_model_info *hlr_model_info_load_buffer(const void *data, size_t size);

/**
 * Free an hlr_model_info and everything borrowed from it.
 *
 * @param info  the information; NULL is allowed and does nothing.
 * @ownership takes ownership of info; the strings and metadata borrowed
 *   from it become invalid.
 * @threadsafety not while another thread uses info.
 */
HLR_API void hlr_model_info_free(hlr_model_info *info);

/** What hlr_model_info_summary() reports. */
typedef struct hlr_file_summary {
    /** the file's major format version */
    int format_major, format_minor; /**< the file's minor format version */
    uint32_t flags;                 /**< the header's flags (docs/format.md):
                                       bit 0 optimizer state, bit 1 training
                                       state */
    uint64_t file_size;             /**< header + compressed payload, bytes */
    /** the compressed payload's size, bytes */
    uint64_t compressed_size, uncompressed_size; /**< the inflated payload's
                                                    size, bytes */
    uint32_t payload_crc;           /**< CRC-32 of the payload as the header
                                       states it */
    int crc_ok;                     /**< 1 when the inflated payload has that
                                       CRC-32, else 0 */
    uint32_t weights_crc;           /**< CRC-32 of every parameter's and
                                       buffer's values in file order: files
                                       with equal weights give equal
                                       numbers */
    char writer_version[32];        /**< library version that wrote the
                                       file, "" if not recorded */
    int num_layers;                 /**< layers in the layer table: see
                                       hlr_model_info_layer() */
    int input_ndim;                 /**< dimensions in input_shape */
    int64_t input_shape[HLR_MAX_DIMS]; /**< one sample, without the batch
                                          dimension; unused entries 0 */
    int64_t param_count;            /**< trainable scalars */
    int64_t buffer_count;           /**< stored scalars never trained
                                       (batch-norm statistics) */
    int loss;                       /**< hlr_loss_kind */
    double label_smoothing;         /**< the loss's label smoothing, in
                                       [0, 1) */
    int has_optimizer;              /**< 1 when the file holds optimizer state,
                                       else 0 (and the optimizer fields
                                       below are 0 or "") */
    char optimizer[8];              /**< "sgd", "adam", "adamw"; "" without
                                       optimizer state */
    /** the optimizer's base learning rate */
    double base_lr, current_lr;     /**< the rate the optimizer's next step
                                       uses (schedule applied) */
    /** the optimizer steps taken */
    int64_t optimizer_steps, schedule_position; /**< the learning-rate
                                                   schedule's position */
    int has_training_state;         /**< 1 when the file holds training state,
                                       else 0 */
    /** epochs trained by hlr_model_fit() (0 without training state) */
    int64_t epochs_trained, batches_trained; /**< batches trained by
                                                hlr_model_fit() (0 without
                                                training state) */
    int num_chunks;                 /**< chunks in the payload, unknown ones
                                       included: see hlr_model_info_chunk() */
    double temperature;             /**< the temperature of temperature
                                       scaling (a TEMP chunk, format 1.1); 1
                                       without one (readers whose size
                                       argument stops before it do not get
                                       it) */
} hlr_file_summary;

/**
 * Fill an hlr_file_summary with the file's summary.
 *
 * @param info      the information.
 * @param[out] out  receives the summary; not NULL.
 * @param size      sizeof(hlr_file_summary) as the caller knows it: a
 *                  program built against an older header (smaller struct)
 *                  gets the fields it knows; bytes beyond this header's
 *                  struct are left alone.  Not 0.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL info or out, size 0).
 * @ownership out is the caller's; info is only read.
 * @threadsafety only reads info: several threads may read one info at once.
 */
HLR_API hlr_status hlr_model_info_summary(const hlr_model_info *info, hlr_file_summary *out, size_t size);

/**
 * Describe layer i of the file's layer table.
 * Every output pointer may be NULL.
 *
 * @param info           the information.
 * @param i              the layer, 0 to num_layers - 1 (hlr_file_summary).
 * @param[out] type      receives the layer's type, such as "conv2d".
 * @param[out] config    receives its configuration as text, "key=value"
 *                       separated by spaces (for a dense layer
 *                       "in=784 out=256 bias=1"); "" when it has none.
 * @param[out] ndim      receives the number of dimensions of its output
 *                       shape (one sample, without the batch dimension).
 * @param[out] shape     receives those dimensions; room for HLR_MAX_DIMS.
 * @param[out] scalars   receives its stored scalar count (parameters and
 *                       buffers).
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL info, i out of range).
 * @ownership `*type` and `*config` are borrowed strings valid until
 *   hlr_model_info_free().
 * @threadsafety only reads info: several threads may read one info at once.
 */
HLR_API hlr_status hlr_model_info_layer(const hlr_model_info *info, int i, const char **type, const char **config,
                                        int *ndim, int64_t *shape, int64_t *scalars);

/**
 * Describe chunk i of the payload, in file order.
 * Every output pointer may be NULL.
 *
 * @param info         the information.
 * @param i            the chunk, 0 to num_chunks - 1 (hlr_file_summary).
 * @param[out] tag     receives the tag: 4 characters and a NUL.
 * @param[out] offset  receives the payload offset of its header.
 * @param[out] length  receives the length of its body, bytes.
 * @return HLR_OK, or an error code below.
 * @errors HLR_EINVAL (NULL info, i out of range).
 * @ownership the outputs are the caller's; info is only read.
 * @threadsafety only reads info: several threads may read one info at once.
 */
HLR_API hlr_status hlr_model_info_chunk(const hlr_model_info *info, int i, char tag[5], uint64_t *offset,
                                        uint64_t *length);

/**
 * Get the file's metadata (data set, class names, keys, history), to read
 * with the hlr_metadata_* getters.
 *
 * @param info  the information.
 * @return the metadata, or NULL (HLR_EINVAL) for a NULL info.
 * @errors HLR_EINVAL (NULL info).
 * @ownership borrowed, valid until hlr_model_info_free().
 * @threadsafety only reads info: several threads may read one info at once.
 */
HLR_API const hlr_metadata *hlr_model_info_metadata(const hlr_model_info *info);

/** @} */

/* ------------------------------------------------------------------------ */
/* Serving from several threads                                              */
/* ------------------------------------------------------------------------ */
/** @defgroup serving Serving from several threads
 * @{ */

/**
 * Make a model for inference that uses m's parameters and buffers in place
 * (nothing is copied) and has its own activation buffers, so that each
 * thread can predict with its own clone while all share one set of
 * weights:
 *
 *     hlr_model *m = hlr_model_load("model.hlr", NULL);       (main thread)
 *     hlr_model *mine = hlr_model_clone_shared(m);            (one per thread)
 *     hlr_model_predict(mine, x, classes, probs);             (in that thread)
 *     hlr_model_free(mine);                                   (before m)
 *
 * A clone has m's layers (rebuilt from their configurations), loss and
 * input shape.  It forwards with training = 0, predicts and evaluates; it
 * refuses to train (HLR_ESTATE from hlr_model_forward() with training != 0,
 * hlr_model_train_batch(), hlr_model_fit() and hlr_optimizer_step()), and
 * its layers have no gradients (HLR_ESTATE from hlr_layer_grad() and
 * hlr_model_input_gradient()).  Its metadata starts empty.
 *
 * @param m  the model to share; must be built.
 * @return the clone, or NULL.
 * @errors HLR_EINVAL (NULL), HLR_ESTATE (m not built, or a layer that
 *   rebuilds with other tensors), HLR_EUNSUPPORTED (a layer type that
 *   cannot be rebuilt from its configuration), HLR_ENOMEM.
 * @ownership owned; free with hlr_model_free().  m must outlive every clone
 *   of it, and must not be trained, or have its parameters written, while
 *   a clone is in use (writing a clone's parameters writes m's).  A clone
 *   of a clone shares the first model's data.
 * @threadsafety making clones only reads m, so threads may clone m at the
 *   same time and while m predicts.  Each clone, like any model, is used by
 *   one thread at a time; m itself may predict in one more thread.
 */
HLR_API hlr_model *hlr_model_clone_shared(const hlr_model *m);

/** @} */

/* ------------------------------------------------------------------------ */
/* Images                                                                    */
/* ------------------------------------------------------------------------ */
/** @defgroup images Images and line pictures
 *
 * Pictures from files, as grey float32 tensors of shape (1, H, W) with
 * values in [0, 1], white = 1: PNG (grey, grey + alpha, RGB, RGBA, palette;
 * 1 to 16 bits; interlaced or not; read with libpng) and PGM (P5 binary or
 * P2 text, any maxval up to 65535).  Colour becomes luminance
 * 0.299 R + 0.587 G + 0.114 B of the stored values (no gamma correction);
 * transparency is composited onto white paper.
 *
 * For a classifier trained on MNIST, HLR_IMAGE_MNIST turns a picture of one
 * handwritten digit into what MNIST's images look like:
 *
 * 1. polarity: the paper's brightness is the median of the pixels on the
 *    image's edge; on light paper (above 0.5) the image is inverted, so
 *    that the ink is bright on black, as in MNIST (HLR_IMAGE_DARK_INK or
 *    HLR_IMAGE_LIGHT_INK say it instead);
 * 2. contrast: paper to 0, the brightest ink to 1 (clamped); a picture in
 *    which no pixel is brighter than the paper by 0.1 or more (after step
 *    1) has no ink;
 * 3. crop to the bounding box of the pixels above 0.1;
 * 4. scale to fit 20 x 20, keeping the aspect ratio (area averaging when
 *    shrinking, bilinear when enlarging);
 * 5. paste into 28 x 28 with the ink's centre of mass on pixel (14, 14)
 *    (row and column from 0, as in MNIST; shifted by whole pixels; what
 *    falls outside is cut off).
 *
 * A stray speck or a frame around the digit widens the box of step 3: crop
 * such pictures first.
 *
 * The flags of hlr_image_load() and hlr_image_preprocess_mnist()
 * (HLR_IMAGE_MNIST, HLR_IMAGE_DARK_INK, HLR_IMAGE_LIGHT_INK) are or-ed
 * together; hlr_image_line() and hlr_dataset_load_lines() take the two
 * ink flags and HLR_IMAGE_PHOTO.
 * @{ */

/** Flag: MNIST preprocessing (steps 1 to 5 above): the result is
 *  (1, 28, 28). */
#define HLR_IMAGE_MNIST 1
/** Flag: the ink is dark on light paper: invert the image (with
 *  HLR_IMAGE_MNIST: instead of guessing). */
#define HLR_IMAGE_DARK_INK 2
/** Flag: the ink is light on dark, as MNIST: with HLR_IMAGE_MNIST, do not
 *  guess; alone it changes nothing. */
#define HLR_IMAGE_LIGHT_INK 4
/** Flag of hlr_image_line() and the line loaders: a photograph (a phone's
 *  picture of writing on paper).  Before the ink is found, the paper's
 *  uneven light is flattened: each pixel divided by the paper's brightness
 *  there (a morphological closing over an eighth of the picture's shorter
 *  side, smoothed; for light ink, an opening subtracted).  Then the line is
 *  straightened (turned by the angle, within +-10 degrees in steps of 0.5,
 *  whose rows' ink profile is sharpest, when that beats leaving it level
 *  by 5 %), and cropped to the bulk of its ink: the rows and columns
 *  between the first and the last 0.2 % of the mass of the pixels a
 *  quarter of the way or more from the paper to the darkest ink, so that
 *  specks, the paper's grain and the remains of a shadow at the edge do not
 *  widen the crop.  A photograph in which no pixel is a quarter of the way
 *  from its paper to black (white, for light ink) has no ink. */
#define HLR_IMAGE_PHOTO 8

/** The largest image hlr_image_load() accepts: pixels a side. */
#define HLR_IMAGE_MAX_SIDE 16384
/** The largest image hlr_image_load() accepts: pixels in all. */
#define HLR_IMAGE_MAX_PIXELS 67108864

/**
 * Read a PNG or PGM file into a grey image, preprocessed as flags say.
 * PNG and PGM are told apart by their first bytes, not by the name.
 * Special files (FIFOs, devices, folders) are refused without blocking.
 * Nothing is printed, whatever the file holds.
 *
 * @param path   the image file; not NULL.
 * @param flags  0, or HLR_IMAGE_MNIST, HLR_IMAGE_DARK_INK and
 *               HLR_IMAGE_LIGHT_INK or-ed together (not both ink flags).
 * @return a float32 tensor (1, H, W) in [0, 1]: the image as it is (white
 *   = 1; inverted with HLR_IMAGE_DARK_INK), or (1, 28, 28), ink bright on
 *   0, with HLR_IMAGE_MNIST; NULL on error.
 * @errors HLR_EINVAL (NULL path, unknown flags, both ink flags),
 *   HLR_EIO (cannot open or read the file, not a regular file: the message
 *   names the path and the reason), HLR_EFORMAT (neither PNG nor PGM,
 *   empty, truncated, corrupt (a CRC or compressed-data error), a bad PGM
 *   header, more than HLR_IMAGE_MAX_SIDE pixels a side or
 *   HLR_IMAGE_MAX_PIXELS in all, a pixel above a PGM's maxval; with
 *   HLR_IMAGE_MNIST a blank picture with no ink: the message names the path
 *   and says what is wrong), HLR_ENOMEM.
 * @ownership owned; free with hlr_tensor_free().  path is not retained.
 * @threadsafety safe; loads in different threads do not interfere.
 */
HLR_API hlr_tensor *hlr_image_load(const char *path, int flags);

/**
 * Decode a PNG or PGM image held in memory (an upload, a network message),
 * preprocessed as flags say: hlr_image_load() without the file.  The bytes
 * are treated as hostile: the same size limits, truncation and corruption
 * checks, and nothing is printed.  Messages call the bytes "the image data"
 * and never name a file.
 *
 * @param data   the encoded image; not NULL unless size is 0.
 * @param size   its length in bytes.
 * @param flags  as hlr_image_load()'s.
 * @return a float32 tensor (1, H, W) in [0, 1] as hlr_image_load() gives,
 *   or NULL on error.
 * @errors HLR_EINVAL (NULL data, unknown flags, both ink flags),
 *   HLR_EFORMAT (no bytes, neither PNG nor PGM, truncated, corrupt, too
 *   large; with HLR_IMAGE_MNIST a blank picture), HLR_ENOMEM.
 * @ownership owned; free with hlr_tensor_free().  data stays the caller's
 *   and is not retained.
 * @threadsafety safe; decodes in different threads do not interfere.
 */
HLR_API hlr_tensor *hlr_image_decode(const void *data, size_t size, int flags);

/**
 * Apply the MNIST preprocessing of HLR_IMAGE_MNIST (steps 1 to 5 in this
 * group's description) to an image already in memory.
 *
 * @param image  a float32 tensor (H, W) or (1, H, W), white = 1 (values
 *               outside [0, 1] are clamped), every pixel finite.
 * @param flags  0, HLR_IMAGE_DARK_INK or HLR_IMAGE_LIGHT_INK
 *               (HLR_IMAGE_MNIST is allowed and changes nothing).
 * @return a new float32 tensor (1, 28, 28) in [0, 1], ink bright on 0, or
 *   NULL.
 * @errors HLR_EINVAL (NULL image, an int32 tensor, a pixel NaN or
 *   infinite, unknown flags, both ink flags, a blank image with no ink),
 *   HLR_ESHAPE (not (H, W) or (1, H, W)), HLR_ENOMEM.
 * @ownership owned; free with hlr_tensor_free().  image stays the caller's.
 * @threadsafety only reads image.
 */
HLR_API hlr_tensor *hlr_image_preprocess_mnist(const hlr_tensor *image, int flags);

/**
 * hlr_image_preprocess_mnist(), and where each pixel of the result came
 * from: pixel (i, j) of the 28 x 28 result (row i, column j, from 0)
 * covers the rectangle of the source image from column place[0] + j
 * place[2] to place[0] + (j + 1) place[2], and from row place[1] + i
 * place[3] to place[1] + (i + 1) place[3] (in source pixels, which may
 * reach past the source's edge).  A map over the result, such as a
 * saliency map, can so be drawn over the picture the user gave.
 *
 * @param image       as hlr_image_preprocess_mnist()'s.
 * @param flags       as hlr_image_preprocess_mnist()'s.
 * @param[out] place  the placement: x origin, y origin, width and height of
 *                    a result pixel in source pixels; may be NULL.
 * @return a new float32 tensor (1, 28, 28), or NULL.
 * @errors as hlr_image_preprocess_mnist().
 * @ownership owned; free with hlr_tensor_free().  image stays the caller's.
 * @threadsafety only reads image.
 */
HLR_API hlr_tensor *hlr_image_preprocess_mnist_placed(const hlr_tensor *image, int flags, double place[4]);

/**
 * Prepare a picture of one line of writing (a number, a word) as a CTC
 * recogniser reads it: polarity and contrast as steps 1 and 2 of
 * HLR_IMAGE_MNIST, cropped to the ink's bounding box (pixels above 0.1),
 * scaled to height - 2 pad pixels high with the aspect ratio kept (area
 * averaging when shrinking, bilinear when enlarging), then pad pixels of
 * paper (0) on every side.
 *
 * @param image   a float32 tensor (H, W) or (1, H, W), white = 1 (values
 *                outside [0, 1] are clamped), every pixel finite.
 * @param height  the result's height, 1 to 4096.
 * @param pad     the paper added on every side, 0 to (height - 1) / 2.
 * @param flags   0 to guess the polarity, HLR_IMAGE_DARK_INK or
 *                HLR_IMAGE_LIGHT_INK to say it; or-ed with HLR_IMAGE_PHOTO
 *                for a photograph (its light flattened, the line
 *                straightened).
 * @return a float32 tensor (1, height, w) in [0, 1], ink bright on 0, its
 *   width w the scaled ink's width (at least 1, at most
 *   HLR_IMAGE_MAX_SIDE) plus 2 pad; NULL on error.
 * @errors HLR_EINVAL (NULL, an int32 tensor, unknown or conflicting flags
 *   (HLR_IMAGE_MNIST included), height outside 1..4096, pad outside
 *   0..(height - 1) / 2, a pixel not finite, no ink), HLR_ESHAPE (not
 *   (H, W) or (1, H, W)), HLR_ENOMEM.
 * @ownership owned; free with hlr_tensor_free().  image stays the caller's.
 * @threadsafety only reads image.
 */
HLR_API hlr_tensor *hlr_image_line(const hlr_tensor *image, int height, int pad, int flags);

/**
 * Load a sequence data set for a CTC model from a labels file.
 * The labels file has one line per image, `NAME<TAB>TEXT` (UTF-8; empty
 * lines and lines starting with `#` are skipped; at most 8190 bytes a
 * line), NAME a PNG or PGM file relative to the labels file's folder (or
 * absolute).  Each image goes through hlr_image_line(image, height, pad,
 * flags); the data set's samples are (1, height, width), narrower images
 * padded with zeros on the right and their own widths kept as lengths (see
 * hlr_dataset_from_sequences()).  Each character of TEXT becomes label
 * k + 1, k its position in alphabet (0 is the blank), so the data set has
 * the number of characters in alphabet + 1 classes.
 *
 * @param labels_path  the labels file; not NULL.
 * @param alphabet     a UTF-8 string of 1 to 1024 distinct characters; not
 *                     NULL.
 * @param height       as for hlr_image_line().
 * @param pad          as for hlr_image_line().
 * @param width        the samples' width, 0 to HLR_IMAGE_MAX_SIDE; 0: the
 *                     widest image's.
 * @param flags        as for hlr_image_line().
 * @return the data set, or NULL.
 * @errors HLR_EINVAL (NULL labels_path or alphabet, a bad alphabet or
 *   width), HLR_EIO (a file cannot be opened or read), HLR_EFORMAT (a line
 *   without a tab or with an empty NAME, text that is not UTF-8, a
 *   character outside the alphabet, a line too long, more than 10000000
 *   lines, an image wider than width, no lines), HLR_ENOMEM; and for an
 *   image, the errors of hlr_image_load() and of hlr_image_line() with
 *   their codes (HLR_EINVAL for an image with no ink, and for a bad height,
 *   pad or flags, which are found at the first image).  Each message about
 *   a line names the labels file and line.
 * @ownership owned; free with hlr_dataset_free().  labels_path and
 *   alphabet are not retained.
 * @threadsafety safe; loads in different threads do not interfere.
 */
HLR_API hlr_dataset *hlr_dataset_load_lines(const char *labels_path, const char *alphabet, int height, int pad,
                                            int width, int flags);

/**
 * Load a sequence data set for a CTC model from the IAM Handwriting
 * Database's words or lines (https://fki.tic.heia-fr.ch/databases/iam-handwriting-database,
 * free for research after registering; libhlr never fetches it).
 * index_path is IAM's `ascii/words.txt` or `ascii/lines.txt`: lines of
 * `ID STATUS GRAYLEVEL ... TEXT` (nine fields separated by spaces; lines
 * starting with `#` are comments), the TEXT of lines.txt its words joined
 * by `|` (read as spaces).  The picture of ID `a01-000u-00-00` is
 * `image_dir/a01/a01-000u/a01-000u-00-00.png` (image_dir: IAM's `words`
 * or `lines` folder).  Lines whose STATUS is `err` (IAM marks their
 * segmentation as doubtful) and pictures that exist but cannot be decoded
 * (IAM ships two empty PNG files) are skipped and counted in *skipped.
 * Everything else is as hlr_dataset_load_lines(): each picture through
 * hlr_image_line(), each character of TEXT label k + 1 for alphabet's k-th.
 * docs/words.md has the recipe.
 *
 * @param index_path  IAM's words.txt or lines.txt; not NULL.
 * @param image_dir   the folder of the pictures; not NULL.
 * @param alphabet    as for hlr_dataset_load_lines().
 * @param height      as for hlr_image_line().
 * @param pad         as for hlr_image_line().
 * @param width       as for hlr_dataset_load_lines().
 * @param flags       as for hlr_image_line().
 * @param[out] skipped  NULL, or receives the number of lines skipped.
 * @return the data set, or NULL.
 * @errors as hlr_dataset_load_lines(), and HLR_EFORMAT for a line that is
 *   not IAM's format (fewer than nine fields, a STATUS other than ok or
 *   err, an ID without two '-' or with '/' or "..") and HLR_EIO for a
 *   missing picture.  Each message about a line names the file and line.
 * @ownership owned; free with hlr_dataset_free().  No argument is retained.
 * @threadsafety safe; loads in different threads do not interfere.
 */
HLR_API hlr_dataset *hlr_dataset_load_iam(const char *index_path, const char *image_dir, const char *alphabet,
                                          int height, int pad, int width, int flags, int64_t *skipped);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* HLR_HLR_H */
