# `xai-callback serve` in a container: a Vertex AI custom container, a KServe custom
# predictor, or plain `docker run`. See docs/serving.md.
#
# UNTESTED: docker cannot run on the machine this was written on. The steps are the
# ones `make install` runs, plus the [serve] extra.
#
#   docker build -t xai-callback-serve .
#   docker run --rm -p 8080:8080 -v "$PWD/exports/churn:/models/churn:ro" \
#       xai-callback-serve /models/churn --model-name churn
#
# On Vertex AI no arguments are needed: serve reads AIP_STORAGE_URI (the model's
# gs:// copy), AIP_HTTP_PORT, AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/xai-callback
COPY setup.py setup.cfg README.md ./
COPY xai_callback ./xai_callback
RUN pip install --no-cache-dir ".[serve]"

# Loading a SavedModel runs its graph: no root inside the container.
RUN useradd --create-home --uid 10001 serve
USER serve

EXPOSE 8080
# 0.0.0.0: the container's port must be reachable from outside it (the CLI's
# default, 127.0.0.1, is for a laptop). SIGTERM drains in-flight requests.
ENTRYPOINT ["xai-callback", "serve", "--host", "0.0.0.0"]
