#!/usr/bin/env bash
# Image check: builds the static binary, builds the FROM-scratch runtime image from it with podman
# (Containerfile stage `prebuilt`: nothing is pulled), exports the image's root file system and
# runs the binary inside it with chroot, as the image's non-root user, against a real Kafka broker
# (the test suite's, through the `test-broker` example).
#
#   proto-tests/image/check.sh            # needs root (chroot), podman, cargo, java/mvn/openssl
#
# Environment: CARGO_TARGET_DIR (default ./target), PROFILE (cargo profile, default release),
# KO_IMAGE_LIBC=gnu|musl (default: musl when available, else the static glibc fallback),
# KEEP=1 keeps the work directory (rootfs, logs) for a look afterwards.
# Exit: 0 all checks passed; 1 a check failed; 2 a prerequisite is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root_dir/target}
case $CARGO_TARGET_DIR in /*) ;; *) CARGO_TARGET_DIR=$root_dir/$CARGO_TARGET_DIR ;; esac
profile=${PROFILE:-release}

say() { echo "image-check: $*"; }
fail() {
  echo "image-check: FAIL: $*" >&2
  exit 1
}
missing() {
  echo "image-check: cannot run: $*" >&2
  exit 2
}
have() { command -v "$1" >/dev/null 2>&1; }
human() { numfmt --to=iec-i --suffix=B --format=%.1f "$1" 2>/dev/null || echo "$1 B"; }

[ "$(id -u)" -eq 0 ] || missing "chroot needs root (run as root, or in CI)"
for tool in podman cargo chroot tar; do
  have "$tool" || missing "'$tool' is not installed"
done
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -r "$ca_bundle" ] || missing "$ca_bundle not found (apt-get install ca-certificates)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ko-image-check.XXXXXX")
tag=localhost/kafka-observer:check-$$
broker_pid=""
container=""
podman_cmd=(podman --root "$work/storage" --runroot "$work/runroot")

cleanup() {
  local status=$?
  if [ -n "$broker_pid" ]; then
    exec 3>&- || true # closing its stdin stops the broker
    for _ in $(seq 1 60); do
      kill -0 "$broker_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  if [ -n "$container" ]; then
    "${podman_cmd[@]}" rm -f "$container" >/dev/null 2>&1 || true
  fi
  "${podman_cmd[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
  if [ "${KEEP:-}" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. the static binary -----------------------------------------------------------------------
# musl when the rustup target and musl-tools are there (KO_IMAGE_LIBC=gnu forces the fallback,
# KO_IMAGE_LIBC=musl requires musl), else glibc with crt-static. A static glibc binary has no
# dlsym, so getrandom's default backend would open /dev/urandom (absent in the image): the
# fallback selects the getrandom(2) syscall backend (src/lib.rs refuses a build without it).
target=x86_64-unknown-linux-musl
musl_cc=""
for cc in x86_64-linux-musl-gcc musl-gcc; do
  if have "$cc"; then
    musl_cc=$cc
    break
  fi
done
libc=${KO_IMAGE_LIBC:-}
case $libc in "" | gnu | musl) ;; *) missing "KO_IMAGE_LIBC must be gnu or musl, not '$libc'" ;; esac
if [ "$libc" != gnu ] && [ -n "$musl_cc" ] && { rustup target list --installed 2>/dev/null | grep -qx "$target" ||
  rustup target add "$target" >/dev/null 2>&1; }; then
  say "building $target ($profile profile, C compiler $musl_cc)"
  cargo build --locked --profile "$profile" --target "$target" --bin kafka-observer
else
  [ "$libc" != musl ] || missing "KO_IMAGE_LIBC=musl, but the musl target or musl-tools are unavailable"
  target=x86_64-unknown-linux-gnu
  if [ "$libc" = gnu ]; then
    say "KO_IMAGE_LIBC=gnu: building $target with crt-static ($profile profile)"
  else
    say "musl target or musl-tools unavailable: building $target with crt-static ($profile profile)"
  fi
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
    cargo build --locked --profile "$profile" --target "$target" --bin kafka-observer
fi
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
binary=$CARGO_TARGET_DIR/$target/$profile_dir/kafka-observer
[ -x "$binary" ] || fail "no binary at $binary"
if have readelf; then
  if readelf -l "$binary" | grep -q 'INTERP'; then
    fail "$binary is dynamically linked (it has a program interpreter)"
  fi
fi
binary_size=$(stat -c %s "$binary")

# ---- 2. the image (stage `prebuilt`: FROM scratch, nothing pulled) ----------------------------
if ! "${podman_cmd[@]}" info >/dev/null 2>&1; then
  podman_cmd+=(--storage-driver vfs)
  "${podman_cmd[@]}" info >/dev/null 2>&1 || missing "podman does not work here: $("${podman_cmd[@]}" info 2>&1 | tail -n 1)"
fi
mkdir -p "$work/context"
install -m 0755 "$binary" "$work/context/kafka-observer"
install -m 0644 "$ca_bundle" "$work/context/ca-certificates.crt"
say "podman build --target prebuilt"
"${podman_cmd[@]}" build --quiet --target prebuilt --tag "$tag" --file "$root_dir/Containerfile" "$work/context" >/dev/null
image_size=$("${podman_cmd[@]}" image inspect --format '{{.Size}}' "$tag")
user=$("${podman_cmd[@]}" image inspect --format '{{.Config.User}}' "$tag")
entrypoint=$("${podman_cmd[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$tag")
[ "$user" = 65532:65532 ] || fail "image user is '$user', expected 65532:65532"
[ "$entrypoint" = '["/kafka-observer"]' ] || fail "image entrypoint is $entrypoint"

container=$("${podman_cmd[@]}" create "$tag")
rootfs=$work/rootfs
mkdir -p "$rootfs"
"${podman_cmd[@]}" export "$container" | tar -x -C "$rootfs"
files=$(cd "$rootfs" && find . -type f -o -type l | sort | tr '\n' ' ')
[ "$files" = "./etc/ssl/certs/ca-certificates.crt ./kafka-observer " ] ||
  fail "unexpected files in the image: $files"
say "image root fs holds: $files"
# Nothing of /dev (no urandom, no null): whatever the binary needs must work without it.
dev_entries=""
if [ -d "$rootfs/dev" ]; then
  dev_entries=$(find "$rootfs/dev" -mindepth 1 | tr '\n' ' ')
fi
[ -z "$dev_entries" ] || fail "the image root fs has entries in /dev: $dev_entries"

# Runs the binary in the image's root fs as the image's user.
in_image() { chroot --userspec=65532:65532 "$rootfs" /kafka-observer "$@"; }

version=$(in_image --version) || fail "'/kafka-observer --version' failed in the image"
[[ $version == "kafka-observer "* ]] || fail "unexpected --version output: $version"
say "in the image: $version"

# ---- 3. a real broker -------------------------------------------------------------------------
say "building the test broker (example test-broker)"
cargo build --locked --example test-broker
topic=image-check-$$
group=image-check-group-$$
mkfifo "$work/broker.in"
"$CARGO_TARGET_DIR/debug/examples/test-broker" "$topic:2" \
  --produce "$topic:0:5" --produce "$topic:1:3" --commit "$group:$topic:0:2" \
  <"$work/broker.in" >"$work/broker.out" 2>"$work/broker.err" &
broker_pid=$!
exec 3>"$work/broker.in"
say "starting Kafka (first run downloads the jars with Maven)"
deadline=$((SECONDS + 600))
until grep -qx 'KAFKA_READY=1' "$work/broker.out"; do
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    tail -n 30 "$work/broker.err" >&2
    fail "the test broker exited before it was ready"
  fi
  [ "$SECONDS" -lt "$deadline" ] || fail "the test broker was not ready after 600 s"
  sleep 1
done
kafka_plaintext=$(sed -n 's/^KAFKA_PLAINTEXT=//p' "$work/broker.out")
kafka_sasl_ssl=$(sed -n 's/^KAFKA_SASL_SSL=//p' "$work/broker.out")
kafka_ca_file=$(sed -n 's/^KAFKA_CA_FILE=//p' "$work/broker.out")
say "broker ready: plaintext $kafka_plaintext, sasl_ssl $kafka_sasl_ssl"

# ---- 4. the binary in the image against the broker --------------------------------------------
lag_out=$(in_image lag --bootstrap "$kafka_plaintext" --all-groups) ||
  fail "'lag --all-groups' failed in the image: $lag_out"
echo "$lag_out"
grep -q "^$group  *$topic  *0  *2 " <<<"$lag_out" || fail "no row for $group $topic 0 at offset 2"
grep -q "^$group: total lag 3," <<<"$lag_out" || fail "expected a total lag of 3 for $group"

# TLS trust in a FROM scratch image: the bundle is found; without it the built-in roots are used;
# --ca-file (a file inside the image) connects to the test broker's SASL_SSL listener.
tls_args=(lag --bootstrap "$kafka_sasl_ssl" --tls --username alice --password alice-secret
  --sasl-mechanism SCRAM-SHA-256 --group "$group")
out=$(LOG_LEVEL=debug in_image "${tls_args[@]}" 2>&1) && fail "TLS without the test CA connected: $out"
grep -q 'native store' <<<"$out" || fail "the image's CA bundle was not loaded: $out"
grep -q 'UnknownIssuer' <<<"$out" || fail "expected UnknownIssuer from the test broker: $out"
say "TLS: the image's CA bundle is used (and the test CA rightly refused)"
mv "$rootfs/etc/ssl/certs/ca-certificates.crt" "$work/ca-bundle.moved"
out=$(LOG_LEVEL=debug in_image "${tls_args[@]}" 2>&1) && fail "TLS without the test CA connected: $out"
grep -q 'webpki-roots' <<<"$out" || fail "no fallback to the built-in roots without a bundle: $out"
mv "$work/ca-bundle.moved" "$rootfs/etc/ssl/certs/ca-certificates.crt"
say "TLS: without a CA bundle the built-in Mozilla roots are used"
install -m 0644 "$kafka_ca_file" "$rootfs/test-ca.crt"
out=$(in_image "${tls_args[@]}" --ca-file /test-ca.crt 2>&1) || fail "SASL_SSL with --ca-file failed: $out"
grep -q "^$group: total lag 3," <<<"$out" || fail "SASL_SSL lag differs: $out"
rm "$rootfs/test-ca.crt"
say "TLS: SCRAM-SHA-256 over TLS with --ca-file works in the image (random nonce without /dev)"

echo "image-check: binary $(human "$binary_size") ($binary_size bytes, $target, profile $profile)"
echo "image-check: image  $(human "$image_size") ($image_size bytes, $tag)"
echo "image-check: ok"
