#!/usr/bin/env bash
# Installs what Quire's tests need beyond Go and the PostgreSQL server binaries, when it can:
# poppler-utils (the pdftotext PDF engine, and pdftoppm for OCR), Tesseract with its English
# data (OCR), Chromium (the dashboard's browser test) and the nats CLI (the operator commands the
# README documents). `make test` and `.ci/run` both call it.
#
# It installs Debian packages only as root with apt-get; elsewhere it prints the one command that
# would install what is missing and exits 0, so the tests that need a missing tool fail with that
# command in their message. Running it again installs nothing that is already there.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive

# Debian packages (space-separated) by the command that shows they are installed.
declare -A packages=(
  [pdftotext]=poppler-utils
  [pdftoppm]=poppler-utils
  [tesseract]="tesseract-ocr tesseract-ocr-eng"
  [chromium]=chromium
)
# PostgreSQL server binaries: the test harness starts a throwaway cluster with them.
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  packages[pg_ctl]=postgresql
fi

need=()
for cmd in "${!packages[@]}"; do
  # shellcheck disable=SC2206 # a value names one or more packages
  command -v "$cmd" >/dev/null 2>&1 || need+=(${packages[$cmd]})
done
# English trained data, which a tesseract installed without it lacks.
if command -v tesseract >/dev/null 2>&1 && ! tesseract --list-langs 2>/dev/null | grep -qx eng; then
  need+=(tesseract-ocr-eng)
fi
# One package may be needed for two commands.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u | grep .)

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

if [ "${#need[@]}" -gt 0 ]; then
  if can_apt; then
    echo "test-tools: installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
      echo "test-tools: apt-get install ${need[*]} failed; the tests that need them will say so" >&2
  else
    echo "test-tools: missing ${need[*]}; install with: sudo apt-get install ${need[*]}" >&2
  fi
fi

# pgvector (vector similarity search with HNSW indexes) for the PostgreSQL the tests start:
# Debian bookworm has no postgresql-15-pgvector, but its next release (trixie) has the source
# package. The deb-src line is derived from this machine's own bookworm source (its URIs, with
# the suite replaced), used through a private apt state directory that leaves the system's
# configuration as it is; the upstream tarball is built with PGXS against
# postgresql-server-dev-15 and installed into the server of `pg_config`.
install_pgvector() {
  local pgc sharedir
  pgc="$(command -v pg_config || true)"
  [ -n "$pgc" ] || { echo "test-tools: no pg_config; pgvector not installed" >&2; return; }
  sharedir="$("$pgc" --sharedir)"
  [ -f "$sharedir/extension/vector.control" ] && return
  if ! can_apt; then
    echo "test-tools: pgvector missing; as root run tools/test-tools.sh (it builds pgvector from Debian trixie's source package with postgresql-server-dev-\$(pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/'))" >&2
    return
  fi
  local major uris work
  major="$("$pgc" --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')"
  # The URIs of the configured main Debian source (deb822 .sources files, then one-line lists).
  uris="$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {for(i=1;i<=NF;i++) if($i=="URIs:") {print $(i+1); exit}}' /etc/apt/sources.list.d/*.sources 2>/dev/null)"
  if [ -z "$uris" ]; then
    uris="$(grep -hE '^deb\s+\S+\s+bookworm\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2; exit}')"
  fi
  if [ -z "$uris" ]; then
    echo "test-tools: no configured bookworm apt source to derive trixie's deb-src from; pgvector not installed" >&2
    return
  fi
  echo "test-tools: building pgvector for PostgreSQL $major from Debian trixie's source package"
  work="$(mktemp -d)"
  chmod 755 "$work" # apt downloads as the _apt user
  mkdir -p "$work/lists/partial" "$work/archives/partial"
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uris" >"$work/trixie-src.sources"
  local aptopts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work" -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives")
  dpkg -s "postgresql-server-dev-$major" >/dev/null 2>&1 ||
    apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$major" make gcc >/dev/null
  if ! (cd "$work" && apt-get "${aptopts[@]}" update -qq &&
    apt-get "${aptopts[@]}" source --download-only pgvector >/dev/null &&
    tar -xf pgvector_*.orig.tar.* && cd pgvector-*/ &&
    make -s PG_CONFIG="$pgc" >/dev/null && make -s PG_CONFIG="$pgc" install >/dev/null); then
    echo "test-tools: building pgvector failed; the tests that need it will say so" >&2
  fi
  rm -rf "$work"
}
install_pgvector

gobin="$(go env GOPATH)/bin"
if ! command -v nats >/dev/null 2>&1 && [ ! -x "$gobin/nats" ]; then
  echo "test-tools: installing the nats CLI"
  go install github.com/nats-io/natscli/nats@v0.5.0 ||
    echo "test-tools: go install github.com/nats-io/natscli/nats@v0.5.0 failed" >&2
fi
exit 0
