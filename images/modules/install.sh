#!/bin/bash
# Install minihpc's module tree into this image (run as root at image build).
#
#   install.sh [--optional GROUPS] [--packages-only] [--no-check]
#
# GROUPS is a comma-separated list of optional catalogue groups to switch on (today: octave);
# it defaults to $MINIHPC_OPTIONAL_MODULES, and to none when that is unset. $MINIHPC_PYTHON picks
# the interpreter (default python3; it needs PyYAML).
#
# --packages-only installs just the Debian packages of the switched-on optional groups and
# needs nothing but this directory, so a Dockerfile can give them a cached layer of their own
# before it copies orchestrator/:
#     COPY images/modules/ /opt/minihpc/images/modules/
#     ARG MINIHPC_OPTIONAL_MODULES=octave
#     RUN /opt/minihpc/images/modules/install.sh --packages-only
#     COPY orchestrator/ /opt/minihpc/orchestrator/
#     RUN /opt/minihpc/images/modules/install.sh
# Without it, the script does everything: optional packages, hiding Debian's commands,
# software directories, modulefiles, Lmod site config, builds, spider cache, checks.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)          # /opt/minihpc in an image, the repo in a checkout
optional=${MINIHPC_OPTIONAL_MODULES-}
packages_only=0
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --optional) optional=${2-}; shift 2 ;;
        --optional=*) optional=${1#*=}; shift ;;
        --packages-only) packages_only=1; shift ;;
        --no-check) extra+=(--no-check); shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ "$packages_only" = 1 ]; then
    pkgs=$("${MINIHPC_PYTHON:-python3}" -s - "$here/catalogue.yaml" "$optional" <<'PY'
import sys, yaml
cat = yaml.safe_load(open(sys.argv[1]))
want = {g.strip() for g in sys.argv[2].replace(" ", ",").split(",") if g.strip()}
groups = cat.get("groups") or {}
bad = sorted(w for w in want if not (groups.get(w) or {}).get("optional"))
if bad:
    sys.exit("install.sh: unknown optional group(s): " + ", ".join(bad))
print(" ".join(sorted({p for name in want for p in groups[name].get("packages") or []})))
PY
)
    if [ -n "$pkgs" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
        apt-get clean
        rm -rf /var/lib/apt/lists/*
    fi
    echo "install.sh: optional packages: ${pkgs:-none}"
    exit 0
fi

cd "$root"
exec "${MINIHPC_PYTHON:-python3}" -s -m orchestrator.modules install "$here/catalogue.yaml" --optional "$optional" "${extra[@]}"
