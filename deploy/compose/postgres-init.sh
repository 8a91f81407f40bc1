#!/bin/sh
# Runs once, when the postgres volume is new (/docker-entrypoint-initdb.d): a database for Synapse next to the
# bot's. Synapse requires the C collation, so the database is made from template0 with LC_COLLATE/LC_CTYPE 'C'.
# SYNAPSE_DB_USER and SYNAPSE_DB_NAME default to "synapse" (deploy/compose/synapse/homeserver.yaml).
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$SYNAPSE_DB_PASSWORD" -v user="${SYNAPSE_DB_USER:-synapse}" \
  -v db="${SYNAPSE_DB_NAME:-synapse}" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
SQL
