/*
 * model.h -- the model's own fields, for the library's files that work on
 * models (model.c, fit.c, predict.c, clone.c, optim.c, model files, ...).
 * Nothing outside src/ sees it: callers hold an opaque hlr_model *.
 */
#ifndef HLR_MODEL_H
#define HLR_MODEL_H

#include "internal.h"

struct hlr_model {
    uint64_t serial; /* a number no other model of this process has had or will have (an address
                        can be reused once a model is freed): what an optimizer binds to */
    hlr_rng rng;
    hlr_layer **layers;
    int nlayers, cap;
    int built;
    int no_fusion; /* hlr__model_no_fusion() */
    hlr_shape in, out;
    int64_t in_size, out_size;
    int64_t max_size; /* largest per-sample activation, input included */

    /* Buffers for up to `planned` samples, sized by hlr__model_plan(). */
    int64_t planned;
    float **acts;       /* acts[0] = copy of the training input, acts[i+1] = output of layer i
                           (NULL for an alias layer, whose output is its input) */
    const float **x_of; /* per layer: where its input lay in the last forward */
    float **y_of;       /* per layer: where its output lay */
    float *grad[2];     /* ping-pong buffers for gradients flowing backward */
    float *dy;          /* dLoss/dOutput of the last training batch (planned batch x out_size) */
    float *sliced_out;  /* hlr__model_infer's outputs, slice by slice (planned batch x out_size) */

    int64_t train_batch; /* N of the last training forward; 0 when none */
    double *ctc_work;    /* the CTC loss's workspace (hlr__model_ctc_work), ctc_work_cap doubles */
    int64_t ctc_work_cap;
    hlr_loss_kind loss;
    float smoothing;

    /* hlr_model_set_lengths: valid steps of each of nlengths samples (0: none set). */
    int32_t *lengths;
    int64_t nlengths, lengths_cap;
    /* What each layer sees of them (layers with map_lengths shrink the width):
     * len_in[i] the lengths layer i reads, len_in[nlayers] the output's; the
     * rows of mapped lengths, lengths_cap each, are in mapped (len_layers rows). */
    const int32_t **len_in;
    int32_t *mapped;
    int len_layers; /* nlayers when len_in and mapped were sized; -1: not yet */

    /* What a model keeps besides its layers and buffers (model files save most of it). */
    hlr_metadata meta;
    int64_t epochs_trained, batches_trained; /* by hlr_model_fit, across calls and files */
    const hlr_model *shared_from;            /* clones: the model whose parameter data they use */
    float *fused;                            /* data-parallel training: every parameter in one buffer
                                                (distributed.c), fused_cap floats; NULL until needed */
    int64_t fused_cap;
    const hlr_distributed *sync_bn; /* set by hlr_model_fit for synchronised batch norm */
    double temperature;             /* hlr_model_predict's logits / T; 0 (never set) means 1 */
    hlr_status sync_status;         /* the first failure of a batch norm's collective */
    hlr__fit_recipe recipe;         /* the settings of the last hlr_model_fit (hlr_model_fit_settings) */
    int has_recipe;                 /* 0: never fitted (nor loaded from a file that says) */

    /* The first hlr_model_add that failed -- a NULL from a failed constructor,
     * most often -- so that hlr_model_build refuses a model missing a layer. */
    int add_failed;    /* 0: none */
    int add_failed_at; /* the position the layer would have had */
    char add_failed_why[320];
};

#endif
