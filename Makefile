# Osteon's two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.osteon-installed
# the tests also exercise the optional parts (YOLO backend, AGPL-3.0; ONNX; the web service and its browser test;
# the PACS bridge; Ray; the docs site), so `make test` adds those extras; `make demo` does not
TEST_STAMP := $(VENV)/.osteon-test-extras
SHARED ?= ../shared/data
DEMO := demo_out

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, from the pinned release (the machine's disk holds it; elsewhere it comes from PyPI)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,yolo,onnx,serve,browser-tests,pacs,distributed,docs,pretrain]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/osteon data phantom --out $(DEMO)/phantom --images 160 --seed 0
	$(BIN)/osteon data summary $(DEMO)/phantom
	$(BIN)/osteon data check $(DEMO)/phantom
	$(BIN)/osteon train configs/phantom_demo.yaml --out $(DEMO)/runs/classify
	$(BIN)/osteon evaluate $(DEMO)/runs/classify --split test
	# detection of the fracture boxes on the same phantoms (the default heat-map detector, 10 epochs): boxes, mAP, FROC
	$(BIN)/osteon train configs/phantom_detect.yaml --out $(DEMO)/runs/detect
	$(BIN)/osteon evaluate $(DEMO)/runs/detect --split test --n-resamples 200
	# segmentation of the fracture lines (masks), evaluated with Dice, IoU and HD95
	$(BIN)/osteon train --task segment --data $(DEMO)/phantom/manifest.csv --model unet \
	    --encoder tu-mobilenetv3_small_050 --image-size 128 --epochs 10 --batch-size 16 --lr 3e-3 --out $(DEMO)/runs/segment
	$(BIN)/osteon evaluate $(DEMO)/runs/segment --split test
	@if [ -d $(SHARED) ]; then \
	  for d in fracatlas knee_kl_chen2018; do \
	    $(BIN)/osteon data summary $(SHARED)/$$d; \
	    $(BIN)/osteon data check $(SHARED)/$$d || echo "  ($$d: findings above are known defects of the source data, see its PROVENANCE.md)"; \
	  done; \
	fi
	$(BIN)/osteon explain $(DEMO)/runs/classify $(DEMO)/phantom/images/P0001_L.png --out $(DEMO)/cams
	@echo "Study report:"; $(BIN)/osteon report $(DEMO)/runs/classify

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint $(TEST_STAMP)
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_orthanc.sh
	# pytest exits 5 when it collects no tests: that is a failure here, not a pass
	$(BIN)/pytest -q -n 2 --durations=15; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(DEMO) runs .pytest_cache .ruff_cache
