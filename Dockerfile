# The bot's image: the wheel is built in one stage and installed (not editable, with its declared dependencies)
# into a virtual environment in the next, exactly as an operator installs a release. tests/test_compose_as_image.py
# does the same outside the checkout and runs the result with the compose configuration.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY cli cli
COPY commands commands
COPY config config
COPY domain domain
COPY integrations integrations
COPY services services
COPY storage storage
COPY web web
COPY devtools devtools
RUN pip wheel --no-cache-dir --no-deps -w /dist .
# The versions the suite was run against (scripts/lock): an image built later gets the same ones.
COPY constraints/bot.txt /dist/constraints.txt

FROM python:3.11.11-slim-bookworm
COPY --from=build /dist /dist
RUN python -m venv /opt/zsm-bot && /opt/zsm-bot/bin/pip install --no-cache-dir -c /dist/constraints.txt /dist/*.whl \
    && rm -rf /dist \
    && useradd --system --home /var/lib/zsm-bot zsm && mkdir -p /var/lib/zsm-bot && chown zsm /var/lib/zsm-bot
ENV PATH=/opt/zsm-bot/bin:$PATH ZSM_BOT_CONFIG=/etc/zsm-bot/zsm-bot.toml
USER zsm
WORKDIR /var/lib/zsm-bot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=10s --start-period=60s --retries=6 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=5)"]
ENTRYPOINT ["zsm-bot"]
CMD ["run"]
