#!/usr/bin/env bash
# Builds the Debian package with cargo-deb exactly as the README says (`cargo deb`), installs it
# on this machine with dpkg -i, checks what it installed, and purges it again. .ci/run calls it
# after the tests. Needs root (dpkg -i); installs what it needs when missing: cargo-deb (crates.io,
# pinned) and lintian, systemd (systemd-analyze), man-db, groff-base, dpkg-dev, adduser (apt).
# Usage: bash scripts/package/check-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_DEB_VERSION=3.8.0
PKG=cdss-precheck-exporter
BIN=/usr/bin/$PKG
CONF=/etc/$PKG/config.yaml
KEYS=/etc/$PKG/keys
UNIT=/usr/lib/systemd/system/$PKG.service
start=$(date +%s)

if [ "$(id -u)" != 0 ]; then
    echo "check-deb.sh installs a package: run it as root" >&2
    exit 1
fi

echo "--- packaging tools"
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi
cargo deb --version
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || command -v nroff >/dev/null || need+=(groff-base)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v adduser >/dev/null || need+=(adduser)
if [ "${#need[@]}" -gt 0 ]; then
    # Keep any service these packages bring from starting (only if no policy exists).
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 0755 "$policy"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ -n "$policy" ]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi
lintian --version

echo "--- the packaged unit has the hardening of deploy/systemd/"
# Everything from "# Hardening" on, minus DynamicUser= (the package has a static user instead).
hardening() { sed -n '/^# Hardening/,$p' "$1" | grep -v '^DynamicUser='; }
if ! diff <(hardening deploy/systemd/$PKG.service) <(hardening deploy/debian/$PKG.service); then
    echo "deploy/debian/$PKG.service and deploy/systemd/$PKG.service differ in their hardening" >&2
    exit 1
fi
echo "same hardening"

echo "--- cargo deb (the README's build command)"
build_start=$(date +%s)
deb=$(cargo deb --locked | tail -1)
echo "$deb: $(stat -c %s "$deb") bytes, built in $(($(date +%s) - build_start)) s"

echo "--- lintian"
# --fail-on error,warning: any error or warning fails CI; overrides (each justified in a comment)
# live in deploy/debian/lintian-overrides. Informational (I:) tags are shown, not fatal.
# lintian warns when run as root: it reads a copy of the package as nobody.
lint=$(mktemp -d)
chmod 0755 "$lint"
install -m 0644 "$deb" "$lint/"
runuser -u nobody -- lintian --display-info --fail-on error,warning "$lint/$(basename "$deb")"
rm -rf "$lint"
echo "lintian: no errors or warnings"

echo "--- dpkg -i"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
    echo "a previous $PKG is installed: purging it first"
    dpkg --purge "$PKG" >/dev/null
fi
dpkg -i "$deb"
fail() { echo "FAIL: $*" >&2; exit 1; }
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q " $CONF " || fail "$CONF is not a conffile"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q " /etc/default/$PKG " ||
    fail "/etc/default/$PKG is not a conffile"
grep -q '^ARGS=' /etc/default/$PKG || fail "/etc/default/$PKG has no ARGS= line"
getent passwd "$PKG" >/dev/null || fail "no user $PKG"
getent group "$PKG" >/dev/null || fail "no group $PKG"
[ "$(stat -c '%U:%G %a' "$KEYS")" = "$PKG:$PKG 700" ] ||
    fail "$KEYS is $(stat -c '%U:%G %a' "$KEYS"), want $PKG:$PKG 700"
[ -f /usr/share/doc/$PKG/config.example.yaml ] || fail "no config.example.yaml in the docs"
echo "installed: conffiles, user and group $PKG, $KEYS ($PKG:$PKG 0700)"

echo "--- the installed binary"
"$BIN" --version
# As the service user, to prove it can read the conffile. No keys yet: --config.check warns
# about the credentials and still exits 0 (src/app.rs).
runuser -u "$PKG" -- "$BIN" --config.check --config.file "$CONF"
# With (dummy, not real) key files in place, the same check loads them without a warning.
printf 'not-a-real-access-key\n' | install -m 0400 -o "$PKG" -g "$PKG" /dev/stdin "$KEYS/access_key"
printf 'not-a-real-secret-key\n' | install -m 0400 -o "$PKG" -g "$PKG" /dev/stdin "$KEYS/secret_key"
out=$(runuser -u "$PKG" -- "$BIN" --config.check --config.file "$CONF" 2>&1)
echo "$out"
if grep -q warning <<<"$out"; then fail "the service user cannot read the keys in $KEYS"; fi
if runuser -u nobody -- cat "$KEYS/access_key" >/dev/null 2>&1; then fail "other users can read $KEYS"; fi
rm -f "$KEYS/access_key" "$KEYS/secret_key"

echo "--- systemd-analyze verify (the installed unit)"
# Works without systemd as PID 1: verify loads the unit file offline.
systemd-analyze verify "$UNIT"
echo "$UNIT: verify OK"
systemd-analyze security --offline=yes "$UNIT" | tail -1

echo "--- man pages"
for page in /usr/share/man/man1/$PKG*.1.gz; do
    # --warnings: groff's warnings go to stderr; any is a failure.
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "$page: $warnings"
done
rendered=$(MANWIDTH=80 man -l /usr/share/man/man1/$PKG.1.gz)
grep -q -- '--config.file' <<<"$rendered" || fail "the man page does not document --config.file"
echo "$rendered" | sed -n 1,4p
echo "$(ls /usr/share/man/man1/$PKG*.1.gz | wc -l) pages render without warnings"

echo "--- shell completions"
bash -c "source /usr/share/bash-completion/completions/$PKG && complete -p $PKG"
[ -s /usr/share/zsh/vendor-completions/_$PKG ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/$PKG.fish ] || fail "no fish completion"
cmp <("$BIN" completions bash) /usr/share/bash-completion/completions/$PKG ||
    fail "the packaged bash completion differs from 'completions bash'"

echo "--- upgrade keeps an edited config"
echo "# edited by check-deb.sh" >> "$CONF"
# A real upgrade: the same build as the next Debian revision (dpkg runs the maintainer scripts'
# upgrade paths), then the reinstall of that revision.
upgrade=$(mktemp -d)
deb2=$(cargo deb --locked --no-build --deb-revision 2 --output "$upgrade" | tail -1)
before=$(dpkg-query -W -f='${Version}' "$PKG")
dpkg -i "$deb2" >/dev/null
after=$(dpkg-query -W -f='${Version}' "$PKG")
[ "$before" != "$after" ] || fail "the upgrade did not change the version ($before)"
grep -q '^# edited by check-deb.sh$' "$CONF" || fail "upgrading $before → $after lost the edit to $CONF"
getent passwd "$PKG" >/dev/null || fail "the upgrade removed the user $PKG"
[ "$(stat -c '%a %U' "$KEYS")" = "700 $PKG" ] || fail "the upgrade changed $KEYS: $(stat -c '%a %U' "$KEYS")"
dpkg -i "$deb2" >/dev/null
grep -q '^# edited by check-deb.sh$' "$CONF" || fail "reinstalling lost the edit to $CONF"
rm -rf "$upgrade"
echo "$CONF: edit kept across the upgrade $before → $after and a reinstall"

echo "--- dpkg --purge"
dpkg --purge "$PKG"
for f in "$BIN" "$CONF" /etc/default/$PKG "$KEYS" "$UNIT"; do
    [ ! -e "$f" ] || fail "$f is still there after purge"
done
echo "purged: binary, unit, conffiles and $KEYS removed (the system user $PKG stays)"
echo "packaging check took $(($(date +%s) - start)) s"
