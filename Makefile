# posecli: `make demo` runs the main job on the default model, `make test` runs the tests.
# Both set up .venv from scratch when it is missing.

PYTHON ?= python3
TORCH_VERSION ?= 2.13.0
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
IR     := $(SHARED)/models/human-pose-estimation-0001/FP16-INT8/human-pose-estimation-0001.xml
PHOTO  := $(SHARED)/data/coco-val2017-mini/000000000785.jpg
OUTDIR := out/demo
# The model store used by `make demo`/`make test` unless the caller sets one.
export POSECLI_MODELS ?= $(abspath models/store)
export POSECLI_SHARED := $(SHARED)

.PHONY: venv demo test test-tools bench models clean

$(VENV)/.installed: pyproject.toml
	# FFmpeg (H.264 and sound in rendered videos, ffprobe for their tests) when the machine lacks it
	command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq ffmpeg; } || echo "warning: could not install ffmpeg"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch for the training extra: the CPU build pinned here (a bare 'torch' pulls a GPU build)
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[import,eval,test,ray]'
	touch $@

venv: $(VENV)/.installed

models: venv
	$(VENV)/bin/posecli models import $(IR)

demo: models
	@mkdir -p $(OUTDIR)
	$(VENV)/bin/posecli image $(PHOTO) --out $(OUTDIR)/000000000785.json --render $(OUTDIR)/000000000785_rendered.jpg --verbose
	@echo "JSON:            $(OUTDIR)/000000000785.json"
	@echo "annotated image: $(OUTDIR)/000000000785_rendered.jpg"

# Live-source tests use ffmpeg (streams), Xvfb (a virtual display for --show) and xdotool (keys):
# installed with apt-get when missing; without them those tests are skipped and say why.
test-tools:
	@missing=""; for t in ffmpeg:ffmpeg Xvfb:xvfb xdotool:xdotool; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  (apt-get update -qq && apt-get install -y -qq $$missing) || echo "could not install$$missing: their tests will be skipped"; fi

test: venv test-tools
	$(PY) -m pytest -q

bench: models
	$(PY) -m bench

clean:
	rm -rf $(VENV) out models/store .pytest_cache
