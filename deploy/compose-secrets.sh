#!/usr/bin/env bash
# Creates the secret files deploy/compose.yaml mounts, once: random keys and passwords, and empty files for the
# Slack webhook URL and the PagerDuty routing key (paste yours in). Existing files are kept.
#   deploy/compose-secrets.sh [DIR]   (default deploy/secrets; mode 0600, never committed)
# Prints the client API key once: squad stores only its SHA-256.
# The directory is private (0700); the files in it are 0644 because Compose bind-mounts each one into containers
# whose services run as their own non-root users (Prometheus as nobody, Grafana as 472), which must read them.
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p -m 0700 "$dir"

random() { openssl rand -hex "$1"; }
sha256() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }
# make NAME VALUE: writes the file without a trailing newline, unless it exists.
make() { [[ -e $dir/$1 ]] || { printf '%s' "$2" >"$dir/$1" && chmod 0644 "$dir/$1"; }; }

make squad_metrics_key "$(random 24)"
make postgres_password "$(random 24)"
make grafana_admin_password "$(random 16)"
make slack_webhook_url ""
make pagerduty_routing_key ""
if [[ ! -e $dir/squad.env ]]; then
  app_key=$(random 24)
  {
    echo "SQUAD_APP_KEY_SHA256=$(sha256 "$app_key")"
    echo "SQUAD_METRICS_KEY_SHA256=$(sha256 "$(cat "$dir/squad_metrics_key")")"
  } >"$dir/squad.env"
  chmod 0600 "$dir/squad.env" # read by Compose itself, on the host
  echo "compose-secrets: the API key for clients (shown once, keep it): $app_key"
fi
echo "compose-secrets: secrets in $dir; fill in slack_webhook_url and pagerduty_routing_key"
