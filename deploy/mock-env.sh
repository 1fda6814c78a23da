#!/usr/bin/env bash
# Prints `export MOCK_<NAME>_URL=...` lines for the upstreams in a squad-mock-provider ports file
# ({"name": port, ...}), with the base URL each API expects: .../v1 for OpenAI-shaped upstreams, the bare
# origin for the Anthropic-shaped ones named in ANTHROPIC_UPSTREAMS (default: deep, as in mock-upstreams.yaml).
#   eval "$(deploy/mock-env.sh /tmp/mock-ports.json)"
set -euo pipefail
ports_file=${1:?usage: mock-env.sh PORTS_FILE}
anthropic=" ${ANTHROPIC_UPSTREAMS:-deep} "
tr -d '{} \n' <"$ports_file" | tr ',' '\n' | while IFS=: read -r name port || [[ -n ${name:-} ]]; do
  name=${name//\"/}
  [[ -n $name ]] || continue
  suffix=/v1
  [[ $anthropic == *" $name "* ]] && suffix=""
  var=$(tr 'a-z-' 'A-Z_' <<<"$name")
  echo "export MOCK_${var}_URL=http://127.0.0.1:${port}${suffix}"
done
