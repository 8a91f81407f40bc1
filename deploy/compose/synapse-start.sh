#!/bin/sh
# Entry point of the synapse service in docker-compose.yml. Runs as root in the Synapse image: writes the shared
# registration secret from the environment where homeserver.yaml expects it, hands /data to Synapse's user (991),
# creates the signing key on the first start, then starts Synapse through the image's own start.py (which drops
# to user 991). The configuration is deploy/compose/synapse/homeserver.yaml, mounted read-only.
set -eu
: "${SYNAPSE_REGISTRATION_SHARED_SECRET:?SYNAPSE_REGISTRATION_SHARED_SECRET ontbreekt}"
: "${PGPASSWORD:?PGPASSWORD ontbreekt}"
umask 077
printf '%s' "$SYNAPSE_REGISTRATION_SHARED_SECRET" > /data/registration_shared_secret
chown -R 991:991 /data
gosu 991:991 python -m synapse.app.homeserver -c /zsm/homeserver.yaml --generate-keys
exec /start.py run -c /zsm/homeserver.yaml
