# roomd container image. Docker Compose (docker-compose.yml) runs it next to Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROOMD_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000

WORKDIR /opt/roomd
COPY setup.py pyproject.toml README.md ./
COPY roomd ./roomd
COPY roomctl ./roomctl
COPY protocol ./protocol
RUN pip install . && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin roomd

USER roomd
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '3000'), timeout=2)"]
ENTRYPOINT ["roomd"]
