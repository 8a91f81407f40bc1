FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY commands commands
COPY domain domain
COPY integrations integrations
COPY storage storage
COPY devtools devtools
COPY config config
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/zsm-bot zsm && mkdir -p /var/lib/zsm-bot \
    && chown zsm /var/lib/zsm-bot
USER zsm
ENV ZSM_BOT_CONFIG=/etc/zsm-bot/zsm-bot.toml
EXPOSE 8080
ENTRYPOINT ["zsm-bot"]
CMD ["run"]
