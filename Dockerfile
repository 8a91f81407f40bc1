FROM python:3.11-slim
WORKDIR /app
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
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/zsm-bot zsm && mkdir -p /var/lib/zsm-bot \
    && chown zsm /var/lib/zsm-bot
USER zsm
ENV ZSM_BOT_CONFIG=/etc/zsm-bot/zsm-bot.toml
EXPOSE 8080
ENTRYPOINT ["zsm-bot"]
CMD ["run"]
