#!/bin/sh
# Prints who runs it and what jq says about a little JSON.
set -e
echo "user: $(id -un) ($(id -u))"
echo '{"built_by": "strata", "base": "debian"}' | jq -r '"built by \(.built_by) on \(.base)"'
