# One image for every Pantau Pangan service; docker-compose picks the service with its command.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SERVICE_HOST=0.0.0.0 \
    LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY services ./services
COPY contracts ./contracts
COPY scenarios ./scenarios
COPY data ./data
# Editable install keeps contracts/ and data/ where the code looks for them (/app).
RUN pip install -c constraints.txt -e . \
    && useradd --system --uid 10001 --home-dir /app pantau \
    && mkdir -p /app/.local/simulator /app/.local/processor && chown -R pantau /app/.local
USER pantau
CMD ["pantau", "--help"]
