# One application node: daphne serving mcpsite.asgi (the MCP endpoint, GraphQL, the admin).
# deploy/docker-compose.yml runs three of them behind Traefik; see docs/deploy.md.
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=mcpsite.settings \
    DJANGO_STATIC_ROOT=/app/staticfiles

# The process runs as this user; the code it runs stays root's, read-only to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# GraphiQL's npm packages, as pinned in graphql_app/graphiql/package-lock.json; only collectstatic reads them.
FROM node:22-slim AS graphiql
WORKDIR /graphiql
COPY graphql_app/graphiql/package.json graphql_app/graphiql/package-lock.json ./
RUN npm ci --no-audit --no-fund

# The static files under hashed names, with gzip copies: the nodes serve them (mcpsite/static_files.py).
FROM app AS static
COPY --from=graphiql /graphiql/node_modules graphql_app/graphiql/node_modules
# DJANGO_DEBUG=1 only so that settings need no secret key while building; it is not kept.
RUN DJANGO_DEBUG=1 python manage.py collectstatic --noinput

# The node: the application and the collected files, without node_modules or anything else the build made.
FROM app
COPY --from=static /app/staticfiles /app/staticfiles

USER app
EXPOSE 8000
# Exec form: daphne (mcpsite/http_server.py) is PID 1's child under `init: true` and gets SIGTERM itself,
# so the node drains (sessions_app/cluster/shutdown.py) before it exits.
ENTRYPOINT ["python", "-m", "mcpsite.http_server", "-b", "0.0.0.0", "-p", "8000", "mcpsite.asgi:application"]
