#!/bin/sh
# Renders an HTML file (e.g. `need-to-know register --output register.html`) to a PNG with
# headless Chromium, to look at a page as a reader would without opening a browser.
# Usage: scripts/render-html.sh FILE.html [OUT.png] [WIDTH,HEIGHT]
# Needs Debian's chromium (apt-get install -y chromium). Network access is turned off as far
# as the flags allow: the page must be self-contained anyway.
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 FILE.html [OUT.png] [WIDTH,HEIGHT]" >&2
  exit 2
fi
html=$1
out=${2:-${html%.html}.png}
size=${3:-1200,2400}
case $html in
  /*) ;;
  *) html=$(pwd)/$html ;;
esac
case $out in
  /*) ;;
  *) out=$(pwd)/$out ;;
esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
  --screenshot="$out" --window-size="$size" "file://$html"
echo "$out"
