// classify -- load a saved libhlr model and classify the images of an idx file.
//
//   hlr-classify-cpp MODEL IMAGES LABELS [--limit N] [--batch B] [--show K] [--all] [--probs]
//
// MODEL is a file written by hlr_model_save() (python/examples/mnist_cnn.py
// writes one); IMAGES and LABELS are an idx pair, raw or gzipped, such as
// data/mnist/t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.
// Prints the first K predictions (--all: every one; --probs: with all the
// probabilities), then `accuracy: NN.NN% (N images)`.
//
// libhlr is a C library; the few lines of RAII below, written for this
// example and not part of the library, are all C++ needs to use it safely:
// every handle is freed exactly once, and every failure becomes an exception
// carrying the library's own message.

#include <hlr/hlr.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hlrpp {

// A failed libhlr call: the status code and hlr_last_error()'s message.
class error : public std::runtime_error {
  public:
    error(hlr_status code, const std::string &what) : std::runtime_error(what), code_(code) {}
    hlr_status code() const { return code_; }

  private:
    hlr_status code_;
};

[[noreturn]] inline void fail(const char *call, hlr_status code) {
    throw error(code, std::string(call) + ": " + hlr_last_error() + " [" + hlr_strerror(code) + "]");
}

inline void check(const char *call, hlr_status st) {
    if (st != HLR_OK)
        fail(call, st);
}

// Owns one handle and frees it with Free, once; movable, not copyable.
template <typename T, void (*Free)(T *)> class handle {
  public:
    handle() = default;
    explicit handle(T *p, const char *call) : p_(p) {
        if (!p_)
            fail(call, hlr_last_status());
    }
    handle(handle &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    handle &operator=(handle &&o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    ~handle() { reset(); }

    void reset() {
        if (p_)
            Free(p_);
        p_ = nullptr;
    }
    T *get() const { return p_; }

  private:
    T *p_ = nullptr;
};

// A float32 tensor over memory the caller owns (no copy).
class tensor_view {
  public:
    tensor_view(float *data, const std::vector<int64_t> &shape)
        : h_(hlr_tensor_wrap(HLR_F32, static_cast<int>(shape.size()), shape.data(), data), "hlr_tensor_wrap") {}
    hlr_tensor *get() const { return h_.get(); }

  private:
    handle<hlr_tensor, hlr_tensor_free> h_;
};

class dataset {
  public:
    static dataset load_idx(const std::string &images, const std::string &labels) {
        return dataset(hlr_dataset_load_idx(images.c_str(), labels.c_str()));
    }
    int64_t size() const { return hlr_dataset_size(h_.get()); }
    std::vector<int64_t> sample_shape() const {
        std::vector<int64_t> s(static_cast<size_t>(hlr_dataset_sample_ndim(h_.get())));
        for (size_t i = 0; i < s.size(); i++)
            s[i] = hlr_dataset_sample_dim(h_.get(), static_cast<int>(i));
        return s;
    }
    // Borrowed: valid while this data set lives.
    const float *inputs() const { return hlr_dataset_inputs(h_.get()); }
    const int32_t *labels() const { return hlr_dataset_labels(h_.get()); }

  private:
    explicit dataset(hlr_dataset *d) : h_(d, "hlr_dataset_load_idx") {}
    handle<hlr_dataset, hlr_dataset_free> h_;
};

class model {
  public:
    static model load(const std::string &path) { return model(hlr_model_load(path.c_str(), nullptr)); }

    int num_layers() const { return hlr_model_num_layers(h_.get()); }
    int64_t param_count() const { return hlr_model_param_count(h_.get()); }
    int classes() const {
        int ndim = 0;
        int64_t shape[HLR_MAX_DIMS];
        check("hlr_model_output_shape", hlr_model_output_shape(h_.get(), &ndim, shape));
        if (ndim != 1)
            throw error(HLR_ESHAPE, "the model does not output one score per class");
        return static_cast<int>(shape[0]);
    }

    // Classify n samples of sample_shape at x: the classes, and the
    // probabilities (n x classes) into probs.
    std::vector<int32_t> predict(const float *x, int64_t n, const std::vector<int64_t> &sample_shape,
                                 std::vector<float> &probs) const {
        std::vector<int64_t> xs{n};
        xs.insert(xs.end(), sample_shape.begin(), sample_shape.end());
        const int64_t c = classes();
        probs.assign(static_cast<size_t>(n * c), 0.0f);
        std::vector<int32_t> out(static_cast<size_t>(n));
        // hlr_model_predict only reads x; hlr_tensor_wrap takes a non-const pointer for both uses.
        tensor_view xt(const_cast<float *>(x), xs);
        tensor_view pt(probs.data(), {n, c});
        check("hlr_model_predict", hlr_model_predict(h_.get(), xt.get(), out.data(), pt.get()));
        return out;
    }

  private:
    explicit model(hlr_model *m) : h_(m, "hlr_model_load") {}
    handle<hlr_model, hlr_model_free> h_;
};

} // namespace hlrpp

namespace {

struct options {
    const char *model = nullptr, *images = nullptr, *labels = nullptr;
    long limit = 0, batch = 256, show = 10;
    bool all = false, probs = false;
};

void usage(FILE *f) {
    std::fprintf(f, "usage: hlr-classify-cpp MODEL IMAGES LABELS [--limit N] [--batch B] [--show K] [--all] "
                    "[--probs]\n");
}

bool parse(int argc, char **argv, options &o) {
    std::vector<const char *> pos;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto number = [&](long &v) {
            if (i + 1 >= argc)
                return false;
            char *end = nullptr;
            v = std::strtol(argv[++i], &end, 10);
            return *end == '\0' && v >= 0;
        };
        if (a == "--limit" || a == "--batch" || a == "--show") {
            long &v = a == "--limit" ? o.limit : a == "--batch" ? o.batch : o.show;
            if (!number(v)) {
                std::fprintf(stderr, "hlr-classify-cpp: %s needs a number\n", a.c_str());
                return false;
            }
        } else if (a == "--all") {
            o.all = true;
        } else if (a == "--probs") {
            o.probs = true;
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "hlr-classify-cpp: unknown option %s\n", a.c_str());
            return false;
        } else {
            pos.push_back(argv[i]);
        }
    }
    if (pos.size() != 3 || o.batch < 1)
        return false;
    o.model = pos[0];
    o.images = pos[1];
    o.labels = pos[2];
    return true;
}

} // namespace

int main(int argc, char **argv) {
    options o;
    if (!parse(argc, argv, o)) {
        usage(stderr);
        return 2;
    }
    try {
        hlrpp::model m = hlrpp::model::load(o.model);
        hlrpp::dataset d = hlrpp::dataset::load_idx(o.images, o.labels);
        const std::vector<int64_t> shape = d.sample_shape();
        int64_t per = 1;
        for (int64_t s : shape)
            per *= s;
        const int64_t n = o.limit > 0 && o.limit < d.size() ? o.limit : d.size();
        const int c = m.classes();
        std::printf("model %s: %d layers, %lld parameters, %d classes (libhlr %s)\n", o.model, m.num_layers(),
                    static_cast<long long>(m.param_count()), c, hlr_version());

        int64_t correct = 0;
        std::vector<float> probs;
        for (int64_t start = 0; start < n; start += o.batch) {
            const int64_t b = n - start < o.batch ? n - start : o.batch;
            std::vector<int32_t> cls = m.predict(d.inputs() + start * per, b, shape, probs);
            for (int64_t i = 0; i < b; i++) {
                const int64_t k = start + i;
                const int32_t label = d.labels()[k];
                correct += cls[static_cast<size_t>(i)] == label;
                if (!o.all && k >= o.show)
                    continue;
                std::printf("image %lld: predicted %d, label %d", static_cast<long long>(k), cls[static_cast<size_t>(i)],
                            label);
                if (o.probs) {
                    std::printf(", probs");
                    for (int j = 0; j < c; j++)
                        std::printf(" %.9g", static_cast<double>(probs[static_cast<size_t>(i * c + j)]));
                } else {
                    std::printf(" (p = %.4f)", static_cast<double>(probs[static_cast<size_t>(i * c + cls[static_cast<size_t>(i)])]));
                }
                std::printf("\n");
            }
        }
        std::printf("accuracy: %.2f%% (%lld images)\n", 100.0 * static_cast<double>(correct) / static_cast<double>(n),
                    static_cast<long long>(n));
        return 0;
    } catch (const hlrpp::error &e) {
        std::fprintf(stderr, "hlr-classify-cpp: %s\n", e.what());
        return 1;
    }
}
