# One image for every Daybreak service and for migrations:
#   daybreak serve ingest|matcher|notifier|audit --host 0.0.0.0
#   alembic upgrade head

# The portal's front end (govuk-frontend compiled with Sass), built as `make` builds it.
FROM node:20-slim AS frontend
WORKDIR /src
RUN apt-get update -q && apt-get install -y -q --no-install-recommends bash && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
COPY scripts/install-frontend.sh ./scripts/
COPY services/notifier/static ./services/notifier/static
RUN bash scripts/install-frontend.sh

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# every dependency at its pinned version, each file checked against its sha256
COPY requirements/runtime.lock ./requirements/
RUN pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY --from=frontend /src/services/notifier/static/build ./services/notifier/static/build
RUN pip install --no-deps --no-build-isolation . && rm -rf build ./*.egg-info

COPY alembic.ini ./
COPY migrations ./migrations

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin daybreak \
    && mkdir -p /var/lib/daybreak && chown daybreak /var/lib/daybreak
USER daybreak

EXPOSE 8001 8002 8003 8004
CMD ["daybreak", "--help"]
