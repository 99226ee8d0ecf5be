# qmail-popup: build, test, install.
#   make            dist/qmail-popup (Bun-compiled for this host) and the Node and Deno bundles
#   make test       everything: installs what the tests need, builds, runs them
#   make demo       a POP3 service on 127.0.0.1:11110 with a demo user
#   make install    into $(DESTDIR)$(PREFIX) (default /var/qmail)

PREFIX ?= /var/qmail
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/man
DESTDIR ?=

BIN := node_modules/.bin
SOURCES := $(shell find src -name '*.ts') package.json
BUN_FLAGS := --minify --bytecode --format=esm --no-compile-autoload-dotenv --no-compile-autoload-bunfig

.PHONY: all test unit e2e deps test-deps demo install install-bin uninstall clean typecheck

all: dist/qmail-popup dist/qmail-popup-node.mjs dist/qmail-popup-deno.mjs

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

dist/qmail-popup: node_modules/.package-lock.json $(SOURCES)
	@mkdir -p dist
	$(BIN)/bun build --compile $(BUN_FLAGS) --outfile=$@ src/entry/bun.ts

dist/qmail-popup-node.mjs: node_modules/.package-lock.json $(SOURCES)
	$(BIN)/esbuild src/entry/node.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning --outfile=$@

dist/qmail-popup-deno.mjs: node_modules/.package-lock.json $(SOURCES)
	$(BIN)/esbuild src/entry/deno.ts --bundle --platform=node --format=esm --log-level=warning --outfile=$@

typecheck: deps
	$(BIN)/tsc --noEmit -p .

# The Debian packages the end-to-end tests use: real tcpserver and real clients.
test-deps:
	@missing=; for p in ucspi-tcp curl fetchmail mpop python3 openssl groff; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

test: test-deps all typecheck
	$(BIN)/vitest run

unit: deps
	$(BIN)/vitest run test/unit

demo: test-deps all
	sh scripts/demo

install: install-bin install-man

install-bin:
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 dist/qmail-popup $(DESTDIR)$(BINDIR)/qmail-popup

install-man:
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 644 man/qmail-popup.8 $(DESTDIR)$(MANDIR)/man8/qmail-popup.8

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qmail-popup $(DESTDIR)$(MANDIR)/man8/qmail-popup.8

clean:
	rm -rf dist

# Startup, session time, sustained rate and memory of every built variant under
# tcpserver, against a printf floor (issue #7): a table on stdout and
# dist/bench/*.json. BENCH_QUICK=1 for a short run; the knobs are in scripts/bench.mjs.
.PHONY: bench
bench: test-deps all
	node scripts/bench.mjs
