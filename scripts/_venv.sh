# Sourced by the scripts: a project virtualenv with what the script needs, from scratch.
# VENV_EXTRAS: the project's extras to install ("" for the package alone, as scripts/demo);
# the sandbox (./sandbox, editable) is always installed beside it;
# VENV_BROWSER=1: also Debian's Chromium for tests/test_ui.py (scripts/test only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
VENV_EXTRAS="${VENV_EXTRAS-[dev]}"
# The sandbox is its own distribution (sandbox/pyproject.toml): the demo and the tests need it,
# and an extra of the root project cannot name a local path portably, so it is installed here.
"$VENV/bin/python" -m pip install --quiet -e ".${VENV_EXTRAS}" -e ./sandbox
# tests/test_ui.py drives Debian's Chromium through Playwright, which downloads no browser here:
# install it where we may (root with apt-get, as in CI). The package lists may be stale or
# absent on a fresh machine, so `apt-get update` runs only when the install fails.
if [ "${VENV_BROWSER:-0}" = 1 ] && [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
  }
  apt_install || { apt-get update -q >/dev/null && apt_install; } \
    || echo "warning: could not install chromium: tests/test_ui.py will fail" >&2
fi
export PATH="$PWD/$VENV/bin:$PATH"
# As `activate` does: `dg` compares it with the project's .venv (and warns when they differ).
export VIRTUAL_ENV="$(cd "$VENV" && pwd)"
