/*
 * hlr.h -- the public interface of libhlr, a C library for training and
 * running neural networks for handwriting recognition.
 *
 * Overview
 * --------
 * libhlr trains and runs dense, convolutional and recurrent networks on the
 * CPU.  Every object is an opaque handle created by a constructor and
 * released by a matching hlr_*_free() function:
 *
 *   hlr_tensor     an n-dimensional array of float32 or int32 values
 *   hlr_layer      one layer (dense, ReLU, dropout, ...); owned by a model
 *                  once added to it
 *   hlr_model      a sequential list of layers that trains, evaluates and
 *                  predicts
 *   hlr_optimizer  SGD (momentum, Nesterov), Adam or AdamW, with gradient
 *                  clipping and a learning-rate schedule
 *   hlr_model_info what a model file holds, read without loading the model
 *   hlr_metadata   a model's class names, data set, strings and history
 *                  (borrowed from its model or hlr_model_info, never freed)
 *   hlr_dataset    a set of samples with int32 class labels (MNIST idx files
 *                  or caller arrays)
 *
 * Data layout: float32, contiguous, row-major, batch first.  Images are
 * (N, C, H, W); a dense layer sees (N, features); class labels are int32.
 * Shapes passed to hlr_model_build() leave out the batch dimension.
 *
 * A typical program (train: an hlr_dataset, e.g. from hlr_dataset_load_idx;
 * `make test` compiles this example, tests/docs/check_snippets.py):
 *
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

#if defined(HLR_BUILDING_LIBRARY) && defined(__GNUC__)
#define HLR_API __attribute__((visibility("default")))
#else
#define HLR_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

#define HLR_VERSION_MAJOR 0
#define HLR_VERSION_MINOR 1
#define HLR_VERSION_PATCH 0
#define HLR_VERSION_STRING "0.1.0"
/* One number that grows with every release: 10000*major + 100*minor + patch. */
#define HLR_VERSION_NUMBER (HLR_VERSION_MAJOR * 10000 + HLR_VERSION_MINOR * 100 + HLR_VERSION_PATCH)

/*
 * hlr_version -- the version of the library actually loaded.
 * Returns: a static string such as "0.1.0".  Compare it with
 *   HLR_VERSION_STRING to detect a header/library mismatch.
 * Ownership: static storage; never free it.
 * Thread-safety: safe.
 */
HLR_API const char *hlr_version(void);

/*
 * hlr_version_number -- HLR_VERSION_NUMBER of the library actually loaded.
 * Thread-safety: safe.
 */
HLR_API int hlr_version_number(void);

/* ------------------------------------------------------------------------ */
/* Status codes and messages                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Status codes.  HLR_OK is zero, errors are negative.  A published value is
 * never renumbered or reused; a retired code stays listed as obsolete.
 */
typedef enum hlr_status {
    HLR_OK = 0,
    HLR_EINVAL = -1,      /* an argument is NULL, out of range or inconsistent */
    HLR_ENOMEM = -2,      /* memory could not be allocated */
    HLR_ESHAPE = -3,      /* tensor or layer shapes do not fit together */
    HLR_EIO = -4,         /* a file could not be opened, read or written */
    HLR_EFORMAT = -5,     /* a file's contents are malformed or truncated */
    HLR_ESTATE = -6,      /* the call is not valid in the object's state (e.g. model not built) */
    HLR_ENOTFOUND = -7,   /* a named item (parameter, layer) does not exist */
    HLR_EUNSUPPORTED = -8,/* valid request the library does not implement */
    HLR_ENUMERIC = -9,    /* a loss or gradient became NaN or infinite */
    HLR_ECANCELLED = -10  /* a caller's callback asked to stop */
} hlr_status;

/*
 * hlr_strerror -- the name of a status code, e.g. "invalid argument".
 * Returns: a static string; "unknown status" for a value not listed above.
 * Thread-safety: safe.
 */
HLR_API const char *hlr_strerror(hlr_status code);

/*
 * hlr_last_error -- the message of the last failure in this thread, such as
 *   "dense (layer 2): input has 780 features, layer expects 784".
 * Returns: a NUL-terminated string, "" when nothing has failed yet.  A
 *   successful call does not clear it.
 * Ownership: borrowed, valid until the next libhlr call in the same thread.
 * Thread-safety: the message is thread-local.
 */
HLR_API const char *hlr_last_error(void);

/*
 * hlr_last_status -- the code of the last failure in this thread (HLR_OK
 *   when nothing has failed yet), so a constructor's NULL can be told apart:
 *   HLR_EINVAL or HLR_ENOMEM.  Like the message, a success does not clear it.
 * Thread-safety: thread-local.
 */
HLR_API hlr_status hlr_last_status(void);

/* Log levels passed to the log callback. */
typedef enum hlr_log_level {
    HLR_LOG_DEBUG = 0,
    HLR_LOG_INFO = 1,
    HLR_LOG_WARN = 2
} hlr_log_level;

typedef void (*hlr_log_fn)(hlr_log_level level, const char *message, void *user);

/*
 * hlr_set_log_callback -- install (or, with fn NULL, remove) the function that
 *   receives the library's log messages.  Without one the library is silent.
 * Thread-safety: call it before using the library from several threads;
 *   the callback itself may be called from any thread that calls libhlr.
 */
HLR_API void hlr_set_log_callback(hlr_log_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * hlr_set_num_threads -- the number of threads libhlr's arithmetic may
 *   use: its own pool, the calling thread included.  OpenBLAS runs
 *   single-threaded inside it, so the process never runs more arithmetic
 *   threads than this.  The default is the HLR_NUM_THREADS environment
 *   variable when set, else the number of online processors.  Results are
 *   bit-identical for the same seed and thread count (other thread counts
 *   agree to float rounding).
 * Returns: HLR_OK; HLR_EINVAL when n < 1 or n > 1024.
 * Thread-safety: global; call it while no other thread is inside libhlr.
 */
HLR_API hlr_status hlr_set_num_threads(int n);

/* hlr_get_num_threads -- the thread count now in force. */
HLR_API int hlr_get_num_threads(void);

/* ------------------------------------------------------------------------ */
/* Tensors                                                                   */
/* ------------------------------------------------------------------------ */

#define HLR_MAX_DIMS 8

typedef enum hlr_dtype {
    HLR_F32 = 0, /* float (IEEE-754 binary32) */
    HLR_I32 = 1  /* int32_t: class labels, token ids */
} hlr_dtype;

typedef struct hlr_tensor hlr_tensor;

/*
 * hlr_tensor_new -- a new tensor of the given type and shape, zero-filled.
 *   ndim may be 0 (a scalar of one element); every dimension must be >= 1.
 * Returns: the tensor, or NULL on error.
 * Errors: HLR_EINVAL (bad dtype, ndim outside 0..HLR_MAX_DIMS, shape NULL
 *   with ndim > 0, a dimension < 1, total size overflowing), HLR_ENOMEM.
 * Ownership: owned; free with hlr_tensor_free().
 */
HLR_API hlr_tensor *hlr_tensor_new(hlr_dtype dtype, int ndim, const int64_t *shape);

/*
 * hlr_tensor_from -- like hlr_tensor_new(), filled with a copy of data
 *   (numel elements of dtype, in row-major order).
 * Errors: as hlr_tensor_new(); HLR_EINVAL when data is NULL.
 * Ownership: owned; data stays the caller's.
 */
HLR_API hlr_tensor *hlr_tensor_from(hlr_dtype dtype, int ndim, const int64_t *shape, const void *data);

/*
 * hlr_tensor_wrap -- a tensor that uses the caller's buffer without copying.
 *   The buffer must hold numel elements of dtype, suitably aligned for it,
 *   and outlive the tensor.  Writes through the tensor reach the buffer.
 * Errors: as hlr_tensor_from().
 * Ownership: the handle is owned (free with hlr_tensor_free()); the buffer
 *   stays the caller's and is never freed by the library.
 */
HLR_API hlr_tensor *hlr_tensor_wrap(hlr_dtype dtype, int ndim, const int64_t *shape, void *data);

/*
 * hlr_tensor_free -- release a tensor made by hlr_tensor_new/from/wrap.
 *   A NULL tensor, and a borrowed view returned by hlr_layer_param() or
 *   hlr_layer_grad(), are left alone.
 */
HLR_API void hlr_tensor_free(hlr_tensor *t);

/* Shape queries.  A NULL tensor gives 0 (and -1 for hlr_tensor_dtype). */
HLR_API int hlr_tensor_ndim(const hlr_tensor *t);
/* hlr_tensor_dim -- dimension i; negative i counts from the end; 0 if out of range. */
HLR_API int64_t hlr_tensor_dim(const hlr_tensor *t, int i);
HLR_API int64_t hlr_tensor_numel(const hlr_tensor *t);
HLR_API int hlr_tensor_dtype(const hlr_tensor *t);

/*
 * hlr_tensor_data -- the tensor's elements, row-major.
 * Returns: the buffer, or NULL when t is NULL.
 * Ownership: borrowed, valid while the tensor (and, for a view, its layer)
 *   lives.
 */
HLR_API void *hlr_tensor_data(const hlr_tensor *t);

/*
 * hlr_tensor_f32 / hlr_tensor_i32 -- the buffer typed, or NULL (with
 *   HLR_EINVAL in hlr_last_error()) when t is NULL or of the other dtype.
 */
HLR_API float *hlr_tensor_f32(const hlr_tensor *t);
HLR_API int32_t *hlr_tensor_i32(const hlr_tensor *t);

/* ------------------------------------------------------------------------ */
/* Layers                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct hlr_layer hlr_layer;

/*
 * Layer constructors.  Each returns a new layer, or NULL with HLR_EINVAL
 * (impossible hyper-parameter) or HLR_ENOMEM.  The layer is owned by the
 * caller until hlr_model_add() takes it; free an unused one with
 * hlr_layer_free().  Shapes below leave out the batch dimension N.
 */

/*
 * hlr_dense -- fully connected: y = x W^T + b.  Input (in) and output (out).
 *   Parameters "weight" (out, in) and, when bias != 0, "bias" (out),
 *   initialised as PyTorch's nn.Linear: U(-1/sqrt(in), 1/sqrt(in)).
 *   A (N, ..., in) input is treated as rows of `in` features.
 */
HLR_API hlr_layer *hlr_dense(int in, int out, int bias);

/* Element-wise activations: any input shape, same output shape. */
HLR_API hlr_layer *hlr_relu(void);
/* hlr_leaky_relu -- x for x > 0, slope * x otherwise (PyTorch default slope 0.01); slope finite. */
HLR_API hlr_layer *hlr_leaky_relu(float slope);
HLR_API hlr_layer *hlr_sigmoid(void);
HLR_API hlr_layer *hlr_tanh(void);
/* hlr_gelu -- x * Phi(x) with the exact normal CDF (PyTorch's default GELU). */
HLR_API hlr_layer *hlr_gelu(void);

/*
 * hlr_softmax -- softmax over the last dimension.  For classification train
 *   with HLR_LOSS_CROSS_ENTROPY on the logits instead (it fuses the softmax);
 *   this layer is for models that need probabilities inside the network.
 */
HLR_API hlr_layer *hlr_softmax(void);

/*
 * hlr_dropout -- in training, zero each element with probability p and
 *   scale the rest by 1/(1-p) (inverted dropout, as PyTorch); identity in
 *   inference.  Requires 0 <= p < 1.  Draws from the model's generator.
 */
HLR_API hlr_layer *hlr_dropout(float p);

/* hlr_flatten -- (N, d1, d2, ...) -> (N, d1*d2*...). */
HLR_API hlr_layer *hlr_flatten(void);

/*
 * hlr_conv2d -- 2-D convolution (cross-correlation) as torch.nn.Conv2d.
 *   Input (in_channels, H, W), output (out_channels, Ho, Wo) with
 *   Ho = (H + 2 padding - dilation (kernel_h - 1) - 1) / stride + 1 and
 *   likewise Wo.  Parameters "weight" (out_channels, in_channels / groups,
 *   kernel_h, kernel_w) and, when bias != 0, "bias" (out_channels),
 *   initialised as torch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 *   fan_in = in_channels / groups * kernel_h * kernel_w.
 *   Errors: HLR_EINVAL unless channels, kernel, stride, dilation, groups
 *   >= 1, padding >= 0 and groups divides both channel counts; at build
 *   time HLR_ESHAPE when the kernel does not fit the padded input.
 */
HLR_API hlr_layer *hlr_conv2d(int in_channels, int out_channels, int kernel_h, int kernel_w, int stride, int padding,
                              int dilation, int groups, int bias);

/*
 * hlr_maxpool2d / hlr_avgpool2d -- pooling over kernel x kernel windows
 *   of each channel, as torch.nn.MaxPool2d / AvgPool2d: stride 0 means
 *   stride = kernel; padding <= kernel / 2.  Max pooling pads with -inf;
 *   average pooling counts the padding in the divisor (torch's
 *   count_include_pad=True).  Input (C, H, W), output (C, Ho, Wo),
 *   Ho = (H + 2 padding - kernel) / stride + 1.
 */
HLR_API hlr_layer *hlr_maxpool2d(int kernel, int stride, int padding);
HLR_API hlr_layer *hlr_avgpool2d(int kernel, int stride, int padding);

/* hlr_global_avgpool2d -- (C, H, W) -> (C): the mean of each channel. */
HLR_API hlr_layer *hlr_global_avgpool2d(void);

/*
 * hlr_batchnorm2d -- torch.nn.BatchNorm2d over (C, H, W) inputs: in
 *   training, normalise each channel with the batch's mean and biased
 *   variance and update running_mean / running_var (unbiased) with
 *   momentum; in inference use the running statistics.  Parameters
 *   "weight" (C, ones) and "bias" (C, zeros); buffers "running_mean" (C,
 *   zeros) and "running_var" (C, ones), which optimizers never change.
 *   torch's defaults are eps = 1e-5, momentum = 0.1.
 * hlr_batchnorm1d -- the same for (C) or (C, L) inputs (torch BatchNorm1d).
 * Errors: HLR_EINVAL unless num_features >= 1, eps > 0, 0 <= momentum <= 1.
 */
HLR_API hlr_layer *hlr_batchnorm2d(int num_features, float eps, float momentum);
HLR_API hlr_layer *hlr_batchnorm1d(int num_features, float eps, float momentum);

/*
 * Recurrent layers.  A sequence is (T, F) per sample, batch first: (N, T, F)
 * with T steps of F features.  flags combine:
 *   HLR_RETURN_SEQUENCES  output (T, D H): every step of the last layer,
 *                         directions concatenated (torch's `output`), zero
 *                         past a sequence's end (pad_packed_sequence);
 *                         without it, output (D H): the last layer's final
 *                         state, forward then reverse (torch's
 *                         cat(h_n[-2], h_n[-1]) when bidirectional; for one
 *                         direction, the output at each sequence's last step)
 *   HLR_BIDIRECTIONAL     a second direction reads each sequence from its
 *                         own last step back to the first; D = 2
 * with D = 1 or 2 and H = hidden_size.
 */
#define HLR_RETURN_SEQUENCES 1
#define HLR_BIDIRECTIONAL 2

/*
 * hlr_lstm -- torch.nn.LSTM(input_size, hidden_size, num_layers,
 *   dropout=dropout, bidirectional=..., batch_first=True), same equations
 *   and gate order (i, f, g, o):
 *     i = sig(W_ii x + b_ii + W_hi h + b_hi)   f = sig(W_if x + b_if + W_hf h + b_hf)
 *     g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = sig(W_io x + b_io + W_ho h + b_ho)
 *     c' = f c + i g                           h' = o tanh(c')
 *   Input (T, input_size).  Stacked layers feed each layer's output to the
 *   next, with dropout (probability `dropout`, training only) between them.
 *   Parameters, torch's names and shapes, G = 4 gates: for each layer k and
 *   direction, "weight_ih_l<k>" (G H, input_size for k = 0, else D H),
 *   "weight_hh_l<k>" (G H, H), "bias_ih_l<k>", "bias_hh_l<k>" (G H), the
 *   reverse direction's with the suffix "_reverse"; all initialised
 *   U(-1/sqrt(H), 1/sqrt(H)) as torch.  The initial state is zero unless
 *   hlr_rnn_set_initial_state() gives one; hlr_model_set_lengths() gives
 *   each sequence its length (packed-sequence semantics: the steps past the
 *   end produce zeros and leave the state alone).
 * Errors: HLR_EINVAL unless input_size, hidden_size >= 1, 1 <= num_layers
 *   <= 8 (4 when bidirectional), flags are known and 0 <= dropout < 1; at
 *   build time HLR_ESHAPE unless the input is (T, input_size).
 */
HLR_API hlr_layer *hlr_lstm(int input_size, int hidden_size, int num_layers, int flags, float dropout);

/*
 * hlr_gru -- torch.nn.GRU, as hlr_lstm() with G = 3 gates (r, z, n):
 *     r = sig(W_ir x + b_ir + W_hr h + b_hr)   z = sig(W_iz x + b_iz + W_hz h + b_hz)
 *     n = tanh(W_in x + b_in + r (W_hn h + b_hn))
 *     h' = (1 - z) n + z h
 *   Parameter names, shapes, initialisation, options and errors as hlr_lstm().
 */
HLR_API hlr_layer *hlr_gru(int input_size, int hidden_size, int num_layers, int flags, float dropout);

/*
 * hlr_rnn_set_initial_state -- the state an LSTM or GRU layer starts every
 *   sequence from, instead of zeros: h0 and (LSTM only) c0, each
 *   (num_layers * D, N, H) as torch orders them (layer 0 forward, layer 0
 *   reverse, layer 1 ...).  Either may be NULL (zeros) for an LSTM; both
 *   NULL clears the state.  The values are copied.  The state stays in
 *   force for every forward pass until cleared, and every forward pass must
 *   then have a batch of exactly N (otherwise it fails with HLR_ESHAPE).
 * Errors: HLR_EINVAL (layer NULL or not lstm/gru, c0 for a GRU, wrong
 *   dtype), HLR_ESHAPE (shapes), HLR_ENOMEM.
 * Ownership: the tensors stay the caller's.
 * Thread-safety: changes the layer; not while its model runs.
 */
HLR_API hlr_status hlr_rnn_set_initial_state(hlr_layer *l, const hlr_tensor *h0, const hlr_tensor *c0);

/*
 * hlr_rnn_final_state -- copy the final state of the layer's last forward
 *   pass into h_n and (LSTM only) c_n, each (num_layers * D, N, H) as
 *   torch's h_n, c_n: per sequence, the state after its last step (the
 *   reverse direction's after step 0).  Either may be NULL.
 * Errors: HLR_EINVAL (as above), HLR_ESHAPE, HLR_ESTATE (no forward pass
 *   yet, or the buffers were re-planned for a larger batch since).
 */
HLR_API hlr_status hlr_rnn_final_state(hlr_layer *l, hlr_tensor *h_n, hlr_tensor *c_n);

/*
 * hlr_rnn_initial_state_grad -- after hlr_model_backward(), dLoss/dh0 and
 *   (LSTM only) dLoss/dc0 for the initial state the forward pass used,
 *   shapes as in hlr_rnn_set_initial_state().  Either may be NULL.
 * Errors: HLR_EINVAL, HLR_ESHAPE, HLR_ESTATE (no backward pass since an
 *   initial state was set and used).
 */
HLR_API hlr_status hlr_rnn_initial_state_grad(hlr_layer *l, hlr_tensor *dh0, hlr_tensor *dc0);

/*
 * hlr_embedding -- torch.nn.Embedding: y = weight[id] for int32 token ids.
 *   Input: ids of any shape (...), output (..., dim).  It reads int32 ids,
 *   so it must be the model's first layer, and the model then takes int32
 *   input tensors (hlr_model_forward, hlr_model_predict,
 *   hlr_model_train_batch, data sets from hlr_dataset_from_tokens).
 *   Parameter "weight" (num_embeddings, dim), N(0, 1) as torch.  With
 *   padding_idx >= 0 that row starts at zero and never gets a gradient;
 *   -1 means no padding index.  A forward pass with an id outside
 *   [0, num_embeddings) fails with HLR_EINVAL naming it.
 * Errors: HLR_EINVAL unless num_embeddings, dim >= 1 and
 *   -1 <= padding_idx < num_embeddings; at build time HLR_ESHAPE when the
 *   embedding is not the first layer.
 */
HLR_API hlr_layer *hlr_embedding(int num_embeddings, int dim, int padding_idx);

/*
 * Sequence layers, so a model stays a plain list of layers.  Those that
 * reduce over steps respect the lengths of hlr_model_set_lengths() (a
 * sequence of length L has steps 0..L-1; without lengths, all T).
 *   hlr_image_rows       (1, H, W) -> (H, W): an image as H steps of its
 *                        rows (no copy)
 *   hlr_feature_map_rows (C, H, W) -> (H, C W): a feature map as H steps,
 *                        channel-major within a step, as torch's
 *                        x.permute(0, 2, 1, 3).reshape(N, H, C * W)
 *   hlr_feature_map_columns (C, H, W) -> (W, C H): a feature map as W
 *                        steps, left to right (a CRNN reading a line),
 *                        as torch's x.permute(0, 3, 1, 2).reshape(N, W, C * H)
 *   hlr_seq_last         (T, F...) -> (F...): the step L - 1 of each sequence
 *   hlr_seq_mean         (T, F...) -> (F...): the mean of steps 0..L-1
 *   hlr_seq_max          (T, F...) -> (F...): the maximum over steps 0..L-1,
 *                        per feature (gradient to the first maximum)
 * Errors: HLR_ENOMEM; at build time HLR_ESHAPE for another input shape.
 */
HLR_API hlr_layer *hlr_image_rows(void);
HLR_API hlr_layer *hlr_feature_map_rows(void);
HLR_API hlr_layer *hlr_feature_map_columns(void);
HLR_API hlr_layer *hlr_seq_last(void);
HLR_API hlr_layer *hlr_seq_mean(void);
HLR_API hlr_layer *hlr_seq_max(void);

/*
 * Attention.  Flags of hlr_multihead_attention(), combined with |:
 *   HLR_ATTN_CAUSAL       query i attends only to keys 0..i (torch's
 *                         attn_mask = triu(ones(T, T), 1) as booleans)
 *   HLR_ATTN_KEY_PADDING  keys at or past each sequence's length
 *                         (hlr_model_set_lengths) are masked (torch's
 *                         key_padding_mask); queries there are still computed
 *   HLR_ATTN_NO_OUT_PROJ  no output projection: the output is the heads'
 *                         outputs concatenated
 *   HLR_ATTN_NO_BIAS      no in_proj_bias and out_proj.bias (torch's bias=False)
 */
#define HLR_ATTN_CAUSAL 1
#define HLR_ATTN_KEY_PADDING 2
#define HLR_ATTN_NO_OUT_PROJ 4
#define HLR_ATTN_NO_BIAS 8

/*
 * hlr_multihead_attention -- self-attention as
 *   torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias,
 *   batch_first=True) computes mha(x, x, x).  Input and output (T, E),
 *   E = embed_dim, split into num_heads heads of d = E / num_heads:
 *     [Q K V] = x in_proj_weight^T + in_proj_bias
 *     head h = softmax(Q_h K_h^T / sqrt(d) + mask) V_h
 *     y = [head 0 ... head H-1] out_proj.weight^T + out_proj.bias
 *   Parameters, torch's names: "in_proj_weight" (3E, E) (W_q, W_k, W_v
 *   stacked), "in_proj_bias" (3E), "out_proj.weight" (E, E),
 *   "out_proj.bias" (E), initialised as torch: xavier_uniform_ for
 *   in_proj_weight, U(-1/sqrt(E), 1/sqrt(E)) for out_proj.weight (nn.Linear),
 *   zero biases.  In training, dropout (probability `dropout`) zeroes
 *   attention probabilities and scales the rest by 1/(1-p), drawing from the
 *   model's generator.  flags: HLR_ATTN_* above.
 * Errors: HLR_EINVAL unless embed_dim, num_heads >= 1, num_heads divides
 *   embed_dim, flags are known and 0 <= dropout < 1; at build time
 *   HLR_ESHAPE unless the input is (T, embed_dim).
 */
HLR_API hlr_layer *hlr_multihead_attention(int embed_dim, int num_heads, int flags, float dropout);

/*
 * hlr_attention_weights -- the attention probabilities of the layer's last
 *   forward pass, before dropout, into weights (N, heads, T, T): row i of
 *   head h is how query step i weighs key steps 0..T-1 (zero where masked).
 *   torch's need_weights=True with average_attn_weights=False.  l is a
 *   multihead_attention layer or a transformer_encoder (its self_attn).
 * Errors: HLR_EINVAL (NULL, neither layer type, not float32),
 *   HLR_ESHAPE (another shape), HLR_ESTATE (no forward pass since the
 *   buffers were last sized for a larger batch).
 * Ownership: weights stays the caller's.
 * Thread-safety: reads the layer; not while its model runs.
 */
HLR_API hlr_status hlr_attention_weights(const hlr_layer *l, hlr_tensor *weights);

/*
 * hlr_attention_weights_shape -- the shape hlr_attention_weights() wants
 *   now: shape[0..3] = last forward's batch N, heads, T, T.
 * Errors: as hlr_attention_weights() (HLR_EINVAL for shape NULL; HLR_ESTATE
 *   before a forward pass).
 */
HLR_API hlr_status hlr_attention_weights_shape(const hlr_layer *l, int64_t shape[4]);

/*
 * hlr_layernorm -- torch.nn.LayerNorm(dim, eps): each sample's last
 *   dimension (of size dim) normalised to zero mean and unit (biased)
 *   variance, then y = weight xhat + bias, in training and inference alike.
 *   Input (..., dim), same output shape.  Parameters "weight" (dim, ones)
 *   and "bias" (dim, zeros).  torch's default eps is 1e-5.
 * Errors: HLR_EINVAL unless dim >= 1 and eps > 0 is finite; at build time
 *   HLR_ESHAPE unless the input ends in dim.
 */
HLR_API hlr_layer *hlr_layernorm(int dim, float eps);

/*
 * Transformers.  Kinds of hlr_positional_encoding():
 *   HLR_POS_SINUSOIDAL  the fixed table of "Attention is all you need":
 *                       pe[pos, 2i] = sin(pos / 10000^(2i / dim)),
 *                       pe[pos, 2i + 1] = cos(pos / 10000^(2i / dim));
 *                       for an odd dim the last column is a sine
 *   HLR_POS_LEARNED     a trained table
 */
#define HLR_POS_SINUSOIDAL 0
#define HLR_POS_LEARNED 1

/*
 * hlr_positional_encoding -- add a position's vector to each step:
 *   y[t] = x[t] + pe[t] for t < T.  Input and output (T, dim), T <= max_len.
 *   HLR_POS_SINUSOIDAL has no parameters (the table is computed in double
 *   and rounded to float).  HLR_POS_LEARNED has the parameter "weight"
 *   (max_len, dim), initialised N(0, 0.02^2) (BERT's and timm's std 0.02;
 *   torch has no such module); rows T.. get zero gradients.
 * Returns: a new layer, or NULL on error.
 * Errors: HLR_EINVAL unless max_len, dim >= 1 and kind is one of the two;
 *   HLR_ENOMEM; at build time HLR_ESHAPE unless the input is (T, dim) with
 *   T <= max_len.
 * Ownership: the caller's until hlr_model_add() takes it (hlr_layer_free()
 *   for an unused one).
 * Thread-safety: a new object; any thread.
 */
HLR_API hlr_layer *hlr_positional_encoding(int max_len, int dim, int kind);

/*
 * hlr_patch_embedding -- an image cut into non-overlapping patch x patch
 *   squares, each projected to dim features: exactly torch's
 *   Conv2d(in_channels, dim, kernel_size=patch, stride=patch) followed by
 *   .flatten(2).transpose(1, 2).  Input (C, H, W) with H and W multiples of
 *   patch, output (H/patch * W/patch, dim), patches in row-major order.
 *   Parameters "weight" (dim, C, patch, patch) and "bias" (dim), initialised
 *   as nn.Conv2d: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C patch^2.
 *   One GEMM over the whole batch's patches.
 * Returns: a new layer, or NULL on error.
 * Errors: HLR_EINVAL unless in_channels, patch, dim >= 1; HLR_ENOMEM; at
 *   build time HLR_ESHAPE unless the input is (in_channels, H, W) with H and
 *   W multiples of patch.
 * Ownership, thread-safety: as hlr_positional_encoding().
 */
HLR_API hlr_layer *hlr_patch_embedding(int in_channels, int patch, int dim);

/*
 * hlr_class_token -- prepend a learned token at step 0:
 *   (T, dim) -> (T + 1, dim), y[0] = cls_token, y[t + 1] = x[t].
 *   Parameter "cls_token" (dim), initialised to zeros (as torchvision's
 *   VisionTransformer).  hlr_seq_first() reads the token's output back.
 *   Sequence lengths (hlr_model_set_lengths) reach later layers unchanged:
 *   count the token in them when a later layer masks padding.
 * Returns: a new layer, or NULL on error.
 * Errors: HLR_EINVAL unless dim >= 1; HLR_ENOMEM; at build time
 *   HLR_ESHAPE unless the input is (T, dim).
 * Ownership, thread-safety: as hlr_positional_encoding().
 */
HLR_API hlr_layer *hlr_class_token(int dim);

/*
 * hlr_seq_first -- the first step of each sequence: (T, F...) -> (F...),
 *   y = x[0] (torch's x[:, 0]); with hlr_class_token(), the token's output.
 * Returns: a new layer, or NULL with HLR_ENOMEM.
 * Errors: at build time HLR_ESHAPE unless the input has at least two
 *   dimensions.
 * Ownership, thread-safety: as hlr_positional_encoding().
 */
HLR_API hlr_layer *hlr_seq_first(void);

/*
 * hlr_transformer_encoder -- one pre-norm transformer encoder block, equal
 *   to torch 1.13's nn.TransformerEncoderLayer(d_model=dim, nhead=heads,
 *   dim_feedforward=ff_dim, dropout=dropout, activation='gelu',
 *   batch_first=True, norm_first=True) in training mode:
 *     x = x + dropout1(self_attn(norm1(x)))
 *     y = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
 *   with self_attn as hlr_multihead_attention(dim, heads, flags, dropout)
 *   (attention dropout too), norm1 and norm2 as hlr_layernorm(dim, 1e-5),
 *   linear1 (dim -> ff_dim) and linear2 (ff_dim -> dim) as hlr_dense().
 *   It is one layer that owns its sub-layers, so a model stays a list.
 *   Input and output (T, dim).  flags: HLR_ATTN_CAUSAL and/or
 *   HLR_ATTN_KEY_PADDING, given to the attention.  Parameters, torch's
 *   state_dict names and initialisation: "self_attn.in_proj_weight"
 *   (3 dim, dim) xavier-uniform, "self_attn.in_proj_bias" (3 dim) zeros,
 *   "self_attn.out_proj.weight" (dim, dim) U(-1/sqrt(dim), 1/sqrt(dim)),
 *   "self_attn.out_proj.bias" (dim) zeros, "linear1.weight" (ff_dim, dim),
 *   "linear1.bias" (ff_dim) U(-1/sqrt(dim), 1/sqrt(dim)), "linear2.weight"
 *   (dim, ff_dim), "linear2.bias" (dim) U(-1/sqrt(ff_dim), 1/sqrt(ff_dim)),
 *   "norm1.weight", "norm2.weight" (dim) ones, "norm1.bias", "norm2.bias"
 *   (dim) zeros.  Dropout draws from the model's generator, in training only.
 *   hlr_attention_weights() reads its attention's probabilities.
 * Returns: a new layer, or NULL on error.
 * Errors: HLR_EINVAL unless dim, heads, ff_dim >= 1, heads divides dim,
 *   flags are among the two above and 0 <= dropout < 1; HLR_ENOMEM; at
 *   build time HLR_ESHAPE unless the input is (T, dim).
 * Ownership, thread-safety: as hlr_positional_encoding().
 */
HLR_API hlr_layer *hlr_transformer_encoder(int dim, int heads, int ff_dim, int flags, float dropout);

/*
 * hlr_layer_free -- free a layer that was never added to a model.  Do not
 *   call it on a layer a model owns (hlr_model_free() frees those).
 */
HLR_API void hlr_layer_free(hlr_layer *l);

/*
 * hlr_layer_type -- the layer's type name ("dense", "relu", ...).
 * Ownership: static string.  Returns "" for NULL.
 */
HLR_API const char *hlr_layer_type(const hlr_layer *l);

/* hlr_layer_param_count -- number of named parameters (0 for NULL). */
HLR_API int hlr_layer_param_count(const hlr_layer *l);

/*
 * hlr_layer_set_trainable -- freeze (0) or unfreeze (nonzero) a layer, for
 *   fine-tuning: optimizers leave a frozen layer's parameters and their own
 *   state for them untouched (no update, no weight decay, not in gradient
 *   clipping's norm), as torch skips parameters with requires_grad=False.
 *   Gradients are still computed, so earlier layers keep learning.  Batch
 *   norm's running statistics still follow training batches (as torch's
 *   with requires_grad=False).  A layer unfrozen later goes on from its
 *   optimizer state, with Adam's bias correction at the optimizer's step
 *   count (torch counts steps per parameter).  Not saved in model files.
 * Errors: HLR_EINVAL (NULL).
 */
HLR_API hlr_status hlr_layer_set_trainable(hlr_layer *l, int trainable);

/* hlr_layer_trainable -- 1 unless hlr_layer_set_trainable(l, 0) froze it (0 for NULL). */
HLR_API int hlr_layer_trainable(const hlr_layer *l);

/*
 * hlr_layer_param_name -- name of parameter i, as PyTorch's state_dict names
 *   it for the equivalent module ("weight", "bias").
 * Returns: NULL (HLR_EINVAL) when l is NULL or i out of range.
 * Ownership: borrowed, valid while the layer lives.
 */
HLR_API const char *hlr_layer_param_name(const hlr_layer *l, int i);

/*
 * hlr_layer_param / hlr_layer_grad -- the parameter, or its gradient from
 *   the last backward pass, by name.  Parameters exist once the layer's
 *   model is built (before that: HLR_ESTATE).  Writing into the parameter's
 *   data changes the model.  A clone's layers (hlr_model_clone_shared) have
 *   parameters, shared with the original, but no gradients (HLR_ESTATE).
 * Returns: a view, or NULL with HLR_ENOTFOUND / HLR_ESTATE / HLR_EINVAL.
 * Ownership: borrowed, valid while the layer lives; hlr_tensor_free() on it
 *   does nothing.
 */
HLR_API hlr_tensor *hlr_layer_param(hlr_layer *l, const char *name);
HLR_API hlr_tensor *hlr_layer_grad(hlr_layer *l, const char *name);

/* ------------------------------------------------------------------------ */
/* Losses                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum hlr_loss_kind {
    HLR_LOSS_CROSS_ENTROPY = 0, /* softmax + negative log-likelihood on int32 labels, mean over the batch */
    HLR_LOSS_MSE = 1,           /* mean squared error on float32 targets, mean over all elements */
    HLR_LOSS_CTC = 2            /* CTC on output (N, T, C) with blank 0, against int32 label sequences
                                   (N, S) padded with -1: hlr_ctc_loss() with torch's mean reduction and
                                   zero_infinity (a target too long for its input adds 0) */
} hlr_loss_kind;

/*
 * hlr_cross_entropy -- softmax cross-entropy of logits (N, C) against int32
 *   labels (N) in [0, C), averaged over N; computed stably for any finite
 *   logits (x - max as torch computes it, in double where float would
 *   overflow): the gradient is always finite, and the loss is +inf only
 *   where its exact value exceeds FLT_MAX (a logit more than about 3.4e38
 *   below the largest one, on the label).  With label_smoothing s in [0, 1) the target is
 *   (1-s)*onehot + s/C, as torch.nn.CrossEntropyLoss(label_smoothing=s).
 *   When grad is not NULL it receives dLoss/dlogits, shape (N, C).
 * Returns: HLR_OK; HLR_EINVAL (NULL, wrong dtype, label out of range, s out
 *   of range); HLR_ESHAPE (shapes disagree).
 * Ownership: nothing is retained.
 */
HLR_API hlr_status hlr_cross_entropy(const hlr_tensor *logits, const hlr_tensor *labels, float label_smoothing,
                                     float *loss, hlr_tensor *grad);

/*
 * hlr_mse -- mean over all elements of (pred - target)^2; grad (same shape,
 *   may be NULL) receives 2 (pred - target) / numel.
 * Returns: HLR_OK; HLR_EINVAL; HLR_ESHAPE.
 */
HLR_API hlr_status hlr_mse(const hlr_tensor *pred, const hlr_tensor *target, float *loss, hlr_tensor *grad);

/* How a loss over a batch reduces its samples' losses. */
typedef enum hlr_reduction {
    HLR_REDUCTION_NONE = 0, /* one loss per sample */
    HLR_REDUCTION_SUM = 1,
    HLR_REDUCTION_MEAN = 2  /* for CTC as torch: each loss over its target length, then the mean */
} hlr_reduction;

/*
 * hlr_ctc_loss -- Connectionist Temporal Classification, exactly
 *   torch.nn.functional.ctc_loss(logits.log_softmax(-1).transpose(0, 1),
 *   targets, input_lengths, target_lengths, blank, reduction,
 *   zero_infinity): logits (N, T, C) float32, batch first, the log-softmax
 *   over C done here; input_lengths (N) int32 in [1, T]; targets (N, S)
 *   int32, sample n's first target_lengths[n] (in [0, S]) entries being
 *   its labels, each in [0, C) and not the blank.  *loss receives one
 *   number (sum, mean) or N (none).  grad (may be NULL) receives the
 *   gradient of the reduced loss (for none: of the sum of the N losses)
 *   with respect to the logits; zero past each input length.  A target
 *   that no alignment fits (too long for its input) gives +inf, or 0 with
 *   zero_infinity, and a zero gradient (never NaN).  Computed in double,
 *   in log space, samples in parallel.
 * Errors: HLR_EINVAL (NULL loss, wrong dtype, a length or label out of
 *   range, the blank among the labels or outside [0, C), an unknown
 *   reduction), HLR_ESHAPE (shapes disagree), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_ctc_loss(const hlr_tensor *logits, const hlr_tensor *input_lengths, const hlr_tensor *targets,
                                const hlr_tensor *target_lengths, int blank, hlr_reduction reduction,
                                int zero_infinity, float *loss, hlr_tensor *grad);

/* A word list for hlr_ctc_decode(): words as label sequences, in a trie. */
typedef struct hlr_lexicon hlr_lexicon;

/* hlr_lexicon_new -- an empty lexicon (NULL + HLR_ENOMEM).  Free with hlr_lexicon_free(). */
HLR_API hlr_lexicon *hlr_lexicon_new(void);
HLR_API void hlr_lexicon_free(hlr_lexicon *lexicon);

/*
 * hlr_lexicon_add -- add a word of n labels (each >= 0; the application
 *   maps its characters to labels).  Adding a word twice keeps one.
 * Errors: HLR_EINVAL (NULL, n outside 1..4096, a negative label),
 *   HLR_ENOMEM (the lexicon is unchanged).
 */
HLR_API hlr_status hlr_lexicon_add(hlr_lexicon *lexicon, const int32_t *labels, int n);

/* hlr_lexicon_size -- the number of distinct words (0 for NULL). */
HLR_API int64_t hlr_lexicon_size(const hlr_lexicon *lexicon);

/*
 * hlr_ctc_decode -- the label sequence one sample's logits (T, C,
 *   row-major) spell.  beam_width 0: best path (greedy): the most likely
 *   label at every step, repeats merged, blanks dropped.  beam_width >= 1:
 *   prefix beam search keeping that many prefixes, each scored by all of
 *   its alignments (with width 1 it agrees with best path whenever each
 *   step's most likely label has more than half the probability); with a
 *   lexicon only prefixes of its words are followed and only a whole word
 *   is returned.  labels receives up to cap labels and *len their number.
 *   confidence (may be NULL) receives, per label, the largest probability
 *   it has among the steps the labels' most likely alignment gives it;
 *   *log_prob (may be NULL) the best path's log-probability (greedy) or the
 *   result's total (beam).
 * Errors: HLR_EINVAL (NULL, T < 1, C < 2, blank outside [0, C), a width
 *   outside [0, 4096], a lexicon with width 0), HLR_ENOTFOUND (no word of
 *   the lexicon fits), HLR_ESHAPE (more than cap labels: the first cap are
 *   written, *len says how many there are), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_ctc_decode(const float *logits, int T, int C, int blank, int beam_width,
                                  const hlr_lexicon *lexicon, int32_t *labels, float *confidence, int cap, int *len,
                                  double *log_prob);

/*
 * hlr_edit_distance -- the Levenshtein distance (insertions, deletions and
 *   substitutions, each 1) between label sequences ref (n) and hyp (m):
 *   summed over a test set and divided by the references' total length, the
 *   character error rate (CER); on word ids, the word error rate (WER).
 * Returns: the distance, or -1 with HLR_EINVAL (NULL with a length > 0, a
 *   negative length) or HLR_ENOMEM.
 */
HLR_API int64_t hlr_edit_distance(const int32_t *ref, int64_t n, const int32_t *hyp, int64_t m);

/* ------------------------------------------------------------------------ */
/* Optimizers and learning-rate schedules                                   */
/* ------------------------------------------------------------------------ */

typedef struct hlr_optimizer hlr_optimizer;

/*
 * hlr_sgd -- stochastic gradient descent, exactly torch.optim.SGD:
 *   g += weight_decay * p;  v = momentum * v + g (v = g on the first step);
 *   p -= lr * (nesterov ? g + momentum * v : v).
 * Errors: HLR_EINVAL when lr <= 0 or not finite, momentum outside [0, 1),
 *   weight_decay < 0, or nesterov with momentum 0.
 * Ownership: owned; free with hlr_optimizer_free().  An optimizer keeps
 *   per-parameter state for the first model it steps and refuses another.
 */
HLR_API hlr_optimizer *hlr_sgd(float lr, float momentum, int nesterov, float weight_decay);

/*
 * hlr_adam -- torch.optim.Adam (L2 weight decay added to the gradient):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 * hlr_adamw -- torch.optim.AdamW: decoupled decay p -= lr * wd * p first.
 * Errors: HLR_EINVAL when lr <= 0, beta outside [0, 1), eps <= 0 or
 *   weight_decay < 0.
 */
HLR_API hlr_optimizer *hlr_adam(float lr, float beta1, float beta2, float eps, float weight_decay);
HLR_API hlr_optimizer *hlr_adamw(float lr, float beta1, float beta2, float eps, float weight_decay);

HLR_API void hlr_optimizer_free(hlr_optimizer *o);

/*
 * hlr_optimizer_set_clip_norm -- before each step, scale all gradients by
 *   min(1, max_norm / (total_norm + 1e-6)) where total_norm is the L2 norm of
 *   every gradient together (torch.nn.utils.clip_grad_norm_).  0 disables.
 * Errors: HLR_EINVAL (NULL, max_norm < 0 or not finite).
 */
HLR_API hlr_status hlr_optimizer_set_clip_norm(hlr_optimizer *o, float max_norm);

typedef enum hlr_schedule_kind {
    HLR_SCHEDULE_CONSTANT = 0,
    HLR_SCHEDULE_STEP = 1,  /* lr * gamma^floor(t / step_size)            (torch StepLR) */
    HLR_SCHEDULE_COSINE = 2 /* eta_min + (lr - eta_min)(1 + cos(pi t / T)) / 2, t <= T (CosineAnnealingLR) */
} hlr_schedule_kind;

/*
 * hlr_optimizer_set_schedule -- the learning rate at schedule position t is
 *   base_lr * warmup(t) * decay(t), with decay given by kind (a = step_size
 *   and b = gamma for STEP; a = T and b = eta_min for COSINE; ignored for
 *   CONSTANT) and warmup(t) = start + (1 - start) * min(t, W) / W for
 *   W = warmup_steps > 0 (torch LinearLR with end factor 1), else 1.
 *   For COSINE, t past T stays at eta_min.  The position starts at 0 and
 *   advances by hlr_optimizer_schedule_step() (hlr_model_fit() does it once
 *   per epoch, or per batch if asked).
 *   Schedules only decay: the rate never exceeds base_lr.
 * Errors: HLR_EINVAL (unknown kind, step_size < 1, gamma outside (0, 1],
 *   T < 1, eta_min outside [0, base_lr], warmup_steps < 0, warmup_start
 *   outside (0, 1], any of them not finite).
 */
HLR_API hlr_status hlr_optimizer_set_schedule(hlr_optimizer *o, hlr_schedule_kind kind, double a, double b,
                                              int warmup_steps, double warmup_start);

/* hlr_optimizer_schedule_step -- advance the schedule by one position. */
HLR_API hlr_status hlr_optimizer_schedule_step(hlr_optimizer *o);

/* hlr_optimizer_lr -- the learning rate the next step will use (0 for NULL). */
HLR_API float hlr_optimizer_lr(const hlr_optimizer *o);

/*
 * hlr_optimizer_set_lr -- change the base learning rate (the one the
 *   constructor took; a schedule still multiplies it).  The optimizer's
 *   state is kept.
 * Errors: HLR_EINVAL (NULL, lr <= 0 or not finite).
 */
HLR_API hlr_status hlr_optimizer_set_lr(hlr_optimizer *o, float lr);

/* hlr_optimizer_base_lr -- the base learning rate (0 for NULL). */
HLR_API float hlr_optimizer_base_lr(const hlr_optimizer *o);

/* hlr_optimizer_steps -- how many parameter updates it has made. */
HLR_API int64_t hlr_optimizer_steps(const hlr_optimizer *o);

/* ------------------------------------------------------------------------ */
/* Datasets                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct hlr_dataset hlr_dataset;

/*
 * hlr_dataset_load_idx -- read an idx image file (magic 0x00000803, uint8
 *   pixels) and an idx label file (0x00000801), each raw or gzip-compressed.
 *   Pixels are scaled to [0, 1]; samples have shape (1, rows, cols).
 *   Magic, dimensions and sizes are checked against the bytes present.
 * Returns: the data set, or NULL.
 * Errors: HLR_EINVAL (NULL path), HLR_EIO (cannot open or read),
 *   HLR_EFORMAT (bad magic, truncated, counts disagree, absurd sizes),
 *   HLR_ENOMEM.
 * Ownership: owned; free with hlr_dataset_free().
 */
HLR_API hlr_dataset *hlr_dataset_load_idx(const char *images_path, const char *labels_path);

/*
 * hlr_dataset_from -- a data set of n samples copied from caller arrays: x
 *   holds n * prod(sample_shape) floats, labels n values in
 *   [0, num_classes).
 * Errors: HLR_EINVAL (NULL pointers, n < 1, num_classes < 1, bad shape,
 *   label out of range), HLR_ENOMEM.
 * Ownership: owned; the arrays stay the caller's.
 */
HLR_API hlr_dataset *hlr_dataset_from(int sample_ndim, const int64_t *sample_shape, int64_t n, const float *x,
                                      const int32_t *labels, int num_classes);

/*
 * hlr_dataset_from_tokens -- as hlr_dataset_from(), for models whose first
 *   layer is an embedding: ids holds n * prod(sample_shape) int32 token ids
 *   (checked against the embedding when the data set is used).
 * Errors, ownership: as hlr_dataset_from().
 */
HLR_API hlr_dataset *hlr_dataset_from_tokens(int sample_ndim, const int64_t *sample_shape, int64_t n,
                                             const int32_t *ids, const int32_t *labels, int num_classes);

/*
 * hlr_dataset_set_lengths -- give each of the data set's samples, sequences
 *   of T steps, its own length (lengths holds size values >= 1; see
 *   hlr_model_set_lengths()), or with lengths NULL remove them.  Shuffling,
 *   splitting and slicing keep each length with its sample.
 * Errors: HLR_EINVAL (NULL data set, a length < 1), HLR_ENOMEM.
 * Ownership: lengths is copied.
 */
HLR_API hlr_status hlr_dataset_set_lengths(hlr_dataset *d, const int32_t *lengths);

/*
 * hlr_dataset_from_sequences -- a data set for a CTC model (HLR_LOSS_CTC):
 *   n samples x, each of sample_shape (for images (C, H, W), the width W
 *   being the widest image's, narrower ones padded with zeros on the
 *   right), widths (n values in [1, W], the last axis's valid part, kept as
 *   the samples' lengths: see hlr_model_set_lengths(); NULL: all W), and
 *   targets (n rows of max_target int32: each sample's labels, in
 *   [1, num_classes), then -1 padding; 0 is the blank).  num_classes is the
 *   model's C, the blank included.  hlr_model_fit() and hlr_model_evaluate()
 *   then train on and score the label sequences.
 * Errors: as hlr_dataset_from(); HLR_EINVAL for a width outside [1, W], a
 *   label outside [1, num_classes), a label after the padding,
 *   max_target < 1 or num_classes < 2.
 * Ownership: owned; the arrays stay the caller's.
 */
HLR_API hlr_dataset *hlr_dataset_from_sequences(int sample_ndim, const int64_t *sample_shape, int64_t n,
                                                const float *x, const int32_t *widths, const int32_t *targets,
                                                int max_target, int num_classes);

/* hlr_dataset_targets -- a sequence data set's targets (n rows of *max_target, -1 padded), borrowed;
 * NULL (and *max_target 0) for a data set of class labels.  max_target may be NULL. */
HLR_API const int32_t *hlr_dataset_targets(const hlr_dataset *d, int *max_target);

/* hlr_dataset_dtype -- HLR_F32, HLR_I32 for token ids; -1 for NULL. */
HLR_API int hlr_dataset_dtype(const hlr_dataset *d);

HLR_API void hlr_dataset_free(hlr_dataset *d);

/* hlr_dataset_shuffle -- permute the samples (Fisher-Yates) with a seeded generator. */
HLR_API hlr_status hlr_dataset_shuffle(hlr_dataset *d, uint64_t seed);

/*
 * hlr_dataset_split -- move the last round(fraction * size) samples of d
 *   into a new data set and return it; d keeps the rest.
 * Errors: HLR_EINVAL (NULL, fraction outside (0, 1), either part empty).
 * Ownership: owned; free with hlr_dataset_free().
 */
HLR_API hlr_dataset *hlr_dataset_split(hlr_dataset *d, double fraction);

/*
 * hlr_dataset_slice -- a copy of samples [start, start + count).
 * Errors: HLR_EINVAL (range outside the data set, count < 1).
 */
HLR_API hlr_dataset *hlr_dataset_slice(const hlr_dataset *d, int64_t start, int64_t count);

HLR_API int64_t hlr_dataset_size(const hlr_dataset *d);
HLR_API int hlr_dataset_num_classes(const hlr_dataset *d);
/* hlr_dataset_sample_ndim / _sample_dim -- the shape of one sample. */
HLR_API int hlr_dataset_sample_ndim(const hlr_dataset *d);
HLR_API int64_t hlr_dataset_sample_dim(const hlr_dataset *d, int i);
/* Borrowed views of all samples and labels, valid until the data set changes or is freed.
 * hlr_dataset_inputs is NULL for a data set of token ids, hlr_dataset_tokens for
 * one of floats; hlr_dataset_lengths is NULL when the samples have no lengths;
 * hlr_dataset_labels is NULL for a sequence data set (see hlr_dataset_targets). */
HLR_API const float *hlr_dataset_inputs(const hlr_dataset *d);
HLR_API const int32_t *hlr_dataset_labels(const hlr_dataset *d);
HLR_API const int32_t *hlr_dataset_tokens(const hlr_dataset *d);
HLR_API const int32_t *hlr_dataset_lengths(const hlr_dataset *d);

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct hlr_model hlr_model;

/*
 * hlr_model_new -- an empty sequential model whose random generator (weight
 *   initialisation, dropout, shuffling in fit) starts from seed.
 * Returns: the model, or NULL (HLR_ENOMEM).
 * Ownership: owned; free with hlr_model_free(), which frees its layers.
 */
HLR_API hlr_model *hlr_model_new(uint64_t seed);

HLR_API void hlr_model_free(hlr_model *m);

/*
 * hlr_model_add -- append a layer.  The model takes ownership of the layer
 *   in every case but one: on failure the layer is freed, so the caller
 *   never has to.  The exception is a layer that already belongs to a model
 *   (HLR_ESTATE): it stays with that model.  Layers cannot be added after
 *   hlr_model_build().  A failed add (a NULL layer from a constructor that
 *   failed, say) is remembered: hlr_model_build() then refuses the model,
 *   naming the missing layer's position and the constructor's message, so
 *   that unchecked calls such as hlr_model_add(m, hlr_dropout(p)) cannot
 *   build a model without that layer.
 * Errors: HLR_EINVAL (NULL model or layer), HLR_ESTATE (already built, or
 *   the layer belongs to another model), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_model_add(hlr_model *m, hlr_layer *l);

/*
 * hlr_model_build -- infer every layer's shapes from the shape of one
 *   sample (no batch dimension) and create and initialise the parameters.
 * Errors: HLR_EINVAL (bad shape, no layers, a failed hlr_model_add),
 *   HLR_ESHAPE with a message naming the layer index and type that does not
 *   fit, HLR_ESTATE (built already), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_model_build(hlr_model *m, int ndim, const int64_t *sample_shape);

/* hlr_model_num_layers -- the number of layers (0 for NULL). */
HLR_API int hlr_model_num_layers(const hlr_model *m);

/*
 * hlr_model_layer -- layer i (0-based).
 * Returns: NULL (HLR_EINVAL) when out of range.
 * Ownership: borrowed, owned by the model.
 */
HLR_API hlr_layer *hlr_model_layer(hlr_model *m, int i);

/* hlr_model_param_count -- the total number of trainable scalars (0 before build). */
HLR_API int64_t hlr_model_param_count(const hlr_model *m);

/*
 * hlr_model_output_shape -- the shape of one output sample (after build):
 *   writes up to HLR_MAX_DIMS dimensions to shape and the count to *ndim.
 * Errors: HLR_EINVAL, HLR_ESTATE (not built).
 */
HLR_API hlr_status hlr_model_output_shape(const hlr_model *m, int *ndim, int64_t *shape);

/*
 * hlr_model_input_shape -- the shape of one input sample, as given to
 *   hlr_model_build() (a loaded model: as stored in its file), written like
 *   hlr_model_output_shape() writes its shape.
 * Errors: HLR_EINVAL, HLR_ESTATE (not built).
 */
HLR_API hlr_status hlr_model_input_shape(const hlr_model *m, int *ndim, int64_t *shape);

/*
 * hlr_model_summary -- a table of layer, output shape and parameter count,
 *   then the totals, written as text into buf (always NUL-terminated when
 *   cap > 0).  *needed (if not NULL) receives the full length without the
 *   NUL, as snprintf returns it; call with cap 0 to size a buffer.
 * Errors: HLR_EINVAL (NULL model, buf NULL with cap > 0), HLR_ESTATE (not built).
 */
HLR_API hlr_status hlr_model_summary(const hlr_model *m, char *buf, size_t cap, size_t *needed);

/*
 * hlr_model_forward -- run the model on a batch x (N, sample shape...) and
 *   write y (N, output shape...).  With training != 0, dropout is active and
 *   the activations are kept for hlr_model_backward().  x is float32, or
 *   int32 token ids when the first layer is an embedding.
 *   Buffers are sized when a batch larger than any before arrives; batches
 *   of that size or smaller allocate nothing.
 * Errors: HLR_EINVAL (NULL, wrong dtype, a token id out of range),
 *   HLR_ESTATE (not built), HLR_ESHAPE (x or y does not match; a batch
 *   other than the one lengths or an initial state were set for),
 *   HLR_ENOMEM.
 * Thread-safety: uses the model's buffers; one thread at a time per model.
 */
HLR_API hlr_status hlr_model_forward(hlr_model *m, const hlr_tensor *x, hlr_tensor *y, int training);

/*
 * hlr_model_backward -- after hlr_model_forward(..., training=1), propagate
 *   dy = dLoss/dy (shape of y) back through the model, overwriting every
 *   parameter's gradient, and write dLoss/dx into dx unless dx is NULL
 *   (token ids have no gradient: dx must be NULL for an embedding model).
 *   With this and an optimizer a caller can train on any loss.
 * Errors: HLR_EINVAL, HLR_ESTATE (no training forward before), HLR_ESHAPE.
 */
HLR_API hlr_status hlr_model_backward(hlr_model *m, const hlr_tensor *dy, hlr_tensor *dx);

/*
 * hlr_optimizer_step -- update every parameter of m from its gradient.
 * Errors: HLR_EINVAL, HLR_ESTATE (model not built, or optimizer bound to
 *   another model), HLR_ENUMERIC (non-finite gradient norm when clipping),
 *   HLR_ENOMEM (first step only: the optimizer's state).
 */
HLR_API hlr_status hlr_optimizer_step(hlr_optimizer *o, hlr_model *m);

/*
 * hlr_model_set_loss -- the loss hlr_model_train_batch() and fit use:
 *   HLR_LOSS_CROSS_ENTROPY (default; targets int32 labels (N), output
 *   (N, C)), HLR_LOSS_MSE (targets float32 of the output's shape) or
 *   HLR_LOSS_CTC (output (N, T, C), a sequence of scores over C - 1 labels
 *   and the blank 0; targets int32 (N, S), each row's labels in [1, C)
 *   followed by -1 padding; each sample's input length is its output
 *   length for the lengths set, see hlr_model_output_lengths(), else T).
 *   label_smoothing applies to cross-entropy, in [0, 1); 0 for the others.
 *   Model files keep the loss.
 * Errors: HLR_EINVAL.
 */
HLR_API hlr_status hlr_model_set_loss(hlr_model *m, hlr_loss_kind kind, float label_smoothing);

/*
 * hlr_model_train_batch -- one step: forward in training mode, loss,
 *   backward, optimizer step.  *loss (if not NULL) receives the batch loss.
 * Errors: as hlr_model_forward(), hlr_model_backward(), the loss functions
 *   and hlr_optimizer_step(); HLR_ENUMERIC when the loss is not finite (the
 *   parameters are then left unchanged).
 */
HLR_API hlr_status hlr_model_train_batch(hlr_model *m, hlr_optimizer *o, const hlr_tensor *x,
                                         const hlr_tensor *target, float *loss);

/* What the per-epoch callback of hlr_model_fit() receives. */
typedef struct hlr_epoch_stats {
    int epoch;             /* 1-based */
    int epochs;            /* of the whole fit */
    double train_loss;     /* mean over the epoch's batches, weighted by batch size */
    double train_accuracy; /* fraction in [0, 1] (cross-entropy models; 0 for MSE) */
    double val_loss;       /* on the validation part; NaN when there is none (isnan()) */
    double val_accuracy;   /* fraction in [0, 1]; NaN when there is no validation part */
    double lr;             /* learning rate used in the epoch's last step */
    double seconds;        /* wall time of the epoch (training and validation) */
    double samples_per_second; /* training samples per second */
    int best_epoch;        /* the fit's epoch (1-based) with the best value early stopping monitors so far;
                              0 when early stopping is off */
    int stopping;          /* 1: early stopping ends the fit after this epoch */
    double val_cer;        /* CTC models: the validation character error rate (label edits of the best-path
                              readings over target labels); NaN otherwise.  Their accuracies are the
                              fractions of whole sequences read right. */
} hlr_epoch_stats;

/* Return nonzero to stop fitting after this epoch (fit then returns HLR_ECANCELLED). */
typedef int (*hlr_epoch_fn)(const hlr_epoch_stats *stats, void *user);

/* What the per-batch callback of hlr_model_fit() receives: progress within the epoch. */
typedef struct hlr_batch_stats {
    int epoch, epochs;        /* as in hlr_epoch_stats */
    int64_t batch, batches;   /* this batch (1-based) of the epoch's batches */
    int64_t samples, total;   /* training samples done in the epoch, of total */
    double loss;              /* mean training loss of the epoch so far */
    double accuracy;          /* training accuracy of the epoch so far, in [0, 1] */
    double seconds;           /* since the epoch began */
} hlr_batch_stats;

/* Return nonzero to stop fitting at once (fit then returns HLR_ECANCELLED). */
typedef int (*hlr_batch_fn)(const hlr_batch_stats *stats, void *user);

/* The number early stopping, reduce-on-plateau and checkpoints watch, once per epoch. */
typedef enum hlr_monitor {
    HLR_MONITOR_VAL_LOSS = 0,      /* lower is better; needs validation data */
    HLR_MONITOR_VAL_ACCURACY = 1,  /* higher is better; needs validation data */
    HLR_MONITOR_TRAIN_LOSS = 2,
    HLR_MONITOR_TRAIN_ACCURACY = 3
} hlr_monitor;

/* Early stopping (Keras's EarlyStopping): stop after `patience` epochs in a
 * row without an improvement of more than min_delta. */
typedef struct hlr_early_stopping {
    int patience;      /* epochs without improvement before stopping; 0 (default): off */
    hlr_monitor monitor;
    double min_delta;  /* an improvement must exceed this; default 0 */
    int restore_best;  /* 1: end with the parameters (and batch-norm statistics) of the best epoch */
} hlr_early_stopping;

/* Keras's ReduceLROnPlateau: after `patience` epochs without improvement,
 * multiply the optimizer's base learning rate by factor (not below min_lr). */
typedef struct hlr_lr_plateau {
    int patience;      /* 0 (default): off */
    hlr_monitor monitor;
    double factor;     /* in (0, 1); default 0.1 */
    double min_delta;  /* default 0 */
    double min_lr;     /* default 0 */
} hlr_lr_plateau;

/* Save the model after each epoch (Keras's ModelCheckpoint), atomically, as
 * hlr_model_save() does, with the optimizer's state so training can resume. */
typedef struct hlr_checkpoint {
    const char *path;  /* NULL (default): off.  Overwritten by each save */
    hlr_monitor monitor;
    int best_only;     /* 1: save only when the monitored value improved */
} hlr_checkpoint;

/* Geometric augmentation of (C, H, W) training images in hlr_model_fit(),
 * drawn per image from the model's generator (so reproducible) and applied
 * as one bilinear resampling about the image's centre, zero outside.  All 0
 * (the default): off. */
typedef struct hlr_augment {
    double rotate;        /* rotation by up to this many degrees either way, in [0, 180] */
    double scale;         /* scaling by a factor in [1 - scale, 1 + scale], scale in [0, 0.9] */
    double shear;         /* horizontal shear by up to this many degrees either way, in [0, 60] */
    double elastic_alpha; /* elastic distortion (Simard et al. 2003): displacements of up to about
                             this many pixels, smoothed by a Gaussian of elastic_sigma; 0: off */
    double elastic_sigma; /* in (0, 64]; default 4 (used when elastic_alpha > 0) */
} hlr_augment;

/* Options of hlr_model_fit(); initialise with hlr_fit_options_default(). */
typedef struct hlr_fit_options {
    int epochs;               /* default 1 */
    int batch_size;           /* default 64 */
    int shuffle;              /* shuffle each epoch: a new permutation of the data, drawn from the
                                 model's generator; default 1 */
    double validation_split;  /* last fraction of the data kept for validation, [0, 1); default 0 */
    int schedule_per_batch;   /* advance the lr schedule per batch instead of per epoch; default 0 */
    int augment_shift;        /* shift each (C, H, W) training image by up to this many pixels in x and y,
                                 drawn from the model's generator, zero-filling; default 0 (off) */
    hlr_epoch_fn on_epoch;    /* default NULL */
    void *user;               /* passed to on_epoch and on_batch */
    hlr_batch_fn on_batch;    /* after every training batch, for progress; default NULL */
    const hlr_dataset *validation_data; /* evaluated after each epoch instead of a split; default NULL
                                           (validation_split must then be 0) */
    const float *class_weight; /* weight of each class in the training loss, as torch's
                                  CrossEntropyLoss(weight=w): sum w[y] loss / sum w[y]; NULL (default): 1 */
    int class_weight_count;   /* entries of class_weight: the model's number of classes */
    hlr_early_stopping early_stopping;
    hlr_lr_plateau reduce_lr;
    hlr_checkpoint checkpoint;
    const char *csv_log;      /* append one line per epoch to this CSV file (header first when new or
                                 truncated); NULL (default): none */
    int csv_append;           /* 1: keep the file's lines; 0 (default): start it afresh */
    hlr_augment augment;      /* rotation, scaling, shear, elastic distortion, after augment_shift */
} hlr_fit_options;

/* hlr_fit_options_default -- fill *o with the defaults above (no-op on NULL). */
HLR_API void hlr_fit_options_default(hlr_fit_options *o);

/*
 * hlr_model_fit -- train on a data set (cross-entropy on its labels) for
 *   opt->epochs epochs in batches of opt->batch_size.  A data set of token
 *   ids needs a model whose first layer is an embedding, and only such a
 *   one; a data set's sequence lengths apply batch by batch, and the model
 *   is left with no lengths set (see hlr_model_set_lengths()).
 *   Each completed epoch counts in hlr_model_epochs_trained() and appends
 *   a record to the model's metadata history (before on_epoch runs, so a
 *   callback may save a checkpoint that resumes exactly).  Each epoch's
 *   order depends only on the generator's state, which a model file's
 *   training state keeps: fitting 1 + 1 epochs with a save and load in
 *   between gives the same bits as fitting 2 (same thread count).
 *   Training control, all in opt: on_batch reports progress; validation
 *   comes from validation_data or the tail split; class_weight weighs the
 *   training loss (not the validation loss; not with label smoothing);
 *   early_stopping ends the fit early, returning HLR_OK, and with
 *   restore_best leaves the model with the best epoch's parameters (the
 *   optimizer's state stays the last epoch's); reduce_lr lowers the
 *   learning rate on a plateau (hlr_optimizer_set_lr()); checkpoint saves
 *   the model and optimizer after each epoch or each improvement; csv_log
 *   writes the history as CSV (epoch, train_loss, train_accuracy, val_loss,
 *   val_accuracy, lr, seconds; validation fields empty without validation).
 *   A monitor of val_* needs validation data.  What these need is allocated
 *   before the first batch.  The library itself never prints.
 * Errors: HLR_EINVAL (NULL, bad options, float samples for token ids or
 *   the other way round, a class_weight count that is not the number of
 *   classes or a weight < 0 or not finite, both a split and validation_data,
 *   a val_* monitor without validation), HLR_ESHAPE (samples do not fit the
 *   model, or its output is not (N, C)), HLR_ENUMERIC (loss diverged),
 *   HLR_ECANCELLED (a callback asked to stop), HLR_EIO (a checkpoint or the
 *   CSV log could not be written), HLR_EUNSUPPORTED (class_weight with label
 *   smoothing), and those of hlr_model_train_batch().
 */
HLR_API hlr_status hlr_model_fit(hlr_model *m, hlr_optimizer *o, const hlr_dataset *train,
                                 const hlr_fit_options *opt);

/* Results of hlr_model_evaluate(). */
typedef struct hlr_metrics {
    int64_t count;         /* samples evaluated */
    double loss;           /* mean cross-entropy (CTC models: mean CTC loss, as in training) */
    double accuracy;       /* top-1, in [0, 1] (CTC models: whole sequences read right by best path) */
    double top_k_accuracy; /* true class among the k highest, in [0, 1] (CTC: the accuracy) */
    int top_k;             /* the k used */
    double cer;            /* CTC models: character error rate, edit distance of the best-path readings
                              over the targets' labels (summed over the data set); NaN otherwise */
} hlr_metrics;

/*
 * hlr_model_evaluate -- inference over a data set in batches of batch_size.
 *   When confusion is not NULL it receives num_classes x num_classes counts,
 *   row = true class, column = predicted class (num_classes of the data set,
 *   which must equal the model's output width).  Token ids and sequence
 *   lengths as in hlr_model_fit().  A sample whose scores hold a NaN counts
 *   as wrong, for top-1 and top-k alike (and makes the mean loss NaN).
 * Errors: HLR_EINVAL (NULL, batch_size < 1, top_k outside 1..classes,
 *   float samples for token ids or the other way round), HLR_ESHAPE
 *   (samples do not fit the model, or its output is not (N, C)),
 *   HLR_ESTATE, HLR_ENOMEM.
 */
HLR_API hlr_status hlr_model_evaluate(hlr_model *m, const hlr_dataset *d, int batch_size, int top_k,
                                      hlr_metrics *out, int64_t *confusion);

/* One class's (or an average's) figures in hlr_classification_report(). */
typedef struct hlr_class_metrics {
    double precision; /* of the samples predicted as the class, the fraction that are */
    double recall;    /* of the samples of the class, the fraction predicted as it */
    double f1;        /* 2 precision recall / (precision + recall) */
    int64_t support;  /* samples of the class (for an average: all samples) */
} hlr_class_metrics;

/*
 * hlr_classification_report -- per-class precision, recall and F1 from a
 *   classes x classes confusion matrix (rows: true class, columns:
 *   predicted, as hlr_model_evaluate() fills it), and their macro (plain)
 *   and weighted (by support) means, as scikit-learn's
 *   classification_report with zero_division=0: a class never predicted
 *   has precision 0, one never present recall 0 (and F1 0).  per_class
 *   (classes entries), macro and weighted may each be NULL.
 * Errors: HLR_EINVAL (NULL confusion, classes < 1, a negative count).
 */
HLR_API hlr_status hlr_classification_report(const int64_t *confusion, int classes, hlr_class_metrics *per_class,
                                             hlr_class_metrics *macro, hlr_class_metrics *weighted);

/*
 * hlr_model_predict -- inference on a batch x: classes (N int32, may be
 *   NULL) receives the arg-max class, probs (N, C float32 tensor, may be
 *   NULL) the softmax probabilities of the output.
 * Errors: as hlr_model_forward(); HLR_ESHAPE when the output is not (N, C).
 */
HLR_API hlr_status hlr_model_predict(hlr_model *m, const hlr_tensor *x, int32_t *classes, hlr_tensor *probs);

/*
 * hlr_model_input_gradient -- the gradient, with respect to the input x (a
 *   batch), of one number per sample, with the model as predict sees it
 *   (inference: batch norm's running statistics, no dropout): the class
 *   score (logit) of targets[i], or of the predicted class when targets is
 *   NULL; with of_loss, the sample's cross-entropy loss against label
 *   targets[i] instead (no mean over the batch).  grad has x's shape.  For
 *   saliency maps and adversarial examples.  Nothing a prediction depends on
 *   changes (running statistics, the random generator); the parameters'
 *   gradient buffers are overwritten.
 * Errors: HLR_EINVAL (NULL, a target outside the classes, of_loss without
 *   targets), HLR_ESHAPE (x or grad not (N, input shape), output not
 *   (N, C)), HLR_ESTATE (not built, a clone: clones keep no gradients),
 *   HLR_EUNSUPPORTED (a model of token ids), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_model_input_gradient(hlr_model *m, const hlr_tensor *x, const int32_t *targets, int of_loss,
                                            hlr_tensor *grad);

/*
 * hlr_model_set_lengths -- give a batch of n sequences different lengths:
 *   sequence i has lengths[i] valid steps, the rest of its T steps is
 *   padding.  Recurrent layers then follow PyTorch's packed sequences (a
 *   sequence's steps past its end produce zeros and leave its state alone;
 *   the reverse direction starts at its own last step), and hlr_seq_last,
 *   hlr_seq_mean and hlr_seq_max read only the valid steps; padding gets a
 *   zero gradient.  The lengths are copied and stay in force for every
 *   forward pass (and the backward pass after it) until replaced or
 *   cleared with lengths NULL; meanwhile each forward pass must have a
 *   batch of exactly n (otherwise HLR_ESHAPE).  A length larger than a
 *   layer's number of steps counts as all of them.  Setting lengths between
 *   a training forward and its backward cancels that forward (backward
 *   then fails with HLR_ESTATE).  hlr_model_fit() and hlr_model_evaluate()
 *   use the data set's lengths (hlr_dataset_set_lengths) and return with
 *   none set.  For a model taking (C, H, W) images, the lengths are each
 *   image's valid width in pixels (the rest is padding, zeros): every
 *   convolution and pooling maps them to the windows that start inside
 *   them, so a CRNN's recurrent layers and its CTC loss see each image's
 *   own number of columns (hlr_feature_map_columns).
 * Errors: HLR_EINVAL (model NULL, n < 1, a length < 1), HLR_ENOMEM (only
 *   when n exceeds every batch size seen before).
 * Ownership: lengths stays the caller's.
 */
HLR_API hlr_status hlr_model_set_lengths(hlr_model *m, const int32_t *lengths, int64_t n);

/*
 * hlr_model_output_lengths -- the valid lengths of the output sequences
 *   for the lengths set by hlr_model_set_lengths() (n of them): after
 *   every layer that shrinks the time axis (convolution and pooling map an
 *   image's width), each in [1, the output's steps].  What a CTC decoder
 *   reads of each sample's output.
 * Errors: HLR_EINVAL (NULL), HLR_ESTATE (not built, or no lengths set),
 *   HLR_ESHAPE (n is not the number of lengths set).
 */
HLR_API hlr_status hlr_model_output_lengths(const hlr_model *m, int32_t *lengths, int64_t n);

/* ------------------------------------------------------------------------ */
/* Model files                                                               */
/* ------------------------------------------------------------------------ */

/*
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
 * e.g. "model file: chunk PARM #3 at payload offset 1932: ...".  A file of
 * a newer major format version fails with HLR_EUNSUPPORTED; newer minor
 * versions load (chunks this library does not know are skipped).
 */

/* The format version this library writes, and (major) reads. */
#define HLR_FORMAT_MAJOR 1
#define HLR_FORMAT_MINOR 0

/* Options of hlr_model_save(); initialise with hlr_save_options_default(). */
typedef struct hlr_save_options {
    int compression;                /* zlib level: 0 (stored) to 9 (smallest); default 6 */
    const hlr_optimizer *optimizer; /* when not NULL, its state is saved so training can resume; it
                                       must be unused or bound to this model; default NULL */
    int training_state;             /* save the model's random generator and epoch counters; default 1 */
} hlr_save_options;

/* hlr_save_options_default -- fill *o with the defaults above (no-op on NULL). */
HLR_API void hlr_save_options_default(hlr_save_options *o);

/*
 * hlr_model_save -- write a built model to path, with the optimizer state
 *   and training state opt asks for (opt NULL: the defaults).  The file is
 *   written to a temporary file in path's folder, flushed to disk and
 *   renamed over path: a crash or a full disk leaves the previous file (or
 *   none), never a partial one; on failure the temporary file is removed.
 * Returns: HLR_OK or an error.
 * Errors: HLR_EINVAL (NULL model or path, compression outside 0..9),
 *   HLR_ESTATE (not built; the optimizer trains another model),
 *   HLR_EUNSUPPORTED (a layer type that cannot be saved), HLR_EIO (the
 *   folder cannot be written, the disk is full: the message names the path
 *   and the system's reason), HLR_ENOMEM.
 * Ownership: nothing is retained.
 * Thread-safety: reads the model (and optimizer): do not train them from
 *   another thread meanwhile.  Saving two models at once is fine.
 */
HLR_API hlr_status hlr_model_save(const hlr_model *m, const char *path, const hlr_save_options *opt);

/*
 * hlr_model_save_buffer -- the same bytes as hlr_model_save(), into memory.
 *   *data receives the file's bytes, *size their number.
 * Errors: as hlr_model_save() but no HLR_EIO; *data is NULL on failure.
 * Ownership: *data is owned by the caller; free it with hlr_buffer_free().
 */
HLR_API hlr_status hlr_model_save_buffer(const hlr_model *m, const hlr_save_options *opt, void **data,
                                         size_t *size);

/* hlr_buffer_free -- free a buffer from hlr_model_save_buffer() (no-op on NULL). */
HLR_API void hlr_buffer_free(void *data);

/*
 * hlr_model_load -- read a model file and rebuild the model: layers from
 *   their configurations, built with the stored input shape, parameters,
 *   buffers, loss, metadata and (when saved) the training state.  Without
 *   training state the model's generator is where hlr_model_new(0) and the
 *   build leave it.
 *   When optimizer is not NULL it receives the saved optimizer, bound to the
 *   returned model with its moments, step count and schedule position, or
 *   NULL when the file holds none; hlr_model_fit(m, *optimizer, ...) then
 *   continues where the saved training stopped.
 * Returns: the built model, or NULL (then *optimizer is NULL too).
 * Errors: HLR_EINVAL (NULL path), HLR_EIO (cannot open or read),
 *   HLR_EFORMAT (not a model file, corrupt, truncated, inconsistent: the
 *   message says what and where), HLR_EUNSUPPORTED (newer major format
 *   version, or a required feature this library lacks), HLR_ENOMEM.
 * Ownership: the model (free with hlr_model_free()) and *optimizer (free
 *   with hlr_optimizer_free()) are owned by the caller.
 * Thread-safety: safe; loads in different threads do not interfere.
 */
HLR_API hlr_model *hlr_model_load(const char *path, hlr_optimizer **optimizer);

/*
 * hlr_model_load_buffer -- hlr_model_load() from size bytes at data (a
 *   file's whole contents).
 * Errors: as hlr_model_load() (HLR_EINVAL for NULL data), no HLR_EIO.
 * Ownership: data stays the caller's and is not retained.
 */
HLR_API hlr_model *hlr_model_load_buffer(const void *data, size_t size, hlr_optimizer **optimizer);

/*
 * hlr_model_epochs_trained -- the epochs hlr_model_fit() has completed on
 *   this model, counting every call and, through a file's training state,
 *   earlier processes (0 for NULL).
 */
HLR_API int64_t hlr_model_epochs_trained(const hlr_model *m);

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Every model carries metadata that model files keep: a data set name,
 * class names, free key/value strings and the per-epoch history that
 * hlr_model_fit() records.  Strings are copied in, must be NUL-terminated
 * and are meant to be UTF-8.  Limits (HLR_EINVAL beyond them): data set
 * name up to 255 bytes, up to 65536 class names of 1 to 255 bytes, up to
 * 4096 keys of 1 to 255 bytes with values up to 65535 bytes.
 */
typedef struct hlr_metadata hlr_metadata;

/*
 * hlr_model_metadata -- the model's metadata, to read or change.
 * Returns: NULL (HLR_EINVAL) for a NULL model.
 * Ownership: borrowed, valid while the model lives.
 * Thread-safety: as the model.
 */
HLR_API hlr_metadata *hlr_model_metadata(hlr_model *m);

/*
 * hlr_metadata_set_dataset -- name the data set the model was trained on
 *   (NULL or "" clears it).
 * Errors: HLR_EINVAL (NULL metadata, name too long), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_metadata_set_dataset(hlr_metadata *md, const char *name);

/* hlr_metadata_dataset -- the data set name, "" when none (or md NULL); borrowed until changed. */
HLR_API const char *hlr_metadata_dataset(const hlr_metadata *md);

/*
 * hlr_metadata_set_class_names -- replace the class names with n copies of
 *   names[0..n) (n = 0 clears them).
 * Errors: HLR_EINVAL (NULL metadata, names NULL with n > 0, n outside
 *   0..65536, a name NULL, empty or too long), HLR_ENOMEM.  On failure the
 *   old names stay.
 */
HLR_API hlr_status hlr_metadata_set_class_names(hlr_metadata *md, int n, const char *const *names);

/* hlr_metadata_num_classes -- how many class names there are (0 for NULL). */
HLR_API int hlr_metadata_num_classes(const hlr_metadata *md);

/*
 * hlr_metadata_class_name -- class name i.
 * Returns: NULL (HLR_EINVAL) when md is NULL or i out of range.
 * Ownership: borrowed, valid until the names change or the owner is freed.
 */
HLR_API const char *hlr_metadata_class_name(const hlr_metadata *md, int i);

/*
 * hlr_metadata_set -- set key to a copy of value, replacing an earlier
 *   value; value NULL removes the key.  Keys keep the order they were
 *   first set in.
 * Errors: HLR_EINVAL (NULL metadata or key, empty or too long key or
 *   value, more than 4096 keys), HLR_ENOMEM.
 */
HLR_API hlr_status hlr_metadata_set(hlr_metadata *md, const char *key, const char *value);

/*
 * hlr_metadata_get -- the value of key, or NULL when absent (no error set).
 * Ownership: borrowed, valid until the key changes or the owner is freed.
 */
HLR_API const char *hlr_metadata_get(const hlr_metadata *md, const char *key);

/* hlr_metadata_count -- the number of keys (0 for NULL). */
HLR_API int hlr_metadata_count(const hlr_metadata *md);

/* hlr_metadata_key -- key i (0-based, in order set), or NULL (HLR_EINVAL) out of range; borrowed. */
HLR_API const char *hlr_metadata_key(const hlr_metadata *md, int i);

/* hlr_metadata_history_length -- epochs recorded by hlr_model_fit() (0 for NULL). */
HLR_API int hlr_metadata_history_length(const hlr_metadata *md);

/*
 * hlr_metadata_history -- epoch record i (0 = oldest) into *out: epoch is
 *   the model's epoch number (counting every fit, from 1), epochs the count
 *   that fit reached, the rest as hlr_model_fit()'s callback saw them.
 * Errors: HLR_EINVAL (NULL, i out of range).
 */
HLR_API hlr_status hlr_metadata_history(const hlr_metadata *md, int i, hlr_epoch_stats *out);

/* hlr_metadata_clear_history -- forget the recorded epochs (HLR_EINVAL for NULL). */
HLR_API hlr_status hlr_metadata_clear_history(hlr_metadata *md);

/* ------------------------------------------------------------------------ */
/* Reading a model file without loading it                                   */
/* ------------------------------------------------------------------------ */

/*
 * hlr_model_info reads a model file's header, layer table, optimizer and
 * training state and metadata without creating the model or keeping its
 * weights (bin/hlr-inspect prints it).  The payload is inflated and checked
 * as by hlr_model_load(), with one difference: a payload CRC-32 mismatch is
 * reported (crc_ok = 0) rather than refused, so a damaged file can still be
 * examined.
 */
typedef struct hlr_model_info hlr_model_info;

/*
 * hlr_model_info_load / hlr_model_info_load_buffer -- read the file at path,
 *   or the size bytes at data.
 * Returns: the information, or NULL.
 * Errors: as hlr_model_load() (the layer types and configurations are not
 *   checked against this library's layers).
 * Ownership: owned; free with hlr_model_info_free().  data is not retained.
 */
HLR_API hlr_model_info *hlr_model_info_load(const char *path);
HLR_API hlr_model_info *hlr_model_info_load_buffer(const void *data, size_t size);
HLR_API void hlr_model_info_free(hlr_model_info *info);

/* What hlr_model_info_summary() reports. */
typedef struct hlr_file_summary {
    int format_major, format_minor; /* the file's format version */
    uint32_t flags;                 /* the header's flags (docs/format.md) */
    uint64_t file_size;             /* header + compressed payload, bytes */
    uint64_t compressed_size, uncompressed_size; /* of the payload */
    uint32_t payload_crc;           /* CRC-32 of the payload as the header states it */
    int crc_ok;                     /* 1 when the inflated payload has that CRC-32 */
    uint32_t weights_crc;           /* CRC-32 of every parameter's and buffer's values in file
                                       order: files with equal weights give equal numbers */
    char writer_version[32];        /* library version that wrote the file, "" if not recorded */
    int num_layers;
    int input_ndim;
    int64_t input_shape[HLR_MAX_DIMS]; /* one sample, without the batch dimension */
    int64_t param_count;            /* trainable scalars */
    int64_t buffer_count;           /* stored scalars never trained (batch-norm statistics) */
    int loss;                       /* hlr_loss_kind */
    double label_smoothing;
    int has_optimizer;
    char optimizer[8];              /* "sgd", "adam", "adamw"; "" without optimizer state */
    double base_lr, current_lr;     /* the optimizer's base rate and the rate its next step uses */
    int64_t optimizer_steps, schedule_position;
    int has_training_state;
    int64_t epochs_trained, batches_trained;
    int num_chunks;
} hlr_file_summary;

/*
 * hlr_model_info_summary -- fill *out with the file's summary.  size is
 *   sizeof(hlr_file_summary) as the caller knows it: a program built
 *   against an older header (smaller struct) gets the fields it knows.
 * Errors: HLR_EINVAL (NULL, size 0).
 */
HLR_API hlr_status hlr_model_info_summary(const hlr_model_info *info, hlr_file_summary *out, size_t size);

/*
 * hlr_model_info_layer -- layer i of the file's layer table: *type (e.g.
 *   "conv2d") and *config (its configuration as text, "key=value"
 *   separated by spaces, e.g. "in=784 out=256 bias=1"; "" when it has
 *   none) are borrowed strings valid until hlr_model_info_free(); its output
 *   shape (up to HLR_MAX_DIMS dimensions) goes to *ndim / shape and its
 *   stored scalar count to *scalars.  Every output pointer may be NULL.
 * Errors: HLR_EINVAL (NULL info, i out of range).
 */
HLR_API hlr_status hlr_model_info_layer(const hlr_model_info *info, int i, const char **type, const char **config,
                                        int *ndim, int64_t *shape, int64_t *scalars);

/*
 * hlr_model_info_chunk -- chunk i of the payload, in file order: its tag
 *   (4 characters and a NUL into tag[5]), the payload offset of its header
 *   and the length of its body.  Every output pointer may be NULL.
 * Errors: HLR_EINVAL (NULL info, i out of range).
 */
HLR_API hlr_status hlr_model_info_chunk(const hlr_model_info *info, int i, char tag[5], uint64_t *offset,
                                        uint64_t *length);

/*
 * hlr_model_info_metadata -- the file's metadata (data set, class names,
 *   keys, history), read with the hlr_metadata_* getters.
 * Ownership: borrowed, valid until hlr_model_info_free().
 */
HLR_API const hlr_metadata *hlr_model_info_metadata(const hlr_model_info *info);

/* ------------------------------------------------------------------------ */
/* Serving from several threads                                              */
/* ------------------------------------------------------------------------ */

/*
 * hlr_model_clone_shared -- a model for inference that uses m's parameters
 *   and buffers in place (nothing is copied) and has its own activation
 *   buffers, so that each thread can predict with its own clone while all
 *   share one set of weights:
 *
 *     hlr_model *m = hlr_model_load("model.hlr", NULL);       (main thread)
 *     hlr_model *mine = hlr_model_clone_shared(m);            (one per thread)
 *     hlr_model_predict(mine, x, classes, probs);             (in that thread)
 *     hlr_model_free(mine);                                   (before m)
 *
 *   A clone forwards with training = 0, predicts and evaluates; it refuses
 *   to train (HLR_ESTATE from hlr_model_forward with training != 0,
 *   hlr_model_train_batch, hlr_model_fit and hlr_optimizer_step), and its
 *   layers have no gradients.  Its metadata starts empty.
 * Returns: the clone, or NULL.
 * Errors: HLR_EINVAL (NULL), HLR_ESTATE (m not built), HLR_EUNSUPPORTED (a
 *   layer type that cannot be rebuilt from its configuration), HLR_ENOMEM.
 * Ownership: owned; free with hlr_model_free().  m must outlive every clone
 *   of it, and must not be trained, or have its parameters written, while
 *   a clone is in use.  A clone of a clone shares the first model's data.
 * Thread-safety: making clones only reads m, so threads may clone m at the
 *   same time and while m predicts.  Each clone, like any model, is used by
 *   one thread at a time; m itself may predict in one more thread.
 */
HLR_API hlr_model *hlr_model_clone_shared(const hlr_model *m);

/* ------------------------------------------------------------------------ */
/* Images                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Pictures from files, as grey float32 tensors of shape (1, H, W) with
 * values in [0, 1], white = 1: PNG (grey, grey + alpha, RGB, RGBA, palette;
 * 1 to 16 bits; interlaced or not; read with libpng) and PGM (P5 binary or
 * P2 text, any maxval up to 65535).  Colour becomes luminance
 * 0.299 R + 0.587 G + 0.114 B of the stored values (no gamma correction);
 * transparency is composited onto white paper.
 *
 * For a classifier trained on MNIST, HLR_IMAGE_MNIST turns a picture of one
 * handwritten digit into what MNIST's images look like:
 *   1. polarity: the paper's brightness is the median of the pixels on the
 *      image's edge; on light paper (above 0.5) the image is inverted, so
 *      that the ink is bright on black, as in MNIST (HLR_IMAGE_DARK_INK or
 *      HLR_IMAGE_LIGHT_INK say it instead);
 *   2. contrast: paper -> 0, the brightest ink -> 1 (clamped); a picture in
 *      which no pixel differs from the paper by 0.1 or more has no ink;
 *   3. crop to the bounding box of the pixels above 0.1;
 *   4. scale to fit 20 x 20, keeping the aspect ratio (area averaging when
 *      shrinking, bilinear when enlarging);
 *   5. paste into 28 x 28 with the ink's centre of mass on pixel (14, 14)
 *      (row and column from 0, as in MNIST; shifted by whole pixels; what
 *      falls outside is cut off).
 * A stray speck or a frame around the digit widens the box of step 3: crop
 * such pictures first.
 */

/* Flags of hlr_image_load() and hlr_image_preprocess_mnist(); or them together. */
/* MNIST preprocessing (above): the result is (1, 28, 28). */
#define HLR_IMAGE_MNIST 1
/* The ink is dark on light paper: invert the image (with HLR_IMAGE_MNIST: instead of guessing). */
#define HLR_IMAGE_DARK_INK 2
/* The ink is light on dark, as MNIST: with HLR_IMAGE_MNIST, do not guess; alone it changes nothing. */
#define HLR_IMAGE_LIGHT_INK 4

/* The largest image hlr_image_load() accepts: pixels a side, and in all. */
#define HLR_IMAGE_MAX_SIDE 16384
#define HLR_IMAGE_MAX_PIXELS 67108864

/*
 * hlr_image_load -- read the PNG or PGM file at path (told apart by their
 *   first bytes, not by the name) into a grey image, preprocessed as flags
 *   say.  Special files (FIFOs, devices, folders) are refused without
 *   blocking.  Nothing is printed, whatever the file holds.
 * Returns: a float32 tensor (1, H, W) in [0, 1]: the image as it is (white
 *   = 1; inverted with HLR_IMAGE_DARK_INK), or (1, 28, 28) with
 *   HLR_IMAGE_MNIST; NULL on error.
 * Errors: HLR_EINVAL (NULL path, unknown flags, both ink flags),
 *   HLR_EIO (cannot open or read the file, not a regular file: the message
 *   names the path and the reason), HLR_EFORMAT (neither PNG nor PGM,
 *   empty, truncated, corrupt -- a CRC or compressed-data error --, more
 *   than HLR_IMAGE_MAX_SIDE pixels a side or HLR_IMAGE_MAX_PIXELS in all,
 *   a pixel above a PGM's maxval; with HLR_IMAGE_MNIST a blank picture
 *   with no ink: the message names the path and says what is wrong),
 *   HLR_ENOMEM.
 * Ownership: owned; free with hlr_tensor_free().
 * Thread-safety: safe; loads in different threads do not interfere.
 */
HLR_API hlr_tensor *hlr_image_load(const char *path, int flags);

/*
 * hlr_image_preprocess_mnist -- the MNIST preprocessing of HLR_IMAGE_MNIST
 *   for an image already in memory: a float32 tensor (H, W) or (1, H, W),
 *   white = 1 (values outside [0, 1] are clamped).  flags may hold
 *   HLR_IMAGE_DARK_INK or HLR_IMAGE_LIGHT_INK (HLR_IMAGE_MNIST is allowed
 *   and changes nothing).
 * Returns: a new float32 tensor (1, 28, 28) in [0, 1], or NULL.
 * Errors: HLR_EINVAL (NULL image, an int32 tensor, a pixel NaN or
 *   infinite, unknown flags, both ink flags, a blank image with no ink),
 *   HLR_ESHAPE (not (H, W) or (1, H, W)), HLR_ENOMEM.
 * Ownership: owned; free with hlr_tensor_free().  image stays the caller's.
 * Thread-safety: only reads image.
 */
HLR_API hlr_tensor *hlr_image_preprocess_mnist(const hlr_tensor *image, int flags);

/*
 * hlr_image_line -- a picture of one line of writing (a number, a word) as
 *   a CTC recogniser reads it: polarity and contrast as steps 1 and 2 of
 *   HLR_IMAGE_MNIST (flags: 0 to guess the polarity, HLR_IMAGE_DARK_INK or
 *   HLR_IMAGE_LIGHT_INK to say it), cropped to the ink's bounding box,
 *   scaled to height - 2 pad pixels high with the aspect ratio kept (area
 *   averaging when shrinking, bilinear when enlarging), then pad pixels of
 *   paper (0) on every side.
 * Returns: a float32 tensor (1, height, w), ink bright on 0; NULL on error.
 * Errors: HLR_EINVAL (NULL, unknown or conflicting flags, height outside
 *   1..4096, pad outside 0..(height - 1) / 2, a pixel not finite, no ink),
 *   HLR_ESHAPE (not (H, W) or (1, H, W)), HLR_ENOMEM.
 * Ownership: owned; free with hlr_tensor_free().
 */
HLR_API hlr_tensor *hlr_image_line(const hlr_tensor *image, int height, int pad, int flags);

/*
 * hlr_dataset_load_lines -- a sequence data set for a CTC model from a
 *   labels file: one line per image, NAME<TAB>TEXT (UTF-8; empty lines and
 *   lines starting with # are skipped), NAME a PNG or PGM file relative to
 *   the labels file's folder (or absolute).  Each image goes through
 *   hlr_image_line(image, height, pad, flags); the data set's samples are
 *   (1, height, width), narrower images padded with zeros on the right and
 *   their own widths kept as lengths (width 0: the widest image's).  Each
 *   character of TEXT becomes label k + 1, k its position in alphabet (a
 *   UTF-8 string of distinct characters; 0 is the blank), so the data set
 *   has strlen-in-characters(alphabet) + 1 classes.
 * Errors: HLR_EINVAL (NULL, a bad alphabet or width, bad height, pad or
 *   flags), HLR_EIO (a file cannot be opened or read), HLR_EFORMAT (a line
 *   without a tab, a character outside the alphabet, an image wider than
 *   width, no lines, and the errors of hlr_image_load(): each message names
 *   the labels file and line), HLR_ENOMEM.
 * Ownership: owned; free with hlr_dataset_free().
 */
HLR_API hlr_dataset *hlr_dataset_load_lines(const char *labels_path, const char *alphabet, int height, int pad,
                                            int width, int flags);

#ifdef __cplusplus
}
#endif

#endif /* HLR_HLR_H */
