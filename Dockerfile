# One image for api, worker and beat. dlib comes from the dlib-bin wheel:
# nothing is compiled here.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
# /data is CONSENTGATE_DATA_DIR in docker-compose.yml: a named volume mounted there takes
# the owner of the image's directory, so beat can write its schedule as the app user.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv==0.13.9 \
    && useradd --create-home --uid 10001 consentgate \
    && mkdir -p /data && chown consentgate /data
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev && chown -R consentgate /app
USER consentgate
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 8000
CMD ["consentgate", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
