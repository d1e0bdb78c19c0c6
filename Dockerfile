# syntax=docker/dockerfile:1.7
# Multi-stage build: dependencies resolved with uv from uv.lock, model files fetched at build
# time so containers start without network access to model hubs.

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY agent ./agent
COPY workflows ./workflows
COPY tools ./tools
COPY token_server ./token_server
COPY examples ./examples
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 agent
WORKDIR /app
COPY --from=build --chown=agent:agent /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 LOG_FORMAT=json DATA_DIR=/app/.data
USER agent
# Silero VAD files and, when configured, FastEmbed weights, baked into the image.
RUN python -m agent download-files
EXPOSE 8081 9100
CMD ["python", "-m", "agent", "start"]
