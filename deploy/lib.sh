# Shell helpers shared by deploy/setup.sh and deploy/bench-deps.sh (sourced, not run).

sudo=()
if [[ $(id -u) != 0 ]]; then
  sudo=(sudo)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# apt_install PKG...: installs the packages from Debian's repositories, without recommends.
apt_install() {
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}

# disable_service NAME: a package that starts its own service on install (nginx, prometheus) when only its tool is
# wanted: stop the service and keep it from starting again (harmless when it is not running).
disable_service() {
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now "$1" >/dev/null 2>&1 || true
  else
    "${sudo[@]}" service "$1" stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
      "${sudo[@]}" update-rc.d "$1" disable >/dev/null 2>&1 || true
    fi
  fi
}
