/*
 * fuzz_load.c -- libFuzzer harness for the model-file reader (`make fuzz`).
 *
 * The first input byte picks what the rest is: even, a whole model file
 * (which mostly exercises the header, zlib and CRC checks); odd, a payload
 * that the harness wraps in a valid header with correct checksums, so that
 * the chunk parser and the model rebuild see the fuzzer's bytes directly.
 * Every input must load a model that predicts, or fail with HLR_EFORMAT or
 * HLR_EUNSUPPORTED; anything else (a crash, a leak, a sanitizer report, an
 * out-of-memory) is a finding.
 */
#include "internal.h"
#include "modelfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_status(const char *what)
{
    hlr_status st = hlr_last_status();
    if (st != HLR_EFORMAT && st != HLR_EUNSUPPORTED) {
        fprintf(stderr, "%s failed with status %d: %s\n", what, (int)st, hlr_last_error());
        abort();
    }
}

static void use(hlr_model *m)
{
    int nd, od;
    int64_t in[HLR_MAX_DIMS + 1], out[HLR_MAX_DIMS + 1];
    in[0] = out[0] = 1;
    if (hlr_model_input_shape(m, &nd, in + 1) != HLR_OK || hlr_model_output_shape(m, &od, out + 1) != HLR_OK)
        abort();
    hlr_tensor *x = hlr_tensor_new(hlr__model_in_dtype(m), nd + 1, in); /* zeros: valid token ids too */
    hlr_tensor *y = hlr_tensor_new(HLR_F32, od + 1, out);
    if (!x || !y || hlr_model_forward(m, x, y, 0) != HLR_OK) {
        fprintf(stderr, "a loaded model does not predict: %s\n", hlr_last_error());
        abort();
    }
    hlr_tensor_free(x);
    hlr_tensor_free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        hlr_set_num_threads(1);
        once = 1;
    }
    if (size < 1)
        return 0;
    void *file = NULL;
    size_t len = size - 1;
    const void *bytes = data + 1;
    if (data[0] & 1) {
        if (hlr__file_wrap(data + 1, size - 1, 0, data[0] >> 1 & 3, &file, &len) != HLR_OK)
            return 0;
        bytes = file;
    }
    hlr_optimizer *o = NULL;
    hlr_model *m = hlr_model_load_buffer(bytes, len, &o);
    if (m)
        use(m);
    else
        check_status("hlr_model_load_buffer");
    hlr_optimizer_free(o);
    hlr_model_free(m);
    hlr_model_info *in = hlr_model_info_load_buffer(bytes, len);
    if (!in)
        check_status("hlr_model_info_load_buffer");
    hlr_model_info_free(in);
    hlr__free(file);
    return 0;
}
