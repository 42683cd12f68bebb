#!/usr/bin/env bash
# Builds the container image from deploy/Dockerfile and runs it the ways users do (CI runs this):
#   - the OCI labels, a numeric non-root USER, a HEALTHCHECK, the size (at most MAX_MB);
#   - `--demo` serves /metrics on a published loopback port, as uid 65532;
#   - `podman healthcheck run` passes, and fails when the probe's address is not the exporter's;
#   - SIGTERM: exit 0 within 10 s;
#   - `--read-only`, with the config and two key files mounted read-only, against the simulated
#     gateway (cdss-sim, in its own container: the exporter shares its network namespace, so every
#     request stays on that loopback), prechecks with those keys.
# The bases: BUILDER_IMAGE and RUNTIME_IMAGE if set (e.g. the Dockerfile's defaults, where docker.io
# and gcr.io can be reached), else made here from Debian's packages (scripts/image/bases.sh) and
# the build runs without a network (KEEP_BASES=1: reuse bases made earlier). Ports are published
# on 127.0.0.1 only.
# Needs podman (root), runc, mmdebstrap, curl and cargo. Usage: bash scripts/image/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/cdss-precheck-exporter:check}
MAX_MB=${MAX_MB:-50}
PREFIX=cdss-image-check-$$
work=$(mktemp -d)
cleanup() {
    for c in ro sim unhealthy demo; do podman rm --force --time 0 "$PREFIX-$c" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# This machine's podman: runc with cgroupfs (cgroups are in hybrid mode), and no raised
# RLIMIT_NOFILE (neither runtime may raise it here). A CONTAINERS_CONF set by the caller wins.
if [ -z "${CONTAINERS_CONF:-}" ]; then
    printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
        > "$work/containers.conf"
    export CONTAINERS_CONF="$work/containers.conf"
fi
echo "--- $(podman --version), $(buildah --version | cut -d' ' -f1-3), $(mmdebstrap --version), $(runc --version | head -1)"

network=()
if [ -n "${KEEP_BASES:-}" ] && [ -z "${BUILDER_IMAGE:-}${RUNTIME_IMAGE:-}" ] &&
    podman image exists localhost/cdss-builder-base:bookworm &&
    podman image exists localhost/cdss-runtime-base:bookworm; then
    # Bases made earlier on this machine (for repeated local runs; CI makes them afresh).
    BUILDER_IMAGE=localhost/cdss-builder-base:bookworm RUNTIME_IMAGE=localhost/cdss-runtime-base:bookworm
    network=(--network none)
elif [ -z "${BUILDER_IMAGE:-}" ] || [ -z "${RUNTIME_IMAGE:-}" ]; then
    start=$SECONDS
    while IFS='=' read -r name value; do
        case "$name" in BUILDER_IMAGE | RUNTIME_IMAGE) printf -v "$name" '%s' "$value" ;; esac
    done < <(bash scripts/image/bases.sh)
    echo "bases made in $((SECONDS - start)) s"
    # The builder base holds the crates (vendored): the build needs no network.
    network=(--network none)
fi
for base in "$BUILDER_IMAGE" "$RUNTIME_IMAGE"; do
    echo "base $base: $(podman image inspect --format '{{.Size}}' "$base" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
done
if mnt=$(podman image mount "$RUNTIME_IMAGE" 2>/dev/null) && [ -d "$mnt/var/lib/dpkg/status.d" ]; then
    echo "runtime base packages: $(cd "$mnt/var/lib/dpkg/status.d" && for p in *; do
        printf '%s=%s ' "$p" "$(sed -n 's/^Version: //p' "$p")"; done)"
fi
[ -n "${mnt:-}" ] && podman image unmount "$RUNTIME_IMAGE" >/dev/null

echo "--- podman build -f deploy/Dockerfile"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
license=$(sed -n 's/^license = "\(.*\)"$/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD)
created=$(git log -1 --format=%cI)
start=$SECONDS
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# --layers=false: no 1.2 GB build-stage image left behind; cargo's target/ is a cache mount,
# kept between builds on this machine either way.
podman build --quiet --layers=false --format docker "${network[@]}" -f deploy/Dockerfile \
    --build-arg BUILDER_IMAGE="$BUILDER_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
    --build-arg CDSS_VERSION="$version" --build-arg CDSS_BUILD_REVISION="$revision" \
    --build-arg CDSS_BUILD_CREATED="$created" -t "$IMAGE" . >/dev/null
echo "built $IMAGE in $((SECONDS - start)) s"
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
fi

echo "--- the image's configuration"
label() { podman image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMAGE"; }
for key in title description source; do
    [ -n "$(label "$key")" ] || fail "label org.opencontainers.image.$key is missing"
done
for expected in "title=cdss-precheck-exporter" "version=$version" "revision=$revision" \
    "created=$created" "licenses=$license"; do
    [ "$(label "${expected%%=*}")" = "${expected#*=}" ] ||
        fail "label org.opencontainers.image.${expected%%=*} is '$(label "${expected%%=*}")', not '${expected#*=}'"
done
ok "OCI labels (version $version, revision $revision, created $created)"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[[ "$user" =~ ^[0-9]+(:[0-9]+)?$ ]] && [ "${user%%:*}" != 0 ] || fail "USER is '$user', not a numeric non-root user"
ok "USER $user"
health=$(podman image inspect --format '{{.HealthCheck.Test}}' "$IMAGE")
[[ "$health" == *"/usr/local/bin/cdss-precheck-exporter healthcheck"* ]] || fail "HEALTHCHECK is '$health'"
ok "HEALTHCHECK $health"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
[ "$size" -le $((MAX_MB * 1000 * 1000)) ] || fail "the image is $((size / 1000000)) MB, over $MAX_MB MB"
ok "size $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }') (limit $MAX_MB MB)"

# Runs a container detached, its name prefixed; never reaches a metadata API. podman's messages
# go to a file, shown if it fails: without systemd it logs that it cannot schedule the
# HEALTHCHECK's timer (`podman healthcheck run` below runs it on demand).
run() {
    local name=$1
    shift
    podman run --detach --name "$PREFIX-$name" -e NCLOUD_METADATA_API_ENDPOINT=http://127.0.0.1:9 \
        "$@" >/dev/null 2>"$work/podman-$name.log" || { cat "$work/podman-$name.log" >&2; fail "podman run ($name)"; }
}
# `podman healthcheck run` (its exit code), the same messages kept aside.
healthcheck() { podman healthcheck run "$PREFIX-$1" >/dev/null 2>>"$work/podman-$1.log"; }
# Polls http://ADDR/metrics until it has the line $2, for 30 s.
metrics_until() {
    local _
    for _ in $(seq 150); do
        if curl -fsS --max-time 2 "http://$1/metrics" 2>/dev/null | grep -qxF "$2"; then return 0; fi
        sleep 0.2
    done
    curl -sS --max-time 2 "http://$1/metrics" | grep '^cdss_' | head -20 >&2 || true
    fail "http://$1/metrics never showed: $2"
}

echo "--- --demo on a published loopback port, read-only"
run demo --read-only -p 127.0.0.1::9787 "$IMAGE" --demo
addr=$(podman port "$PREFIX-demo" 9787/tcp | head -1)
metrics_until "$addr" 'cdss_precheck_ok{cluster="orders-kafka",region="KR"} 1'
metrics_until "$addr" "cdss_exporter_build_info{revision=\"$revision\",version=\"$version\"} 1"
ok "--demo serves /metrics on $addr"
pid=$(podman inspect --format '{{.State.Pid}}' "$PREFIX-demo")
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$uids" = "65532 65532 65532 65532" ] && [ "$gids" = "65532 65532 65532 65532" ] ||
    fail "the exporter runs as uid $uids, gid $gids"
ok "runs as uid and gid 65532"
healthcheck demo || fail "podman healthcheck run: unhealthy"
ok "podman healthcheck run: healthy"

echo "--- HEALTHCHECK when the exporter is not where it looks"
# The exporter listens on 9788 (flag); the probe reads the variable, 9787.
run unhealthy -e CDSS_WEB_LISTEN_ADDRESS=:9787 "$IMAGE" --demo --web.listen-address=:9788
sleep 1
if healthcheck unhealthy; then fail "healthy, yet nothing listens on 9787"; fi
why=$(podman inspect --format '{{range .State.Health.Log}}{{.Output}}{{end}}' "$PREFIX-unhealthy")
[[ "$why" == "unhealthy: http://127.0.0.1:9787/-/healthy: "* ]] || fail "the probe's reason: '$why'"
ok "podman healthcheck run: unhealthy; the probe said: ${why%%;*}"
podman rm --force --time 0 "$PREFIX-unhealthy" >/dev/null 2>&1

echo "--- SIGTERM"
start=$(date +%s.%N)
podman kill --signal TERM "$PREFIX-demo" >/dev/null
code=$(timeout 15 podman wait "$PREFIX-demo" 2>>"$work/podman-demo.log") || fail "still running 15 s after SIGTERM"
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
awk -v t="$took" 'BEGIN { exit !(t <= 10) }' || fail "took $took s to stop"
ok "SIGTERM: exit 0 in $took s"

echo "--- --read-only, config and key files mounted read-only, against cdss-sim"
cargo build --quiet --locked --bin cdss-sim
sim=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/cdss-sim
mkdir -m 0755 "$work/secrets"
access_key="CHECK$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
secret_key=$(head -c 30 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$access_key" > "$work/secrets/access_key"
printf '%s\n' "$secret_key" > "$work/secrets/secret_key"
# Readable by the image's user only, as a mounted secret would be.
chown 65532:65532 "$work/secrets/access_key" "$work/secrets/secret_key"
chmod 0400 "$work/secrets/access_key" "$work/secrets/secret_key"
cat > "$work/config.yaml" <<'YAML'
interval: 2s
timeout: 1s
api_gateway: http://127.0.0.1:18080
credentials:
  access_key_file: /run/secrets/cdss/access_key
  secret_key_file: /run/secrets/cdss/secret_key
clusters:
  - name: orders
    region: KR
    service_group_instance_no: 1
YAML
chmod 0644 "$work/config.yaml"
# The simulated gateway, in the image (its glibc) with the binary mounted; it owns the network
# namespace and the published port.
run sim --read-only -p 127.0.0.1::9787 -v "$sim:/usr/local/bin/cdss-sim:ro" \
    -e NCLOUD_ACCESS_KEY="$access_key" -e NCLOUD_SECRET_KEY="$secret_key" \
    --entrypoint /usr/local/bin/cdss-sim "$IMAGE" --listen 127.0.0.1:18080 --count 1
run ro --read-only --network "container:$PREFIX-sim" \
    -v "$work/config.yaml:/etc/cdss-precheck-exporter/config.yaml:ro" \
    -v "$work/secrets:/run/secrets/cdss:ro" "$IMAGE"
addr=$(podman port "$PREFIX-sim" 9787/tcp | head -1)
metrics_until "$addr" 'cdss_precheck_ok{cluster="orders",region="KR"} 1'
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$PREFIX-ro")" = true ] || fail "not read-only"
healthcheck ro || fail "podman healthcheck run: unhealthy"
podman logs "$PREFIX-ro" 2>&1 | grep -qF "$secret_key" && fail "the secret key is in the logs"
ok "read-only, config and keys mounted read-only: orders prechecked ready through cdss-sim"
echo "image check: all passed"
