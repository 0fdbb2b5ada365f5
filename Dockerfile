# One image for both services (and the one-shot tasks): the entrypoint is the console script,
# the command picks the service, e.g. `docker run IMAGE exporter` or `docker run IMAGE bridge`.
#
# Stage 1 builds the wheel and installs it with its dependencies into a virtualenv; stage 2
# copies only that virtualenv onto a slim base, so no compiler, pip cache or source tree ships.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/passiton
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY bridge ./bridge
COPY console ./console
COPY passiton_common ./passiton_common
COPY passiton_monitoring ./passiton_monitoring
# pip compiles the bytecode here: the containers run with a read-only root filesystem
RUN /opt/passiton/bin/pip install . \
 && /opt/passiton/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="passiton-monitoring" \
      org.opencontainers.image.description="PassItOn Prometheus exporter and Alertmanager bridge"
RUN groupadd --system --gid 10001 passiton \
 && useradd --system --uid 10001 --gid passiton --home-dir /var/lib/passiton \
      --shell /usr/sbin/nologin passiton \
 && mkdir -p /var/lib/passiton \
 && chown passiton:passiton /var/lib/passiton
COPY --from=build /opt/passiton /opt/passiton
ENV PATH=/opt/passiton/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PASSITON_STATE_DIR=/var/lib/passiton
WORKDIR /var/lib/passiton
USER 10001:10001
EXPOSE 9820 9821
# Both services answer /-/ready (the compose file's health checks pick the port) and stop
# cleanly on SIGTERM.
ENTRYPOINT ["passiton-monitoring"]
CMD ["--help"]
