#!/usr/bin/env bash
# Makes the two base images deploy/Dockerfile takes as build arguments, from Debian 12's packages
# and this machine's Rust toolchain, for machines that cannot pull docker.io or gcr.io (CI):
#   - the runtime base (RUNTIME_IMAGE, in place of gcr.io/distroless/cc-debian12:nonroot): only
#     the files of libc6, libgcc-s1, ca-certificates, tzdata, base-files and netbase (extracted,
#     no maintainer scripts, no shell, no package manager), the CA bundle, /etc/passwd and
#     /etc/group with root and nonroot (65532), and /var/lib/dpkg/status.d for image scanners,
#     as distroless does;
#   - the builder base (BUILDER_IMAGE, in place of docker.io/library/rust:VER-slim-bookworm):
#     Debian's minbase with gcc, make and libc6-dev, and the host's rustc and cargo (the active
#     rustup toolchain's, the host target's std only) in /usr/local, CARGO_HOME=/usr/local/cargo
#     as in the official image; and the crates of Cargo.lock (`cargo vendor`, run here, where
#     crates.io is reachable) with a cargo config that reads them, so the image builds without a
#     network (`podman build --network none`).
# Both are imported into podman's storage (root) and named on stdout as build arguments.
# Usage: bash scripts/image/bases.sh [RUNTIME_TAG [BUILDER_TAG]]
# Needs mmdebstrap, podman (as root) and rustc on PATH; downloads from deb.debian.org.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNTIME_TAG=${1:-localhost/cdss-runtime-base:bookworm}
BUILDER_TAG=${2:-localhost/cdss-builder-base:bookworm}
MIRRORS=(
    "deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main"
)
# The runtime's packages; the files of their dependencies (openssl, debconf and perl for
# ca-certificates' scripts, which never run here) are removed again.
KEEP="libc6 libgcc-s1 ca-certificates tzdata base-files netbase"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `podman import TAR TAG` with the --change options after them; the image TAG named before is
# removed (it would be left dangling).
import_as() {
    local tar=$1 tag=$2 previous
    shift 2
    previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
    podman import --quiet "$@" "$tar" "$tag" >/dev/null
    if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$tag")" ]; then
        podman rmi "$previous" >/dev/null 2>&1 || true
    fi
}

# mmdebstrap's extract hook ($1: the root; the downloaded .debs are still in its apt cache).
cat > "$work/runtime-hook.sh" <<'HOOK'
#!/bin/sh
set -eu
root=$1; keep=$2
mkdir -p "$root/var/lib/dpkg/status.d"
for deb in "$root"/var/cache/apt/archives/*.deb; do
    pkg=$(dpkg-deb --field "$deb" Package)
    case " $keep " in
        *" $pkg "*) dpkg-deb --field "$deb" > "$root/var/lib/dpkg/status.d/$pkg" ;;
        *) dpkg-deb --fsys-tarfile "$deb" | tar -t | while read -r f; do
               if [ ! -d "$root/$f" ] || [ -L "$root/$f" ]; then rm -f "$root/$f"; fi
           done ;;
    esac
done
# What update-ca-certificates would make (ca-certificates' postinst does not run here).
mkdir -p "$root/etc/ssl/certs"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt > "$root/etc/ssl/certs/ca-certificates.crt"
# Documentation, man pages, translations, and iconv's modules (the exporter never converts
# character sets).
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man "$root"/usr/share/locale \
    "$root"/usr/share/lintian "$root"/usr/share/info "$root"/usr/share/ca-certificates \
    "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/usr/share/common-licenses
find "$root/usr" "$root/etc" -depth -type d -empty -delete
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
P
cat > "$root/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
G
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
install -d -m 1777 "$root/tmp"
rm -rf "$root"/var/cache/apt/* "$root"/var/cache/debconf
HOOK

echo "--- runtime base: $RUNTIME_TAG" >&2
mmdebstrap --quiet --mode=root --variant=extract --format=tar \
    --include="${KEEP// /,}" --skip=cleanup/apt/cache \
    --extract-hook="sh '$work/runtime-hook.sh' \"\$1\" '$KEEP'" \
    bookworm - "${MIRRORS[@]}" |
    mmtarfilter --path-exclude='/etc/apt/*' --path-exclude='/var/cache/apt/*' \
        --path-exclude='/var/lib/apt/*' --path-exclude=/var/lib/dpkg/status \
        --path-exclude=/usr/sbin/update-ca-certificates > "$work/runtime.tar"
import_as "$work/runtime.tar" "$RUNTIME_TAG" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot'

echo "--- builder base: $BUILDER_TAG" >&2
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
cargo vendor --quiet --locked --versioned-dirs "$work/vendor" >/dev/null
cat > "$work/cargo-config.toml" <<'TOML'
# The crates of the project's Cargo.lock, vendored when this base was made (scripts/image/bases.sh).
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/usr/local/cargo/vendor"
TOML
# mmdebstrap's customize hook ($1: the root): the toolchain, the crates, and no documentation.
cat > "$work/builder-hook.sh" <<'HOOK'
#!/bin/sh
set -eu
root=$1; sysroot=$2; host=$3; work=$4
cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$root/usr/local/bin/"
mkdir -p "$root/usr/local/lib/rustlib" "$root/usr/local/cargo"
cp -a "$sysroot"/lib/*.so* "$root/usr/local/lib/"
cp -a "$sysroot/lib/rustlib/$host" "$root/usr/local/lib/rustlib/"
cp -a "$work/vendor" "$root/usr/local/cargo/vendor"
cp "$work/cargo-config.toml" "$root/usr/local/cargo/config.toml"
rm -rf "$root"/usr/share/doc/* "$root/usr/share/man" "$root/usr/share/locale"
HOOK
mmdebstrap --quiet --mode=root --variant=minbase --format=tar \
    --include=gcc,make,libc6-dev,ca-certificates \
    --customize-hook="sh '$work/builder-hook.sh' \"\$1\" '$sysroot' '$host' '$work'" \
    bookworm "$work/builder.tar" "${MIRRORS[@]}"
import_as "$work/builder.tar" "$BUILDER_TAG" \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo'

printf 'BUILDER_IMAGE=%s\nRUNTIME_IMAGE=%s\n' "$BUILDER_TAG" "$RUNTIME_TAG"
