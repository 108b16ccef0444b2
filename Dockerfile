# syntax=docker/dockerfile:1
# netquality: one image for every service (worker, sink, db migrations); the sub-command is the
# container's command. Build: docker build -t netquality:0.1.0 .   (or `docker compose build`)
# No HEALTHCHECK here on purpose: docker-compose.yml (or the orchestrator) owns health checks.

############################ build: the project wheel + every dependency wheel ############
FROM python:3.11.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A compiler for dependencies without a wheel for this platform and for the compiled scoring
# core (setup.py, mypyc; pure Python if that fails); it stays in this stage.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY pipelines ./pipelines
COPY benchmarks ./benchmarks
# The project's own wheel plus the wheels of all its dependencies, in one resolve.
RUN pip wheel --wheel-dir /wheels .

############################ runtime: a venv with the wheels, non-root ####################
FROM python:3.11.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    NETQUALITY_STATE_DIR=/var/lib/netquality

RUN groupadd --system --gid 10001 netquality \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/netquality \
       --no-create-home --shell /usr/sbin/nologin netquality \
    && mkdir -p /var/lib/netquality \
    && chown 10001:10001 /var/lib/netquality

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && pip install --no-index --find-links /wheels netquality

# Alembic: `netquality db ...` looks for <parent of the pipelines package>/migrations
# (pipelines/storage/migrate.py: Path(__file__).parents[2] / "migrations"), which for an
# installed wheel is site-packages. The scripts live in /app (with alembic.ini, for running
# `alembic` by hand from /app) and site-packages/migrations points there. The last command
# fails the build if the migrations cannot be found or loaded.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
RUN target="$(python -c 'from pipelines.storage.migrate import MIGRATIONS_DIR; print(MIGRATIONS_DIR)')" \
    && ln -s /app/migrations "$target" \
    && python -c 'from pipelines.storage.migrate import head; assert head(), "no migrations"; print("migrations head", head())' \
    && netquality settings > /dev/null

USER 10001:10001

ENTRYPOINT ["netquality"]
CMD ["worker"]
