#!/usr/bin/env bash
# image.sh SQUAD_BIN SOURCE_DIR: builds deploy/Dockerfile with Debian's podman and runs the image. No image
# registry is reachable, so the debian:12-slim base is made here with debootstrap (once; kept in podman's store).
#  - The build stage is built up to its CMake configure (its packages and copied sources suffice), not compiled:
#    compiling squad in Release costs many CPU-minutes, more than a test in the suite should spend.
#  - The final stage is built as written, except that it copies SQUAD_BIN (this build of the same sources) in
#    place of the build stage's binary; then the container runs: health check, non-root user, every shared
#    library found, /healthz, /readyz, /metrics with its key, and a clean drain on SIGTERM (`podman stop`).
# Needs root (debootstrap; rootful podman) and podman, runc, debootstrap (deploy/setup.sh deps installs them).
set -euo pipefail
bin=$(realpath "$1") src=$(realpath "$2")
fail() { echo "FAILED: $*" >&2; exit 1; }
if [[ $(id -u) != 0 ]]; then # as deploy/setup.sh does; a sudo that asks for a password fails the test
  command -v sudo >/dev/null || fail "needs root (debootstrap, rootful podman) and there is no sudo"
  exec sudo -n "$0" "$@"
fi
for t in podman:podman runc:runc debootstrap:debootstrap; do
  command -v "${t%%:*}" >/dev/null || fail "${t%%:*} is not installed (Debian package ${t#*:}; deploy/setup.sh deps)"
done
[[ -x $bin ]] || fail "no squad binary at $bin"

# runc and cgroupfs: crun refuses hosts with hybrid cgroups, and there may be no systemd to manage them. Limits
# below the host's hard ones, which podman's defaults (1048576 files) may exceed.
podman=(podman --runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
tag=localhost/squad-ops-test:$$
work=$(mktemp -d /tmp/squad-ops-image.XXXXXX)
name=squad-ops-test-$$
cleanup() {
  "${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
  "${podman[@]}" rmi -f "$tag" "$tag-build" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$src/deploy/Dockerfile" | sort -u)
[[ $base == debian:12-slim ]] || fail "expected every stage FROM debian:12-slim, got: $base"
if ! "${podman[@]}" image exists "localhost/$base"; then
  echo "image.sh: making $base with debootstrap (minbase bookworm)"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap: $(tail -5 "$work/debootstrap.log")"
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | "${podman[@]}" import - "localhost/$base" >/dev/null 2>&1
  rm -rf "$work/rootfs"
fi
build() { # build CONTEXT TAG: the Containerfile in CONTEXT; docker format keeps HEALTHCHECK
  "${podman[@]}" build --pull=never --format docker --network host "${limits[@]}" -t "$2" "$1" >"$work/build.log" 2>&1 ||
    fail "podman build: $(tail -20 "$work/build.log")"
}

# The build stage, its compile step cut to the configure command before its first &&.
mkdir "$work/src"
awk '/^FROM / && seen++ { exit } { print }' "$src/deploy/Dockerfile" |
  awk '/^RUN cmake -S/ { sub(/ *&&.*| *\\$/, ""); print; skip = 1; next } skip && /\\$/ { next } skip { skip = 0; next } { print }' \
    >"$work/src/Containerfile"
grep -q '^RUN cmake -S .* -DCMAKE_BUILD_TYPE=Release' "$work/src/Containerfile" || fail "no cmake configure line in the build stage"
(cd "$src" && cp -r --parents CMakeLists.txt cmake actors runtime "$work/src/")
echo "image.sh: podman build (build stage, through cmake configure)"
build "$work/src" "$tag-build"

# The final stage with this binary in place of the build stage's.
mkdir "$work/final"
awk '/^FROM / { n++ } n >= 2 { print }' "$src/deploy/Dockerfile" |
  sed 's#^COPY --from=build /src/build/runtime/app/squad /usr/local/bin/squad$#COPY squad /usr/local/bin/squad#' \
    >"$work/final/Containerfile"
grep -q '^COPY squad /usr/local/bin/squad$' "$work/final/Containerfile" || fail "no COPY --from=build of the binary"
(cd "$src" && cp -r --parents personas config/workflows deploy/squad.yaml "$work/final/")
cp "$bin" "$work/final/squad"
echo "image.sh: podman build (final stage)"
build "$work/final" "$tag"

inspect() { "${podman[@]}" image inspect --format "$1" "$tag"; }
[[ $(inspect '{{.Config.User}}') == squad ]] || fail "the image's user is $(inspect '{{.Config.User}}')"
[[ $(inspect '{{json .Config.ExposedPorts}}') == *'"8080/tcp"'* ]] || fail "8080 is not exposed"
[[ $(inspect '{{json .Config.Healthcheck}}') == *healthz* ]] || fail "no HEALTHCHECK on /healthz"

# Run it: no network but its own loopback, where the health check and the requests below go. The image's
# HEALTHCHECK is run on demand (`podman healthcheck run`): podman's own timer for it needs systemd (without it,
# podman logs an error and goes on; run.log keeps that away from the test's output).
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
key=ops-image-metrics-key-0123456789
"${podman[@]}" run -d --name "$name" --network none "${limits[@]}" -e SQUAD_APP_KEY_SHA256="$(sha app-key-0123456789)" \
  -e SQUAD_METRICS_KEY_SHA256="$(sha "$key")" "$tag" >"$work/run.log" 2>&1 || fail "podman run: $(cat "$work/run.log")"
deadline=$((SECONDS + 30))
until "${podman[@]}" healthcheck run "$name" >/dev/null 2>&1; do
  ((SECONDS < deadline)) || fail "not healthy within 30 s: $("${podman[@]}" logs "$name" 2>&1 | tail -20)"
  [[ $("${podman[@]}" inspect --format '{{.State.Running}}' "$name") == true ]] ||
    fail "the container exited: $("${podman[@]}" logs "$name" 2>&1 | tail -20)"
  sleep 0.2 # poll interval
done
inside() { "${podman[@]}" exec "$name" "$@"; }
[[ $(inside id -u) == 10001 ]] || fail "runs as uid $(inside id -u)"
libs=$(inside ldd /usr/local/bin/squad) || fail "ldd in the image: $libs"
[[ $libs != *"not found"* ]] || fail "shared libraries missing in the image: $libs"
get() { # get PATH [HEADER]: the raw HTTP answer, over bash's /dev/tcp inside the container
  inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && printf "GET %s HTTP/1.1\r\nHost: x\r\n%bConnection: close\r\n\r\n" "$0" "$1" >&3 && cat <&3' "$1" "${2:-}"
}
status() { local a; a=$(get "$@") && echo "${a%%$'\r'*}"; } # the status line
[[ $(status /healthz) == *' 200 '* ]] || fail "/healthz: $(status /healthz)"
[[ $(status /readyz) == *' 200 '* ]] || fail "/readyz: $(status /readyz)"
[[ $(status /metrics) == *' 401 '* ]] || fail "/metrics without its key: $(status /metrics)"
# The limiters report their gauges once they have started, just after the server listens.
deadline=$((SECONDS + 15))
until [[ $(get /metrics "Authorization: Bearer $key\r\n") == *$'\nsquad_limiter_window_cap{provider="sim-steady"} 10\n'* ]]; do
  ((SECONDS < deadline)) || fail "/metrics with its key: $(get /metrics "Authorization: Bearer $key\r\n" | head -20)"
  sleep 0.2 # poll interval
done
"${podman[@]}" stop -t 45 "$name" >"$work/stop.log" 2>&1 || fail "podman stop: $(cat "$work/stop.log")"
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
[[ $code == 0 ]] || fail "exit code $code after SIGTERM: $("${podman[@]}" logs "$name" 2>&1 | tail -20)"
logs=$("${podman[@]}" logs "$name" 2>&1)
[[ $logs == *'SIGTERM: draining'* ]] || fail "no drain on SIGTERM: $logs"
echo "image.sh: the image builds (final stage; build stage through configure), runs healthy as uid 10001, serves and drains"
