// Built by scripts/check-install.sh: the header works from C++ as it is.
#include <hlr/hlr.h>

#include <cstdio>
#include <memory>
#include <vector>

struct model_deleter {
    void operator()(hlr_model *m) const { hlr_model_free(m); }
};

int main()
{
    std::unique_ptr<hlr_model, model_deleter> m(hlr_model_new(2));
    hlr_model_add(m.get(), hlr_dense(3, 2, 1));
    const int64_t in[] = {3};
    if (hlr_model_build(m.get(), 1, in) != HLR_OK) {
        std::fprintf(stderr, "%s\n", hlr_last_error());
        return 1;
    }
    std::vector<float> x = {0.5f, -1.0f, 2.0f};
    const int64_t xs[] = {1, 3};
    hlr_tensor *t = hlr_tensor_wrap(HLR_F32, 2, xs, x.data());
    const int64_t ps[] = {1, 2};
    hlr_tensor *p = hlr_tensor_new(HLR_F32, 2, ps);
    hlr_status st = hlr_model_predict(m.get(), t, nullptr, p);
    std::printf("C++ program: libhlr %s, probabilities %.3f %.3f\n", hlr_version(), hlr_tensor_f32(p)[0],
                hlr_tensor_f32(p)[1]);
    hlr_tensor_free(t);
    hlr_tensor_free(p);
    return st == HLR_OK ? 0 : 1;
}
