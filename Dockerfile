# stock-gateway: the worker (`gateway run`) in a slim image, as a non-root user.
# The configuration and the store live on volumes: mount your gateway.toml at /etc/gateway/gateway.toml
# (config/docker.toml is a starting point) and keep /var/lib/gateway (SQLite store, drop folders, staging).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_CONFIG=/etc/gateway/gateway.toml

RUN useradd --system --create-home --uid 10001 --home-dir /var/lib/gateway gateway \
    && mkdir -p /etc/gateway \
    && chown gateway:gateway /var/lib/gateway

WORKDIR /opt/stock-gateway
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install . && rm -rf /root/.cache
COPY config/docker.toml /etc/gateway/gateway.toml

VOLUME ["/etc/gateway", "/var/lib/gateway"]
USER gateway
EXPOSE 8081

# /healthz answers while the worker runs (the [worker] health endpoint of the configuration)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]

ENTRYPOINT ["gateway", "run"]
