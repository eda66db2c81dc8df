# minihpc: ARC's storage variables in login shells ($HOME is set by login itself).
# $DATA is the user's directory in their default project's data area.
if [ -z "${DATA:-}" ] && [ "$(id -u)" -ge 1000 ] 2>/dev/null; then
    DATA="/data/$(id -gn)/$(id -un)"
    export DATA
fi
