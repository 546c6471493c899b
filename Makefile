# Convenience wrapper: ./configure && make && make check
BUILD_DIR ?= build
NINJA ?= ninja

.PHONY: all check check-unit check-qtest demo bench bench-migration bench-multifd clean distclean deps

all: $(BUILD_DIR)/build.ninja
	$(NINJA) -C $(BUILD_DIR)

$(BUILD_DIR)/build.ninja:
	@scripts/install-deps.sh --check || scripts/install-deps.sh
	BUILD_DIR=$(BUILD_DIR) ./configure

deps:
	scripts/install-deps.sh

check: all
	@scripts/install-deps.sh --check || scripts/install-deps.sh
	meson test -C $(BUILD_DIR) --print-errorlogs --num-processes 2

check-unit: all
	meson test -C $(BUILD_DIR) --print-errorlogs --suite unit

check-qtest: all
	meson test -C $(BUILD_DIR) --print-errorlogs --suite qtest

demo: all
	scripts/demo.py --build-dir $(BUILD_DIR)

bench: all
	tests/bench/boot-bench.py --build-dir $(BUILD_DIR)

bench-migration: all
	tests/bench/migration-bench.py --build-dir $(BUILD_DIR) --runs 3

bench-multifd: all
	tests/bench/migration-bench.py --build-dir $(BUILD_DIR) --runs 3 --scenarios multifd

clean:
	$(NINJA) -C $(BUILD_DIR) clean

distclean:
	rm -rf $(BUILD_DIR)
