# posecli on the CPU, with the default model inside the image.
#
#   docker build -t posecli .
#   docker run --rm -v "$PWD:/data" posecli image /data/photo.jpg
#   docker run --rm -v "$PWD:/data" posecli image /data/photo.jpg --out /data/photo.json --render /data/photo_pose.jpg
#
# The model comes from Open Model Zoo's public storage at build time (checked against its
# sha256); for an offline build, serve or copy the IR and pass
#   --build-arg MODEL_FROM=http://HOST:PORT/   (or a folder inside the build context)
# For NVIDIA GPUs see docker/Dockerfile.cuda.

ARG BASE=python:3.11-slim

# -- stage 1: download and convert the model (OpenVINO and onnx stay in this stage) ----------
FROM ${BASE} AS model
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 POSECLI_MODELS=/models
WORKDIR /src
COPY pyproject.toml README.md ./
COPY posecli ./posecli
RUN pip install --no-deps . && pip install 'openvino>=2024.0' 'onnx>=1.15' 'onnxruntime>=1.18' \
        'numpy>=1.24' 'opencv-python-headless>=4.8' 'click>=8.1' 'tqdm>=4.60' 'scipy>=1.10'
ARG MODEL_FROM=
RUN posecli models download --precision int8 ${MODEL_FROM:+--from "$MODEL_FROM"} \
 && posecli models download --precision fp32 ${MODEL_FROM:+--from "$MODEL_FROM"} \
 && rm -rf /models/sources

# -- stage 2: the runtime only (onnxruntime for the CPU, no CUDA libraries) -------------------
FROM ${BASE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 POSECLI_MODELS=/models PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY posecli ./posecli
# --no-deps, then the runtime requirements by hand: on x86-64 Linux the package's own
# requirements pick onnxruntime-gpu (340 MB of CUDA code a CPU image does not use).
RUN pip install --no-deps . && pip install 'onnxruntime>=1.18' 'numpy>=1.24' \
        'opencv-python-headless>=4.8' 'click>=8.1' 'tqdm>=4.60' 'scipy>=1.10' \
 && rm -rf /src
COPY --from=model /models /models
WORKDIR /data
ENTRYPOINT ["posecli"]
CMD ["--help"]
