# posecli: `make demo` runs the main job on the default model, `make test` runs the tests.
# Each sets up .venv from scratch when it is missing: demo with the runtime and the import
# extra only (onnxruntime, OpenCV, OpenVINO to convert the model), test with everything the
# tests need (training, Ray, evaluation). Both need the shared folder (model IR, photos).

PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
IR_DIR := $(SHARED)/models/human-pose-estimation-0001/FP16-INT8
PHOTO  := $(SHARED)/data/coco-val2017-mini/000000000785.jpg
OUTDIR := out/demo
# The model store used by `make demo`/`make test` unless the caller sets one.
export POSECLI_MODELS ?= $(abspath models/store)
export POSECLI_SHARED := $(SHARED)

.PHONY: venv demo test test-fast test-tools bench models clean shared consumers

# Before anything is installed: is the shared folder there?
shared:
	@test -f "$(IR_DIR)/human-pose-estimation-0001.xml" -a -f "$(PHOTO)" || { \
	  echo "posecli: the shared folder (model IR and photos) is not at $(SHARED)"; \
	  echo "posecli: put it beside the checkout as ../shared, or run: make $(or $(MAKECMDGOALS),demo) SHARED=/path/to/shared"; \
	  exit 2; }

# The runtime and the import extra: what `posecli models download` and `posecli image` need.
$(VENV)/.demo-installed: pyproject.toml | shared
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[import]'
	touch $@

# Everything the tests need, on top.
$(VENV)/.installed: pyproject.toml | shared
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch for the training extra: the CPU build pinned here (a bare 'torch' pulls a GPU build)
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[import,eval,test,ray]'
	touch $(VENV)/.demo-installed $@

venv: $(VENV)/.installed

# The real programs that read posecli's output (pose-format, Pose2Sim, OpenSim, Sports2D) in a venv
# of their own: Pose2Sim pulls onnxruntime (CPU) and opencv-contrib, which clash with posecli's
# onnxruntime-gpu and opencv-python. Tests call its python as a subprocess (tests/helpers.py).
CONSUMERS := .venv-consumers
$(CONSUMERS)/.installed: Makefile
	$(PYTHON) -m venv $(CONSUMERS)
	$(CONSUMERS)/bin/python -m pip install -q --upgrade pip
	$(CONSUMERS)/bin/python -m pip install -q pose-format==0.15.0 pose2sim==0.10.49 opensim==4.6 sports2d==0.8.34
	touch $@

consumers: $(CONSUMERS)/.installed

models: shared $(VENV)/.demo-installed
	$(VENV)/bin/posecli models download --from $(IR_DIR)

demo: shared models
	@mkdir -p $(OUTDIR)
	$(VENV)/bin/posecli image $(PHOTO) --out $(OUTDIR)/000000000785.json --render $(OUTDIR)/000000000785_rendered.jpg --verbose
	@echo "JSON:            $(OUTDIR)/000000000785.json"
	@echo "annotated image: $(OUTDIR)/000000000785_rendered.jpg"

# Live-source and rendered-video tests use ffmpeg (streams, H.264 and sound, ffprobe), Xvfb (a
# virtual display for --show) and xdotool (keys): installed with apt-get when missing; without
# them those tests are skipped and say why.
test-tools:
	@missing=""; for t in ffmpeg:ffmpeg ffprobe:ffmpeg Xvfb:xvfb xdotool:xdotool; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  (apt-get update -qq && apt-get install -y -qq $$missing) || echo "could not install$$missing: their tests will be skipped"; fi

test: shared venv consumers test-tools
	$(PY) -m pytest -q

# The quick loop: every module, no real model, no real processes (those carry the slow marker).
test-fast: shared venv
	$(PY) -m pytest -q -m "not slow"

bench: shared venv models consumers  # consumers: Pose2Sim and OpenSim beside posecli 3d (bench_3d)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(CONSUMERS) out models/store .pytest_cache
