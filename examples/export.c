/*
 * hlr-export -- write a saved model as an ONNX file, for ONNX Runtime and
 * the other runtimes that read the format.
 *
 *   hlr-export MODEL OUT.onnx
 *
 * The graph takes "input" (N, the model's input shape) and gives "logits";
 * the file's metadata carries the model's class names, temperature and
 * metadata (hlr_model_export_onnx()).  Every failure is one line on stderr:
 * exit 1 when the model cannot be read or exported, 2 for a usage mistake.
 */
#include "options.h"

#include <hlr/hlr.h>
#include <stdio.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hlr-export MODEL OUT.onnx\n"
               "  MODEL     a model file saved by libhlr (hlr-mnist, hlr-read, hlr_model_save, ...)\n"
               "  OUT.onnx  the ONNX file to write (opset %d): input \"input\" (N, ...), output \"logits\"\n",
            HLR_ONNX_OPSET);
}

int main(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    int rc = parse_options("hlr-export", argc, argv, 1, NULL, 0, pos, 2, &npos);
    if (rc > 0) {
        usage(stdout);
        return 0;
    }
    if (rc == 0 && npos != 2) {
        fprintf(stderr, "hlr-export: %s (see hlr-export --help)\n", npos ? "no OUT.onnx given" : "no MODEL given");
        rc = -1;
    }
    if (rc != 0)
        return 2;
    hlr_model *m = hlr_model_load(pos[0], NULL);
    if (!m) {
        fprintf(stderr, "hlr-export: %s\n", hlr_last_error());
        return 1;
    }
    if (hlr_model_export_onnx(m, pos[1], 0) != HLR_OK) {
        fprintf(stderr, "hlr-export: %s: %s\n", pos[0], hlr_last_error());
        hlr_model_free(m);
        return 1;
    }
    printf("%s: %d layers written to %s (ONNX opset %d)\n", pos[0], hlr_model_num_layers(m), pos[1], HLR_ONNX_OPSET);
    hlr_model_free(m);
    return 0;
}
