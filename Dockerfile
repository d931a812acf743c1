# syntax=docker/dockerfile:1
# The Dataward image: one image runs the operator (`dataward run`, the default) and every
# store's purge job (`dataward purge --store NS/NAME`, which the CronJobs pass as arguments).
#
#   docker build -t ghcr.io/dataward/dataward:0.1.0 .
#
# Pin the base by digest in your registry mirror for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim

# Builder: the wheel of this package and wheels of its dependencies (all have binary wheels
# for linux/amd64 and arm64, so no compiler is needed).
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --wheel-dir /wheels .

# Runtime: the installed package only; no sources, no build tools, no pip cache.
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels dataward \
 && groupadd --gid 65532 dataward \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin dataward
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["dataward"]
CMD ["run"]
