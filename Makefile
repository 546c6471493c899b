# Convenience wrapper: ./configure && make && make check
BUILD_DIR ?= build
NINJA ?= ninja
BENCH_ACCEL ?= auto
BENCH_RUNS ?= 3

.PHONY: all check check-unit check-qtest demo bench bench-boot bench-migration bench-multifd bench-tcg clean distclean deps

all: $(BUILD_DIR)/build.ninja
	$(NINJA) -C $(BUILD_DIR)

$(BUILD_DIR)/build.ninja:
	@scripts/install-deps.sh --check || scripts/install-deps.sh
	BUILD_DIR=$(BUILD_DIR) ./configure

deps:
	scripts/install-deps.sh

# The Linux test guest's kernel takes minutes: built here, not by `make`.
check: all
	@scripts/install-deps.sh --check || scripts/install-deps.sh
	$(NINJA) -C $(BUILD_DIR) linux-guest
	meson test -C $(BUILD_DIR) --print-errorlogs --num-processes 2

check-unit: all
	meson test -C $(BUILD_DIR) --print-errorlogs --suite unit

check-qtest: all
	meson test -C $(BUILD_DIR) --print-errorlogs --suite qtest

demo: all
	scripts/demo.py --build-dir $(BUILD_DIR)

# BENCH_ACCEL: kvm, tcg, both or auto (tcg, and kvm too where /dev/kvm works).
bench: bench-boot bench-migration

bench-boot: all
	tests/bench/boot-bench.py --build-dir $(BUILD_DIR) --accel $(BENCH_ACCEL)

bench-migration: all
	tests/bench/migration-bench.py --build-dir $(BUILD_DIR) --runs $(BENCH_RUNS) --accel $(BENCH_ACCEL)

bench-multifd: all
	tests/bench/migration-bench.py --build-dir $(BUILD_DIR) --runs $(BENCH_RUNS) --accel $(BENCH_ACCEL) --scenarios multifd

bench-tcg: all
	tests/bench/boot-bench.py --build-dir $(BUILD_DIR) --accel tcg
	tests/bench/migration-bench.py --build-dir $(BUILD_DIR) --runs $(BENCH_RUNS) --accel tcg

clean:
	$(NINJA) -C $(BUILD_DIR) clean

distclean:
	rm -rf $(BUILD_DIR)
