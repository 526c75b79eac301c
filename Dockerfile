# syntax=docker/dockerfile:1
#
# docker build -t elevenlabs-exporter .
# docker run --rm -p 9142:9142 elevenlabs-exporter --demo
# docker run --rm -p 9142:9142 -e ELEVENLABS_API_KEY elevenlabs-exporter

# Build the exporter's wheel and the wheels of its dependencies.
FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

# Install only those wheels: no source tree, no compiler, no network at this stage.
FROM python:3.11-slim
# Keep VERSION equal to the version in pyproject.toml.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="elevenlabs-exporter" \
      org.opencontainers.image.description="Prometheus exporter for ElevenLabs credit usage" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ELEVENLABS_EXPORTER_STATE_FILE=/var/lib/elevenlabs-exporter/state.json

RUN groupadd --system --gid 10001 exporter \
 && useradd --system --no-log-init --uid 10001 --gid 10001 \
      --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin exporter \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/elevenlabs-exporter

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels \
      "elevenlabs-exporter==${VERSION}"

USER 10001:10001
# The ledger's state file lives here: mount a volume so that restarts keep it.
VOLUME ["/var/lib/elevenlabs-exporter"]
EXPOSE 9142

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:9142/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# The API key comes from ELEVENLABS_API_KEY, or from a key file named in a config file
# (workspaces[].api_key_file) passed with --config.file. Arguments go after the image
# name, e.g. --demo or --config.file=/etc/elevenlabs-exporter/config.yml.
ENTRYPOINT ["elevenlabs-exporter"]
CMD []
