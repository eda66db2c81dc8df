# minihpc: at login, warn about storage areas over (or near) their quota (details: myquota).
# The volumes cannot enforce quotas, so this banner, myquota's flag and sbatch's refusal are the
# enforcement. Interactive shells on login nodes only (the limits file is written on login nodes);
# a controller that does not answer within a few seconds is skipped silently.
if [ -e /etc/security/limits.d/minihpc-login.conf ] && [ -t 1 ] && command -v myquota >/dev/null 2>&1; then
    case $- in
        *i*) myquota --warn 2>/dev/null || true ;;
    esac
fi
