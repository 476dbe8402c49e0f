/*
 * fuzz_onnx.c -- libFuzzer harness for the ONNX importer (`make fuzz-onnx`).
 *
 * Every input must import to a model that predicts, or fail with a status
 * that names a problem in the file (HLR_EFORMAT, HLR_EUNSUPPORTED, or a
 * layer's own HLR_EINVAL / HLR_ESHAPE for values the importer passed on);
 * anything else (a crash, a leak, a sanitizer report, an out-of-memory) is
 * a finding.  The corpus starts from libhlr's own exports (onnx_seeds.c).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hlr_model *m = hlr_model_import_onnx_buffer(data, size);
    if (!m) {
        hlr_status st = hlr_last_status();
        if (size && st != HLR_EFORMAT && st != HLR_EUNSUPPORTED && st != HLR_EINVAL && st != HLR_ESHAPE) {
            fprintf(stderr, "import failed with status %d: %s\n", (int)st, hlr_last_error());
            abort();
        }
        return 0;
    }
    int nd, od;
    int64_t in[HLR_MAX_DIMS + 1] = {1}, out[HLR_MAX_DIMS + 1] = {1};
    if (hlr_model_input_shape(m, &nd, in + 1) != HLR_OK || hlr_model_output_shape(m, &od, out + 1) != HLR_OK)
        abort();
    int64_t n = 1;
    for (int i = 1; i <= nd; i++)
        n *= in[i];
    if (n <= 1 << 20) { /* a model of huge declared input is imported, not run */
        hlr_tensor *x = hlr_tensor_new(hlr__model_in_dtype(m), nd + 1, in); /* zeros: valid token ids too */
        hlr_tensor *y = hlr_tensor_new(HLR_F32, od + 1, out);
        if (x && y && hlr_model_forward(m, x, y, 0) != HLR_OK) {
            fprintf(stderr, "an imported model does not predict: %s\n", hlr_last_error());
            abort();
        }
        hlr_tensor_free(x);
        hlr_tensor_free(y);
    }
    hlr_model_free(m);
    return 0;
}
