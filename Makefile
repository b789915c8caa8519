# emperor: build, test, demo, bench. Every target that needs system
# packages calls `deps`, which installs what is missing (Debian, as root).
SHELL   := /bin/bash
GO      ?= go
BIN     := bin/emperor
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Runtime and test dependencies from Debian.
DEB_PKGS := busybox-static fuse3 fuse-zip unionfs-fuse curl zip wrk procps \
            glusterfs-server glusterfs-client libglusterfs-dev pkg-config gcc media-types \
            stress-ng uwsgi-core uwsgi-plugin-python3 uwsgi-plugin-psgi uwsgi-plugin-php \
            mmdebstrap nginx-light

# Fuzz budgets are counts of executions, not durations: Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# a duration runs out (golang/go#75804, fixed in Go 1.27). A count has no
# deadline to race. These take about 20 s each on 2 cores. Each starts from
# the committed corpus only (testdata/fuzz), in a fresh cache directory: the
# inputs an earlier run (make fuzz, another clone) kept in $GOCACHE/fuzz must
# not decide this run. A failure found elsewhere belongs in testdata/fuzz.
FUZZ_PARSE_EXECS   ?= 500000x
FUZZ_REQUEST_EXECS ?= 250000x

# make soak: how many times the root integration suite runs in a row before
# the run with both cores busy.
SOAK_N ?= 3

.PHONY: all deps build test unit integration soak fuzz lint demo bench docs clean

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(GO) mod download

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/emperor

# Everything: lint, unit tests, root integration tests, a short fuzz run.
test: deps lint
	$(GO) test -count=1 -timeout 45m ./...
	$(GO) build -tags nogluster ./... && $(GO) test -count=1 -tags nogluster ./vassalfile ./fileserver
	d=$$(mktemp -d) && $(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZ_PARSE_EXECS) ./vassalfile -args -test.fuzzcachedir=$$d; rc=$$?; rm -rf $$d; exit $$rc
	d=$$(mktemp -d) && $(GO) test -run '^$$' -fuzz FuzzRequest -fuzztime $(FUZZ_REQUEST_EXECS) ./fileserver -args -test.fuzzcachedir=$$d; rc=$$?; rm -rf $$d; exit $$rc

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration: deps
	$(GO) test -count=1 -v -timeout 45m ./integration

# The root integration suite SOAK_N times in a row (default 3), then once
# more with both cores kept busy by stress-ng --cpu 2 (started here, stopped
# by its PID when the run ends, also on failure). Exits non-zero if any run
# failed, and says which. Not part of make test. Needs root.
soak: deps
	SOAK_N=$(SOAK_N) GO=$(GO) bash scripts/soak.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 10000000x ./vassalfile
	$(GO) test -run '^$$' -fuzz FuzzRequest -fuzztime 5000000x ./fileserver

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

demo: deps build
	bash scripts/demo.sh

bench: deps build
	bash scripts/bench.sh

docs: build
	@{ cat docs/options.head.md; ./$(BIN) options --markdown; } > docs/options.md
	@./$(BIN) options --markdown > .options.tmp && \
	  awk 'BEGIN{skip=0} /<!-- options:begin -->/{print; while((getline l < ".options.tmp")>0) print l; skip=1; next} /<!-- options:end -->/{skip=0} !skip' README.md > .readme.tmp && \
	  mv .readme.tmp README.md && rm -f .options.tmp

clean:
	rm -rf bin .demo
