# kubelite: `make up` runs the cluster, `make test` runs every test.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
DATA  ?= $(HOME)/.kubelite
NODES ?= 2

.PHONY: install images up test unit integration e2e proto lint bench clean

install:
	@bash hack/install.sh

# Local images (no registry is needed): the pause image and busybox, from Debian's
# busybox-static via `docker import`.
images: install
	@bash hack/images.sh

up: install images
	$(VENV)/bin/kubelite up --data-dir $(DATA) --nodes $(NODES)

test: install images
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: install
	$(PY) -m pytest -q tests/unit

integration: install
	$(PY) -m pytest -q tests/integration

e2e: install images
	$(PY) -m pytest -q tests/e2e

# Regenerate the committed gRPC stubs from proto/ (needs the dev extra: grpcio-tools).
proto:
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. \
		proto/etcd/kv.proto proto/etcd/rpc.proto proto/cri/api.proto proto/ipamd.proto

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --ignore-missing-imports api client apiserver controller_manager scheduler kube_proxy dns

bench: install
	$(PY) benchmarks/api.py
	$(PY) benchmarks/scheduler.py
	$(PY) benchmarks/pod_startup.py
	$(PY) benchmarks/endpoint_latency.py

clean:
	rm -rf $(VENV) *.egg-info
