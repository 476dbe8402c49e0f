# libhlr -- build, test, install.  `make help` lists the targets.

# The version is defined once, in the header (HLR_VERSION_MAJOR, _MINOR, _PATCH).
version_part = $(shell sed -n 's/^\#define HLR_VERSION_$(1) \([0-9][0-9]*\)$$/\1/p' include/hlr/hlr.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

CC ?= cc
CXX ?= c++
OPENBLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
OPENBLAS_LIBS := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
# libpng reads the images of hlr_image_load() (and bin/hlr-mnist writes its PNG pictures with it).
PNG_CFLAGS := $(shell pkg-config --cflags libpng 2>/dev/null)
PNG_LIBS := $(or $(shell pkg-config --libs libpng 2>/dev/null),-lpng)
# bin/hlr-serve: HTTP through libmicrohttpd, JSON through cJSON.
SERVE_CFLAGS := $(shell pkg-config --cflags libmicrohttpd libcjson 2>/dev/null)
SERVE_LIBS := $(or $(shell pkg-config --libs libmicrohttpd libcjson 2>/dev/null),-lmicrohttpd -lcjson)
# ONNX export: the messages of the onnx.proto Debian's libonnx-dev installs, compiled by protoc-c
# (protobuf-c-compiler) at build time into $(BUILD)/onnx, and protobuf-c's runtime.
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
PROTOBUF_C_CFLAGS := $(shell pkg-config --cflags libprotobuf-c 2>/dev/null)
PROTOBUF_C_LIBS := $(or $(shell pkg-config --libs libprotobuf-c 2>/dev/null),-lprotobuf-c)
CHECK_LIBS := $(or $(shell pkg-config --libs check 2>/dev/null),-lcheck -lsubunit -lrt -lm -pthread)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wpedantic $(WERROR)
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(OPENBLAS_CFLAGS) $(PNG_CFLAGS)
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden
# The kernels' loops are written to vectorise: let the compiler do it at -O2
# too.  -fno-math-errno lets sqrtf become one instruction; it changes no value.
KERNEL_CFLAGS := -ftree-vectorize -fvect-cost-model=dynamic -fno-math-errno
LDLIBS := $(OPENBLAS_LIBS) $(PNG_LIBS) $(PROTOBUF_C_LIBS) -lz -lm -pthread

# BUILD names the object folder, so a sanitizer build can live beside the normal one.
BUILD ?= build
LIBOUT ?= lib
BINOUT ?= bin

LIB_SRC := $(wildcard src/*.c src/kernels/*.c src/layers/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/onnx/onnx.pb-c.o
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
EXAMPLES := $(BINOUT)/hlr-mnist $(BINOUT)/hlr-langid $(BINOUT)/hlr-inspect $(BINOUT)/hlr-predict $(BINOUT)/hlr-read $(BINOUT)/hlr-serve $(BINOUT)/hlr-export
SONAME := libhlr.so.$(VERSION_MAJOR)
SHARED := $(LIBOUT)/libhlr.so.$(VERSION)
STATIC := $(LIBOUT)/libhlr.a

# Data: MNIST lives here once `make data` has fetched it.
DATA_DIR ?= data/mnist

# Python: the tests run under Debian's interpreter (which has python3-numpy)
# when there is one, else the first python3 on PATH.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
# The C++ example (examples/cpp/), built by `make test`.
CPP_EXAMPLE := $(BINOUT)/hlr-classify-cpp

.PHONY: all lib examples test check sanitize valgrind demo data deps install uninstall clean help bench bench-deps \
    python-test cli-test docs-test fuzz tsan docs man docs-check
all: lib examples

lib: $(SHARED) $(LIBOUT)/$(SONAME) $(LIBOUT)/libhlr.so $(STATIC) $(LIBOUT)/hlr.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/src/kernels/%.o: src/kernels/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(KERNEL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/onnx/onnx.pb-c.c $(BUILD)/onnx/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/onnx
	protoc-c --c_out=$(BUILD)/onnx -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

# generated code: compiled as it is, without the project's extra warnings
$(BUILD)/onnx/onnx.pb-c.o: $(BUILD)/onnx/onnx.pb-c.c
	$(CC) -std=c11 $(CFLAGS) -fPIC -fvisibility=hidden $(PROTOBUF_C_CFLAGS) -c $< -o $@

$(BUILD)/src/onnx_%.o: src/onnx_%.c $(BUILD)/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(PROTOBUF_C_CFLAGS) -I$(BUILD)/onnx -MMD -MP -c $< -o $@

$(SHARED): $(LIB_OBJ) src/libhlr.map
	@mkdir -p $(LIBOUT)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libhlr.map $(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)

$(LIBOUT)/$(SONAME): $(SHARED)
	ln -sf libhlr.so.$(VERSION) $@

$(LIBOUT)/libhlr.so: $(LIBOUT)/$(SONAME)
	ln -sf $(SONAME) $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(LIBOUT)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# hlr.pc names the prefix it is installed under: `make install` writes it afresh
# for its own PREFIX (lib/hlr.pc, for the default one, may be older).
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
    -e 's|@VERSION@|$(VERSION)|g' -e 's|@PRIVATE_LIBS@|$(OPENBLAS_LIBS) $(PNG_LIBS) $(PROTOBUF_C_LIBS) -lz -lm|g'
$(LIBOUT)/hlr.pc: pkgconfig/hlr.pc.in Makefile
	@mkdir -p $(LIBOUT)
	$(PC_SED) $< > $@

# Example programs link the shared library and find it through their rpath
# (BINOUT and LIBOUT are always siblings: bin/ and lib/).
examples: $(EXAMPLES)

EXAMPLE_COMMON := $(BUILD)/examples/common.o $(BUILD)/examples/models.o $(BUILD)/examples/options.o \
                  $(BUILD)/examples/wordlang.o
$(BINOUT)/hlr-%: $(BUILD)/examples/%.o $(EXAMPLE_COMMON) $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/examples/$*.o $(EXAMPLE_COMMON) -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib' $(PNG_LIBS) -lz -lm -ldl

# hlr-read's words task draws words with FreeType (Debian's libfreetype-dev), and hands drawn by strokes from
# the Hershey fonts through libhersheyfont (libhersheyfont-dev; the fonts are hershey-fonts-data).
FREETYPE_CFLAGS := $(shell pkg-config --cflags freetype2 2>/dev/null)
FREETYPE_LIBS := $(or $(shell pkg-config --libs freetype2 2>/dev/null),-lfreetype) -lhersheyfont
$(BUILD)/examples/handwriting.o: examples/handwriting.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(FREETYPE_CFLAGS) -MMD -MP -c $< -o $@

# hlr-mnist: training and evaluation (mnist.c), its command line, the commands on saved files and the
# attention viewer, each a file of its own.
MNIST_OBJ := $(BUILD)/examples/mnist.o $(BUILD)/examples/mnist_options.o $(BUILD)/examples/mnist_saved.o \
             $(BUILD)/examples/attention.o
$(BINOUT)/hlr-mnist: $(MNIST_OBJ) $(EXAMPLE_COMMON) $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(MNIST_OBJ) $(EXAMPLE_COMMON) -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib' $(PNG_LIBS) -lz -lm -ldl

READ_OBJ := $(BUILD)/examples/read.o $(BUILD)/examples/words.o $(BUILD)/examples/handwriting.o
$(BINOUT)/hlr-read: $(READ_OBJ) $(EXAMPLE_COMMON) $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(READ_OBJ) $(EXAMPLE_COMMON) -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib' $(FREETYPE_LIBS) $(PNG_LIBS) -lz -lm -ldl

# hlr-serve carries its page (examples/serve/page.html, pulled in by .incbin) and links libmicrohttpd and cJSON.
$(BUILD)/examples/serve.o: examples/serve.c examples/serve/page.html
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(SERVE_CFLAGS) -MMD -MP -c $< -o $@

$(BINOUT)/hlr-serve: $(BUILD)/examples/serve.o $(EXAMPLE_COMMON) $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/examples/serve.o $(EXAMPLE_COMMON) -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib' $(SERVE_LIBS) $(PNG_LIBS) -lz -lm -ldl -pthread

# The test runner links the static library, so white-box tests may use internals.
$(BINOUT)/hlr-tests: $(TEST_OBJ) $(STATIC)
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -MMD -MP -c $< -o $@

# test_onnx.c reads the exported bytes back with the generated protobuf-c messages
$(BUILD)/tests/test_onnx.o: tests/test_onnx.c $(BUILD)/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PROTOBUF_C_CFLAGS) -Isrc -I$(BUILD)/onnx -MMD -MP -c $< -o $@

# The benchmark program lives in bench/ and shares the example models; it
# links the static library so that it can also time the internal GEMM path.
$(BINOUT)/hlr-bench: $(BUILD)/bench/bench.o $(BUILD)/examples/models.o $(STATIC)
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/bench/bench.o $(BUILD)/examples/models.o $(STATIC) $(LDLIBS)

# `make bench`: libhlr and PyTorch (Debian's python3-torch, `make bench-deps`)
# side by side, one process per model, same OpenBLAS settings for both.
BENCH_MODELS ?= mlp,cnn,lstm,gru,hybrid,crnn
# BENCH_FLAGS: --also-unset repeats both sides with OPENBLAS_CORETYPE/L2_SIZE
# unset and checks that libhlr's outputs agree; --scaling measures both sides
# with 1 thread too and reports the speed-up; --no-torch skips PyTorch.
# --rounds N (default 2) alternates the sides N times and keeps each one's best.
BENCH_FLAGS ?= --also-unset --scaling
# ISA=avx2 measures the AVX2 path on an AVX-512 machine: libhlr rebuilt in build/avx2 with its
# kernels' AVX-512 clones left out (HLR_ISA_AVX2), OpenBLAS's Haswell kernel, PyTorch's oneDNN at AVX2,
# and ONNX Runtime (bench-ort), which has no such switch, shown a CPU without AVX-512: its process
# gets bench/cpuid_avx2.c preloaded, which answers its CPUID instructions without the AVX-512 bits
# (Linux's CPUID faulting; where the machine lacks it, bench/ort.py says so and stops).
ISA ?= native
ifeq ($(ISA),avx2)
BENCH_BIN := build/avx2/bin/hlr-bench
BENCH_ORT_ENV := OPENBLAS_CORETYPE=Haswell
ORT_ISA_FLAGS := --ort-isa avx2 --cpuid-cap $(abspath $(BUILD)/cpuid_avx2.so)
ORT_ISA_DEPS := $(BUILD)/cpuid_avx2.so
else
BENCH_BIN := $(BINOUT)/hlr-bench
BENCH_ORT_ENV :=
ORT_ISA_FLAGS :=
ORT_ISA_DEPS :=
endif
.PHONY: bench-avx2-bin
bench-avx2-bin:
	@if [ "$(ISA)" = avx2 ]; then $(MAKE) --no-print-directory BUILD=build/avx2 LIBOUT=build/avx2/lib \
	    BINOUT=build/avx2/bin CFLAGS="$(CFLAGS) -DHLR_ISA_AVX2" build/avx2/bin/hlr-bench; fi
bench: deps bench-deps all $(BINOUT)/hlr-bench bench-avx2-bin
	bench/run.py --models $(BENCH_MODELS) --hlr-bench $(BENCH_BIN) --isa $(ISA) $(BENCH_FLAGS)
	@$(MAKE) --no-print-directory bench-ort
$(BUILD)/cpuid_avx2.so: bench/cpuid_avx2.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -fPIC -shared $< -o $@ -ldl

# `make bench-accuracy`: time to 99 % test accuracy on MNIST with --model cnn-bn, libhlr
# (hlr-mnist --target-accuracy) then PyTorch (bench/torch_time_to_accuracy.py), same recipe;
# seeds 0, 1, 2 and their mean; ACCURACY_FLAGS e.g. --seeds 0 --epochs 10 --target 99.0 --threads 2.
ACCURACY_FLAGS ?=
.PHONY: bench-accuracy
bench-accuracy: deps data bench-deps all
	/usr/bin/python3 bench/time_to_accuracy.py --hlr-mnist $(BINOUT)/hlr-mnist --data $(DATA_DIR) $(ACCURACY_FLAGS)

# `make bench-read`: bin/hlr-read train and its PyTorch twin (bench/torch_crnn.py: the same CRNN,
# recipe and strings, from `hlr-read generate`), one after the other; READ_FLAGS for both,
# e.g. READ_FLAGS="--seed 1 --threads 2".  About half an hour each on 2 cores.
READ_FLAGS ?=
.PHONY: bench-read
bench-read: deps data bench-deps all
	$(BINOUT)/hlr-read train $(READ_FLAGS)
	/usr/bin/python3 bench/torch_crnn.py --hlr-read $(BINOUT)/hlr-read $(READ_FLAGS)

# `make bench-ort`: libhlr against ONNX Runtime for inference (bench/ort.py) at batch 1, 16 and 256:
# onnxruntime-node from npm (its CPU library ships in the package: the install script, which
# fetches GPU add-ons, is skipped) running libhlr's own exports of the models (hlr-export);
# ORT_FLAGS=--export torch runs PyTorch's exports instead (bench/export_onnx.py, python3-torch).
ORT_FLAGS ?=
.PHONY: bench-ort
bench-ort: deps data all $(BINOUT)/hlr-bench bench-avx2-bin $(ORT_ISA_DEPS)
	@$(MAKE) --no-print-directory $(ORT_NODE)
	$(BENCH_ORT_ENV) HLR_DATA_DIR=$(abspath $(DATA_DIR)) bench/ort.py --onnx $(BUILD)/ort-models \
	    --node-path $(abspath $(BUILD)/node/node_modules) --hlr-bench $(abspath $(BENCH_BIN)) $(ORT_ISA_FLAGS) $(ORT_FLAGS)

# `make data-words`: the words task's two test sets as PNG files and labels.tsv (hlr-read generate
# --task words), as `hlr-read train --task words` draws them for the same WORDS_FLAGS (e.g. --seed 1).
# `make bench-words`: libhlr against Tesseract 5 on the held-out-font test words (bench/words.py),
# with WORDS_MODEL (trained first by `hlr-read train --task words $(WORDS_FLAGS)` when missing,
# 14 epochs, about 70 minutes on 2 threads).
WORDS_FLAGS ?=
WORDS_MODEL ?= $(BUILD)/words.hlr
# A words run of seconds, for the sanitizers and valgrind.
WORDS_TINY := --words 300 --train-words 32 --batch 16 --test-words 12 --epochs 1 --langid-epochs 1 --channels 4 \
    --hidden 16
.PHONY: data-words bench-words
data-words: deps all
	$(BINOUT)/hlr-read generate --task words --part test-held-out --out data/words/test-held-out $(WORDS_FLAGS)
	$(BINOUT)/hlr-read generate --task words --part test-training --out data/words/test-training $(WORDS_FLAGS)

bench-words: deps all
	@[ -f $(WORDS_MODEL) ] || $(BINOUT)/hlr-read train --task words --splits $(BUILD)/words-splits.txt \
	    --save $(WORDS_MODEL) $(WORDS_FLAGS)
	/usr/bin/python3 bench/words.py --model $(WORDS_MODEL) --bin $(BINOUT) --out $(BUILD)/bench-words $(BENCH_WORDS_FLAGS)

bench-deps:
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { \
	    if [ "$$(id -u)" -eq 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch; \
	    else echo "make bench needs python3-torch: sudo apt-get install python3-torch" >&2; exit 1; fi; }

deps:
	@scripts/install-deps.sh

data: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@scripts/fetch-fashion.sh

# `make test`: dependencies, data, the build, the packaging checks (exported
# symbols, an installed copy used by C and C++), then the Check suite, whose
# summary is the last line.
test: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory all $(BINOUT)/hlr-tests $(CPP_EXAMPLE) WERROR=-Werror
	@scripts/check-exports.sh $(SHARED)
	@$(PYTHON) scripts/check-modules.py $(BUILD) docs/design.md
	@scripts/check-install.sh
	@$(MAKE) --no-print-directory python-test
	@$(MAKE) --no-print-directory cli-test
	@$(MAKE) --no-print-directory docs-check
	@$(MAKE) --no-print-directory docs-test
	@$(MAKE) --no-print-directory serve-test
	@$(MAKE) --no-print-directory onnx-test
	@if [ -n "$(HAVE_MPI)" ]; then $(MAKE) --no-print-directory mpi-test; \
	    else echo "mpi-test: skipped, Open MPI is not installed (scripts/install-deps.sh installs it)"; fi
	HLR_DATA_DIR=$(DATA_DIR) $(BINOUT)/hlr-tests

check: test

# The Python package's tests (python/tests, unittest) against this build's
# library; they also run the C++ example to compare its predictions.
python-test: lib $(CPP_EXAMPLE)
	HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) \
	    HLR_CPP_EXAMPLE=$(abspath $(CPP_EXAMPLE)) $(PYTHON) -m unittest discover -s python/tests

# The documentation's code: README.md's and docs/*.md's C blocks and the
# header's overview example compiled (README's program run), docs/python.md's
# examples run with doctest, the figure README gives for `make demo` checked;
# the man pages rendered by man and their options compared with each
# program's --help; docs/tutorial.md's commands run in order.
docs-test: all man $(BINOUT)/hlr-bench
	HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) PYTHONPATH=$(abspath python) \
	    CC="$(CC)" $(PYTHON) tests/docs/check_snippets.py
	HLR_BIN=$(abspath $(BINOUT)) HLR_MAN_DIR=$(abspath $(BUILD)/man) $(PYTHON) tests/docs/check_man.py
	$(PYTHON) tests/docs/check_tutorial.py

# The example programs' commands, run as a user runs them (tests/cli/): on
# small synthetic idx files, so they need no MNIST.  test_errors.py: every
# failure is one line on stderr and a non-zero exit.
VIEWS_CHECK := $(BUILD)/tests/views_check
$(VIEWS_CHECK): tests/cli/views_check.c $(EXAMPLE_COMMON) $(LIBOUT)/libhlr.so
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(EXAMPLE_COMMON) -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,$(abspath $(LIBOUT)) $(PNG_LIBS) -lz -lm -ldl
cli-test: all $(VIEWS_CHECK)
	$(VIEWS_CHECK)
	HLR_MNIST=$(abspath $(BINOUT)/hlr-mnist) HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) PYTHONPATH=$(abspath python) \
	    $(PYTHON) tests/cli/test_mnist_attention.py
	HLR_BIN=$(abspath $(BINOUT)) HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) $(PYTHON) tests/cli/test_errors.py
	HLR_BIN=$(abspath $(BINOUT)) $(PYTHON) tests/cli/test_predict.py
	HLR_BIN=$(abspath $(BINOUT)) $(PYTHON) tests/cli/test_train_options.py
	HLR_BIN=$(abspath $(BINOUT)) $(PYTHON) tests/cli/test_read.py
	HLR_BIN=$(abspath $(BINOUT)) $(PYTHON) tests/cli/test_langid.py

# bin/hlr-serve: its HTTP API (every route and error status, batching, tokens, reload, drain) and its
# page in a real browser (Debian's chromium, driven by playwright-core from npm, installed into
# build/node; no browser is downloaded).  The screenshot lands in build/serve-browser.png.
PLAYWRIGHT := $(BUILD)/node/node_modules/playwright-core/package.json
$(PLAYWRIGHT):
	@mkdir -p $(BUILD)/node
	cd $(BUILD)/node && npm install --no-audit --no-fund --ignore-scripts --prefix . playwright-core@1.64.1 >/dev/null
.PHONY: serve-test load-test
serve-test: all $(PLAYWRIGHT)
	HLR_BIN=$(abspath $(BINOUT)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) $(PYTHON) tests/serve/test_serve.py
	HLR_BIN=$(abspath $(BINOUT)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) HLR_NODE_PATH=$(abspath $(BUILD)/node/node_modules) \
	    HLR_SCREENSHOT=$(abspath $(BUILD)/serve-browser.png) $(PYTHON) tests/serve/test_browser.py

# ONNX export checked by Debian's python3-onnx checker and by ONNX Runtime (npm onnxruntime-node, which
# ships its CPU library; installed into build/node with --ignore-scripts: its install script would fetch
# GPU add-ons from outside): tests/onnx/test_onnx.py.  Without node the ONNX Runtime half is skipped.
ORT_NODE := $(BUILD)/node/node_modules/onnxruntime-node/package.json
$(ORT_NODE):
	@mkdir -p $(BUILD)/node
	@if command -v npm >/dev/null 2>&1; then cd $(BUILD)/node && \
	    npm install --no-audit --no-fund --ignore-scripts --prefix . onnxruntime-node@1.30.0 >/dev/null; fi
.PHONY: onnx-test
onnx-test: all $(ORT_NODE)
	HLR_BIN=$(abspath $(BINOUT)) HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) \
	    HLR_NODE_PATH=$(abspath $(BUILD)/node/node_modules) $(PYTHON) tests/onnx/test_onnx.py
	HLR_LIBRARY=$(abspath $(LIBOUT)/$(SONAME)) $(PYTHON) tests/onnx/conformance.py

# `make load-test`: bin/hlr-serve under wrk (64 connections, LOAD_SECONDS), a burst of malformed requests,
# and batch-of-one in the same run (bench/load_test.py).  Not part of make test.
LOAD_SECONDS ?= 30
load-test: deps data all
	$(PYTHON) bench/load_test.py --bin $(abspath $(BINOUT)) --data $(abspath $(DATA_DIR)) \
	    --work $(abspath $(BUILD)/load-test) --seconds $(LOAD_SECONDS) $(LOAD_FLAGS)

# The C++ example: a C++17 program with its own small RAII wrapper (examples/cpp/).
$(CPP_EXAMPLE): examples/cpp/classify.cpp include/hlr/hlr.h $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CXX) -std=c++17 -Wall -Wextra -O2 -Iinclude $(LDFLAGS) -o $@ examples/cpp/classify.cpp -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib'

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its own build folder; the
# library also checks that every writer of weights inside it advances the weight generation (internal.h:
# forms kept from the weights are compared even where they need not be, and a change the generation
# missed stops the run).
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory BUILD=build/sanitize LIBOUT=build/sanitize/lib BINOUT=build/sanitize/bin \
	    CFLAGS="-O1 -g $(SAN_FLAGS) -DHLR_CHECK_WEIGHT_WRITES" LDFLAGS="$(SAN_FLAGS)" build/sanitize/bin/hlr-tests build/sanitize/bin/hlr-mnist \
	    build/sanitize/bin/hlr-serve build/sanitize/bin/hlr-read build/sanitize/bin/hlr-predict
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    HLR_DATA_DIR=$(DATA_DIR) build/sanitize/bin/hlr-tests
	ASAN_OPTIONS=detect_leaks=1 build/sanitize/bin/hlr-mnist train --epochs 1 --limit 2000 --test-limit 2000 --data $(DATA_DIR)
	@# the words task: FreeType's drawing, the distortions, the lexicon, evaluate and predict --lexicon on a photograph
	@mkdir -p build/sanitize/words
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read train \
	    --task words $(WORDS_TINY) --save build/sanitize/words/w.hlr --splits build/sanitize/words/splits.txt
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read evaluate \
	    build/sanitize/words/w.hlr --test-words 12 --splits build/sanitize/words/splits.txt > /dev/null
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read generate \
	    --task words --part test-held-out --out build/sanitize/words/pics --words 300 --test-words 4 > /dev/null
	@# the hands drawn by strokes (libhersheyfont's glyphs, the pen, the accents)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read generate \
	    --task words --part train --hands 1 --out build/sanitize/words/hands --words 300 --test-words 12 > /dev/null
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read predict \
	    --json --lexicon build/sanitize/words/w.hlr build/sanitize/words/pics/000000.png
	@# --views: each picture read three times, the readings' likeliest text and words
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read evaluate \
	    build/sanitize/words/w.hlr --test-words 12 --views 1.15,1.35 --splits build/sanitize/words/splits.txt > /dev/null
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/sanitize/bin/hlr-read predict \
	    --json --lexicon --views 1.15,1.35 build/sanitize/words/w.hlr build/sanitize/words/pics/000000.png \
	    build/sanitize/words/pics/000001.png
	@# hlr-serve's API tests against the sanitized programs: a leak or a fault changes the server's exit or stderr
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 HLR_BIN=$(abspath build/sanitize/bin) \
	    HLR_DATA_DIR=$(abspath $(DATA_DIR)) $(PYTHON) tests/serve/test_serve.py

# `make fuzz`: libFuzzer (clang) on the model-file reader, in its own build
# folder, for FUZZ_SECONDS; not part of `make test`.  The corpus starts from
# real model files and grows in build/fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
fuzz:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/fuzz LIBOUT=build/fuzz/lib BINOUT=build/fuzz/bin \
	    KERNEL_CFLAGS=-ftree-vectorize CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" build/fuzz/lib/libhlr.a
	@mkdir -p build/fuzz/bin build/fuzz/corpus
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -Iinclude -Isrc tests/fuzz/fuzz_load.c \
	    build/fuzz/lib/libhlr.a $(LDLIBS) -o build/fuzz/bin/hlr-fuzz-load
	clang -std=c11 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Iinclude -Isrc tests/fuzz/seeds.c \
	    build/fuzz/lib/libhlr.a $(LDLIBS) -o build/fuzz/bin/hlr-fuzz-seeds
	build/fuzz/bin/hlr-fuzz-seeds build/fuzz/corpus
	build/fuzz/bin/hlr-fuzz-load -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 build/fuzz/corpus

# `make fuzz-onnx`: libFuzzer on the ONNX importer (hlr_model_import_onnx_buffer) for FUZZ_SECONDS, the
# corpus in build/fuzz/onnx-corpus starting from libhlr's own exports and PyTorch's (tests/fixtures/onnx);
# not part of `make test`.
.PHONY: fuzz-onnx
fuzz-onnx:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/fuzz LIBOUT=build/fuzz/lib BINOUT=build/fuzz/bin \
	    KERNEL_CFLAGS=-ftree-vectorize CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" build/fuzz/lib/libhlr.a
	@mkdir -p build/fuzz/bin build/fuzz/onnx-corpus
	clang -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -Iinclude -Isrc tests/fuzz/fuzz_onnx.c \
	    build/fuzz/lib/libhlr.a $(LDLIBS) -o build/fuzz/bin/hlr-fuzz-onnx
	clang -std=c11 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Iinclude -Isrc tests/fuzz/onnx_seeds.c \
	    build/fuzz/lib/libhlr.a $(LDLIBS) -o build/fuzz/bin/hlr-fuzz-onnx-seeds
	build/fuzz/bin/hlr-fuzz-onnx-seeds build/fuzz/onnx-corpus
	cp tests/fixtures/onnx/*.onnx build/fuzz/onnx-corpus/
	build/fuzz/bin/hlr-fuzz-onnx -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 build/fuzz/onnx-corpus

# `make tsan`: the Check cases named "threads" under ThreadSanitizer (clang):
# one loaded model served from four threads through hlr_model_clone_shared,
# and the thread pool at 6 threads (more than the cores) with jobs of fewer
# parts than threads and pauses that let the workers sleep.
tsan:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/tsan LIBOUT=build/tsan/lib BINOUT=build/tsan/bin \
	    KERNEL_CFLAGS=-ftree-vectorize CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS=-fsanitize=thread \
	    build/tsan/bin/hlr-tests
	TSAN_OPTIONS=halt_on_error=1 CK_FORK=no CK_RUN_CASE=threads build/tsan/bin/hlr-tests

# A short training run of the example under valgrind: no leak, no invalid access (scripts/valgrind.supp:
# an error inside a Debian library, not libhlr).
VALGRIND = HLR_NUM_THREADS=1 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
    --suppressions=scripts/valgrind.supp
valgrind: all
	@scripts/fetch-mnist.sh $(DATA_DIR)
	$(VALGRIND) $(BINOUT)/hlr-mnist train --epochs 1 --limit 1000 --test-limit 1000 --data $(DATA_DIR)
	@mkdir -p $(BUILD)/valgrind
	$(VALGRIND) $(BINOUT)/hlr-read train --epochs 1 --train-strings 64 --test-strings 32 --max-len 3 --data $(DATA_DIR) \
	    --save $(BUILD)/valgrind/read.hlr
	$(VALGRIND) $(BINOUT)/hlr-read generate --part test --test-strings 8 --data $(DATA_DIR) > /dev/null
	@# the words task on two languages' short lists (the Polish list alone has 4 million lines)
	$(VALGRIND) $(BINOUT)/hlr-read train --task words --langs en,es $(WORDS_TINY) --save $(BUILD)/valgrind/words.hlr \
	    --splits $(BUILD)/valgrind/splits.txt
	$(VALGRIND) $(BINOUT)/hlr-read generate --task words --langs en,es --part test-held-out --out $(BUILD)/valgrind/words \
	    --words 300 --test-words 2 > /dev/null
	$(VALGRIND) $(BINOUT)/hlr-read generate --task words --langs en,pl --part train --hands 1 \
	    --out $(BUILD)/valgrind/hands --words 300 --test-words 6 > /dev/null
	$(VALGRIND) $(BINOUT)/hlr-read predict --lexicon $(BUILD)/valgrind/words.hlr $(BUILD)/valgrind/words/000000.png
	$(VALGRIND) $(BINOUT)/hlr-read predict --lexicon --views 1.15,1.35 $(BUILD)/valgrind/words.hlr \
	    $(BUILD)/valgrind/words/000000.png $(BUILD)/valgrind/words/000001.png
	@# hlr-serve under valgrind, answering the API tests' requests (HLR_SERVE_WRAPPER runs the server in it)
	HLR_SERVE_WRAPPER="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 -q" \
	    HLR_NUM_THREADS=1 HLR_BIN=$(abspath $(BINOUT)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) \
	    $(PYTHON) tests/serve/test_serve.py Api Lifecycle.test_sigterm_drains_in_flight_requests_and_exits_0

# `make mpi`: libhlr-mpi, the companion library that gives data-parallel
# training (hlr_fit_options.distributed) its collectives from Open MPI, and the
# test program tests/mpi/mpi_fit.c.  libhlr itself never links MPI; bin/hlr-mnist
# loads libhlr-mpi at run time for --distributed.  `make test` runs mpi-test
# when Open MPI is installed (scripts/install-deps.sh installs it).
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null)
HAVE_MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && command -v mpirun >/dev/null 2>&1 && echo 1)
MPI_SHARED := $(LIBOUT)/libhlr-mpi.so.$(VERSION)
MPI_TEST := $(BUILD)/mpi/mpi_fit
.PHONY: mpi mpi-test bench-mpi
mpi: $(MPI_SHARED) $(LIBOUT)/libhlr-mpi.so.$(VERSION_MAJOR) $(LIBOUT)/libhlr-mpi.so $(MPI_TEST)
$(MPI_SHARED): src/mpi/hlr_mpi.c include/hlr/hlr_mpi.h include/hlr/hlr.h $(SHARED) $(LIBOUT)/libhlr.so
	@test -n "$(HAVE_MPI)" || { echo "make mpi needs Open MPI: apt-get install libopenmpi-dev openmpi-bin" >&2; exit 1; }
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(MPI_CFLAGS) -fPIC -shared \
	    -Wl,-soname,libhlr-mpi.so.$(VERSION_MAJOR) $(LDFLAGS) -o $@ $< -L$(LIBOUT) -lhlr $(MPI_LIBS) -Wl,-rpath,'$$ORIGIN'
$(LIBOUT)/libhlr-mpi.so.$(VERSION_MAJOR): $(MPI_SHARED)
	ln -sf libhlr-mpi.so.$(VERSION) $@
$(LIBOUT)/libhlr-mpi.so: $(LIBOUT)/libhlr-mpi.so.$(VERSION_MAJOR)
	ln -sf libhlr-mpi.so.$(VERSION_MAJOR) $@
$(MPI_TEST): tests/mpi/mpi_fit.c $(LIBOUT)/libhlr-mpi.so
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(LDFLAGS) -o $@ $< -L$(LIBOUT) -lhlr-mpi -lhlr -lm \
	    -Wl,-rpath,'$$ORIGIN/$(shell realpath -m --relative-to=$(dir $(MPI_TEST)) $(LIBOUT))'

# `make bench-mpi`: mpirun -np 2 with one thread each against one process with two threads, the
# same global batch (bench/mpi.py; MPI_BENCH_FLAGS e.g. --models cnn,lstm --rounds 2).
MPI_BENCH_FLAGS ?=
bench-mpi: deps data all mpi
	bench/mpi.py $(MPI_BENCH_FLAGS)

mpi-test: all mpi
	HLR_BIN=$(abspath $(BINOUT)) HLR_MPI_FIT=$(abspath $(MPI_TEST)) HLR_DATA_DIR=$(abspath $(DATA_DIR)) \
	    $(PYTHON) tests/mpi/test_mpi.py

# Documentation: the API reference rendered by Doxygen from
# include/hlr/hlr.h (docs/Doxyfile; any warning -- an undocumented function,
# parameter or member -- fails), man pages from docs/man/*.scd by scdoc, and
# the README's pictures from real runs (scripts/make-pictures.sh).
DOCS_OUT ?= $(BUILD)/docs
MAN_SRC := $(wildcard docs/man/*.scd)
MAN_PAGES := $(MAN_SRC:docs/man/%.scd=$(BUILD)/man/%)
man: $(MAN_PAGES)
# The page's date is its source's last commit (SOURCE_DATE_EPOCH), so a rebuild
# gives the same page; outside a git clone, today's.
$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct -- $< 2>/dev/null | grep . || date +%s) scdoc < $< > $@.tmp \
	    || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

# The reference alone, fast (well under a second): `make test` runs it.  Besides
# Doxygen's warnings, tests/docs/check_reference.py wants Thread-safety in every
# function's block, and Errors and Ownership where they apply.
docs-check: deps
	@mkdir -p $(DOCS_OUT)
	@HLR_VERSION=$(VERSION) HLR_DOCS_OUT=$(DOCS_OUT) doxygen docs/Doxyfile || \
	    { cat $(DOCS_OUT)/warnings.log >&2; echo "make docs: Doxygen warnings above (docs/Doxyfile)" >&2; exit 1; }
	@$(PYTHON) tests/docs/check_reference.py
	@echo "docs: API reference in $(DOCS_OUT)/html/index.html, no Doxygen warning"

docs: docs-check man all
	@scripts/fetch-mnist.sh $(DATA_DIR)
	HLR_BIN=$(BINOUT) HLR_DATA_DIR=$(DATA_DIR) HLR_PICTURES_WORK=$(BUILD)/pictures scripts/make-pictures.sh

# Train, save, reload and evaluate (the same accuracy line), and show the file.
DEMO_MODEL ?= $(BUILD)/demo/mnist-mlp.hlr
demo: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory all
	@mkdir -p $(dir $(DEMO_MODEL))
	$(BINOUT)/hlr-mnist train --model mlp --data $(DATA_DIR) --save $(DEMO_MODEL)
	$(BINOUT)/hlr-mnist eval $(DEMO_MODEL) --data $(DATA_DIR)
	@ls -l $(DEMO_MODEL)
	$(BINOUT)/hlr-inspect $(DEMO_MODEL)
	$(BINOUT)/hlr-mnist train --model cnn-bn --epochs 1 --limit 12000 --test-limit 2000 --data $(DATA_DIR)

# The library, its header and pkg-config file, the programs and their man pages.
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# Pages of the installed programs (not hlr-bench's: the benchmark stays in the tree) and of the library.
INSTALL_MAN1 := $(addprefix $(BUILD)/man/,$(addsuffix .1,$(notdir $(EXAMPLES))))
INSTALL_MAN3 := $(filter %.3,$(MAN_PAGES))
install: lib examples $(INSTALL_MAN1) $(INSTALL_MAN3)
	install -d $(DESTDIR)$(INCLUDEDIR)/hlr $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/hlr/*.h $(DESTDIR)$(INCLUDEDIR)/hlr/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libhlr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libhlr.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	$(PC_SED) pkgconfig/hlr.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/hlr.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/hlr.pc
	install -m 755 $(EXAMPLES) $(DESTDIR)$(BINDIR)/
	install -m 644 $(INSTALL_MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(INSTALL_MAN3) $(DESTDIR)$(MANDIR)/man3/
	@if [ -n "$(HAVE_MPI)" ]; then $(MAKE) --no-print-directory install-mpi; fi

# libhlr-mpi and its header, where Open MPI is installed (`make install` calls it then).
.PHONY: install-mpi
install-mpi: mpi
	install -d $(DESTDIR)$(INCLUDEDIR)/hlr $(DESTDIR)$(LIBDIR)
	install -m 644 include/hlr/hlr_mpi.h $(DESTDIR)$(INCLUDEDIR)/hlr/
	install -m 755 $(MPI_SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libhlr-mpi.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libhlr-mpi.so.$(VERSION_MAJOR)
	ln -sf libhlr-mpi.so.$(VERSION_MAJOR) $(DESTDIR)$(LIBDIR)/libhlr-mpi.so

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libhlr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libhlr.so \
	    $(DESTDIR)$(LIBDIR)/libhlr.a $(DESTDIR)$(LIBDIR)/pkgconfig/hlr.pc
	rm -f $(DESTDIR)$(LIBDIR)/libhlr-mpi.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libhlr-mpi.so.$(VERSION_MAJOR) \
	    $(DESTDIR)$(LIBDIR)/libhlr-mpi.so
	rm -rf $(DESTDIR)$(INCLUDEDIR)/hlr
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(EXAMPLES))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(INSTALL_MAN1))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(INSTALL_MAN3)))

clean:
	rm -rf build lib bin

help:
	@echo "make            build lib/libhlr.so, lib/libhlr.a and bin/ examples"
	@echo "make demo       install missing packages, fetch MNIST, build, train the MLP"
	@echo "make test       build and run every test (Check suite, exports, install, Python, C++ example)"
	@echo "make python-test  only the Python package's tests (PYTHON=$(PYTHON))"
	@echo "make cli-test   the example programs' commands and failures on synthetic data (tests/cli)"
	@echo "make docs-test  the documentation's code: C blocks compiled, Python examples run, the demo figure,"
	@echo "                man pages against --help, the tutorial's commands run"
	@echo "make docs       the API reference (Doxygen, $(DOCS_OUT)/html), man pages ($(BUILD)/man), README's pictures"
	@echo "make docs-check the API reference alone: fails on any Doxygen warning (part of make test)"
	@echo "make sanitize   the test suite under ASan + UBSan"
	@echo "make valgrind   a short bin/hlr-mnist run under valgrind"
	@echo "make fuzz       libFuzzer (clang) on the model-file reader for FUZZ_SECONDS=$(FUZZ_SECONDS)"
	@echo "make tsan       the Check cases named threads under ThreadSanitizer (clang)"
	@echo "make data       fetch MNIST into $(DATA_DIR) and install Fashion-MNIST (Debian package)"
	@echo "make bench      libhlr against PyTorch, model by model (BENCH_MODELS=$(BENCH_MODELS))"
	@echo "make bench-accuracy  time to 99% test accuracy with cnn-bn, libhlr then PyTorch (ACCURACY_FLAGS=)"
	@echo "make bench-ort  inference against ONNX Runtime at batch 1, 16 and 256 (ORT_FLAGS=, ISA=avx2)"
	@echo "make bench-words  handwritten words: libhlr against Tesseract 5 on held-out fonts (WORDS_MODEL=)"
	@echo "make data-words  the words task's test pictures into data/words (WORDS_FLAGS=)"
	@echo "make mpi        libhlr-mpi (data-parallel training over Open MPI) and its test program"
	@echo "make mpi-test   mpirun -np 2 and 4: ranks bit-identical, one process matched (part of make test)"
	@echo "make bench-mpi  mpirun -np 2 x 1 thread against 1 process x 2 threads (MPI_BENCH_FLAGS=)"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=  (make uninstall removes it)"

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(wildcard $(BUILD)/examples/*.d)
