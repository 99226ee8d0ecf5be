# qmail-popup: build, test, install.
#   make            dist/qmail-popup (the front, C) and dist/qmail-popup-runtime (Bun-compiled
#                   for this host), and the Node and Deno bundles
#   make test       everything: installs what the tests need, builds, runs them
#   make fuzz       the core's property tests, FUZZ_RUNS (200000) cases each
#   make demo       a POP3 service on 127.0.0.1:11110 (PORT=) with a demo user
#   make install    into $(DESTDIR)$(PREFIX) (default /var/qmail), from already built
#                   binaries: needs neither Node nor node_modules (QMAIL_POPUP_FRONT= and
#                   QMAIL_POPUP_RUNTIME= pick other artifacts, e.g. dist/qmail-popup-front-linux-arm64
#                   and dist/qmail-popup-bun-linux-arm64, of one release); keeps a qmail-popup
#                   that is not ours as qmail-popup.orig, which make uninstall puts back
#   make dist       the release matrix: dist/qmail-popup-<runtime>-<os>-<arch>, dist/SHA256SUMS
#   make dist-ci    what `make test` builds and tests: the matrix and the .deb
#   make deb        dist/qmail-popup_<version>_amd64.deb (DEB_ARCH=arm64 for arm64)
#   make freebsd-port  dist/freebsd-port/: the port skeleton with its distinfo
#   make check-reproducible  builds the matrix twice and compares
#   make check-versions      src/version.ts, package.json, the man page and packaging agree
#   make dist-emulators      qemu-user and arm64 libraries, to run the arm64 binaries in the tests

# Plain `=`: a PREFIX in the environment (some build environments set one) must
# not move qmail; give PREFIX= on the command line instead.
PREFIX = /var/qmail
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/man
DESTDIR ?=
QMAIL_POPUP_FRONT = dist/qmail-popup
QMAIL_POPUP_RUNTIME = dist/qmail-popup-runtime

BIN := node_modules/.bin
SOURCES := $(shell find src -name '*.ts') package.json
VERSION := $(shell sed -n 's/^export const VERSION = "\(.*\)";$$/\1/p' src/version.ts)
# The banner puts "qmail-popup VERSION" in every binary where strings(1) finds it:
# the minifier keeps /*! comments, while the usage line's ${VERSION} is not folded.
BANNER := /*! qmail-popup $(VERSION) */
BUN_FLAGS := --minify --bytecode --format=esm --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-jit-policy=10 --banner='$(BANNER)'

# The release matrix. Runtimes come from the npm registry at build time, pinned
# with their integrity in scripts/runtimes.lock (scripts/fetch-runtime), into a
# cache that `make clean` keeps.
RUNTIMES := node_modules/.cache/qmail-popup-runtimes
BUN_TARGETS := linux-x64 linux-x64-baseline linux-x64-musl linux-arm64 linux-arm64-musl freebsd-x64 freebsd-arm64
SEA_ARCHS := x64 arm64
FRONT_ARCHS := x64 arm64
DIST_BINARIES := $(FRONT_ARCHS:%=dist/qmail-popup-front-linux-%) $(BUN_TARGETS:%=dist/qmail-popup-bun-%) $(SEA_ARCHS:%=dist/qmail-popup-node-linux-%)
HOST_ARCH := $(shell uname -m | sed -e 's/^x86_64$$/x64/' -e 's/^amd64$$/x64/' -e 's/^aarch64$$/arm64/')
HOST_OS := $(shell uname -s | tr A-Z a-z)
# The Bun target `make` builds dist/qmail-popup for; a musl host (Alpine) gives
# HOST_BUN_TARGET=linux-x64-musl or linux-arm64-musl.
HOST_BUN_TARGET = $(HOST_OS)-$(HOST_ARCH)
# The node that runs `--build-sea`: the pinned Node of this host's architecture.
SEA_BUILDER := $(RUNTIMES)/node-linux-$(HOST_ARCH)/bin/node
# Bun names its targets arm64, its npm packages aarch64.
bun_package = @oven/bun-$(subst arm64,aarch64,$(1))

.PHONY: all test unit fuzz e2e deps build-deps host-build-deps test-deps demo-deps demo install install-bin install-man uninstall runtime-account clean typecheck variants test-fixtures
.PHONY: dist dist-ci dist-test-deps dist-emulators deb freebsd-port check-reproducible check-versions

all: dist/qmail-popup dist/qmail-popup-runtime dist/qmail-popup-node.mjs dist/qmail-popup-deno.mjs

# $(call apt_install,PACKAGES,APT-OPTIONS): installs those of the Debian packages that are missing.
define apt_install
	@missing=; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing >/dev/null; fi
endef

# The C compilers: this host's (all make demo needs), and arm64's; the
# front's C library, musl, for both (arm64's from Debian's multiarch archive).
host-build-deps:
	$(call apt_install,gcc libc6-dev musl-dev:$(shell dpkg --print-architecture),--no-install-recommends)

build-deps: host-build-deps
	@[ "$$(dpkg --print-architecture)" = arm64 ] || dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	$(call apt_install,gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-dev:arm64,--no-install-recommends)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

# This host's front and runtime are the matrix's for this host, side by side
# as they are installed (renamed into place: a running demo keeps its binary,
# where cp onto it would fail, text file busy).
dist/qmail-popup: dist/qmail-popup-front-linux-$(HOST_ARCH)
	cp $< $@.tmp && mv -f $@.tmp $@

dist/qmail-popup-runtime: dist/qmail-popup-bun-$(HOST_BUN_TARGET)
	cp $< $@.tmp && mv -f $@.tmp $@

# The front (src/front/qmail-popup.c): static, so that it runs on glibc and
# musl systems alike, and small, so that it starts under softlimit -m 2000000.
# Linked with musl (Debian's musl-dev, through its gcc specs): a static glibc
# program that only waits keeps 48 KiB of its own, and one that returns at once
# takes 1 to 2 ms of CPU; with musl, 12 KiB and 0.5 ms. The test fixtures below
# stay on glibc.
FRONT_CC_x64 = $(if $(filter x64,$(HOST_ARCH)),gcc,x86_64-linux-gnu-gcc)
FRONT_CC_arm64 = $(if $(filter arm64,$(HOST_ARCH)),gcc,aarch64-linux-gnu-gcc)
FRONT_LIBC_x64 = -specs /usr/lib/x86_64-linux-musl/musl-gcc.specs
FRONT_LIBC_arm64 = -specs /usr/lib/aarch64-linux-musl/musl-gcc.specs
FRONT_CFLAGS = -static -Os -std=c11 -Wall -Wextra -Werror -ffile-prefix-map=$(CURDIR)=. -DVERSION='"$(VERSION)"'

FRONT_SOURCES = src/front/qmail-popup.c src/front/confine.c src/front/resident.c
dist/qmail-popup-front-linux-%: $(FRONT_SOURCES) src/front/confine.h src/front/resident.h src/version.ts
	@mkdir -p dist
	$(FRONT_CC_$*) $(FRONT_LIBC_$*) $(FRONT_CFLAGS) -o $@.tmp $(FRONT_SOURCES) && mv $@.tmp $@

# Static stand-ins for checkpassword and qmail-pop3d, for the tests that run
# under a run script's softlimit -m, where nothing linked with the C library loads.
test-fixtures: dist/test-fixtures/checkpassword dist/test-fixtures/pop3d dist/test-fixtures/plan-runtime dist/test-fixtures/escape-runtime dist/test-fixtures/qmail-popup-unconfined

dist/test-fixtures/checkpassword: test/fixtures/static/checkpassword.c
	@mkdir -p $(dir $@)
	$(FRONT_CC_$(HOST_ARCH)) -static -Os -Wall -Wextra -Werror -o $@ $<

# A stand-in qmail-popup-runtime that sends the plan in the file `plan` beside it (test/e2e/plan.test.ts).
dist/test-fixtures/plan-runtime: test/fixtures/static/plan-runtime.c src/version.ts
	@mkdir -p $(dir $@)
	$(FRONT_CC_$(HOST_ARCH)) -static -Os -Wall -Wextra -Werror -DVERSION='"$(VERSION)"' -o $@ $<

# The hostile stand-in for the runtime (test/e2e/confinement.test.ts).
dist/test-fixtures/escape-runtime: test/fixtures/static/escape-runtime.c
	@mkdir -p $(dir $@)
	$(FRONT_CC_$(HOST_ARCH)) -static -Os -Wall -Wextra -Werror -o $@ $<

# The front without the runtime's confinement (src/front/confine.c): the
# bench's "confined against unconfined" row, and the positive control of a
# test that the confinement would otherwise stop. Never installed; a
# compile-time flag, never a runtime switch.
dist/test-fixtures/qmail-popup-unconfined: $(FRONT_SOURCES) src/front/confine.h src/front/resident.h src/version.ts
	@mkdir -p $(dir $@)
	$(FRONT_CC_$(HOST_ARCH)) $(FRONT_LIBC_$(HOST_ARCH)) $(FRONT_CFLAGS) -DQMAIL_POPUP_UNCONFINED -o $@.tmp $(FRONT_SOURCES) && mv $@.tmp $@

dist/test-fixtures/pop3d: scripts/bench-fixtures/pop3d.c
	@mkdir -p $(dir $@)
	$(FRONT_CC_$(HOST_ARCH)) -static -Os -Wall -Wextra -Werror -o $@ $<

# Each runtime behind a copy of the front, as the end-to-end tests run them:
# dist/variants/NAME/qmail-popup and its qmail-popup-runtime.
VARIANTS := node-sea node bun-source deno
variants: dist/qmail-popup dist/qmail-popup-runtime $(VARIANTS:%=dist/variants/%/qmail-popup-runtime)
	@for v in $(VARIANTS); do cp dist/qmail-popup dist/variants/$$v/.qmail-popup.tmp && mv -f dist/variants/$$v/.qmail-popup.tmp dist/variants/$$v/qmail-popup; done

dist/variants/node-sea/qmail-popup-runtime: dist/qmail-popup-node-linux-$(HOST_ARCH)
	@mkdir -p $(dir $@)
	ln -sf ../../$(notdir $<) $@

# The bundles run through their runtime's command line: these scripts are
# what an administrator would install as qmail-popup-runtime. The front
# starts them with an empty environment, so the scripts see no options.
# Each variant's directory holds what its script runs (the bundle, and a
# link to a runtime from node_modules): the front's Landlock rules let the
# runtime read its own directory and the system's, nothing else.
dist/variants/node/qmail-popup-runtime: dist/qmail-popup-node.mjs
	@mkdir -p $(dir $@)
	cp $< $(dir $@)qmail-popup-node.mjs
	printf '#!/bin/sh\nexec %s %s "$$@"\n' "$$(command -v node)" "$(CURDIR)/$(dir $@)qmail-popup-node.mjs" > $@ && chmod 755 $@

dist/variants/bun-source/qmail-popup-runtime: $(SOURCES)
	@mkdir -p $(dir $@)
	rm -rf $(dir $@)src && cp -R src package.json tsconfig.json $(dir $@)
	ln -f $$(readlink -f $(BIN)/bun) $(dir $@)bun
	printf '#!/bin/sh\nexec %s %s "$$@"\n' "$(CURDIR)/$(dir $@)bun" "$(CURDIR)/$(dir $@)src/entry/bun.ts" > $@ && chmod 755 $@

# DENO_DIR in the variant's own directory, and no code cache: Deno neither
# reads the home directory (.npmrc) nor writes its caches there.
dist/variants/deno/qmail-popup-runtime: dist/qmail-popup-deno.mjs
	@mkdir -p $(dir $@)
	cp $< $(dir $@)qmail-popup-deno.mjs
	ln -f $$(readlink -f $(BIN)/deno) $(dir $@)deno
	printf '#!/bin/sh\nDENO_DIR=%s exec %s run --allow-all --no-config --no-code-cache --quiet %s "$$@"\n' "$(CURDIR)/$(dir $@)deno-dir" "$(CURDIR)/$(dir $@)deno" "$(CURDIR)/$(dir $@)qmail-popup-deno.mjs" > $@ && chmod 755 $@

dist/qmail-popup-node.mjs: node_modules/.package-lock.json $(SOURCES)
	$(BIN)/esbuild src/entry/node.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning --outfile=$@

dist/qmail-popup-deno.mjs: node_modules/.package-lock.json $(SOURCES)
	$(BIN)/esbuild src/entry/deno.ts --bundle --platform=node --format=esm --log-level=warning --outfile=$@

typecheck: deps
	$(BIN)/tsc --noEmit -p .

# What scripts/demo runs: tcpserver, and python3 for the test checkpassword,
# pop3d and make-maildir.
demo-deps:
	$(call apt_install,ucspi-tcp python3,--no-install-recommends)

# The Debian packages the end-to-end tests use: real tcpserver, real clients,
# real launchers, and fail2ban (test/e2e/fail2ban.test.ts).
test-deps: demo-deps
	$(call apt_install,ucspi-tcp curl fetchmail mpop python3 openssl groff xinetd socat stunnel4 daemontools systemd haproxy fail2ban,)

# What test/e2e/binaries.test.ts and install.test.ts use to look into the
# artifacts: readelf and strings (binutils), file, dpkg-deb and lintian.
dist-test-deps:
	$(call apt_install,binutils file dpkg lintian groff,--no-install-recommends)

# Lets test/e2e/binaries.test.ts run the arm64
# binaries under qemu-user (with Debian's arm64 C and C++ libraries) and the
# baseline x64 one on an emulated CPU without AVX.
dist-emulators:
	$(call apt_install,qemu-user libc6-arm64-cross libstdc++6-arm64-cross libatomic1-arm64-cross,--no-install-recommends)

test: build-deps test-deps dist-test-deps dist-emulators runtime-account all typecheck dist-ci variants test-fixtures
	$(BIN)/vitest run

unit: deps
	$(BIN)/vitest run test/unit

# The property tests of the core, long: FUZZ_RUNS cases per property (make test runs 1000).
FUZZ_RUNS ?= 200000
fuzz: deps
	FUZZ_RUNS=$(FUZZ_RUNS) $(BIN)/vitest run test/property

# Only what the demo uses: this host's C compiler, tcpserver, python3, the host's pair, the runtime's account.
demo: host-build-deps demo-deps runtime-account dist/qmail-popup dist/qmail-popup-runtime
	sh scripts/demo

# --- release matrix ------------------------------------------------------------

dist: dist/SHA256SUMS

# The whole matrix and the .deb: what test/e2e/binaries.test.ts and
# install.test.ts check (with dist-emulators, the arm64 ones run under
# qemu-user; only the musl and FreeBSD binaries cannot run here).
dist-ci: dist deb

dist/SHA256SUMS: $(DIST_BINARIES) dist/qmail-popup.8
	cd dist && sha256sum $(notdir $^) > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS

dist/qmail-popup.8: man/qmail-popup.8
	@mkdir -p dist
	cp man/qmail-popup.8 $@

$(RUNTIMES)/@oven/%/bin/bun: scripts/runtimes.lock
	sh scripts/fetch-runtime @oven/$* $(RUNTIMES) >/dev/null

$(RUNTIMES)/node-linux-%/bin/node: scripts/runtimes.lock
	sh scripts/fetch-runtime node-linux-$* $(RUNTIMES) >/dev/null

# The runtime every Bun binary is built from: the pinned one with BUN_OPTIONS,
# BUN_BE_BUN and the debugger's variables disabled (no compile flag does that).
$(RUNTIMES)/@oven/%/bin/bun-hardened: $(RUNTIMES)/@oven/%/bin/bun scripts/harden-bun-runtime.mjs
	node scripts/harden-bun-runtime.mjs $< $@

# The fetched runtimes are a cache, not intermediates for make to delete.
.PRECIOUS: $(RUNTIMES)/@oven/%/bin/bun $(RUNTIMES)/@oven/%/bin/bun-hardened $(RUNTIMES)/node-linux-%/bin/node

.SECONDEXPANSION:

# Every Bun binary is compiled as .../qmail-popup and renamed: the output name is
# embedded (/$bunfs/root/NAME), so all of them, and dist/qmail-popup, carry the same.
dist/qmail-popup-bun-%: node_modules/.package-lock.json $(SOURCES) Makefile $(RUNTIMES)/$$(call bun_package,$$*)/bin/bun-hardened
	@mkdir -p dist/.build/bun-$*
	$(BIN)/bun build --compile $(BUN_FLAGS) --target=bun-$* \
	  --compile-executable-path=$(RUNTIMES)/$(call bun_package,$*)/bin/bun-hardened \
	  --outfile=dist/.build/bun-$*/qmail-popup src/entry/bun.ts
	mv dist/.build/bun-$*/qmail-popup $@

# A Node SEA's main script must be CommonJS.
dist/.build/qmail-popup-node.cjs: node_modules/.package-lock.json $(SOURCES) Makefile
	$(BIN)/esbuild src/entry/node.ts --bundle --platform=node --format=cjs --target=node26 --banner:js='$(BANNER)' --log-level=warning --outfile=$@

# V8's code cache is only valid for the V8 that made it: on for the host's own
# architecture, off for the cross-built one.
dist/qmail-popup-node-linux-%: dist/.build/qmail-popup-node.cjs $(RUNTIMES)/node-linux-%/bin/node $(SEA_BUILDER) scripts/build-sea
	sh scripts/build-sea $(SEA_BUILDER) $(RUNTIMES)/node-linux-$*/bin/node $< $@ $(if $(filter $*,$(HOST_ARCH)),true,false)

# --- packages ------------------------------------------------------------------

# amd64 uses the baseline x86-64 build: Debian's amd64 does not assume AVX2.
DEB_ARCH = amd64
DEB_BINARY_amd64 = dist/qmail-popup-bun-linux-x64-baseline
DEB_BINARY_arm64 = dist/qmail-popup-bun-linux-arm64
DEB_FRONT_amd64 = dist/qmail-popup-front-linux-x64
DEB_FRONT_arm64 = dist/qmail-popup-front-linux-arm64
DEB := dist/qmail-popup_$(VERSION)_$(DEB_ARCH).deb
# xz -1: 45 MB in about 6 s; the default xz -6 saves 5 MB for 40 s more on two
# cores. A release can give DEB_COMPRESSION='-Zxz -z9'.
DEB_COMPRESSION = -Zxz -z1

deb: $(DEB)

$(DEB): $$(DEB_BINARY_$$(DEB_ARCH)) $$(DEB_FRONT_$$(DEB_ARCH)) man/qmail-popup.8 packaging/debian/build-deb packaging/debian/control.in packaging/debian/copyright packaging/debian/changelog packaging/debian/lintian-overrides packaging/debian/preinst packaging/debian/postinst packaging/debian/postrm $(shell find packaging/services packaging/fail2ban -type f)
	DEB_COMPRESSION='$(DEB_COMPRESSION)' sh packaging/debian/build-deb $(DEB_ARCH) $(DEB_FRONT_$(DEB_ARCH)) $(DEB_BINARY_$(DEB_ARCH)) $@

# The port compiles the front on FreeBSD from dist/qmail-popup.c, which make-port copies there.
freebsd-port: dist/qmail-popup-bun-freebsd-x64 dist/qmail-popup-bun-freebsd-arm64 dist/qmail-popup.8 src/front/qmail-popup.c src/front/confine.c src/front/confine.h src/front/resident.c src/front/resident.h
	sh packaging/freebsd/make-port dist dist/freebsd-port

check-reproducible:
	sh scripts/check-reproducible

check-versions:
	sh scripts/check-versions

# --- install -------------------------------------------------------------------
# No dependency on the build: this installs what is in dist/ (or QMAIL_POPUP_FRONT and QMAIL_POPUP_RUNTIME),
# so it runs on a host without Node. Each file goes in under a temporary name
# and is renamed over the old one: tcpserver starting a connection meanwhile
# executes either the old binary or the new one, never a partial file.

# The runtime's account (issue #18; the same target as in branch priv): made
# on this host by `make install`; with DESTDIR, on the host it is meant for.
DESTDIR_NOTE = installed under $(DESTDIR): on the host it is for, run make runtime-account as root (the account qmailpopup)
install: $(if $(DESTDIR),,runtime-account) install-bin install-man
	$(if $(DESTDIR),@echo '$(DESTDIR_NOTE)')

# packaging/install-files refuses a front and runtime of two
# releases, keeps a qmail-popup that is not ours as qmail-popup.orig, and
# renames the new files into place, the runtime first, leaving nothing behind
# when a copy fails.
install-bin:
	sh packaging/install-files bin $(DESTDIR)$(BINDIR) $(QMAIL_POPUP_FRONT) $(QMAIL_POPUP_RUNTIME) packaging/services/qmail-popup-logfile

install-man:
	sh packaging/install-files man $(DESTDIR)$(MANDIR) man/qmail-popup.8

# Puts back what install kept as qmail-popup.orig (and qmail-popup.8.orig).
uninstall:
	sh packaging/install-files uninstall $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)

# The account the front runs the runtime as when started as root (man page,
# PRIVILEGE MODEL): a system user and group qmailpopup, no home, no shell.
# Idempotent; the front finds it in /etc/passwd. Never removed by
# uninstall: files it may have come to own would pass to its uid's next owner.
runtime-account:
	@id -u qmailpopup >/dev/null 2>&1 || \
	if command -v adduser >/dev/null 2>&1 && adduser --help 2>&1 | grep -q -- --system; then \
	  adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin qmailpopup >/dev/null 2>&1; \
	else \
	  groupadd --system qmailpopup 2>/dev/null || true; \
	  useradd --system --gid qmailpopup --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin qmailpopup; fi

clean:
	rm -rf dist

# Greeting, session time, sustained rate, CPU and memory per connection of every
# variant under tcpserver, against floors measured in the same run: printf (C),
# a compiled hello alone and behind the front (issues #7, #12, #13): a table on
# stdout and dist/bench/*.json. BENCH_QUICK=1 for a short run; the knobs are in
# scripts/bench.mjs.
.PHONY: bench
bench: build-deps test-deps runtime-account all variants dist/bench/hello dist/test-fixtures/qmail-popup-unconfined
	node scripts/bench.mjs

# The Bun floor: scripts/bench-fixtures/hello.mjs compiled as the runtime is.
BENCH_BUN_RUNTIME = $(RUNTIMES)/$(call bun_package,$(HOST_BUN_TARGET))/bin/bun-hardened
dist/bench/hello: scripts/bench-fixtures/hello.mjs Makefile node_modules/.package-lock.json $(BENCH_BUN_RUNTIME)
	@mkdir -p dist/bench
	$(BIN)/bun build --compile $(BUN_FLAGS) --target=bun-$(HOST_BUN_TARGET) --compile-executable-path=$(BENCH_BUN_RUNTIME) --outfile=$@ $<
