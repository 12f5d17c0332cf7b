# The backend (gunicorn, as `make run` starts it); compose.yaml runs the agent from the same image
# with `python agent/agent.py`. Settings come from the environment (no .env in the image).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# pycurl and psycopg install as wheels with their C libraries inside: no compiler, no apt-get.
COPY requirements.txt ./
RUN pip install -r requirements.txt

RUN useradd --system --uid 10001 --home-dir /app --no-create-home outage \
    && mkdir /data && chown outage:outage /data
COPY common/ common/
COPY backend/ backend/
COPY agent/ agent/
COPY targets.example.yaml ./

# In a container: listen on every interface; write the database, logs and spool in /data.
ENV FLASK_HOST=0.0.0.0 \
    FLASK_PORT=5000 \
    DATABASE_URL=sqlite:////data/notifications.db \
    BACKEND_LOG_FILE=/data/server.log \
    AGENT_LOG_FILE=/data/agent.log \
    AGENT_SPOOL_FILE=/data/agent-spool.db \
    AGENT_TARGETS_CACHE=/data/targets-cache.json
VOLUME /data
USER outage
EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FLASK_PORT', '5000'), timeout=4)"]
CMD ["python", "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"]
