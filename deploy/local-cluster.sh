#!/usr/bin/env bash
# The multi-node topology on this machine, with one command (docs/scaling.md): two broker nodes and one
# API node on one PostgreSQL, behind HAProxy with deploy/haproxy.cfg. Devices connect to :1883, HTTP on
# :8080 (the load balancer); the nodes listen on 1884, 1885 (MQTT) and 8081 (HTTP).
# The database is DATABASE_URL, or else the embedded PostgreSQL in ./var, which the three share.
# Needs haproxy (Debian: apt-get install haproxy). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v haproxy > /dev/null || { echo "haproxy is not installed: apt-get install haproxy" >&2; exit 1; }
make --no-print-directory install
serve=".venv/bin/qris-soundbox serve"
trap 'kill $(jobs -p) 2> /dev/null; wait' EXIT

# The API node first: it creates (or joins) the database, migrates it and seeds the demo data.
# Credentials it issues send devices to the load balancer, not to a node.
MQTT_PUBLIC_HOST=127.0.0.1 MQTT_PUBLIC_PORT=1883 $serve --only api --only worker --demo --http-port 8081 &
until .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/health')" 2> /dev/null; do
    sleep 0.5
done
$serve --only broker --mqtt-host 127.0.0.1 --mqtt-port 1884 &
$serve --only broker --mqtt-host 127.0.0.1 --mqtt-port 1885 &

echo "load balancer: mqtt://127.0.0.1:1883 (devices), http://127.0.0.1:8080 (API, /ui, /schema/swagger)"
MQTT_LB_BIND=127.0.0.1:1883 HTTP_LB_BIND=127.0.0.1:8080 \
    BROKER_1=127.0.0.1:1884 BROKER_2=127.0.0.1:1885 API_1=127.0.0.1:8081 \
    haproxy -db -f deploy/haproxy.cfg
