"""The C API as ctypes sees it: finding and loading libhlr, and declaring
the argument and result types of every function the package calls.

Everything the package knows about include/hlr/hlr.h is written down here,
once: the function prototypes (FUNCTIONS), the enum values (ENUMS), the
numeric macros (DEFINES) and the option/result structs.  The test
python/tests/test_capi.py parses the header and compares it with these
tables, so the two cannot drift apart.

The rest of the package reaches C only through `lib`, whose attributes are
the declared functions; asking it for an undeclared name is an error, so no
call goes out without argtypes and restype.
"""

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, c_char, c_char_p, c_double, c_float, c_int, c_int64, c_size_t, c_uint32, c_uint64,
                    c_void_p)

# The library major version this package is written for.
ABI_MAJOR = 0

# ---------------------------------------------------------------------------
# Enums and macros (values as in include/hlr/hlr.h).

ENUMS = {
    "hlr_status": {
        "HLR_OK": 0,
        "HLR_EINVAL": -1,
        "HLR_ENOMEM": -2,
        "HLR_ESHAPE": -3,
        "HLR_EIO": -4,
        "HLR_EFORMAT": -5,
        "HLR_ESTATE": -6,
        "HLR_ENOTFOUND": -7,
        "HLR_EUNSUPPORTED": -8,
        "HLR_ENUMERIC": -9,
        "HLR_ECANCELLED": -10,
    },
    "hlr_log_level": {"HLR_LOG_DEBUG": 0, "HLR_LOG_INFO": 1, "HLR_LOG_WARN": 2},
    "hlr_dtype": {"HLR_DTYPE_NONE": -1, "HLR_F32": 0, "HLR_I32": 1},
    "hlr_loss_kind": {"HLR_LOSS_CROSS_ENTROPY": 0, "HLR_LOSS_MSE": 1, "HLR_LOSS_CTC": 2},
    "hlr_schedule_kind": {"HLR_SCHEDULE_CONSTANT": 0, "HLR_SCHEDULE_STEP": 1, "HLR_SCHEDULE_COSINE": 2},
    "hlr_reduction": {"HLR_REDUCTION_NONE": 0, "HLR_REDUCTION_SUM": 1, "HLR_REDUCTION_MEAN": 2},
    "hlr_explain_method": {"HLR_EXPLAIN_SALIENCY": 0, "HLR_EXPLAIN_SMOOTHGRAD": 1,
                           "HLR_EXPLAIN_INTEGRATED_GRADIENTS": 2, "HLR_EXPLAIN_GRADCAM": 3},
    "hlr_monitor": {"HLR_MONITOR_VAL_LOSS": 0, "HLR_MONITOR_VAL_ACCURACY": 1, "HLR_MONITOR_TRAIN_LOSS": 2,
                    "HLR_MONITOR_TRAIN_ACCURACY": 3},
}

# Numeric #defines other than the HLR_VERSION_* family.
DEFINES = {
    "HLR_MAX_DIMS": 8,
    "HLR_FORMAT_MAJOR": 1,
    "HLR_FORMAT_MINOR": 2,
    "HLR_RETURN_SEQUENCES": 1,
    "HLR_BIDIRECTIONAL": 2,
    "HLR_ATTN_CAUSAL": 1,
    "HLR_ATTN_KEY_PADDING": 2,
    "HLR_ATTN_NO_OUT_PROJ": 4,
    "HLR_ATTN_NO_BIAS": 8,
    "HLR_POS_SINUSOIDAL": 0,
    "HLR_POS_LEARNED": 1,
    "HLR_IMAGE_MNIST": 1,
    "HLR_IMAGE_DARK_INK": 2,
    "HLR_IMAGE_LIGHT_INK": 4,
    "HLR_IMAGE_PHOTO": 8,
    "HLR_IMAGE_MAX_SIDE": 16384,
    "HLR_IMAGE_MAX_PIXELS": 67108864,
    "HLR_CALIBRATION_MAX_BINS": 100,
    "HLR_ONNX_OPSET": 17,
}


def _const(name):
    for values in ENUMS.values():
        if name in values:
            return values[name]
    return DEFINES[name]


HLR_OK = _const("HLR_OK")
HLR_EINVAL = _const("HLR_EINVAL")
HLR_EUNSUPPORTED = _const("HLR_EUNSUPPORTED")
HLR_ECANCELLED = _const("HLR_ECANCELLED")
HLR_F32 = _const("HLR_F32")
HLR_I32 = _const("HLR_I32")
MAX_DIMS = DEFINES["HLR_MAX_DIMS"]

# ---------------------------------------------------------------------------
# Structs passed by pointer.


class EpochStats(ctypes.Structure):
    """hlr_epoch_stats: what the per-epoch callback of hlr_model_fit() receives."""

    _fields_ = [
        ("epoch", c_int),
        ("epochs", c_int),
        ("train_loss", c_double),
        ("train_accuracy", c_double),
        ("val_loss", c_double),
        ("val_accuracy", c_double),
        ("lr", c_double),
        ("seconds", c_double),
        ("samples_per_second", c_double),
        ("best_epoch", c_int),
        ("stopping", c_int),
        ("val_cer", c_double),
    ]

    def as_dict(self):
        """The fields as a dict; val_loss, val_accuracy and val_cer are None when fit had no validation
        part (val_cer also for models without the CTC loss; the C struct holds NaN there)."""
        d = {name: getattr(self, name) for name, _ in self._fields_}
        for key in ("val_loss", "val_accuracy", "val_cer"):
            if d[key] != d[key]:
                d[key] = None
        return d


class BatchStats(ctypes.Structure):
    """hlr_batch_stats: what the per-batch callback of hlr_model_fit() receives."""

    _fields_ = [
        ("epoch", c_int),
        ("epochs", c_int),
        ("batch", c_int64),
        ("batches", c_int64),
        ("samples", c_int64),
        ("total", c_int64),
        ("loss", c_double),
        ("accuracy", c_double),
        ("seconds", c_double),
    ]


EPOCH_FN = ctypes.CFUNCTYPE(c_int, POINTER(EpochStats), c_void_p)
BATCH_FN = ctypes.CFUNCTYPE(c_int, POINTER(BatchStats), c_void_p)
LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)


class EarlyStopping(ctypes.Structure):
    """hlr_early_stopping."""

    _fields_ = [("patience", c_int), ("monitor", c_int), ("min_delta", c_double), ("restore_best", c_int)]


class LrPlateau(ctypes.Structure):
    """hlr_lr_plateau."""

    _fields_ = [("patience", c_int), ("monitor", c_int), ("factor", c_double), ("min_delta", c_double),
                ("min_lr", c_double)]


class Checkpoint(ctypes.Structure):
    """hlr_checkpoint."""

    _fields_ = [("path", c_char_p), ("monitor", c_int), ("best_only", c_int)]


class Augment(ctypes.Structure):
    """hlr_augment."""

    _fields_ = [("rotate", c_double), ("scale", c_double), ("shear", c_double), ("elastic_alpha", c_double),
                ("elastic_sigma", c_double)]


class Conv2dOptions(ctypes.Structure):
    """hlr_conv2d_options: the kernel's size and how it slides (0: torch's default)."""

    _fields_ = [("kernel", c_int), ("kernel_h", c_int), ("kernel_w", c_int), ("stride", c_int), ("padding", c_int),
                ("dilation", c_int), ("groups", c_int), ("no_bias", c_int)]


class AttackOptions(ctypes.Structure):
    """hlr_attack_options: FGSM or PGD within an L-infinity ball."""

    _fields_ = [
        ("eps", c_double),
        ("steps", c_int),
        ("step_size", c_double),
        ("random_start", c_int),
        ("clip_min", c_double),
        ("clip_max", c_double),
        ("seed", c_uint64),
    ]


# Data-parallel training's collectives (hlr_distributed); the Python package leaves them to C.
ALLREDUCE_F32_FN = ctypes.CFUNCTYPE(c_int, POINTER(c_float), c_int64, c_void_p)
ALLREDUCE_F64_FN = ctypes.CFUNCTYPE(c_int, POINTER(c_double), c_int64, c_void_p)
BROADCAST_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_void_p)


class Distributed(ctypes.Structure):
    _fields_ = [
        ("rank", c_int),
        ("size", c_int),
        ("allreduce_f32", ALLREDUCE_F32_FN),
        ("allreduce_f64", ALLREDUCE_F64_FN),
        ("broadcast", BROADCAST_FN),
        ("user", c_void_p),
        ("sync_batchnorm", c_int),
    ]


class FitOptions(ctypes.Structure):
    """hlr_fit_options; fill with hlr_fit_options_default() first."""

    _fields_ = [
        ("epochs", c_int),
        ("batch_size", c_int),
        ("shuffle", c_int),
        ("validation_split", c_double),
        ("schedule_per_batch", c_int),
        ("augment_shift", c_int),
        ("on_epoch", EPOCH_FN),
        ("user", c_void_p),
        ("on_batch", BATCH_FN),
        ("validation_data", c_void_p),
        ("class_weight", POINTER(c_float)),
        ("class_weight_count", c_int),
        ("early_stopping", EarlyStopping),
        ("reduce_lr", LrPlateau),
        ("checkpoint", Checkpoint),
        ("csv_log", c_char_p),
        ("csv_append", c_int),
        ("augment", Augment),
        ("distributed", POINTER(Distributed)),  # data-parallel training: C's (libhlr-mpi); NULL here
        ("adversarial", POINTER(AttackOptions)),
        ("adversarial_fraction", c_double),
    ]


class Metrics(ctypes.Structure):
    """hlr_metrics: the results of hlr_model_evaluate()."""

    _fields_ = [
        ("count", c_int64),
        ("loss", c_double),
        ("accuracy", c_double),
        ("top_k_accuracy", c_double),
        ("top_k", c_int),
        ("cer", c_double),
    ]


class Calibration(ctypes.Structure):
    """hlr_calibration: what hlr_calibration_metrics() measures."""

    _fields_ = [
        ("count", c_int64),
        ("bins", c_int),
        ("ece", c_double),
        ("mce", c_double),
        ("nll", c_double),
        ("brier", c_double),
        ("accuracy", c_double),
    ]


class ExplainOptions(ctypes.Structure):
    """hlr_explain_options: hlr_model_explain's method and settings."""

    _fields_ = [
        ("method", c_int),
        ("steps", c_int),
        ("noise", c_double),
        ("baseline", c_void_p),
        ("layer", c_int),
        ("seed", c_uint64),
    ]


class ClassMetrics(ctypes.Structure):
    """hlr_class_metrics: one class's figures in hlr_classification_report()."""

    _fields_ = [("precision", c_double), ("recall", c_double), ("f1", c_double), ("support", c_int64)]


class SaveOptions(ctypes.Structure):
    """hlr_save_options; fill with hlr_save_options_default() first."""

    _fields_ = [
        ("compression", c_int),
        ("optimizer", c_void_p),
        ("training_state", c_int),
    ]


class FileSummary(ctypes.Structure):
    """hlr_file_summary: what hlr_model_info_summary() reports about a model file."""

    _fields_ = [
        ("format_major", c_int),
        ("format_minor", c_int),
        ("flags", c_uint32),
        ("file_size", c_uint64),
        ("compressed_size", c_uint64),
        ("uncompressed_size", c_uint64),
        ("payload_crc", c_uint32),
        ("crc_ok", c_int),
        ("weights_crc", c_uint32),
        ("writer_version", c_char * 32),
        ("num_layers", c_int),
        ("input_ndim", c_int),
        ("input_shape", c_int64 * 8),
        ("param_count", c_int64),
        ("buffer_count", c_int64),
        ("loss", c_int),
        ("label_smoothing", c_double),
        ("has_optimizer", c_int),
        ("optimizer", c_char * 8),
        ("base_lr", c_double),
        ("current_lr", c_double),
        ("optimizer_steps", c_int64),
        ("schedule_position", c_int64),
        ("has_training_state", c_int),
        ("epochs_trained", c_int64),
        ("batches_trained", c_int64),
        ("num_chunks", c_int),
        ("temperature", c_double),
    ]


# Struct name in the header -> ctypes class, for the drift test.
STRUCTS = {"hlr_epoch_stats": EpochStats, "hlr_fit_options": FitOptions, "hlr_metrics": Metrics,
           "hlr_batch_stats": BatchStats, "hlr_early_stopping": EarlyStopping, "hlr_lr_plateau": LrPlateau,
           "hlr_checkpoint": Checkpoint, "hlr_class_metrics": ClassMetrics,
           "hlr_augment": Augment,
           "hlr_save_options": SaveOptions, "hlr_file_summary": FileSummary, "hlr_distributed": Distributed,
           "hlr_calibration": Calibration, "hlr_explain_options": ExplainOptions,
           "hlr_attack_options": AttackOptions, "hlr_conv2d_options": Conv2dOptions}

# ---------------------------------------------------------------------------
# Function prototypes: name -> (restype, [argtypes]).  Handles (hlr_model *,
# hlr_layer *, ...) and data buffers are c_void_p: the package passes
# addresses it has checked itself.

H = c_void_p  # an opaque handle
P_I64 = POINTER(c_int64)
STATUS = c_int
ENUM = c_int

FUNCTIONS = {
    # versions, errors, logging, threads
    "hlr_version": (c_char_p, []),
    "hlr_version_number": (c_int, []),
    "hlr_strerror": (c_char_p, [STATUS]),
    "hlr_last_error": (c_char_p, []),
    "hlr_last_status": (STATUS, []),
    "hlr_set_log_callback": (None, [LOG_FN, c_void_p]),
    "hlr_set_num_threads": (STATUS, [c_int]),
    "hlr_get_num_threads": (c_int, []),
    # tensors
    "hlr_tensor_new": (H, [ENUM, c_int, P_I64]),
    "hlr_tensor_from": (H, [ENUM, c_int, P_I64, c_void_p]),
    "hlr_tensor_wrap": (H, [ENUM, c_int, P_I64, c_void_p]),
    "hlr_tensor_free": (None, [H]),
    "hlr_tensor_ndim": (c_int, [H]),
    "hlr_tensor_dim": (c_int64, [H, c_int]),
    "hlr_tensor_numel": (c_int64, [H]),
    "hlr_tensor_dtype": (c_int, [H]),
    "hlr_tensor_data": (c_void_p, [H]),
    "hlr_tensor_f32": (c_void_p, [H]),
    "hlr_tensor_i32": (c_void_p, [H]),
    # layers
    "hlr_dense": (H, [c_int, c_int, c_int]),
    "hlr_relu": (H, []),
    "hlr_leaky_relu": (H, [c_float]),
    "hlr_sigmoid": (H, []),
    "hlr_tanh": (H, []),
    "hlr_gelu": (H, []),
    "hlr_softmax": (H, []),
    "hlr_dropout": (H, [c_float]),
    "hlr_flatten": (H, []),
    "hlr_conv2d": (H, [c_int, c_int, POINTER(Conv2dOptions)]),
    "hlr_maxpool2d": (H, [c_int, c_int, c_int]),
    "hlr_avgpool2d": (H, [c_int, c_int, c_int]),
    "hlr_maxpool2d_hw": (H, [c_int] * 6),
    "hlr_avgpool2d_hw": (H, [c_int] * 6),
    "hlr_global_avgpool2d": (H, []),
    "hlr_batchnorm2d": (H, [c_int, c_float, c_float]),
    "hlr_batchnorm1d": (H, [c_int, c_float, c_float]),
    "hlr_lstm": (H, [c_int, c_int, c_int, c_int, c_float]),
    "hlr_gru": (H, [c_int, c_int, c_int, c_int, c_float]),
    "hlr_rnn_set_initial_state": (STATUS, [H, H, H]),
    "hlr_rnn_final_state": (STATUS, [H, H, H]),
    "hlr_rnn_initial_state_grad": (STATUS, [H, H, H]),
    "hlr_embedding": (H, [c_int, c_int, c_int]),
    "hlr_image_rows": (H, []),
    "hlr_feature_map_rows": (H, []),
    "hlr_feature_map_columns": (H, []),
    "hlr_ctc_loss": (STATUS, [H, H, H, H, c_int, ENUM, c_int, POINTER(c_float), H]),
    "hlr_ctc_decode": (STATUS, [c_void_p, c_int, c_int, c_int, c_int, H, POINTER(ctypes.c_int32), POINTER(c_float),
                                c_int, POINTER(c_int), POINTER(c_double)]),
    "hlr_lexicon_new": (H, []),
    "hlr_lexicon_free": (None, [H]),
    "hlr_lexicon_add": (STATUS, [H, POINTER(ctypes.c_int32), c_int]),
    "hlr_lexicon_size": (c_int64, [H]),
    "hlr_edit_distance": (c_int64, [POINTER(ctypes.c_int32), c_int64, POINTER(ctypes.c_int32), c_int64]),
    "hlr_seq_last": (H, []),
    "hlr_seq_mean": (H, []),
    "hlr_seq_max": (H, []),
    "hlr_multihead_attention": (H, [c_int, c_int, c_int, c_float]),
    "hlr_attention_weights": (STATUS, [H, H]),
    "hlr_attention_weights_shape": (STATUS, [H, P_I64]),
    "hlr_layernorm": (H, [c_int, c_float]),
    "hlr_positional_encoding": (H, [c_int, c_int, c_int]),
    "hlr_patch_embedding": (H, [c_int, c_int, c_int]),
    "hlr_class_token": (H, [c_int]),
    "hlr_seq_first": (H, []),
    "hlr_transformer_encoder": (H, [c_int, c_int, c_int, c_int, c_float]),
    "hlr_layer_free": (None, [H]),
    "hlr_layer_type": (c_char_p, [H]),
    "hlr_layer_param_count": (c_int, [H]),
    "hlr_layer_param_name": (c_char_p, [H, c_int]),
    "hlr_layer_param": (H, [H, c_char_p]),
    "hlr_layer_grad": (H, [H, c_char_p]),
    # losses
    "hlr_cross_entropy": (STATUS, [H, H, c_float, POINTER(c_float), H]),
    "hlr_mse": (STATUS, [H, H, POINTER(c_float), H]),
    # optimizers
    "hlr_sgd": (H, [c_float, c_float, c_int, c_float]),
    "hlr_adam": (H, [c_float, c_float, c_float, c_float, c_float]),
    "hlr_adamw": (H, [c_float, c_float, c_float, c_float, c_float]),
    "hlr_optimizer_free": (None, [H]),
    "hlr_optimizer_set_clip_norm": (STATUS, [H, c_float]),
    "hlr_optimizer_set_schedule": (STATUS, [H, ENUM, c_double, c_double, c_int, c_double]),
    "hlr_optimizer_schedule_step": (STATUS, [H]),
    "hlr_optimizer_lr": (c_float, [H]),
    "hlr_layer_set_trainable": (STATUS, [H, c_int]),
    "hlr_model_input_gradient": (STATUS, [H, H, POINTER(ctypes.c_int32), c_int, H]),
    "hlr_layer_trainable": (c_int, [H]),
    "hlr_optimizer_base_lr": (c_float, [H]),
    "hlr_optimizer_set_lr": (STATUS, [H, c_float]),
    "hlr_optimizer_steps": (c_int64, [H]),
    # data sets
    "hlr_dataset_load_idx": (H, [c_char_p, c_char_p]),
    "hlr_dataset_from": (H, [c_int, P_I64, c_int64, c_void_p, c_void_p, c_int]),
    "hlr_dataset_from_tokens": (H, [c_int, P_I64, c_int64, c_void_p, c_void_p, c_int]),
    "hlr_dataset_from_sequences": (H, [c_int, P_I64, c_int64, c_void_p, c_void_p, c_void_p, c_int, c_int]),
    "hlr_dataset_targets": (c_void_p, [H, POINTER(c_int)]),
    "hlr_dataset_set_lengths": (STATUS, [H, c_void_p]),
    "hlr_dataset_dtype": (c_int, [H]),
    "hlr_dataset_tokens": (c_void_p, [H]),
    "hlr_dataset_lengths": (c_void_p, [H]),
    "hlr_dataset_free": (None, [H]),
    "hlr_dataset_shuffle": (STATUS, [H, c_uint64]),
    "hlr_dataset_split": (H, [H, c_double]),
    "hlr_dataset_slice": (H, [H, c_int64, c_int64]),
    "hlr_dataset_size": (c_int64, [H]),
    "hlr_dataset_num_classes": (c_int, [H]),
    "hlr_dataset_sample_ndim": (c_int, [H]),
    "hlr_dataset_sample_dim": (c_int64, [H, c_int]),
    "hlr_dataset_inputs": (c_void_p, [H]),
    "hlr_dataset_labels": (c_void_p, [H]),
    # models
    "hlr_model_new": (H, [c_uint64]),
    "hlr_model_free": (None, [H]),
    "hlr_model_add": (STATUS, [H, H]),
    "hlr_model_build": (STATUS, [H, c_int, P_I64]),
    "hlr_model_num_layers": (c_int, [H]),
    "hlr_model_layer": (H, [H, c_int]),
    "hlr_model_param_count": (c_int64, [H]),
    "hlr_model_output_shape": (STATUS, [H, POINTER(c_int), P_I64]),
    "hlr_model_input_shape": (STATUS, [H, POINTER(c_int), P_I64]),
    "hlr_model_summary": (STATUS, [H, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "hlr_model_forward": (STATUS, [H, H, H, c_int]),
    "hlr_model_backward": (STATUS, [H, H, H]),
    "hlr_optimizer_step": (STATUS, [H, H]),
    "hlr_model_set_loss": (STATUS, [H, ENUM, c_float]),
    "hlr_model_train_batch": (STATUS, [H, H, H, H, POINTER(c_float)]),
    "hlr_fit_options_default": (None, [POINTER(FitOptions)]),
    "hlr_model_fit": (STATUS, [H, H, H, POINTER(FitOptions)]),
    "hlr_model_fit_settings": (STATUS, [H, POINTER(FitOptions)]),
    "hlr_model_broadcast_parameters": (STATUS, [H, POINTER(Distributed)]),
    "hlr_calibration_metrics": (STATUS, [c_void_p, c_void_p, c_int64, c_int, c_int, POINTER(Calibration), c_void_p,
                                         c_void_p, c_void_p]),
    "hlr_model_fit_temperature": (STATUS, [H, H, c_int, POINTER(c_double)]),
    "hlr_explain_options_default": (None, [POINTER(ExplainOptions)]),
    "hlr_attack_options_default": (None, [POINTER(AttackOptions)]),
    "hlr_model_attack": (STATUS, [H, H, c_void_p, POINTER(AttackOptions), H]),
    "hlr_model_robust_accuracy": (STATUS, [H, H, c_int, POINTER(AttackOptions), POINTER(c_double)]),
    "hlr_model_explain": (STATUS, [H, H, c_void_p, POINTER(ExplainOptions), H]),
    "hlr_model_set_temperature": (STATUS, [H, c_double]),
    "hlr_model_temperature": (c_double, [H]),
    "hlr_model_calibration": (STATUS, [H, H, c_int, c_int, POINTER(Calibration), c_void_p, c_void_p, c_void_p]),
    "hlr_model_allreduce_gradients": (STATUS, [H, POINTER(Distributed)]),
    "hlr_model_evaluate": (STATUS, [H, H, c_int, c_int, POINTER(Metrics), c_void_p]),
    "hlr_classification_report": (STATUS, [POINTER(c_int64), c_int, POINTER(ClassMetrics), POINTER(ClassMetrics),
                                           POINTER(ClassMetrics)]),
    "hlr_model_predict": (STATUS, [H, H, c_void_p, H]),
    "hlr_model_set_lengths": (STATUS, [H, c_void_p, c_int64]),
    "hlr_model_output_lengths": (STATUS, [H, c_void_p, c_int64]),
    # model files
    "hlr_save_options_default": (None, [POINTER(SaveOptions)]),
    "hlr_model_save": (STATUS, [H, c_char_p, POINTER(SaveOptions)]),
    "hlr_model_export_onnx": (STATUS, [H, c_char_p, c_int]),
    "hlr_model_export_onnx_buffer": (STATUS, [H, c_int, POINTER(c_void_p), POINTER(c_size_t)]),
    "hlr_model_import_onnx": (H, [c_char_p]),
    "hlr_model_import_onnx_buffer": (H, [c_void_p, c_size_t]),
    "hlr_model_save_buffer": (STATUS, [H, POINTER(SaveOptions), POINTER(c_void_p), POINTER(c_size_t)]),
    "hlr_buffer_free": (None, [c_void_p]),
    "hlr_model_load": (H, [c_char_p, POINTER(c_void_p)]),
    "hlr_model_load_buffer": (H, [c_void_p, c_size_t, POINTER(c_void_p)]),
    "hlr_model_epochs_trained": (c_int64, [H]),
    # metadata
    "hlr_model_metadata": (H, [H]),
    "hlr_metadata_set_dataset": (STATUS, [H, c_char_p]),
    "hlr_metadata_dataset": (c_char_p, [H]),
    "hlr_metadata_set_class_names": (STATUS, [H, c_int, POINTER(c_char_p)]),
    "hlr_metadata_num_classes": (c_int, [H]),
    "hlr_metadata_class_name": (c_char_p, [H, c_int]),
    "hlr_metadata_set": (STATUS, [H, c_char_p, c_char_p]),
    "hlr_metadata_get": (c_char_p, [H, c_char_p]),
    "hlr_metadata_count": (c_int, [H]),
    "hlr_metadata_key": (c_char_p, [H, c_int]),
    "hlr_metadata_history_length": (c_int, [H]),
    "hlr_metadata_history": (STATUS, [H, c_int, POINTER(EpochStats)]),
    "hlr_metadata_clear_history": (STATUS, [H]),
    # reading a model file without loading it
    "hlr_model_info_load": (H, [c_char_p]),
    "hlr_model_info_load_buffer": (H, [c_void_p, c_size_t]),
    "hlr_model_info_free": (None, [H]),
    "hlr_model_info_summary": (STATUS, [H, POINTER(FileSummary), c_size_t]),
    "hlr_model_info_layer": (STATUS, [H, c_int, POINTER(c_char_p), POINTER(c_char_p), POINTER(c_int), P_I64, P_I64]),
    "hlr_model_info_chunk": (STATUS, [H, c_int, POINTER(c_char), POINTER(c_uint64), POINTER(c_uint64)]),
    "hlr_model_info_metadata": (H, [H]),
    # serving from several threads
    "hlr_model_clone_shared": (H, [H]),
    # images
    "hlr_image_load": (H, [c_char_p, c_int]),
    "hlr_image_decode": (H, [c_void_p, c_size_t, c_int]),
    "hlr_image_preprocess_mnist": (H, [H, c_int]),
    "hlr_image_preprocess_mnist_placed": (H, [H, c_int, POINTER(c_double)]),
    "hlr_image_line": (H, [H, c_int, c_int, c_int]),
    "hlr_dataset_load_lines": (H, [c_char_p, c_char_p, c_int, c_int, c_int, c_int]),
    "hlr_dataset_load_iam": (H, [c_char_p, c_char_p, c_char_p, c_int, c_int, c_int, c_int, POINTER(c_int64)]),
}

# ---------------------------------------------------------------------------
# Loading.


def _candidates():
    """Where to look, in order: HLR_LIBRARY, the build tree, the system."""
    env = os.environ.get("HLR_LIBRARY")
    if env:
        return [("HLR_LIBRARY", env)]
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "lib"))
    found = []
    for name in ("libhlr.so.%d" % ABI_MAJOR, "libhlr.so"):
        path = os.path.join(tree, name)
        if os.path.exists(path):
            found.append(("build tree", path))
    system = ctypes.util.find_library("hlr")
    if system:
        found.append(("system", system))
    found.append(("system", "libhlr.so.%d" % ABI_MAJOR))
    return found


def _load():
    errors = []
    for origin, path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            if origin == "HLR_LIBRARY":
                raise ImportError("hlr: cannot load HLR_LIBRARY=%s: %s" % (path, e)) from None
            errors.append("%s (%s): %s" % (path, origin, e))
    raise ImportError("hlr: cannot find libhlr; build it with `make` or set HLR_LIBRARY to its path.\n  tried "
                      + "\n  tried ".join(errors))


class _Lib:
    """The loaded library: its attributes are exactly the declared functions.

    A function declared here but missing from the loaded library (an older
    build) raises HlrError(HLR_EUNSUPPORTED) when called.
    """

    def __init__(self, cdll, path):
        self._cdll = cdll
        self.path = path
        self.missing = []
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                self.missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)

    def has(self, name):
        return name in FUNCTIONS and name not in self.missing

    def __getattr__(self, name):
        # Only reached for names that were not set in __init__.
        if name in FUNCTIONS:
            from ._errors import HlrError

            raise HlrError(HLR_EUNSUPPORTED, "%s is not in the loaded library %s (built before it was added?)"
                           % (name, self.path))
        raise AttributeError("hlr: %s is not declared in hlr/_capi.py FUNCTIONS" % name)


lib = _Lib(*_load())

_loaded_major = lib.hlr_version_number() // 10000
if _loaded_major != ABI_MAJOR:
    raise ImportError("hlr: %s is libhlr %s (major %d); this package needs major %d"
                      % (lib.path, lib.hlr_version().decode(), _loaded_major, ABI_MAJOR))
