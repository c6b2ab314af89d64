# augment — build, set-up and test entry points.
# `make demo` and `make test` do all set-up on a fresh Debian machine with Go and npm.

SHELL := /bin/bash
GO ?= go
export CGO_ENABLED := 1

ORT_VERSION := 1.24.1
THIRD_PARTY := third_party
ORT_DIR := $(THIRD_PARTY)/onnxruntime-$(ORT_VERSION)
ORT_LIB := $(CURDIR)/$(ORT_DIR)/libonnxruntime.so.$(ORT_VERSION)
export AUGMENT_ORT_LIB ?= $(ORT_LIB)

APT_PACKAGES := dicom3tools dcmtk python3-pydicom python3-gdcm python3-numpy \
	libcharls-dev libopenjp2-7-dev libjpeg62-turbo-dev libdcmtk-dev pkg-config
TRAIN_PACKAGES := python3-torch python3-onnx libopenblas0-pthread python3-pydicom python3-numpy
STAMP := $(THIRD_PARTY)/.stamps

BIN := bin/augment
FUZZTIME ?= 10s

.PHONY: all setup setup-apt setup-ort train-deps build test test-long bench lint fuzz demo clean models models-quick

all: build

setup: setup-apt setup-ort

$(STAMP):
	@mkdir -p $(STAMP)

# Debian packages: codecs for cgo, validators (dciodvfy, dcmdump) and pydicom for interoperability checks.
setup-apt: $(STAMP)/apt
$(STAMP)/apt: Makefile | $(STAMP)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

# ONNX Runtime shared library, from the npm package that ships it (no other download).
setup-ort: $(ORT_LIB)
$(ORT_LIB):
	@mkdir -p $(ORT_DIR)
	cd $(ORT_DIR) && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null && \
	  tar -xzf onnxruntime-node-$(ORT_VERSION).tgz package/bin/napi-v6/linux/x64/libonnxruntime.so.1 && \
	  mv package/bin/napi-v6/linux/x64/libonnxruntime.so.1 libonnxruntime.so.$(ORT_VERSION) && \
	  rm -rf package onnxruntime-node-$(ORT_VERSION).tgz
	@test -s $(ORT_LIB) && echo "ONNX Runtime $(ORT_VERSION) at $(ORT_DIR)"

# PyTorch and friends for the training kit (unclip/train), from Debian.
train-deps: $(STAMP)/train
$(STAMP)/train: Makefile | $(STAMP)
	@missing=""; for p in $(TRAIN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

# The default model bundle unclip/bundles/cxr-tiny: train on ../shared/data/cxr/train (CPU recipe,
# resumable), export, evaluate on val (docs/training.md).
models: train-deps
	OPENBLAS_NUM_THREADS=1 /usr/bin/python3 unclip/train/train.py
	OPENBLAS_NUM_THREADS=1 /usr/bin/python3 unclip/train/eval.py --bundle unclip/bundles/cxr-tiny --batch 50 --card

# Every training stage for a few steps (about a minute): a smoke test of the kit.
models-quick: train-deps
	OPENBLAS_NUM_THREADS=1 /usr/bin/python3 unclip/train/train.py --quick --fresh

build: setup
	$(GO) build -o $(BIN) ./cmd/augment

test: setup train-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 14m ./...
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME) ./dicomio

test-long: setup train-deps
	AUGMENT_LONG=1 $(GO) test -count=1 -timeout 60m ./...

fuzz: setup
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 5m ./dicomio

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build
	BIN=$(BIN) OUT=demo-out bash scripts/demo.sh

clean:
	rm -rf bin demo-out
