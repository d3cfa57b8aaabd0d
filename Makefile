# ngx_chat top-level Makefile: builds the dynamic module against Debian's
# nginx-dev sources and wraps running, testing, benchmarking and installing.

NGINX_SRC  ?= /usr/share/nginx/src
BUILD      ?= build
ASAN_BUILD ?= build-asan
MODULE      = $(BUILD)/nginx/objs/ngx_chat_module.so
ASAN_MODULE = $(ASAN_BUILD)/nginx/objs/ngx_chat_module.so
SOURCES    := $(wildcard ngx_chat_module/*.c ngx_chat_module/*.h) config

.PHONY: all module deps run test test-unit test-sql test-t test-asan test-soak \
        bench migrate install deb cluster cluster-sharded clean

all: module

deps:
	@scripts/deps build

module: $(MODULE)

$(MODULE): $(SOURCES)
	@scripts/deps build
	scripts/build-module $(BUILD) ""

$(ASAN_MODULE): $(SOURCES)
	@scripts/deps build
	scripts/build-module $(ASAN_BUILD) asan

run: module
	scripts/run

migrate:
	scripts/migrate

test:
	scripts/test

test-unit:
	@scripts/deps test
	$(MAKE) -C tests/unit

test-sql:
	tests/sql/run

test-t: module
	scripts/test t

test-asan:
	scripts/test asan

# the adversarial soak alone (CHAT_SOAK_SECONDS=600 for the long run)
test-soak:
	scripts/test soak

bench: module
	scripts/bench

cluster: module
	scripts/cluster

# the same gateways on a Redis Cluster (3 primaries + 3 replicas, sharded
# pub/sub)
cluster-sharded: module
	REDIS_CLUSTER=1 scripts/cluster

# DESTDIR=/tmp/root make install: into a staging root (what scripts/deb
# packages); without it onto this machine, in Debian's layout
install: module
	DESTDIR="$(DESTDIR)" scripts/install-files $(MODULE)
	@echo "installed under $(or $(DESTDIR),/); enable with:"
	@echo "  ln -s /usr/share/nginx/modules-available/mod-http-chat.conf" \
	    "/etc/nginx/modules-enabled/50-mod-http-chat.conf"
	@echo "  ngx-chat-migrate 'host=... dbname=chat'   (the schema)"

# the Debian package libnginx-mod-chat, in build/deb/
deb: module
	scripts/deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
	$(MAKE) -C tests/unit clean
