#!/bin/sh
[ "$1" = "--check" ] && exit 0
cat /etc/app/CONFIG
