#!/usr/bin/env bash
# Installs the Debian packages the tests need (scripts/test-tools.txt) when they are missing: one
# `apt-get update` and one `apt-get install` of the missing ones, nothing at all when every one is
# there. Run it as root (or through sudo); .ci/run runs it before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r package file; do
  case "$package" in ''|'#'*) continue ;; esac
  # The file is a glob (postgresql's initdb lives under its version): present when it matches.
  # shellcheck disable=SC2086
  if ! compgen -G "$file" >/dev/null; then
    case " ${missing[*]-} " in *" $package "*) ;; *) missing+=("$package") ;; esac
  fi
done < scripts/test-tools.txt

if [ "${#missing[@]}" -eq 0 ]; then
  echo "test tools: all installed"
  exit 0
fi
echo "test tools: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
