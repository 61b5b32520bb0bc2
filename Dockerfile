FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY schema ./schema
COPY db ./db
COPY analytics ./analytics
COPY alembic ./alembic
RUN pip install . && useradd --system --uid 10001 collabx
USER collabx

EXPOSE 8000
CMD ["collabx", "serve"]
