#!/bin/sh
# One-shot: a self-signed certificate for the mail catcher, made once in the mailcerts volume. The bot trusts
# exactly this certificate (mail.ca_bestand), so its STARTTLS to "mail" is verified like a real relay's.
set -eu
dir=${1:-/certs}
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
  echo "certificaat bestaat al: $dir/cert.pem"
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=mail" \
  -addext "subjectAltName=DNS:mail,DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 0644 "$dir/cert.pem" "$dir/key.pem"
echo "certificaat gemaakt: $dir/cert.pem"
