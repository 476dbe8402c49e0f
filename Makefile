# libhlr -- build, test, install.  `make help` lists the targets.

VERSION_MAJOR := 0
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

CC ?= cc
CXX ?= c++
OPENBLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
OPENBLAS_LIBS := $(or $(shell pkg-config --libs openblas 2>/dev/null),-lopenblas)
CHECK_LIBS := $(or $(shell pkg-config --libs check 2>/dev/null),-lcheck -lsubunit -lrt -lm -pthread)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude $(OPENBLAS_CFLAGS)
LIB_CFLAGS := $(ALL_CFLAGS) -fPIC -fvisibility=hidden
# The kernels' loops are written to vectorise: let the compiler do it at -O2
# too.  -fno-math-errno lets sqrtf become one instruction; it changes no value.
KERNEL_CFLAGS := -ftree-vectorize -fvect-cost-model=dynamic -fno-math-errno
LDLIBS := $(OPENBLAS_LIBS) -lz -lm -pthread

# BUILD names the object folder, so a sanitizer build can live beside the normal one.
BUILD ?= build
LIBOUT ?= lib
BINOUT ?= bin

LIB_SRC := $(wildcard src/*.c src/kernels/*.c src/layers/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
EXAMPLES := $(BINOUT)/hlr-mnist
SONAME := libhlr.so.$(VERSION_MAJOR)
SHARED := $(LIBOUT)/libhlr.so.$(VERSION)
STATIC := $(LIBOUT)/libhlr.a

# Data: MNIST lives here once `make data` has fetched it.
DATA_DIR ?= data/mnist

.PHONY: all lib examples test check sanitize valgrind demo data deps install uninstall clean help bench
all: lib examples

lib: $(SHARED) $(LIBOUT)/$(SONAME) $(LIBOUT)/libhlr.so $(STATIC) $(LIBOUT)/hlr.pc

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/src/kernels/%.o: src/kernels/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(KERNEL_CFLAGS) -MMD -MP -c $< -o $@

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

$(LIBOUT)/hlr.pc: pkgconfig/hlr.pc.in Makefile
	@mkdir -p $(LIBOUT)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@PRIVATE_LIBS@|$(OPENBLAS_LIBS) -lz -lm|g' $< > $@

# Example programs link the shared library and find it through their rpath
# (BINOUT and LIBOUT are always siblings: bin/ and lib/).
examples: $(EXAMPLES)

$(BINOUT)/hlr-%: $(BUILD)/examples/%.o $(BUILD)/examples/common.o $(SHARED) $(LIBOUT)/libhlr.so
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/examples/$*.o $(BUILD)/examples/common.o -L$(LIBOUT) -lhlr \
	    -Wl,-rpath,'$$ORIGIN/../lib' -lm

# The test runner links the static library, so white-box tests may use internals.
$(BINOUT)/hlr-tests: $(TEST_OBJ) $(STATIC)
	@mkdir -p $(BINOUT)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(STATIC) $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -MMD -MP -c $< -o $@

deps:
	@scripts/install-deps.sh

data: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)

# `make test`: dependencies, data, the build, the packaging checks (exported
# symbols, an installed copy used by C and C++), then the Check suite, whose
# summary is the last line.
test: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory all $(BINOUT)/hlr-tests
	@scripts/check-exports.sh $(SHARED)
	@scripts/check-install.sh
	HLR_DATA_DIR=$(DATA_DIR) $(BINOUT)/hlr-tests

check: test

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its own build folder.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
sanitize: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory BUILD=build/sanitize LIBOUT=build/sanitize/lib BINOUT=build/sanitize/bin \
	    CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" build/sanitize/bin/hlr-tests build/sanitize/bin/hlr-mnist
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    HLR_DATA_DIR=$(DATA_DIR) build/sanitize/bin/hlr-tests
	ASAN_OPTIONS=detect_leaks=1 build/sanitize/bin/hlr-mnist train --epochs 1 --limit 2000 --test-limit 2000 --data $(DATA_DIR)

# A short training run of the example under valgrind: no leak, no invalid access.
valgrind: all
	@scripts/fetch-mnist.sh $(DATA_DIR)
	HLR_NUM_THREADS=1 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
	    $(BINOUT)/hlr-mnist train --epochs 1 --limit 1000 --test-limit 1000 --data $(DATA_DIR)

demo: deps
	@scripts/fetch-mnist.sh $(DATA_DIR)
	@$(MAKE) --no-print-directory all
	$(BINOUT)/hlr-mnist train --model mlp --data $(DATA_DIR)

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR)/hlr $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/hlr/*.h $(DESTDIR)$(INCLUDEDIR)/hlr/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libhlr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libhlr.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(LIBOUT)/hlr.pc $(DESTDIR)$(LIBDIR)/pkgconfig/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libhlr.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libhlr.so \
	    $(DESTDIR)$(LIBDIR)/libhlr.a $(DESTDIR)$(LIBDIR)/pkgconfig/hlr.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/hlr

clean:
	rm -rf build lib bin

help:
	@echo "make            build lib/libhlr.so, lib/libhlr.a and bin/ examples"
	@echo "make demo       install missing packages, fetch MNIST, build, train the MLP"
	@echo "make test       build and run every test (Check suite, exports, install)"
	@echo "make sanitize   the test suite under ASan + UBSan"
	@echo "make valgrind   a short bin/hlr-mnist run under valgrind"
	@echo "make data       fetch MNIST into $(DATA_DIR)"
	@echo "make install    PREFIX=$(PREFIX) DESTDIR=  (make uninstall removes it)"

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(wildcard $(BUILD)/examples/*.d)
