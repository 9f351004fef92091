# The product's image: the package and exactly the locked dependencies, run as a non-root
# user. One image, one process per container:
#   Dagster webserver    bandit-pipeline dagster webserver --host 0.0.0.0 --port 3000
#   Dagster daemon       bandit-pipeline dagster daemon
#   Dagster code server  bandit-pipeline dagster code-server --host 0.0.0.0 --port 4000
#   serving              bandit-pipeline serve --host 0.0.0.0 --port 8080
# Every container needs the BANDIT_* settings; the Dagster ones also DAGSTER_PG_* (the
# instance) and DAGSTER_HOME (a writable folder; set below). docs/deployment.md says more.
# The test suite checks this file's paths and commands but does not build the image.

FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements/runtime.lock requirements/runtime.lock
RUN python -m venv /opt/bandit \
 && /opt/bandit/bin/pip install --no-cache-dir --no-deps --require-hashes \
      -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY bandit_pipeline bandit_pipeline
COPY sql sql
RUN /opt/bandit/bin/pip install --no-cache-dir --no-deps . \
 && /opt/bandit/bin/pip check

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 bandit
COPY --from=build /opt/bandit /opt/bandit
ENV PATH=/opt/bandit/bin:$PATH \
    DAGSTER_HOME=/home/bandit/dagster_home \
    PYTHONUNBUFFERED=1
USER bandit
WORKDIR /home/bandit
EXPOSE 3000 4000 8080
ENTRYPOINT ["bandit-pipeline"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
