# CCGate container image: Debian's python3 in a virtualenv, run as a non-root user.
#   docker build -t ccgate .        (here: buildah bud --isolation=chroot --pull=never -t ccgate .)
#   docker run -d -p 3000:3000 -v ccgate-config:/config -v ccgate-data:/data --stop-timeout 40 ccgate
# The first start writes /config and prints the admin password and a tenant key to the log, once
# (docker logs <container>); set CCGATE_ADMIN_PASSWORD to choose the password instead.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
# Wheels only (gevent, orjson and greenlet ship them for this Python): no compiler in the image.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -r /tmp/requirements.txt

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ccgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin ccgate \
 && mkdir -p /config /data \
 && chown ccgate:ccgate /config /data \
 && chmod 0700 /config /data
COPY --from=build /opt/venv /opt/venv
COPY app.py cli.py requirements.txt /app/
COPY ccgate /app/ccgate
COPY config/*.example /app/config/
COPY templates /app/templates
COPY static /app/static
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    CCGATE_CONFIG_DIR=/config \
    CCGATE_DATA_DIR=/data \
    PORT=3000 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER ccgate
VOLUME ["/config", "/data"]
EXPOSE 3000
# SIGTERM starts the graceful drain (server.shutdownGrace, 30 s by default): give the container
# a stop timeout above it (docker run --stop-timeout 40; compose.yml sets stop_grace_period).
STOPSIGNAL SIGTERM
# Healthy while /health answers (200 for ok and degraded; 503 when no upstream is usable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=4)"]
CMD ["python3", "app.py", "--host", "0.0.0.0"]
