# Thin wrapper around CMake. `make run` and `make test` work on a fresh Debian 12 machine:
# they install what is missing first.
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
ARGS ?=

BUILD_DEPS := g++ cmake make pkg-config ccache git dpkg-dev libboost1.81-dev libssl-dev prometheus-cpp-dev \
	libyaml-cpp-dev libspdlog-dev libsystemd-dev zlib1g-dev libjemalloc-dev
TEST_DEPS := libgtest-dev libgmock-dev openssl prometheus prometheus-alertmanager nginx nftables \
	iproute2 procps systemd curl

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps deps-build deps-test build run test test-asan check clean bench deb fuzz

all: build

define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps-build:
	$(call install_missing,$(BUILD_DEPS))

deps-test: deps-build
	$(call install_missing,$(TEST_DEPS))

deps: deps-test

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR)

build: deps-build $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The daemon in the foreground on its embedded default (see README).
run: build
	./$(BUILD_DIR)/daemon/portsentinel run --state-dir $(CURDIR)/$(BUILD_DIR)/state $(ARGS)

test: deps-test build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DPORTSENTINEL_SANITIZE=address,undefined
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600

# A .deb of the install rules (systemd unit, sysusers, tmpfiles, example config).
deb: build
	cd $(BUILD_DIR) && cpack -G DEB

BENCH_DEPS := prometheus-blackbox-exporter wrk nginx openssl iproute2 curl libwolfssl-dev \
	android-libboringssl-dev

bench: build
	$(call install_missing,$(BENCH_DEPS))
	bench/run.sh

# libFuzzer on what portsentinel reads from others (peer bytes, config files); FUZZ_SECONDS
# per target, default 60. Not part of `make test`: it runs for time, not to an answer.
FUZZ_DEPS := clang libclang-rt-14-dev libssl-dev libboost1.81-dev libyaml-cpp-dev

fuzz:
	$(call install_missing,$(FUZZ_DEPS))
	tests/fuzz/run.sh $(CURDIR)/build-fuzz

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) build-fuzz
