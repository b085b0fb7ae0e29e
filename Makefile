# Thin wrapper around CMake.  The real build is CMakeLists.txt.
#
#   make                       configure + build (RelWithDebInfo: -O2 -g) in build/
#   make demo [ARGS=...]       build and run examples/demo
#   make test                  build and run the test suite (ctest)
#   make bench                 build and run every benchmark
#   make docs                  API reference (build/docs/html) and man pages (build/docs/man)
#   make install PREFIX=/usr/local
#   make clean                 remove build/
#
# Variables: BUILD (build dir), BUILD_TYPE, PREFIX, JOBS, CMAKE_ARGS (extra -D...).
# `make demo` / `make test` first check for missing tools (scripts/deps.sh).

BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
PREFIX     ?= /usr/local
JOBS       ?= 2
CMAKE      ?= cmake
CTEST      ?= ctest
CMAKE_ARGS ?=
ARGS       ?=

.PHONY: all build configure deps demo test bench docs install clean

all: build

deps:
	@sh scripts/deps.sh

# Configuring again is cheap and applies BUILD_TYPE / CMAKE_ARGS changes.
configure:
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	$(CMAKE) --build $(BUILD) -j $(JOBS)

demo: deps configure
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target example_demo
	$(abspath $(BUILD))/examples/demo $(ARGS)

test: deps build
	cd $(BUILD) && $(CTEST) --output-on-failure -j $(JOBS)

bench: build
	$(CMAKE) --build $(BUILD) --target bench

docs: configure
	$(CMAKE) --build $(BUILD) --target docs
	@echo "API reference: $(abspath $(BUILD))/docs/html/index.html"

install: configure
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target tide tide_static docs
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
