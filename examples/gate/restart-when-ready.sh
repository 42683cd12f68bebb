#!/bin/sh
# Start a CDSS rolling restart only when NCP's precheck says every node of the cluster is ready.
# Usage: restart-when-ready.sh CLUSTER   (CLUSTER is a name from the exporter's config)
set -eu
CLUSTER=${1:?usage: restart-when-ready.sh CLUSTER}
CONFIG=${CONFIG:-/etc/cdss-precheck-exporter/config.yaml}
WAIT=${WAIT:-15m}
RESTART=${RESTART:-./start-rolling-restart.sh}

# Exit 0: ready, go. Exit 1: CDSS said no. Exit 2: could not ask (auth, network, rate limit...).
cdss-precheck-exporter check --config.file "$CONFIG" --cluster "$CLUSTER" --wait "$WAIT" \
  && "$RESTART" "$CLUSTER"
