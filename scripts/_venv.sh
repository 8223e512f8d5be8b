# Sourced by the scripts: a project virtualenv with what the script needs, from scratch.
# VENV_EXTRAS: the project's extras to install ("" for the package alone, as scripts/demo);
# the sandbox (./sandbox, editable) is always installed beside it;
# VENV_BROWSER=1: also Debian's Chromium for tests/test_ui.py and PgBouncer for
# tests/test_pooler.py (scripts/test only).
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
# tests/test_ui.py drives Debian's Chromium through Playwright, which downloads no browser here,
# and tests/test_pooler.py starts its own PgBouncer (a transaction pooler, as Supabase's on port
# 6543): install them where we may (root with apt-get, as in CI). The package lists may be
# stale or absent on a fresh machine, so `apt-get update` runs only when the install fails.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null \
    || { apt-get update -q >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null; }
}
if [ "${VENV_BROWSER:-0}" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium || echo "warning: could not install chromium: tests/test_ui.py will fail" >&2
  fi
  # Debian's package also installs a pgbouncer service (on 6432, where the machine lets
  # packages start services; containers usually do not): the tests never use it, each
  # starts its own on a free port.
  if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
    apt_install pgbouncer || echo "warning: could not install pgbouncer: tests/test_pooler.py will fail" >&2
  fi
fi
export PATH="$PWD/$VENV/bin:$PATH"
# As `activate` does: `dg` compares it with the project's .venv (and warns when they differ).
export VIRTUAL_ENV="$(cd "$VENV" && pwd)"
