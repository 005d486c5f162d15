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

gobin="$(go env GOPATH)/bin"
if ! command -v nats >/dev/null 2>&1 && [ ! -x "$gobin/nats" ]; then
  echo "test-tools: installing the nats CLI"
  go install github.com/nats-io/natscli/nats@v0.5.0 ||
    echo "test-tools: go install github.com/nats-io/natscli/nats@v0.5.0 failed" >&2
fi
exit 0
