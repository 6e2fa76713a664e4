#!/bin/bash
# Boot script for the btrbk backup host. cloud-init runs it once, as root, on Ubuntu 24.04; the local target runs
# the same rendered text in a Debian 12 container. Safe to run again: a second run changes nothing.
#
# What it does, in order (each step is logged to /var/log/btrbk-backup-host.log with a UTC timestamp):
#   settings   check the rendered settings (volume id, backup key, optional admin key)
#   payload    load the host's programs: one S3 object read with the instance role (checked against its sha256)
#   packages   install btrfs-progs btrbk mbuffer zstd sudo openssh-server curl ca-certificates (what is missing)
#   time       the clock the host prunes by: the Amazon Time Sync Service (169.254.169.123, link-local: no egress
#              rule), for chrony (Ubuntu) or systemd-timesyncd, whichever the image runs
#   volume     wait for the EBS data volume by its id (/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...)
#   filesystem format it btrfs ONLY when it carries no signature at all; refuse any other content; never reformat
#   mount      one fstab line by UUID (nofail), mount at /backup_volume
#   hostkey    the SSH host key kept on the volume (/backup_volume/.host-identity): put back in /etc/ssh on a new
#              instance, saved from /etc/ssh on a volume that has none (user-data/host-identity.sh)
#   layout     /backup_volume/backups is a subvolume of its own, the only place a send stream may take sources
#              from; an older volume's plain directory is moved into one, once, every backup kept (btrbk-layout.sh)
#   user       the btrbk system user
#   devices    a key per device (BTRBK_DEVICES): backups/NAME a subvolume of its own for each (a plain directory of
#              that name is moved into one, every backup kept), the registry /etc/btrbk-backup-host/devices (current and
#              revoked devices, the legacy key), and authorized_keys: the legacy key's line as before, one line per
#              device behind the gate with --device NAME
#   gate       install the SSH gate, btrbk-receive and the sudoers fragment (checked with visudo first)
#   prune      btrbk-prune, its settings and its hourly timer: the host's own retention (append-only mode); the
#              monthly read-only scrub (btrbk-scrub.timer), btrbk-manifest (the gate's, for backup.mjs verify) and
#              btrbk-heartbeat (each completed backup reported to CloudWatch, the missed-backup alarm's signal)
#   sshd       public keys only, no root login, no forwarding/tty for btrbk (checked with sshd -t, then reloaded)
#   keys       the image's default user keeps only the admin key (if any); the backup key opens no other door
# It ends with one line "btrbk-backup-host: SUCCESS ..." or "btrbk-backup-host: FAILED at step ...", and leaves
# /var/lib/btrbk-backup-host/ready (success) or /var/lib/btrbk-backup-host/failed (the failed step).
#
# Only Nitro instance types are supported: their EBS volumes are NVMe devices whose serial is the volume id.
# On Xen instance types (t2, m4, ...) a volume appears as /dev/xvdX with no id, so the script cannot prove which
# device is the data volume and stops at the volume step rather than guess.
set -Eeuo pipefail
umask 022
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# @settings

readonly SCRIPT_VERSION=1
readonly LOG_FILE=/var/log/btrbk-backup-host.log
readonly STATE_DIR=/var/lib/btrbk-backup-host
readonly SSHD_RELOAD_PENDING=$STATE_DIR/sshd-reload-pending
readonly MOUNT_POINT=/backup_volume
readonly BACKUP_ROOT=/backup_volume/backups
readonly FS_LABEL=btrbk-backup
readonly MOUNT_OPTIONS=defaults,noatime,compress=zstd:1,nosuid,nodev,noexec,nofail,x-systemd.device-timeout=60s
readonly BTRBK_USER=btrbk
readonly BTRBK_HOME=/home/btrbk
readonly GATE_PATH=/usr/local/sbin/btrbk-ssh-gate
readonly RECEIVE_PATH=/usr/local/sbin/btrbk-receive
readonly STREAM_CHECK_PATH=/usr/local/sbin/btrbk-stream-check
readonly PRUNE_PATH=/usr/local/sbin/btrbk-prune
readonly PRUNE_CONF=/etc/btrbk-backup-host/prune.conf
readonly SCRUB_PATH=/usr/local/sbin/btrbk-scrub
readonly MANIFEST_PATH=/usr/local/sbin/btrbk-manifest
readonly HEARTBEAT_PATH=/usr/local/sbin/btrbk-heartbeat
readonly HEARTBEAT_CONF=/etc/btrbk-backup-host/heartbeat.conf
readonly METRIC_NAMESPACE=BtrbkBackupHost
readonly STAGING_DIR=/backup_volume/.btrbk-staging
readonly HOST_KEY_DIR=/backup_volume/.host-identity
# A receive that reads and writes nothing for this long is ended (btrbk-receive): a stalled stream must not hold the
# receive lock, and with it the host's pruning, for ever. Generous: a slow uplink still sends something every minute.
readonly RECEIVE_STALL_SECONDS=600
readonly SUDOERS_PATH=/etc/sudoers.d/btrbk
readonly DEVICES_FILE=/etc/btrbk-backup-host/devices
readonly DEVICE_NAME_RE='^[a-z0-9][a-z0-9._-]{0,62}$'
readonly SSHD_DROPIN=/etc/ssh/sshd_config.d/00-btrbk-backup-host.conf
readonly DEFAULT_USER=ubuntu # the image's default user that cloud-init gives the instance's key pair
readonly PACKAGES=(btrfs-progs btrbk mbuffer zstd sudo openssh-server curl ca-certificates)
readonly ED25519_KEY_RE='^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}( [[:print:]]*)?$'
# Seconds to wait for the data volume; root may override it in the environment (e.g. for a slow attach).
VOLUME_WAIT_SECONDS=${BTRBK_VOLUME_WAIT_SECONDS:-300}

STEP=start
CHANGES=()
START_SECONDS=$SECONDS

# ---------------------------------------------------------------------------------------------------- logging
install -d -m 0755 "$STATE_DIR" /var/log
touch "$LOG_FILE"
chmod 0644 "$LOG_FILE"
exec 3>&1 4>&2
exec > >(tee -a "$LOG_FILE") 2>&1
TEE_PID=$!

log() { printf '%s btrbk-backup-host[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STEP" "$*"; }
step() { STEP=$1; shift; log "== $*"; }
changed() { CHANGES+=("$*"); log "changed: $*"; }
# die WHAT CAUSE NEXT: the three-part failure message, then exit (the EXIT trap writes the failure line).
die() {
  log "ERROR: $1"
  [ -z "${2:-}" ] || log "  cause: $2"
  [ -z "${3:-}" ] || log "  next:  $3"
  exit "${4:-1}"
}

on_err() { log "command failed (exit $1) at line $2: $3"; }
on_exit() {
  local rc=$? now
  trap - ERR EXIT
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  if [ "$rc" -eq 0 ]; then
    local summary="nothing changed"
    if [ "${#CHANGES[@]}" -gt 0 ]; then summary="${#CHANGES[@]} change(s): $(IFS=';'; echo "${CHANGES[*]}")"; fi
    printf 'version=%s\ncompleted=%s\nvolume_id=%s\n' "$SCRIPT_VERSION" "$now" "$BTRBK_VOLUME_ID" >"$STATE_DIR/ready.tmp"
    mv -f "$STATE_DIR/ready.tmp" "$STATE_DIR/ready"
    rm -f "$STATE_DIR/failed"
    STEP=finished
    log "btrbk-backup-host: SUCCESS (version $SCRIPT_VERSION) in $((SECONDS - START_SECONDS)) s; $summary"
  else
    printf 'version=%s\nfailed=%s\nstep=%s\nexit=%s\n' "$SCRIPT_VERSION" "$now" "$STEP" "$rc" >"$STATE_DIR/failed"
    rm -f "$STATE_DIR/ready"
    log "btrbk-backup-host: FAILED at step '$STEP' (exit $rc) after $((SECONDS - START_SECONDS)) s; see the lines above in $LOG_FILE"
  fi
  # close the pipe to tee and wait for it, so the last line is in the log before the script returns
  exec 1>&3 2>&4 3>&- 4>&-
  wait "$TEE_PID" 2>/dev/null || true
  exit "$rc"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR
trap on_exit EXIT

# Replaces FILE with the text on stdin when it differs; sets owner and mode. Prints "changed" if it wrote.
# The new text is written next to FILE and renamed over it, so FILE is never half-written.
put_file() {
  local file=$1 owner=$2 mode=$3 tmp
  tmp=$(mktemp "${file}.XXXXXX")
  cat >"$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    if [ "$(stat -c '%U:%G %a' "$file")" != "$owner ${mode#0}" ]; then chown "$owner" "$file"; chmod "$mode" "$file"; echo changed; fi
    return 0
  fi
  chown "$owner" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
  echo changed
}

# ---------------------------------------------------------------------------------------------------- steps
check_settings() {
  step settings "checking settings (script version $SCRIPT_VERSION)"
  [ "$(id -u)" -eq 0 ] || die "this script must run as root" "it was started by uid $(id -u)" "run it with sudo, or let cloud-init run it"
  [[ ${BTRBK_VOLUME_ID:-} =~ ^vol-[0-9a-f]{8,17}$ ]] ||
    die "BTRBK_VOLUME_ID '${BTRBK_VOLUME_ID:-}' is not an EBS volume id (vol- and 8 to 17 hex digits)" \
      "the user data was not rendered by user-data/render.ts" "re-deploy the stack (it renders the volume id in)"
  check_devices
  [[ ${BTRBK_SSH_PUBLIC_KEY:-} =~ $ED25519_KEY_RE || -z ${BTRBK_SSH_PUBLIC_KEY:-} && ${#DEVICE_NAMES[@]} -gt 0 ]] ||
    die "BTRBK_SSH_PUBLIC_KEY is not one ssh-ed25519 public key" \
      "only ed25519 keys are accepted for the backup user, one line, no options (it may be empty only when devices are given)" "set the backup key to the .pub of an ed25519 key (ssh-keygen -t ed25519)"
  if [ -n "${BTRBK_ADMIN_SSH_PUBLIC_KEY:-}" ] && ! [[ $BTRBK_ADMIN_SSH_PUBLIC_KEY =~ $ED25519_KEY_RE ]]; then
    die "BTRBK_ADMIN_SSH_PUBLIC_KEY is set but is not one ssh-ed25519 public key" \
      "the admin key must be an ed25519 public key, one line, no options" "fix admin_ssh_public_key, or leave it empty"
  fi
  [ "$(key_blob "${BTRBK_SSH_PUBLIC_KEY:-y y}")" != "$(key_blob "${BTRBK_ADMIN_SSH_PUBLIC_KEY:-x x}")" ] ||
    die "the admin key is the backup key" "the same key cannot be both behind the gate and an admin login" "use a separate key for admin_ssh_public_key"
  [[ $BTRBK_APPEND_ONLY =~ ^(true|false)$ ]] || die "BTRBK_APPEND_ONLY='$BTRBK_APPEND_ONLY' is not true or false" "" "set append_only to true or false"
  [[ $BTRBK_RETENTION =~ ^[0-9h*dwmy\ ]+$ && $BTRBK_RETENTION_MIN =~ ^([0-9]{1,4}[hdwmy]|latest|no)$ ]] ||
    die "retention '$BTRBK_RETENTION' / retention_min '$BTRBK_RETENTION_MIN' are not in btrbk's syntax" "" "use e.g. '48h 14d 8w 12m' and '1d'"
  [[ $VOLUME_WAIT_SECONDS =~ ^[0-9]{1,5}$ ]] || die "BTRBK_VOLUME_WAIT_SECONDS='$VOLUME_WAIT_SECONDS' is not a number of seconds" "" "unset it or give a whole number"
  log "append-only: $BTRBK_APPEND_ONLY, retention: $BTRBK_RETENTION (min $BTRBK_RETENTION_MIN)"
  log "volume $BTRBK_VOLUME_ID, backup key $(key_blob "$BTRBK_SSH_PUBLIC_KEY" | cut -c1-16)..., admin key: ${BTRBK_ADMIN_SSH_PUBLIC_KEY:+set}${BTRBK_ADMIN_SSH_PUBLIC_KEY:-none}"
  log "devices: ${DEVICE_NAMES[*]:-none}"
}

# BTRBK_DEVICES: one line per device, "NAME ssh-ed25519 AAAA... [comment]" (blank lines ignored). Names are what the
# host calls the device's directory (backups/NAME): lower case, digits, . _ -, at most 63, no "..", not "selftest"
# (the tools' scratch area); names and keys are unique, and no device key is the legacy key or the admin key.
DEVICE_NAMES=() DEVICE_KEYS=()
check_devices() {
  local line name key i j
  while IFS= read -r line; do
    [[ -n ${line// /} ]] || continue
    name=${line%% *} key=${line#* }
    [[ $name =~ $DEVICE_NAME_RE && $name != *..* && $name != selftest ]] ||
      die "device name '$name' is not allowed" "names are 1-63 of a-z 0-9 . _ - starting with a letter or digit, without '..', not 'selftest'" "fix the devices setting"
    [[ $line == *' '* && $key =~ $ED25519_KEY_RE ]] || die "device $name: not one ssh-ed25519 public key" "each line is NAME ssh-ed25519 AAAA... [comment]" "fix the devices setting"
    DEVICE_NAMES+=("$name") DEVICE_KEYS+=("$key")
  done <<<"${BTRBK_DEVICES:-}"
  for ((i = 0; i < ${#DEVICE_NAMES[@]}; i++)); do
    for ((j = 0; j < i; j++)); do
      [ "${DEVICE_NAMES[i]}" != "${DEVICE_NAMES[j]}" ] || die "device ${DEVICE_NAMES[i]} is listed twice" "" "give each device one line"
      [ "$(key_blob "${DEVICE_KEYS[i]}")" != "$(key_blob "${DEVICE_KEYS[j]}")" ] ||
        die "devices ${DEVICE_NAMES[j]} and ${DEVICE_NAMES[i]} have the same key" "the host tells devices apart by their keys" "give each device a key of its own"
    done
    [ "$(key_blob "${DEVICE_KEYS[i]}")" != "$(key_blob "${BTRBK_SSH_PUBLIC_KEY:-x x}")" ] ||
      die "device ${DEVICE_NAMES[i]}'s key is the legacy backup key" "the legacy key reaches every device's backups" "give the device a key of its own (or remove the legacy key)"
    [ "$(key_blob "${DEVICE_KEYS[i]}")" != "$(key_blob "${BTRBK_ADMIN_SSH_PUBLIC_KEY:-x x}")" ] ||
      die "device ${DEVICE_NAMES[i]}'s key is the admin key" "the same key cannot be both behind the gate and an admin login" "use a separate key"
  done
}

key_blob() { local _type blob _rest; read -r _type blob _rest <<<"$1"; printf '%s' "$blob"; }

install_packages() {
  step packages "installing ${PACKAGES[*]} (what is missing)"
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then log "all present"; return 0; fi
  log "missing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a NEEDRESTART_SUSPEND=1
  local apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=5 -o Dpkg::Options::=--force-confold -q)
  local try
  for try in 1 2 3 4 5; do
    if apt-get "${apt_opts[@]}" update && apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"; then
      changed "installed ${missing[*]}"
      return 0
    fi
    log "apt-get failed (try $try of 5); retrying in $((try * 10)) s"
    sleep $((try * 10))
  done
  die "could not install ${missing[*]}" "the package mirror is unreachable or apt is locked" \
    "check outbound HTTP(S) from the instance (security group egress, route to the internet or a VPC endpoint), then run this script again"
}

# The host's clock decides what the host prunes (btrbk-prune counts ages from it): it follows the Amazon Time Sync
# Service, which every EC2 instance reaches at a link-local address (the security group allows no NTP out, and
# needs none). Ubuntu 24.04 runs chrony, which reads /etc/chrony/sources.d; images with systemd-timesyncd get a
# drop-in. A container (the local target) has the host machine's clock and neither daemon.
readonly TIME_SERVER=169.254.169.123
configure_time() {
  step time "clock source: the Amazon Time Sync Service ($TIME_SERVER)"
  if [ -d /etc/chrony ]; then
    install -d -m 0755 /etc/chrony/sources.d
    if [ "$(printf 'server %s prefer iburst minpoll 4 maxpoll 4\n' "$TIME_SERVER" | put_file /etc/chrony/sources.d/btrbk-amazon-time-sync.sources root:root 0644)" = changed ]; then
      changed "chrony: server $TIME_SERVER (prefer)"
      chronyc reload sources >/dev/null 2>&1 || { [ -d /run/systemd/system ] && systemctl try-restart chrony.service; } ||
        log "WARNING: chrony did not reload; it reads the new source when it next starts"
    fi
  elif [ -x /lib/systemd/systemd-timesyncd ] || [ -x /usr/lib/systemd/systemd-timesyncd ]; then
    install -d -m 0755 /etc/systemd/timesyncd.conf.d
    if [ "$(printf '[Time]\nNTP=%s\n' "$TIME_SERVER" | put_file /etc/systemd/timesyncd.conf.d/btrbk-amazon-time-sync.conf root:root 0644)" = changed ]; then
      changed "systemd-timesyncd: NTP=$TIME_SERVER"
      { [ -d /run/systemd/system ] && systemctl try-restart systemd-timesyncd.service; } ||
        log "WARNING: systemd-timesyncd did not restart; it reads the new server when it next starts"
    fi
  else
    log "neither chrony nor systemd-timesyncd on this image: the clock is left as it is (a container shares its host's)"
  fi
}

# The by-id names a Nitro EBS volume gets: udev names the NVMe device after its model and serial (the volume id
# without its dash); newer udev adds the namespace as "_1"; some versions use "-ns-1".
volume_candidates() {
  local base=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${BTRBK_VOLUME_ID/-/}
  printf '%s\n' "$base" "${base}_1" "${base}-ns-1"
}

wait_for_volume() {
  step volume "waiting up to $VOLUME_WAIT_SECONDS s for volume $BTRBK_VOLUME_ID"
  local deadline=$((SECONDS + VOLUME_WAIT_SECONDS)) c
  while :; do
    while read -r c; do
      if [ -b "$c" ]; then
        DEVICE=$(readlink -f "$c")
        log "found $c -> $DEVICE"
        return 0
      fi
    done < <(volume_candidates)
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 2
  done
  log "block devices:"; lsblk -o NAME,SIZE,TYPE,SERIAL,MODEL 2>&1 || true
  log "/dev/disk/by-id:"; ls -l /dev/disk/by-id/ 2>&1 || true
  die "volume $BTRBK_VOLUME_ID did not appear within $VOLUME_WAIT_SECONDS s (looked for $(volume_candidates | head -1) and its _1 / -ns-1 variants)" \
    "the volume is not attached to this instance, is still attaching, or the instance type is not Nitro-based (Xen types name EBS devices /dev/xvdX without the volume id)" \
    "check: aws ec2 describe-volumes --volume-ids $BTRBK_VOLUME_ID (State, Attachments), use a Nitro instance type (t3/t4g/m5/...), then run this script again"
}

# Prints every signature blkid or wipefs finds on the device (filesystems, RAID/LVM members, partition tables).
signatures() {
  local dev=$1 out rc=0
  out=$(blkid -p -o export "$dev" 2>&1) || rc=$?
  case $rc in
    0) printf 'blkid: %s\n' "$(tr '\n' ' ' <<<"$out")" ;;
    2) ;; # nothing found
    *) printf 'blkid: probe failed (exit %s): %s\n' "$rc" "$out" ;;
  esac
  wipefs -n --noheadings -O DEVICE,OFFSET,TYPE "$dev" 2>&1 | sed 's/^/wipefs: /' || printf 'wipefs: failed\n'
}

prepare_filesystem() {
  step filesystem "checking what $DEVICE holds"
  local type label sigs
  type=$(blkid -p -o value -s TYPE "$DEVICE" 2>/dev/null || true)
  if [ "$type" = btrfs ]; then
    label=$(blkid -p -o value -s LABEL "$DEVICE" 2>/dev/null || true)
    if [ "$label" != "$FS_LABEL" ]; then
      log "WARNING: the volume is btrfs labelled '${label}', not '$FS_LABEL'; using it as it is (never reformatted)"
    else
      log "btrfs '$FS_LABEL' already: keeping it (never reformatted)"
    fi
  else
    sigs=$(signatures "$DEVICE")
    if [ -n "$sigs" ]; then
      printf '%s\n' "$sigs" | while read -r line; do log "  found $line"; done
      die "REFUSING to format $DEVICE (volume $BTRBK_VOLUME_ID): it is not blank and not btrfs" \
        "the volume carries the signatures listed above (a filesystem, a partition table or another format); it may hold someone's data" \
        "attach a new, empty volume, or, if this data may really be destroyed, wipe it yourself (wipefs -a $DEVICE) and run this script again" 3
    fi
    if ! cmp -s -n 1048576 "$DEVICE" /dev/zero; then
      die "REFUSING to format $DEVICE (volume $BTRBK_VOLUME_ID): no known signature, but its first MiB is not zero" \
        "it holds data in a format blkid does not know" \
        "attach a new, empty volume, or wipe this one yourself if its data may be destroyed" 3
    fi
    findmnt -rn -S "$DEVICE" >/dev/null && die "$DEVICE is blank but mounted somewhere" "" "unmount it and run this script again"
    log "the volume is blank (no signature, first MiB zero): creating btrfs labelled $FS_LABEL"
    mkfs.btrfs -q -L "$FS_LABEL" "$DEVICE"
    changed "formatted $DEVICE btrfs ($FS_LABEL)"
    if command -v udevadm >/dev/null; then udevadm settle --timeout=30 || true; fi
  fi
  UUID=$(blkid -p -o value -s UUID "$DEVICE")
  [ -n "$UUID" ] || die "cannot read the filesystem UUID of $DEVICE" "blkid -p found no UUID" "check: blkid -p $DEVICE"
  log "filesystem UUID $UUID"
}

mount_volume() {
  step mount "fstab entry and mount at $MOUNT_POINT"
  local line="UUID=$UUID $MOUNT_POINT btrfs $MOUNT_OPTIONS 0 0"
  local comment="# btrbk-backup-host: data volume $BTRBK_VOLUME_ID (written by the boot script)"
  # every line for the mount point (or a previous comment of ours) goes; ours is appended: exactly one line
  if [ "$(awk -v mp="$MOUNT_POINT" '!/^[[:space:]]*#/ && $2 == mp' /etc/fstab | tr -d '\n')" != "$line" ] ||
    [ "$(grep -c '^# btrbk-backup-host:' /etc/fstab || true)" != 1 ]; then
    {
      awk -v mp="$MOUNT_POINT" '!(!/^[[:space:]]*#/ && $2 == mp) && !/^# btrbk-backup-host:/' /etc/fstab
      printf '%s\n%s\n' "$comment" "$line"
    } >/etc/fstab.btrbk-new
    chmod 0644 /etc/fstab.btrbk-new
    mv -f /etc/fstab.btrbk-new /etc/fstab
    changed "fstab: $line"
  fi
  install -d -m 0755 -o root -g root "$MOUNT_POINT"
  local src
  src=$(findmnt -rn -o UUID --mountpoint "$MOUNT_POINT" 2>/dev/null || true)
  if [ -z "$src" ]; then
    [ -d /run/systemd/system ] && systemctl daemon-reload
    mount "$MOUNT_POINT"
    changed "mounted $MOUNT_POINT"
  elif [ "$src" != "$UUID" ]; then
    die "$MOUNT_POINT is already mounted from another filesystem (UUID $src)" "" "unmount it (umount $MOUNT_POINT) and run this script again"
  else
    log "$MOUNT_POINT is mounted"
    # a volume mounted by an older boot script: nothing a send stream writes may become setuid, a device or a program
    if ! findmnt -rn -o OPTIONS --mountpoint "$MOUNT_POINT" | tr ',' '\n' | sort | tr '\n' ' ' | grep -q 'nodev noexec nosuid'; then
      mount -o remount,nosuid,nodev,noexec "$MOUNT_POINT"
      changed "remounted $MOUNT_POINT nosuid,nodev,noexec"
    fi
  fi
  [ "$(stat -c '%a' "$MOUNT_POINT")" = 755 ] || { chmod 0755 "$MOUNT_POINT"; changed "mode 0755 on $MOUNT_POINT"; }
  [ "$(stat -c '%U' "$MOUNT_POINT")" = root ] || { chown root:root "$MOUNT_POINT"; changed "owner root on $MOUNT_POINT"; }
}

# The host's SSH identity lives on the data volume: a replaced instance answers with the key the laptops pinned. The
# script (host payload) prints a line when it changed the key in /etc/ssh; sshd then reloads (configure_sshd follows).
keep_host_key() {
  step hostkey "SSH host key kept in $HOST_KEY_DIR"
  local r
  r=$(bash <(host_key_script) "$HOST_KEY_DIR" /etc/ssh </dev/null) ||
    die "cannot keep the SSH host key in $HOST_KEY_DIR" "see the lines above" "fix it and run this script again"
  [ -z "$r" ] || { changed "$r"; reload_sshd; }
}

# The backup root is a subvolume of its own (user-data/btrbk-layout.sh, host payload): a blank volume gets one, an
# older volume's plain directory is moved into one, once, with every backup as it was.
backup_root_layout() {
  step layout "the backup root $BACKUP_ROOT, a subvolume of its own"
  local r
  r=$(bash <(layout_script) "$MOUNT_POINT" "$BACKUP_ROOT" </dev/null) ||
    die "cannot make $BACKUP_ROOT a subvolume of its own" "see the lines above" "fix it and run this script again"
  [ -z "$r" ] || changed "$r"
}

create_user() {
  step user "user $BTRBK_USER and its key behind the gate"
  if ! getent passwd "$BTRBK_USER" >/dev/null; then
    useradd --system --user-group --create-home --home-dir "$BTRBK_HOME" --shell /bin/sh \
      --comment "btrbk backups (SSH gate only)" "$BTRBK_USER"
    # '*': no password can ever match, but the account is not "locked" (sshd refuses locked accounts without PAM)
    usermod -p '*' "$BTRBK_USER"
    changed "created user $BTRBK_USER"
  fi
  # sshd runs the forced command through the login shell: /bin/sh reads no rc file (bash reads ~/.bashrc there)
  if [ "$(getent passwd "$BTRBK_USER" | cut -d: -f7)" != /bin/sh ]; then
    usermod --shell /bin/sh "$BTRBK_USER"
    changed "login shell of $BTRBK_USER is /bin/sh"
  fi
  # home, ~/.ssh and authorized_keys belong to root: nothing the btrbk user runs can change its own key line
  local home
  home=$(getent passwd "$BTRBK_USER" | cut -d: -f6)
  install -d -m 0755 -o root -g root "$home" "$home/.ssh"
  if [ "$(stat -c '%U:%G %a' "$BACKUP_ROOT")" != "$BTRBK_USER:$BTRBK_USER 750" ]; then
    chown "$BTRBK_USER:$BTRBK_USER" "$BACKUP_ROOT"
    chmod 0750 "$BACKUP_ROOT"
    changed "owner/mode of $BACKUP_ROOT"
  fi
}

# A key per device: its directory (a subvolume of its own, btrbk-layout.sh), the registry the gate, btrbk-receive and
# btrbk-prune read, then authorized_keys (after the registry: the gate refuses a key the registry does not know). A
# device no longer listed is revoked: its key is gone, its directory and backups stay, frozen (btrbk-prune).
setup_devices() {
  step devices "a key per device: ${DEVICE_NAMES[*]:-none}"
  local r line d roots=() home text i NL=$'\n'
  r=$(bash <(layout_script) "$MOUNT_POINT" "$BACKUP_ROOT" /run/btrbk-backup-host/receive.lock "${DEVICE_NAMES[@]}" </dev/null) ||
    die "cannot make the devices' directories subvolumes of their own" "see the lines above" "fix it and run this script again"
  while IFS= read -r line; do [ -z "$line" ] || changed "$line"; done <<<"$r"
  for d in "${DEVICE_NAMES[@]}"; do
    if [ "$(stat -c '%U:%G %a' "$BACKUP_ROOT/$d")" != "$BTRBK_USER:$BTRBK_USER 750" ]; then
      chown "$BTRBK_USER:$BTRBK_USER" "$BACKUP_ROOT/$d"
      chmod 0750 "$BACKUP_ROOT/$d"
      changed "owner/mode of $BACKUP_ROOT/$d"
    fi
  done
  mapfile -t roots < <(bash <(layout_script) --roots "$MOUNT_POINT" "$BACKUP_ROOT" </dev/null)
  text="# Written by the btrbk-backup-host boot script: the devices (one key each), the revoked ones, the legacy key."
  [ -z "${BTRBK_SSH_PUBLIC_KEY:-}" ] || text+="${NL}legacy $(key_blob "$BTRBK_SSH_PUBLIC_KEY")"
  for ((i = 0; i < ${#DEVICE_NAMES[@]}; i++)); do text+="${NL}device ${DEVICE_NAMES[i]} $(key_blob "${DEVICE_KEYS[i]}")"; done
  for d in "${roots[@]}"; do
    if ! printf '%s\n' "${DEVICE_NAMES[@]}" | grep -qxF -- "$d"; then
      text+="${NL}revoked $d"
      log "device $d is revoked: its key is gone; its backups in $BACKUP_ROOT/$d stay, frozen (sudo btrbk-prune --thaw $d lets the host prune them)"
    fi
  done
  install -d -m 0755 "${DEVICES_FILE%/*}"
  [ "$(put_file "$DEVICES_FILE" root:root 0644 <<<"$text")" != changed ] || changed "$DEVICES_FILE"
  # home, ~/.ssh and authorized_keys belong to root: nothing the btrbk user runs can change its own key lines
  home=$(getent passwd "$BTRBK_USER" | cut -d: -f6)
  text=''
  [ -z "${BTRBK_SSH_PUBLIC_KEY:-}" ] || text="restrict,command=\"$GATE_PATH$(gate_options)\" $BTRBK_SSH_PUBLIC_KEY"
  for ((i = 0; i < ${#DEVICE_NAMES[@]}; i++)); do
    text+="${text:+$NL}restrict,command=\"$GATE_PATH --device ${DEVICE_NAMES[i]}$(gate_options)\" ${DEVICE_KEYS[i]}"
  done
  [ "$(put_file "$home/.ssh/authorized_keys" root:root 0644 <<<"$text")" != changed ] ||
    changed "authorized_keys of $BTRBK_USER"
}

# append_only=false (the client manages retention): the gate and sudoers let the key delete backups
gate_options() { [ "$BTRBK_APPEND_ONLY" = true ] || printf ' --allow-delete'; }
sudoers_text() { if [ "$BTRBK_APPEND_ONLY" = true ]; then sudoers_fragment | grep -v BTRBK_DELETE; else sudoers_fragment; fi; }

install_gate() {
  step gate "SSH gate $GATE_PATH, $RECEIVE_PATH, $STREAM_CHECK_PATH and sudoers $SUDOERS_PATH"
  [ "$(gate_script | put_file "$GATE_PATH" root:root 0755)" != changed ] || changed "installed $GATE_PATH"
  [ "$(receive_script | put_file "$RECEIVE_PATH" root:root 0755)" != changed ] || changed "installed $RECEIVE_PATH"
  [ "$(stream_check_script | put_file "$STREAM_CHECK_PATH" root:root 0755)" != changed ] || changed "installed $STREAM_CHECK_PATH"
  [ -d "$STAGING_DIR" ] || { install -d -m 0700 -o root -g root "$STAGING_DIR"; changed "created $STAGING_DIR"; }
  local tmp previous=""
  tmp=$(mktemp /tmp/btrbk-sudoers.XXXXXX)
  sudoers_text >"$tmp"
  visudo -cqf "$tmp" >/dev/null || die "the embedded sudoers fragment does not parse (visudo -cf)" "a bug in user-data/sudoers-btrbk" "fix it and re-deploy"
  if [ -f "$SUDOERS_PATH" ] && cmp -s "$tmp" "$SUDOERS_PATH" && [ "$(stat -c '%U:%G %a' "$SUDOERS_PATH")" = "root:root 440" ]; then
    rm -f "$tmp"
    log "sudoers unchanged"
  else
    if [ -f "$SUDOERS_PATH" ]; then
      previous=$(mktemp /tmp/btrbk-sudoers-prev.XXXXXX)
      cp -p "$SUDOERS_PATH" "$previous"
    fi
    install -m 0440 -o root -g root "$tmp" "$SUDOERS_PATH"
    rm -f "$tmp"
    if ! visudo -cq >/dev/null; then
      if [ -n "$previous" ]; then mv -f "$previous" "$SUDOERS_PATH"; else rm -f "$SUDOERS_PATH"; fi
      die "sudo's whole configuration does not parse with $SUDOERS_PATH in it (visudo -c); the previous state is restored" "" "run visudo -c to see the error"
    fi
    [ -z "$previous" ] || rm -f "$previous"
    changed "installed $SUDOERS_PATH"
  fi
  # The gate's log diagnostics read cloud-init's output log as btrbk (this script's own log is 0644 from the start),
  # so sudo stays limited to btrfs. cloud-init makes the file 0640 root:adm and keeps an existing file's mode; it
  # holds this script's output and the public host-key prints.
  local f=/var/log/cloud-init-output.log
  if [ -f "$f" ] && [ "$(stat -c '%a' "$f")" != 644 ]; then
    chmod 0644 "$f"
    changed "mode 0644 on $f (read by the gate's diagnostics)"
  fi
}

# A root program of the payload with a oneshot service and its timer: NAME PROGRAM FUNC CALENDAR DELAY WHAT
host_timer() {
  local units=0
  [ "$($3 | put_file "$2" root:root 0755)" != changed ] || changed "installed $2"
  [ "$(printf '[Unit]\nDescription=btrbk backup host: %s\nRequiresMountsFor=%s\n\n[Service]\nType=oneshot\nExecStart=%s\nNice=10\nIOSchedulingClass=idle\n' \
    "$6" "$MOUNT_POINT" "$2" | put_file "/etc/systemd/system/$1.service" root:root 0644)" != changed ] || units=1
  [ "$(printf '[Unit]\nDescription=btrbk backup host: %s, %s\n\n[Timer]\nOnCalendar=%s\nRandomizedDelaySec=%s\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n' \
    "$6" "$4" "$4" "$5" | put_file "/etc/systemd/system/$1.timer" root:root 0644)" != changed ] || units=1
  if [ ! -d /run/systemd/system ]; then log "no systemd: $1.timer is installed but not started"; return 0; fi
  [ "$units" = 0 ] || { systemctl daemon-reload; changed "$1.service and .timer"; }
  if ! systemctl is-enabled --quiet "$1.timer" || ! systemctl is-active --quiet "$1.timer"; then
    systemctl enable --now "$1.timer"
    changed "enabled $1.timer"
  fi
}

install_prune() {
  step prune "host retention, scrub, manifest: $PRUNE_PATH, $PRUNE_CONF, btrbk-{prune,scrub}.timer"
  install -d -m 0755 "${PRUNE_CONF%/*}"
  [ "$(printf 'APPEND_ONLY=%s\nRETENTION=%s\nRETENTION_MIN=%s\nBACKUP_ROOT=%s\nMOUNT=%s\nSTAGING=%s\nRECEIVE_STALL_SECONDS=%s\n' \
    "$BTRBK_APPEND_ONLY" "$BTRBK_RETENTION" "$BTRBK_RETENTION_MIN" "$BACKUP_ROOT" "$MOUNT_POINT" "$STAGING_DIR" "$RECEIVE_STALL_SECONDS" |
    put_file "$PRUNE_CONF" root:root 0644)" != changed ] || changed "$PRUNE_CONF"
  [ "$(manifest_script | put_file "$MANIFEST_PATH" root:root 0755)" != changed ] || changed "installed $MANIFEST_PATH"
  # each completed backup is reported to CloudWatch in the deployment's region (none given: the local target, off)
  [ "$(heartbeat_script | put_file "$HEARTBEAT_PATH" root:root 0755)" != changed ] || changed "installed $HEARTBEAT_PATH"
  [ "$(printf 'REGION=%s\nNAMESPACE=%s\nVOLUME_ID=%s\n' "$BTRBK_PAYLOAD_REGION" "$METRIC_NAMESPACE" "$BTRBK_VOLUME_ID" |
    put_file "$HEARTBEAT_CONF" root:root 0644)" != changed ] || changed "$HEARTBEAT_CONF"
  host_timer btrbk-scrub "$SCRUB_PATH" scrub_script hourly 600 "read-only scrub, monthly, after a backup"
  host_timer btrbk-prune "$PRUNE_PATH" prune_script hourly 600 "prune by the host retention policy"
}

# The host payload (the functions of the `# @payload` lines) when the renderer did not inline it: the S3 object
# BTRBK_PAYLOAD_URL, read with the instance role's credentials from the metadata service (IMDSv2) and signed by curl
# (--aws-sigv4: no AWS CLI on the image), or the file BTRBK_PAYLOAD_FILE (the local target). It is sourced only when
# its sha256 is the one rendered into this script. BTRBK_IMDS_URL (root's environment) points a test at a stand-in.
load_payload() {
  [ -n "$BTRBK_PAYLOAD_SHA256" ] || return 0
  step payload "loading the host payload (sha256 ${BTRBK_PAYLOAD_SHA256:0:16}...)"
  local gz=$STATE_DIR/payload.gz file=$STATE_DIR/payload.sh
  rm -f "$gz" "$file"
  if [ -n "$BTRBK_PAYLOAD_FILE" ]; then
    cp "$BTRBK_PAYLOAD_FILE" "$gz" || die "cannot read the payload file $BTRBK_PAYLOAD_FILE" "" "re-create the instance"
  else
    fetch_payload "$gz"
  fi
  gunzip -c <"$gz" >"$file" 2>/dev/null || true
  [ "$(sha256sum <"$file" | cut -d' ' -f1)" = "$BTRBK_PAYLOAD_SHA256" ] ||
    die "the host payload does not match its sha256 in the user data ($(wc -c <"$gz") bytes read)" \
      "the payload object was changed or belongs to another version of the stack" "re-deploy the stack (it uploads the payload and writes the user data together)"
  # shellcheck source=/dev/null
  . "$file"
  log "payload loaded ($(wc -c <"$file") bytes)"
}

fetch_payload() {
  local imds=${BTRBK_IMDS_URL:-http://169.254.169.254/latest} token role="" creds="" try k
  local -A c=()
  token=$(curl -fsS --retry 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token") ||
    die "the instance metadata service does not answer" "IMDS is off or blocked" "the stack sets http_endpoint=enabled; check the instance's metadata options"
  # an instance profile's credentials can take a few seconds to appear after the launch
  for try in $(seq 1 30); do
    role=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/iam/security-credentials/" 2>/dev/null | head -n 1) &&
      [ -n "$role" ] && creds=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/iam/security-credentials/$role" 2>/dev/null) && break
    sleep 2
  done
  for k in AccessKeyId SecretAccessKey Token; do
    c[$k]=$(sed -n "s/^[[:space:]]*\"$k\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" <<<"$creds" | head -n 1)
  done
  [[ -n ${c[AccessKeyId]} && -n ${c[SecretAccessKey]} ]] ||
    die "the instance has no role credentials in its metadata (role '${role:-none}' after $try tries)" \
      "the instance profile is missing or was removed" "re-deploy the stack, which gives the instance its profile"
  log "reading $BTRBK_PAYLOAD_URL as role $role"
  # a new role's policy can take seconds to reach S3 (403 meanwhile): a few tries
  for try in 1 2 3 4 5 6 7 8; do
    curl -fsS --retry 3 --aws-sigv4 "aws:amz:$BTRBK_PAYLOAD_REGION:s3" --user "${c[AccessKeyId]}:${c[SecretAccessKey]}" \
      -H "x-amz-security-token: ${c[Token]}" -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
      -o "$1" "$BTRBK_PAYLOAD_URL" && return 0
    sleep $((try * 2))
  done
  die "cannot read the host payload from $BTRBK_PAYLOAD_URL (8 tries)" \
      "S3 refused the request (the role's policy, the bucket, or the object was removed) or is unreachable (no route out)" \
      "check the instance's outbound HTTPS (security group egress) and that the object exists; re-deploy the stack to upload it again"
}

# The host talks to one kind of client (a current OpenSSH, btrbk's): one ed25519 host key, modern key exchange with
# the post-quantum hybrid, AEAD ciphers and encrypt-then-MAC MACs only (ssh-audit finds no failing algorithm).
sshd_dropin_text() {
  cat <<EOF
# Written by the btrbk-backup-host boot script. Public keys only; the btrbk user gets the SSH gate and nothing else.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PubkeyAuthentication yes
HostKey /etc/ssh/ssh_host_ed25519_key
HostKeyAlgorithms ssh-ed25519
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com

Match User $BTRBK_USER
    AuthenticationMethods publickey
    ForceCommand $GATE_PATH$(gate_options)
    ExposeAuthInfo yes
    AllowTcpForwarding no
    AllowStreamLocalForwarding no
    X11Forwarding no
    AllowAgentForwarding no
    PermitTTY no
    PermitTunnel no
    PermitUserRC no
EOF
}

configure_sshd() {
  step sshd "sshd: public keys only ($SSHD_DROPIN)"
  grep -Eqi '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config ||
    die "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf" "the image's sshd_config is not the distribution's" "add 'Include /etc/ssh/sshd_config.d/*.conf' at its top and run this script again"
  install -d -m 0755 /etc/ssh/sshd_config.d /run/sshd
  local backup="" result
  [ ! -f "$SSHD_DROPIN" ] || { backup=$(mktemp /tmp/btrbk-sshd.XXXXXX); cp -p "$SSHD_DROPIN" "$backup"; }
  result=$(sshd_dropin_text | put_file "$SSHD_DROPIN" root:root 0644)
  if ! sshd -t; then
    if [ -n "$backup" ]; then mv -f "$backup" "$SSHD_DROPIN"; else rm -f "$SSHD_DROPIN"; fi
    die "sshd rejects its configuration with $SSHD_DROPIN (sshd -t); the previous state is restored" "" "run sshd -t to see why"
  fi
  [ -z "$backup" ] || rm -f "$backup"
  # A changed drop-in is owed a reload until one happened: a run that stops below (another drop-in wins) must not
  # leave the next run, which finds the file unchanged, with sshd still on its old settings.
  [ "$result" != changed ] || : >"$SSHD_RELOAD_PENDING"
  # what sshd will really do, whatever other drop-ins say (the first value of a keyword wins)
  local eff
  eff=$(sshd -T -C "user=$BTRBK_USER,host=check,addr=127.0.0.1" 2>&1)
  local want
  for want in "passwordauthentication no" "kbdinteractiveauthentication no" "permitrootlogin no" \
    "permittty no" "allowtcpforwarding no" "allowagentforwarding no" "x11forwarding no" "forcecommand $GATE_PATH$(gate_options)"; do
    grep -qix "$want" <<<"$eff" || die "sshd's effective configuration for $BTRBK_USER lacks '$want'" \
      "another file in /etc/ssh/sshd_config.d sets it first" "check: sshd -T -C user=$BTRBK_USER,host=x,addr=127.0.0.1"
  done
  if [ "$result" = changed ]; then
    changed "sshd drop-in $SSHD_DROPIN"
  elif [ -e "$SSHD_RELOAD_PENDING" ]; then
    changed "sshd reloaded: an earlier run wrote $SSHD_DROPIN and stopped before sshd reloaded it"
  fi
  if [ -e "$SSHD_RELOAD_PENDING" ]; then reload_sshd && rm -f "$SSHD_RELOAD_PENDING"; fi
}

reload_sshd() {
  if [ -d /run/systemd/system ]; then
    # Ubuntu 24.04 starts ssh.service on demand (ssh.socket): try-reload-or-restart is a no-op when it is not running
    local unit=ssh.service
    systemctl cat ssh.service >/dev/null 2>&1 || unit=sshd.service
    systemctl try-reload-or-restart "$unit"
    log "reloaded $unit"
  elif [ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
    kill -HUP "$(cat /run/sshd.pid)"
    log "sent SIGHUP to sshd (no systemd)"
  else
    log "sshd is not running; the settings apply when it starts"
  fi
}

restrict_default_user() {
  step keys "the backup key opens no other door"
  local home ak want=""
  if getent passwd "$DEFAULT_USER" >/dev/null; then
    home=$(getent passwd "$DEFAULT_USER" | cut -d: -f6)
    ak=$home/.ssh/authorized_keys
    [ -z "${BTRBK_ADMIN_SSH_PUBLIC_KEY:-}" ] || want=$BTRBK_ADMIN_SSH_PUBLIC_KEY
    install -d -m 0700 -o "$DEFAULT_USER" -g "$(id -gn "$DEFAULT_USER")" "$home/.ssh"
    if [ -n "$want" ]; then
      [ "$(put_file "$ak" "$DEFAULT_USER:$(id -gn "$DEFAULT_USER")" 0600 <<<"$want")" != changed ] || changed "$DEFAULT_USER keeps only the admin key"
    else
      [ "$(put_file "$ak" "$DEFAULT_USER:$(id -gn "$DEFAULT_USER")" 0600 </dev/null)" != changed ] || changed "removed every key of $DEFAULT_USER (no admin key set)"
    fi
  else
    log "no user $DEFAULT_USER on this image: nothing to remove"
  fi
  # cloud-init also puts the key pair in root's authorized_keys (behind a "log in as ubuntu" command): drop the backup key
  ak=/root/.ssh/authorized_keys
  local blob key
  for key in "${BTRBK_SSH_PUBLIC_KEY:-}" "${DEVICE_KEYS[@]}"; do
    blob=$(key_blob "$key")
    [ -n "$blob" ] || continue
    if [ -f "$ak" ] && grep -qF -- "$blob" "$ak"; then
      [ "$(grep -vF -- "$blob" "$ak" | put_file "$ak" root:root 0600)" != changed ] || changed "removed the backup key from root's authorized_keys"
    fi
  done
}

# ---------------------------------------------------------------------------------------------------- embedded files
# The renderer replaces each of these lines with a function that prints the file from user-data/, inline or in the
# host payload (one S3 object on AWS, a file on the local target; see user-data/render.ts) that load_payload loads.
# @payload btrbk-ssh-gate.sh gate_script
# @payload sudoers-btrbk sudoers_fragment
# @payload btrbk-receive.sh receive_script
# @payload btrbk-stream-check stream_check_script
# @payload btrbk-prune.sh prune_script
# @payload host-identity.sh host_key_script
# @payload btrbk-layout.sh layout_script
# @payload btrbk-scrub.sh scrub_script
# @payload btrbk-manifest manifest_script
# @payload btrbk-heartbeat.sh heartbeat_script

# ---------------------------------------------------------------------------------------------------- main
exec 9>/run/btrbk-backup-host.lock
flock -w 600 9 || die "another run of this script holds /run/btrbk-backup-host.lock" "" "wait for it to finish"
log "btrbk-backup-host boot script version $SCRIPT_VERSION starting (pid $$)"
DEVICE=""
UUID=""
check_settings
load_payload
install_packages
configure_time
wait_for_volume
prepare_filesystem
mount_volume
keep_host_key
backup_root_layout
create_user
setup_devices
install_gate
install_prune
configure_sshd
restrict_default_user
