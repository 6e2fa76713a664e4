#!/bin/bash
# Boot script for the backup host (placeholder: the backup-host work replaces the body).
set -euo pipefail
# @settings
echo "volume ${BTRBK_VOLUME_ID} key ${BTRBK_SSH_PUBLIC_KEY:0:20} admin ${BTRBK_ADMIN_SSH_PUBLIC_KEY:-none}"
