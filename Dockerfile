# syntax=docker/dockerfile:1
# taskhub in two stages: the build stage installs the pinned dependencies
# (requirements.lock) and taskhub into a venv; the runtime stage copies only that
# venv onto a slim Python, and runs it as an unprivileged user.
#
#   docker build -t taskhub .
#   docker run --rm -e TASKHUB_DATABASE_URL=postgresql://... taskhub taskhub db upgrade
#   docker run --rm -p 8000:8000 -e TASKHUB_DATABASE_URL=postgresql://... taskhub

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/taskhub
WORKDIR /src
# The lock first, alone: the dependency layer is rebuilt only when it changes.
COPY requirements.lock ./
RUN /opt/taskhub/bin/pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
COPY migrations ./migrations
# --no-deps: every dependency is the pinned one installed above.
RUN /opt/taskhub/bin/pip install --no-deps .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/taskhub/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TASKHUB_HOST=0.0.0.0 \
    TASKHUB_PORT=8000
RUN useradd --system --create-home --home-dir /var/lib/taskhub --uid 10001 taskhub
COPY --from=build /opt/taskhub /opt/taskhub
# The working directory holds what taskhub writes by default: the SQLite file
# and the first user's token file. Mount a volume here to keep them.
WORKDIR /var/lib/taskhub
USER taskhub
EXPOSE 8000
# Slim images have no curl; the venv's Python asks /healthz on TASKHUB_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TASKHUB_PORT', '8000') + '/healthz', timeout=2)"]
# Migrations are a separate, explicit step (`taskhub db upgrade`, the compose
# file's `migrate` service): the server never changes the schema as it starts.
CMD ["taskhub", "serve"]
