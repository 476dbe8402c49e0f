/* Built by scripts/check-install.sh against an installed libhlr. */
#include <hlr/hlr.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    if (strcmp(hlr_version(), HLR_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", HLR_VERSION_STRING, hlr_version());
        return 1;
    }
    hlr_model *m = hlr_model_new(1);
    hlr_model_add(m, hlr_dense(4, 3, 1));
    hlr_model_add(m, hlr_relu());
    if (hlr_model_build(m, 1, (int64_t[]){4}) != HLR_OK) {
        fprintf(stderr, "%s\n", hlr_last_error());
        return 1;
    }
    float xv[8] = {1, 2, 3, 4, -1, -2, -3, -4};
    hlr_tensor *x = hlr_tensor_wrap(HLR_F32, 2, (int64_t[]){2, 4}, xv);
    int32_t cls[2];
    hlr_status st = hlr_model_predict(m, x, cls, NULL);
    printf("C program: libhlr %s, %lld parameters, classes %d %d\n", hlr_version(),
           (long long)hlr_model_param_count(m), cls[0], cls[1]);
    hlr_tensor_free(x);
    hlr_model_free(m);
    return st == HLR_OK ? 0 : 1;
}
