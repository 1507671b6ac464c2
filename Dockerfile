# Competition image of the WBCBench bundle; competition.yaml's docker_image and ORGANIZERS.md build this tag:
#   docker build -t docker.io/wbcbench/bundle:2026.11-torch2.14.1 .
# Python 3.11.7 is the interpreter the pins are tested with (.venv). The PyPI torch wheels are CUDA builds
# (they pull the nvidia-* runtime wheels), so the same image runs on CodaBench GPU workers and on CPUs.
FROM python:3.11.7-slim-bookworm

LABEL org.opencontainers.image.ref.name="docker.io/wbcbench/bundle:2026.11-torch2.14.1" \
      org.opencontainers.image.title="WBCBench CodaBench bundle runtime"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY requirements.txt constraints.txt /tmp/
RUN python -m pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt \
    && rm /tmp/requirements.txt /tmp/constraints.txt

# The worker mounts the program here and starts in it.
WORKDIR /app/program
