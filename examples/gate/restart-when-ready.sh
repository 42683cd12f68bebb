#!/bin/sh
# Wait until NCP's precheck says every node of the cluster is ready, then restart it: `restart`
# prechecks again, starts NCP's rolling restart exactly once, and watches it to the end.
# Usage: restart-when-ready.sh CLUSTER   (CLUSTER is a name from the config)
set -eu
CLUSTER=${1:?usage: restart-when-ready.sh CLUSTER}
CONFIG=${CONFIG:-/etc/cdss-precheck-exporter/restart.yaml}
WAIT=${WAIT:-15m}
EVERY=${EVERY:-15s}

# check:   0 ready; 1 CDSS said no or NCP is changing it; 2 could not ask.
# restart: 0 over and ready again; 1 or 2 nothing started; 3 unknown; 4 still running at --timeout.
cdss-precheck-exporter check --config.file "$CONFIG" --cluster "$CLUSTER" --wait "$WAIT"
cdss-precheck-exporter restart --config.file "$CONFIG" --cluster "$CLUSTER" --yes --every "$EVERY"
