# SPDX-License-Identifier: Apache-2.0
# The short commands. CMake (presets in CMakePresets.json) does the building; this file only
# names the common jobs:
#
#   make               optimised build in build/release (data dir compiled in: $(PREFIX)/share/ocra/data)
#   make install       install ocra, ocra-agent, the Slurm epilog, the planner's data, the man page,
#                      bash completion, the example configuration and the systemd unit under
#                      $(DESTDIR)$(PREFIX)
#   make demo          the README's main command: scripts/demo, end to end on this machine
#                      (DEMO_ARGS=--keep: leave it running until Ctrl-C)
#   make test          the whole test suite as CI runs it (scripts/test)
#   make man           regenerate docs/ocra.1 from the built binary's help
#   make clean         remove build/
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build/release
JOBS ?= $(shell nproc)
DEMO_ARGS ?=

.PHONY: all install demo test man clean

all:
	cmake --preset release -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
	    -DOCRA_DATA_DIR=$(PREFIX)/share/ocra/data >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target ocra ocra-agent

install: all
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

demo:
	scripts/demo $(DEMO_ARGS)

test:
	scripts/test

man:
	cmake --preset dev >/dev/null && cmake --build --preset dev --target ocra
	scripts/gen-man build/dev/src/cli/ocra >docs/ocra.1

clean:
	rm -rf build
