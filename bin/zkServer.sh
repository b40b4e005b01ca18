#!/usr/bin/env bash
# zkServer.sh for ferrokeeper: takes the arguments of ZooKeeper's script
#   zkServer.sh [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd} [zoo.cfg]
# A config name without a slash is looked up in the conf dir ($ZOOCFGDIR,
# default ../conf next to this script), as ZooKeeper does; a path is used
# as given. $ZOOPIDFILE and $ZOO_LOG_DIR are honoured, and so are the -D
# settings in $SERVER_JVMFLAGS and $JVMFLAGS (also from $ZOOCFGDIR/java.env,
# which zkEnv.sh sources), which the server reads as ZooKeeper's JVM
# reads its system properties. The binary is
# $FERROKEEPER_BIN, else the release build next to this script, else
# `ferrokeeper` on PATH.
set -eu
BINDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BINDIR/find-ferrokeeper.sh"
ZOOCFGDIR=${ZOOCFGDIR:-$BINDIR/../conf}
if [ "${1:-}" = "--config" ]; then
  ZOOCFGDIR=${2:?--config needs a directory}
  shift 2
fi
ZOOCFG="$ZOOCFGDIR/zoo.cfg"
if [ -f "$ZOOCFGDIR/java.env" ]; then
  # Written for zkEnv.sh, which does not run under set -u.
  set +u
  . "$ZOOCFGDIR/java.env"
  set -u
fi
[ -z "${SERVER_JVMFLAGS:-}" ] || export SERVER_JVMFLAGS
[ -z "${JVMFLAGS:-}" ] || export JVMFLAGS
if [ -n "${2:-}" ]; then
  case "$2" in
    */*) ZOOCFG=$2 ;;
    *) ZOOCFG="$ZOOCFGDIR/$2" ;;
  esac
fi
case "${1:-}" in
  start|start-foreground|stop|restart|status|print-cmd)
    exec "$FERROKEEPER" "$1" "$ZOOCFG" ;;
  version)
    exec "$FERROKEEPER" version ;;
  *)
    echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}" >&2
    exit 1 ;;
esac
