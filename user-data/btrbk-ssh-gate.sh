#!/bin/bash -p
# btrbk-ssh-gate: the forced command of the `btrbk` user on the backup host (see docs/SSH-GATE.md).
#
# authorized_keys:  restrict,command="/usr/local/sbin/btrbk-ssh-gate" ssh-ed25519 AAAA...            (the legacy key)
#                   restrict,command="/usr/local/sbin/btrbk-ssh-gate --device NAME" ssh-ed25519 AAAA... (a device's)
#
# sshd puts the client's command in SSH_ORIGINAL_COMMAND. This script never hands that text to a shell: it
# splits it into words with a strict tokenizer, checks every pipe stage against a grammar of the commands a
# btrbk 0.32.x client sends to a send/receive target (and for a restore), resolves every path and requires it
# inside the backup root, and then runs the stages itself as argv arrays with absolute program paths.
# Anything else: exit 255, `rejected: <reason>` on stderr, and a log line (logger -t btrbk-ssh-gate).
#
# The gate's configuration comes only from its own argv (written by root into authorized_keys) or the
# built-in defaults below, never from the client:
#   --root DIR            backup root             (default /backup_volume/backups)
#   --mount DIR           the volume's mount point (default /backup_volume)
#   --boot-log FILE       boot script log          (default /var/log/btrbk-backup-host.log)
#   --cloud-init-log FILE cloud-init output log    (default /var/log/cloud-init-output.log)
#   --allow-delete        let the key delete backups (`btrfs subvolume delete`); without it the host is
#                         append-only: the key adds and reads backups, and the host prunes by its own clock (the
#                         key may delete only in ROOT/selftest, the round trip's and the bench's scratch area)
#   --device NAME         this key is device NAME's: its root is ROOT/NAME (a subvolume of its own, the receive's
#                         -m), and nothing outside it exists for the key (see "Devices" below)
#   --registry FILE       the host's device registry (default /etc/btrbk-backup-host/devices, written by the boot
#                         script): `device NAME KEYBLOB`, `revoked NAME` and `legacy KEYBLOB` lines
#   --dry-run             print the parsed stages (one JSON argv array per line) instead of running them
#   --sudo PATH, --logger PATH, --receiver PATH, --pruner PATH   replace /usr/bin/sudo, /usr/bin/logger,
#                         /usr/local/sbin/btrbk-receive, /usr/local/sbin/btrbk-prune (tests only)
set -u
set -o pipefail
export LC_ALL=C
umask 077

# The client's command, captured before the environment is cleared.
CMD=${SSH_ORIGINAL_COMMAND-}
CLIENT=${SSH_CONNECTION-}
CLIENT=${CLIENT%% *}
AUTH_INFO=${SSH_USER_AUTH-} # sshd's ExposeAuthInfo: the file naming the key this session logged in with
# Nothing from the login environment reaches the commands we run.
while IFS= read -r _var; do
  case $_var in LC_ALL | CMD | CLIENT | AUTH_INFO) ;; *) unset "$_var" 2>/dev/null ;; esac
done < <(compgen -e)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

readonly GATE_VERSION=1
readonly MAX_COMMAND_BYTES=4096
readonly MAX_WORDS=64
readonly MAX_STAGES=3

ROOT=/backup_volume/backups
MOUNT=/backup_volume
BOOT_LOG=/var/log/btrbk-backup-host.log
CLOUD_INIT_LOG=/var/log/cloud-init-output.log
DRY_RUN=0
ALLOW_DELETE=0
SUDO=/usr/bin/sudo
LOGGER=/usr/bin/logger
RECEIVER=/usr/local/sbin/btrbk-receive
PRUNER=/usr/local/sbin/btrbk-prune
REGISTRY=/etc/btrbk-backup-host/devices
DEVICE_ARG=
readonly BTRFS=/usr/bin/btrfs
readonly DEVICE_RE='^[a-z0-9][a-z0-9._-]{0,62}$'

log_line() { # priority text -- logging must never fail the gate
  local esc
  printf -v esc '%q' "${CMD:0:1024}"
  "$LOGGER" -t btrbk-ssh-gate -p "auth.$1" -- "$2 client=${CLIENT:-local} command=$esc" </dev/null >/dev/null 2>&1 || true
}

reject() {
  printf 'rejected: %s\n' "$1" >&2
  log_line warning "rejected: $1;"
  exit 255
}

misconfigured() {
  printf 'rejected: gate misconfigured: %s\n' "$1" >&2
  log_line err "misconfigured: $1;"
  exit 255
}

# ---------------------------------------------------------------------------------------------------------
# Gate options (root's argv from authorized_keys; never client text)
while (($#)); do
  case $1 in
    --root | --mount | --boot-log | --cloud-init-log | --sudo | --logger | --receiver | --pruner | --registry | --device)
      (($# >= 2)) || misconfigured "$1 needs a value"
      case $1 in
        --root) ROOT=$2 ;;
        --mount) MOUNT=$2 ;;
        --boot-log) BOOT_LOG=$2 ;;
        --cloud-init-log) CLOUD_INIT_LOG=$2 ;;
        --sudo) SUDO=$2 ;;
        --logger) LOGGER=$2 ;;
        --receiver) RECEIVER=$2 ;;
        --pruner) PRUNER=$2 ;;
        --registry) REGISTRY=$2 ;;
        --device) DEVICE_ARG=$2 ;;
      esac
      shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --allow-delete) ALLOW_DELETE=1; shift ;;
    *) misconfigured "unknown option $1" ;;
  esac
done

SAFE_PATH_RE='^(/[A-Za-z0-9_@+.-]+)+$'
for _p in "$ROOT" "$MOUNT" "$BOOT_LOG" "$CLOUD_INIT_LOG" "$SUDO" "$LOGGER" "$RECEIVER" "$PRUNER" "$REGISTRY"; do
  [[ $_p =~ $SAFE_PATH_RE && /$_p/ != */./* && /$_p/ != */../* ]] || misconfigured "not a plain absolute path: $_p"
done
[[ $ROOT == "$MOUNT"/* ]] || misconfigured "--root $ROOT is not below --mount $MOUNT"
[[ $(realpath -m -- "$ROOT") == "$ROOT" ]] || misconfigured "--root $ROOT is not a canonical path (symlink?)"
[[ -z $DEVICE_ARG || ($DEVICE_ARG =~ $DEVICE_RE && $DEVICE_ARG != *..*) ]] || misconfigured "--device $DEVICE_ARG is not a device name"
readonly MOUNT BOOT_LOG CLOUD_INIT_LOG DRY_RUN ALLOW_DELETE SUDO LOGGER RECEIVER PRUNER REGISTRY DEVICE_ARG

# ---------------------------------------------------------------------------------------------------------
# Devices: which key is this? Only the host says: sshd's ForceCommand (kept as the second wall) runs this gate
# without the key line's options, so the key is read from sshd's ExposeAuthInfo file (SSH_USER_AUTH, written by sshd,
# never by the client) and looked up in the registry the boot script writes; where sshd runs the key line's command
# instead, its --device must name the same device. A key the registry does not know, while devices exist, is refused;
# so is a session that cannot be identified. With no device registered, the gate is exactly the single-key gate.
declare -A REG_KEY=() REG_ROOT=()
LEGACY_BLOB='' NDEV=0
if [[ -r $REGISTRY ]]; then
  while read -r _kind _a _b _; do
    case $_kind in
      device) [[ $_a =~ $DEVICE_RE && -n $_b ]] && REG_KEY[$_a]=$_b REG_ROOT[$_a]=1 NDEV=$((NDEV + 1)) ;;
      revoked) [[ $_a =~ $DEVICE_RE ]] && REG_ROOT[$_a]=1 ;;
      legacy) LEGACY_BLOB=$_a ;;
    esac
  done <"$REGISTRY"
fi
AUTH_BLOB=''
if [[ -n $AUTH_INFO && -r $AUTH_INFO && ! -L $AUTH_INFO ]]; then
  while read -r _method _type _blob _; do
    [[ $_method == publickey && -n $_blob ]] && AUTH_BLOB=$_blob
  done < <(head -c 65536 -- "$AUTH_INFO" 2>/dev/null)
fi
DEVICE=
if [[ -n $AUTH_BLOB ]]; then
  for _d in "${!REG_KEY[@]}"; do [[ ${REG_KEY[$_d]} == "$AUTH_BLOB" ]] && DEVICE=$_d; done
  if [[ -z $DEVICE ]] && ((NDEV)) && [[ $AUTH_BLOB != "$LEGACY_BLOB" ]]; then
    reject "this key is not registered on the backup host (a revoked device?)"
  fi
elif [[ -n $DEVICE_ARG ]]; then
  DEVICE=$DEVICE_ARG
elif ((NDEV)); then
  reject "the host cannot tell which key logged in (sshd's ExposeAuthInfo is off: run the boot script again)"
fi
[[ -z $DEVICE_ARG || $DEVICE_ARG == "$DEVICE" ]] || misconfigured "the key line says --device ${DEVICE_ARG:-(none)}, the registry says ${DEVICE:-the legacy key}"
if [[ -n $DEVICE && -z ${REG_KEY[$DEVICE]-} ]]; then reject "device $DEVICE is not registered on the backup host (revoked?)"; fi
# ROOT, from here on: the root every path of this key is checked against: the device's own directory, or the whole
# backup root (ALL_ROOT)
ALL_ROOT=$ROOT
ROOT=$ALL_ROOT${DEVICE:+/$DEVICE}
readonly DEVICE ALL_ROOT ROOT

# ---------------------------------------------------------------------------------------------------------
# Read-only diagnostics: exact command strings, no arguments from the client.
diag_argv() {
  # a device key gets no view of the whole volume or the host's logs (they name the other devices, their sizes)
  if [[ -n $DEVICE ]]; then
    case $1 in
      'btrbk-diag help') DIAG=(printf '%s\n' 'btrbk-diag device-stats' 'btrbk-diag mount' 'btrbk-diag version'); return 0 ;;
      'btrbk-diag usage' | 'btrbk-diag boot-log' | 'btrbk-diag cloud-init-log' | 'btrbk-diag retention' | 'btrbk-diag scrub')
        reject "${1#btrbk-diag }: not for a device's key (it shows the whole volume or the other devices); the admin reads it" ;;
    esac
  fi
  case $1 in
    'btrbk-diag help') DIAG=(printf '%s\n' 'btrbk-diag usage' 'btrbk-diag device-stats' 'btrbk-diag mount'
      'btrbk-diag boot-log' 'btrbk-diag cloud-init-log' 'btrbk-diag retention' 'btrbk-diag scrub' 'btrbk-diag version') ;;
    'btrbk-diag version')
      local mode=append-only
      ((ALLOW_DELETE)) && mode=allow-delete
      DIAG=(printf 'btrbk-ssh-gate %s root=%s mount=%s mode=%s%s\n' "$GATE_VERSION" "$ROOT" "$MOUNT" "$mode" "${DEVICE:+ device=$DEVICE}") ;;
    # the host's pruning: policy, last run, what is kept and what goes next (read-only)
    'btrbk-diag retention') DIAG=("$SUDO" -n "$PRUNER" report) ;;
    # the last read-only scrub of the volume (its state file is 0644: read as btrbk, no sudo)
    'btrbk-diag scrub') DIAG=(/usr/local/sbin/btrbk-scrub report) ;;
    'btrbk-diag usage') DIAG=("$SUDO" -n "$BTRFS" filesystem usage -b "$MOUNT") ;;
    'btrbk-diag device-stats') DIAG=("$SUDO" -n "$BTRFS" device stats "$MOUNT") ;;
    'btrbk-diag mount') DIAG=(/usr/bin/findmnt --noheadings --output 'TARGET,SOURCE,FSTYPE,OPTIONS' --mountpoint "$MOUNT") ;;
    # the logs are world-readable (the boot script makes them so): read as btrbk, sudo stays btrfs-only
    'btrbk-diag boot-log') DIAG=(/usr/bin/tail -n 200 "$BOOT_LOG") ;;
    'btrbk-diag cloud-init-log') DIAG=(/usr/bin/tail -n 200 "$CLOUD_INIT_LOG") ;;
    *) return 1 ;;
  esac
}

json_argv() { # prints "$@" as one JSON array (arguments are printable ASCII here)
  local out='[' sep='' a
  for a in "$@"; do
    a=${a//\\/\\\\}
    out+="$sep\"${a//\"/\\\"}\""
    sep=','
  done
  printf '%s]\n' "$out"
}

run_diag() {
  if ((DRY_RUN)); then json_argv "${DIAG[@]}"; exit 0; fi
  log_line info "diagnostic:"
  case $CMD in
    'btrbk-diag boot-log' | 'btrbk-diag cloud-init-log')
      local file=${DIAG[-1]}
      if [[ ! -f $file ]]; then
        printf 'btrbk-diag: %s does not exist on the backup host' "$file" >&2
        [[ $file == "$BOOT_LOG" ]] && printf ' (the boot script has not started yet, or it failed before logging)' >&2
        printf '\n' >&2
        exit 1
      fi
      if [[ ! -r $file ]]; then
        printf 'btrbk-diag: %s is not readable by %s (the boot script makes it 0644; it has not run, or the file was recreated)\n' \
          "$file" "$(id -un 2>/dev/null || echo btrbk)" >&2
        exit 1
      fi ;;
    'btrbk-diag mount')
      if ! "${DIAG[@]}"; then
        printf 'btrbk-diag: nothing is mounted at %s (the data volume is not attached or not mounted)\n' "$MOUNT" >&2
        exit 1
      fi
      exit 0 ;;
  esac
  exec "${DIAG[@]}"
}

# ---------------------------------------------------------------------------------------------------------
# Tokenizer. Input: printable ASCII only. Words are separated by spaces. A word is made of plain characters
# [A-Za-z0-9_@%+=:,./-], 'single-quoted' text, and \' (the '\'' idiom btrbk's quoteshell emits). A lone
# unquoted | between spaces separates stages. Every other unquoted character is refused.
WORDS=()    # all words; a stage separator is the word | with WORD_IS_PIPE set
WORD_IS_PIPE=()

tokenize() {
  local s=$1 n=${#1} i=0 c word='' inword=0
  while ((i < n)); do
    c=${s:i:1}
    case $c in
      ' ')
        if ((inword)); then
          WORDS+=("$word"); WORD_IS_PIPE+=(0); word=''; inword=0
        fi ;;
      "'")
        local rest=${s:i+1} q
        [[ $rest == *"'"* ]] || reject "unterminated single quote"
        q=${rest%%"'"*}
        word+=$q; inword=1
        ((i += ${#q} + 1)) ;;
      "\\")
        [[ ${s:i+1:1} == "'" ]] || reject "backslash outside the '\\'' idiom"
        word+="'"; inword=1; ((i += 1)) ;;
      '|')
        if ((inword || i == 0)) || [[ ${s:i+1:1} != ' ' ]]; then reject "'|' must stand alone between spaces"; fi
        WORDS+=('|'); WORD_IS_PIPE+=(1) ;;
      [A-Za-z0-9_@%+=:,./-])
        word+=$c; inword=1 ;;
      *)
        reject "shell metacharacter or unexpected character $(printf '%q' "$c") in the command" ;;
    esac
    ((i += 1))
    ((${#WORDS[@]} <= MAX_WORDS)) || reject "too many words"
  done
  if ((inword)); then WORDS+=("$word"); WORD_IS_PIPE+=(0); fi
}

# ---------------------------------------------------------------------------------------------------------
# Paths. Allowed characters are btrbk's own $safe_file_match ([0-9a-zA-Z_@+-./]); no empty, `.` or `..`
# component; nothing but the one final component may exist as anything other than a plain directory (no
# symlink, and on btrfs no subvolume root: a received stream controls what is inside a subvolume, but not the
# directories btrbk creates with mkdir -p); the result must be inside ROOT (or exactly ROOT / MOUNT where the
# caller allows it). One trailing slash is accepted (btrbk appends one for receive). A path through a directory that
# does not exist when it is checked is never handed to a program (MISSING below).
FS_TYPE=
PATH_OUT=
# The first path component that did not exist when a path was checked, and the verb (mkdir, test, readlink, other).
# Nothing runs on such a path: the check and the command are two steps, and in between the missing component can
# appear as a backup the key has just received, holding a symlink that the command would follow (a race the first
# review of this check won in seconds: `btrfs send alpha/R1/l/b1`, checked before R1 existed, sent bravo's backup
# through R1's symlink l). The gate answers for the command that would have found nothing, and mkdir -p makes the
# components itself, one at a time, each checked before the next.
MISSING=
MISSING_VERB=other

not_a_subvolume() { # DIR, a directory a path goes through: refused when it is a subvolume root, but for a device's
  # directory on the legacy key's way (made by the host, never by a stream)
  if [[ -z $FS_TYPE ]]; then FS_TYPE=$(stat -f -c %T -- "$ROOT" 2>/dev/null) || FS_TYPE=unknown; fi
  if [[ $FS_TYPE == btrfs && $(stat -c %i -- "$1" 2>/dev/null) == 256 ]]; then
    [[ -z $DEVICE && ${1%/*} == "$ALL_ROOT" && -n ${REG_ROOT[${1##*/}]-} ]] || reject "path goes through a subvolume: $1"
  fi
}

check_path() { # allowed-kinds word ; kinds: in root mount (comma list)
  local kinds=$1 p=$2 rel comp prefix
  [[ $p == /* ]] || reject "path must be absolute: $p"
  [[ $p != / && $p == */ ]] && p=${p%/}
  [[ $p =~ $SAFE_PATH_RE ]] || reject "path has characters outside [A-Za-z0-9_@+.-/] or an empty component: $2"
  [[ /$p/ != */./* && /$p/ != */../* ]] || reject "path has a . or .. component: $2"
  if [[ $p == "$ROOT" ]]; then
    [[ ,$kinds, == *,root,* ]] || reject "not allowed on the backup root itself: $2"
  elif [[ $p == "$MOUNT" ]]; then
    [[ ,$kinds, == *,mount,* ]] || reject "not allowed on the volume's mount point: $2"
  elif [[ $p == "$ROOT"/* ]]; then
    [[ ,$kinds, == *,in,* ]] || reject "path not allowed here: $2"
    rel=${p#"$ROOT"/}
    prefix=$ROOT
    local -a dirs=()
    while [[ $rel == */* ]]; do
      comp=${rel%%/*}; rel=${rel#*/}; prefix+=/$comp
      dirs+=("$prefix")
    done
    # every existing component: no symlink; intermediate ones: searchable plain directories, no subvolume
    local d
    for d in "${dirs[@]}"; do
      [[ -L $d ]] && reject "path goes through a symlink: $d"
      [[ -e $d ]] || { MISSING=${MISSING:-$d}; break; }
      [[ -d $d ]] || reject "path goes through a non-directory: $d"
      [[ -x $d ]] || reject "path goes through a directory the gate cannot check: $d"
      not_a_subvolume "$d"
    done
    [[ -L $p ]] && reject "path is a symlink: $p"
  else
    reject "path outside the backup root $ROOT: $2"
  fi
  [[ $(realpath -m -- "$p" 2>/dev/null) == "$p" ]] || reject "path does not resolve to itself: $2"
  PATH_OUT=$p
}

# ---------------------------------------------------------------------------------------------------------
# What the key learns of the volume's subvolumes: only those in the backup root (a subvolume of its own, which
# btrbk-receive gives btrfs receive as -m: a stream's snapshot and clone sources must lie inside it). The top
# level's and the host state's UUIDs, generations and paths never leave the host: `subvolume list` keeps the lines
# of the backup root and below; `subvolume show` of the top level (btrbk asks `--rootid=5`, best effort) says only
# that it is the top level, with no UUID (as on a filesystem made by btrfs-progs < 4.16), and no other subvolume
# outside the backup root is shown; the `Snapshot(s):` list (it can name a receive still in staging) is left out.
# A device's key sees the backup root's own line (btrbk builds its tree from it: the device's directory hangs below it)
# and its own directory and below, nothing else; its failed `show` says the same as a refused one (no oracle of which
# subvolume IDs exist).
ROOT_REL=${ALL_ROOT#"$MOUNT"/}
DROOT_REL=${ROOT#"$MOUNT"/}
in_root_rel() { [[ $1 == "$ROOT_REL" || $1 == "$DROOT_REL" || $1 == "$DROOT_REL"/* ]]; }
filter_list() {
  local l p
  while IFS= read -r l; do
    p=${l#* path } # the first " path ": the columns before it are fixed; a name may hold anything
    p=${p#'<FS_TREE>/'}
    if [[ $l == *' path '* ]] && in_root_rel "$p"; then printf '%s\n' "$l"; fi
  done
}
filter_show() {
  local l first
  IFS= read -r first || return 0
  if [[ $first == / ]]; then
    printf '/\n\tName: \t\t\t<FS_TREE>\n\tUUID: \t\t\t-\n\tParent UUID: \t\t-\n\tReceived UUID: \t\t-\n\tSubvolume ID: \t\t5\n'
    printf '\tGeneration: \t\t0\n\tGen at creation: \t0\n\tParent ID: \t\t0\n\tTop level ID: \t\t0\n\tFlags: \t\t\t-\n'
  elif in_root_rel "$first"; then
    printf '%s\n' "$first"
    while IFS= read -r l && [[ $l != *'Snapshot(s):'* ]]; do printf '%s\n' "$l"; done
  else
    printf 'rejected: btrfs subvolume show: not a subvolume of the backup root %s\n' "$ROOT" >&2
    cat >/dev/null
    return 255
  fi
  cat >/dev/null
}

# ---------------------------------------------------------------------------------------------------------
# Grammar: one stage (argv in A) -> KIND and the argv to run in OUT (FILTER: a filter_* its output goes through).
NUM_RE='^[0-9]+$'
FILTER=

stage_btrfs() { # words after "btrfs"
  local -a a=("$@")
  local sub=${a[0]-} n=${#a[@]} i
  case $sub in
    receive)
      local v=0 maxerr=0 path=
      for ((i = 1; i < n; i++)); do
        case ${a[i]} in
          -v) ((v == 0)) || reject "btrfs receive: -v given twice"; v=1 ;;
          --max-errors=0) ((maxerr == 0)) || reject "btrfs receive: --max-errors given twice"; maxerr=1 ;;
          /*) ((i == n - 1)) || reject "btrfs receive: options after the directory"; path=${a[i]} ;;
          *) reject "btrfs receive: option not allowed: ${a[i]}" ;;
        esac
      done
      [[ -n $path ]] || reject "btrfs receive: no directory"
      check_path root,in "$path"
      # never btrfs receive itself: btrbk-receive receives with --chroot into a staging directory of its own and
      # moves only a complete subvolume into place (a send stream is client input as much as this command line)
      OUT=("$SUDO" -n "$RECEIVER")
      [[ -n $DEVICE ]] && OUT+=(--device "$DEVICE")
      ((v)) && OUT+=(-v)
      ((maxerr)) && OUT+=(--max-errors=0)
      OUT+=("$PATH_OUT"); KIND=receive ;;
    send)
      local q=0 cd=0 nd=0 proto='' parent='' src=''
      local -a clones=()
      for ((i = 1; i < n; i++)); do
        case ${a[i]} in
          -q) ((q == 0)) || reject "btrfs send: -q given twice"; q=1 ;;
          --compressed-data) ((cd == 0)) || reject "btrfs send: --compressed-data given twice"; cd=1 ;;
          # metadata only (`backup.mjs diff` and `find`: what changed between two backups, from the trees alone): it
          # tells less than the send of the same subvolumes that the key may already ask for
          --no-data) ((nd == 0)) || reject "btrfs send: --no-data given twice"; nd=1 ;;
          --proto)
            [[ -z $proto ]] || reject "btrfs send: --proto given twice"
            if ((i + 1 >= n)) || [[ ! ${a[i + 1]} =~ ^[0-3]$ ]]; then reject "btrfs send: --proto needs 0..3"; fi
            proto=${a[i + 1]}; ((i += 1)) ;;
          -p)
            [[ -z $parent ]] || reject "btrfs send: -p given twice"
            ((i + 1 < n)) || reject "btrfs send: -p needs a path"
            check_path in "${a[i + 1]}"; parent=$PATH_OUT; ((i += 1)) ;;
          -c)
            ((i + 1 < n)) || reject "btrfs send: -c needs a path"
            ((${#clones[@]} < 32)) || reject "btrfs send: too many -c"
            check_path in "${a[i + 1]}"; clones+=(-c "$PATH_OUT"); ((i += 1)) ;;
          /*) ((i == n - 1)) || reject "btrfs send: exactly one subvolume, last"; check_path in "${a[i]}"; src=$PATH_OUT ;;
          *) reject "btrfs send: option not allowed: ${a[i]}" ;;
        esac
      done
      [[ -n $src ]] || reject "btrfs send: no subvolume"
      OUT=("$SUDO" -n "$BTRFS" send)
      ((q)) && OUT+=(-q)
      [[ -n $proto ]] && OUT+=(--proto "$proto")
      ((cd)) && OUT+=(--compressed-data)
      ((nd)) && OUT+=(--no-data)
      [[ -n $parent ]] && OUT+=(-p "$parent")
      OUT+=("${clones[@]}" "$src"); KIND=send ;;
    subvolume)
      local op=${a[1]-} path=
      case $op in
        list)
          local -A seen=()
          local f
          for ((i = 2; i < n; i++)); do
            case ${a[i]} in
              -a | -o | -d | -r | -c | -u | -q | -R)
                [[ -z ${seen[${a[i]}]-} ]] || reject "btrfs subvolume list: ${a[i]} given twice"; seen[${a[i]}]=1 ;;
              /*) ((i == n - 1)) || reject "btrfs subvolume list: options after the path"; path=${a[i]} ;;
              *) reject "btrfs subvolume list: option not allowed: ${a[i]}" ;;
            esac
          done
          [[ -n $path ]] || reject "btrfs subvolume list: no path"
          check_path mount,root,in "$path"
          OUT=("$SUDO" -n "$BTRFS" subvolume list)
          for f in -a -o -d -r -c -u -q -R; do [[ -n ${seen[$f]-} ]] && OUT+=("$f"); done
          OUT+=("$PATH_OUT"); KIND=single FILTER=list ;;
        show)
          local rootid=
          for ((i = 2; i < n; i++)); do
            case ${a[i]} in
              --rootid=*)
                [[ -z $rootid ]] || reject "btrfs subvolume show: --rootid given twice"
                rootid=${a[i]#--rootid=}
                [[ $rootid =~ $NUM_RE && ${#rootid} -le 20 ]] || reject "btrfs subvolume show: --rootid needs a number" ;;
              /*) ((i == n - 1)) || reject "btrfs subvolume show: options after the path"; path=${a[i]} ;;
              *) reject "btrfs subvolume show: option not allowed: ${a[i]}" ;;
            esac
          done
          [[ -n $path ]] || reject "btrfs subvolume show: no path"
          check_path mount,root,in "$path"
          OUT=("$SUDO" -n "$BTRFS" subvolume show)
          [[ -n $rootid ]] && OUT+=("--rootid=$rootid")
          OUT+=("$PATH_OUT"); KIND=single FILTER=show ;;
        delete)
          local commit=
          for ((i = 2; i < n; i++)); do
            case ${a[i]} in
              --commit-after | --commit-each)
                [[ -z $commit ]] || reject "btrfs subvolume delete: one --commit option at most"; commit=${a[i]} ;;
              /*) ((i == n - 1)) || reject "btrfs subvolume delete: exactly one subvolume, last"; path=${a[i]} ;;
              *) reject "btrfs subvolume delete: option not allowed: ${a[i]}" ;;
            esac
          done
          [[ -n $path ]] || reject "btrfs subvolume delete: no subvolume"
          check_path in "$path"
          # append-only: only the tools' own scratch area ($ROOT/selftest: the round trip, the bench) can be cleaned
          if ((ALLOW_DELETE == 0)) && [[ $PATH_OUT != "$ROOT/selftest/"* ]]; then
            reject "btrfs subvolume delete: this key cannot delete backups (the host is append-only and prunes by its own retention policy: 'btrbk-diag retention' shows it; delete on purpose as the admin, see docs/SSH-GATE.md)"
          fi
          OUT=("$SUDO" -n "$BTRFS" subvolume delete)
          [[ -n $commit ]] && OUT+=("$commit")
          OUT+=("$PATH_OUT"); KIND=single ;;
        *) reject "btrfs subvolume ${op:-(none)}: not a command a backup needs" ;;
      esac ;;
    filesystem)
      [[ ${a[1]-} == usage ]] || reject "btrfs filesystem ${a[1]-}: not a command a backup needs"
      local b=0 path=
      for ((i = 2; i < n; i++)); do
        case ${a[i]} in
          -b) ((b == 0)) || reject "btrfs filesystem usage: -b given twice"; b=1 ;;
          /*) ((i == n - 1)) || reject "btrfs filesystem usage: options after the path"; path=${a[i]} ;;
          *) reject "btrfs filesystem usage: option not allowed: ${a[i]}" ;;
        esac
      done
      [[ -n $path ]] || reject "btrfs filesystem usage: no path"
      [[ -z $DEVICE ]] || reject "btrfs filesystem usage: not for a device's key (the whole volume's sizes)"
      check_path mount,root "$path"
      OUT=("$SUDO" -n "$BTRFS" filesystem usage)
      ((b)) && OUT+=(-b)
      OUT+=("$PATH_OUT"); KIND=single ;;
    *) reject "btrfs ${sub:-(none)}: not a command a backup needs" ;;
  esac
}

stage_compressor() { # name words... ; decompress: NAME -d -c [opts] ; compress: NAME -c [-LEVEL] [opts]
  local name=$1; shift
  local -a a=("$@")
  local n=${#a[@]} i=0 mode level_re threads_re='' long=0 adapt=0 lvl=0 thr=0 lng=0 adp=0
  case $name in
    zstd) level_re='^-([1-9]|1[0-9])$'; threads_re='^-T[0-9]{1,3}$'; long=1; adapt=1 ;;
    xz) level_re='^-[0-9]$'; threads_re='^-T[0-9]{1,3}$' ;;
    gzip | lz4) level_re='^-[1-9]$' ;;
  esac
  if [[ ${a[0]-} == -d && ${a[1]-} == -c ]]; then mode='decompress'; i=2
  elif [[ ${a[0]-} == -c ]]; then mode='compress'; i=1
  else reject "$name: only '$name -d -c' (decompress) or '$name -c' (compress) stages are allowed"
  fi
  OUT=("/usr/bin/$name" "${a[@]:0:i}")
  for ((; i < n; i++)); do
    local w=${a[i]}
    if [[ $mode == compress && $w =~ $level_re ]] && ((lvl == 0)); then lvl=1
    elif [[ -n $threads_re && $w =~ $threads_re ]] && ((thr == 0)); then thr=1
    elif ((long)) && [[ $w =~ ^--long=[0-9]{1,2}$ ]] && ((lng == 0)); then
      # a window of 2^N bytes in the host's memory (zstd's own default is 27: 128 MiB); 31 would be 2 GiB on a host
      # of 512 MiB
      ((10#${w#--long=} <= 27)) || reject "$name: $w is not allowed (a window of 2^${w#--long=} bytes in the host's memory); --long=27 at most"
      lng=1
    elif ((adapt)) && [[ $w == --adapt ]] && ((adp == 0)); then adp=1
    else reject "$name: option not allowed here: $w"
    fi
    OUT+=("$w")
  done
  # xz's memory follows the stream's dictionary (decompress, client input: a dictionary of 1 GiB took 1,025 MiB) or
  # the level (compress: -9 takes 674 MiB); capped, decompress refuses and compress scales its settings down
  [[ $name != xz ]] || OUT+=("--memlimit-$mode=128MiB")
  KIND=$mode
}

# an mbuffer size N[kKmMgG] (no unit: bytes) -> KIB, in KiB, bytes rounded up
size_kib() {
  local n=${1%[kKmMgG]}
  n=$((10#$n))
  case ${1#"${1%[kKmMgG]}"} in
    k | K) KIB=$n ;;
    m | M) KIB=$((n * 1024)) ;;
    g | G) KIB=$((n * 1048576)) ;;
    *) KIB=$(((n + 1023) / 1024)) ;;
  esac
}

# mbuffer's buffer fills when the client sends faster than the receive writes: at most a quarter of the host's memory
buffer_fits() { # N[kmg%]
  local total='' k rest
  if [[ $1 == *% ]]; then ((10#${1%\%} <= 25)); return; fi
  while read -r k rest; do [[ $k == MemTotal: ]] && total=${rest%% *} && break; done </proc/meminfo
  [[ -n $total ]] || return 1
  size_kib "$1"
  ((KIB <= total / 4))
}

block_fits() { # N[kmg]: at most 1 MiB
  size_kib "$1"
  ((KIB <= 1024))
}

stage_mbuffer() { # mbuffer -v 1 [-q] [-s N] [-m N] [-r N] [-R N]
  local -a a=("$@")
  local n=${#a[@]} i
  local -A seen=()
  [[ ${a[0]-} == -v && ${a[1]-} == 1 ]] || reject "mbuffer: must start with '-v 1' as btrbk sends it"
  OUT=(/usr/bin/mbuffer -v 1)
  for ((i = 2; i < n; i++)); do
    local o=${a[i]} re=
    case $o in
      -q) re= ;;
      -s) re='^[0-9]{1,12}[kKmMgG]?$' ;;
      -m) re='^[0-9]{1,12}[kmgKMG%]?$' ;;
      -r | -R) re='^[0-9]{1,12}[kmgtKMGT]?$' ;;
      *) reject "mbuffer: option not allowed: $o" ;;
    esac
    [[ -z ${seen[$o]-} ]] || reject "mbuffer: $o given twice"; seen[$o]=1
    OUT+=("$o")
    if [[ -n $re ]]; then
      if ((i + 1 >= n)) || [[ ! ${a[i + 1]} =~ $re ]]; then reject "mbuffer: bad value for $o"; fi
      [[ $o != -m ]] || buffer_fits "${a[i + 1]}" || reject "mbuffer: -m ${a[i + 1]} is more than a quarter of the host's memory"
      # the block size: without -m, mbuffer takes some 120 blocks of it (-s 190M reserved 23 GB, found by a review)
      [[ $o != -s ]] || block_fits "${a[i + 1]}" || reject "mbuffer: -s ${a[i + 1]} is more than 1M"
      OUT+=("${a[i + 1]}"); ((i += 1))
    fi
  done
  KIND=buffer
}

parse_stage() { # words of one stage -> KIND, OUT
  local -a a=("$@")
  local sudo=0
  if [[ ${a[0]} == sudo ]]; then
    [[ ${a[1]-} == -n ]] || reject "sudo: only 'sudo -n' is accepted"
    a=("${a[@]:2}"); sudo=1
    [[ ${#a[@]} -gt 0 ]] || reject "sudo: no command"
    case ${a[0]} in
      btrfs | readlink | test) ;;
      *) reject "sudo: not allowed for ${a[0]}" ;;
    esac
  fi
  local n=${#a[@]}
  case ${a[0]} in
    btrfs) stage_btrfs "${a[@]:1}" ;;
    readlink)
      # system_realpath(): readlink -v -e PATH (-v -f with compat=busybox). Runs as the btrbk user.
      if ((n != 4)) || [[ ${a[1]} != -v || ( ${a[2]} != -e && ${a[2]} != -f ) ]]; then reject "readlink: only 'readlink -v -e|-f PATH'"; fi
      check_path root,in "${a[3]}"
      MISSING_VERB='readlink'
      OUT=(/usr/bin/readlink -v "${a[2]}" "$PATH_OUT"); KIND=single ;;
    test)
      if ((n != 3)) || [[ ${a[1]} != -d ]]; then reject "test: only 'test -d PATH'"; fi
      check_path root,in "${a[2]}"
      MISSING_VERB='test'
      OUT=(/usr/bin/test -d "$PATH_OUT"); KIND=single ;;
    mkdir)
      if ((n != 3)) || [[ ${a[1]} != -p ]]; then reject "mkdir: only 'mkdir -p PATH'"; fi
      check_path root,in "${a[2]}"
      MISSING_VERB='mkdir'
      OUT=(/usr/bin/mkdir -p "$PATH_OUT"); KIND=single ;;
    cat)
      if ((n != 2)) || [[ ${a[1]} != /proc/self/mountinfo ]]; then reject "cat: only 'cat /proc/self/mountinfo'"; fi
      OUT=(/usr/bin/cat /proc/self/mountinfo); KIND=single ;;
    btrbk-manifest)
      # what a backup holds, for `backup.mjs verify` (user-data/btrbk-manifest: read-only, CAP_DAC_READ_SEARCH only);
      # --list: names and metadata only (no file is opened), for `backup.mjs ls` and `find`, below --under REL (a path
      # inside the backup, every byte outside [A-Za-z0-9_@+.-] written %XX; the manifest walks to it without following
      # a symlink or leaving the backup's subvolume) and at most --depth levels deep
      OUT=("$SUDO" -n /usr/local/sbin/btrbk-manifest)
      if ((n == 6)) && [[ ${a[1]} == --sample && ${a[2]} =~ ^(100|[1-9][0-9]?)$ && ${a[3]} == --seed && ${a[4]} =~ ^[0-9]{1,18}$ ]]; then
        OUT+=("${a[@]:1:4}")
      elif [[ ${a[1]-} == --list ]]; then
        OUT+=(--list)
        i=2
        if [[ ${a[i]-} == --under ]]; then
          local rel=${a[i + 1]-} c
          [[ ${#rel} -le 2048 && $rel =~ ^([A-Za-z0-9_@+.-]|%[0-9A-F]{2})+(/([A-Za-z0-9_@+.-]|%[0-9A-F]{2})+)*$ ]] ||
            reject "btrbk-manifest: --under needs a relative path, [A-Za-z0-9_@+.-] and %XX only"
          for c in ${rel//\// }; do # the regex above leaves no glob or space character to expand
            [[ $c != . && $c != .. && $c != *%2E* && $c != *%2F* && $c != *%00* ]] ||
              reject "btrbk-manifest: --under has a . or .. component, or an escaped / . or NUL: $rel"
          done
          OUT+=(--under "$rel"); ((i += 2))
        fi
        if [[ ${a[i]-} == --depth ]]; then
          [[ ${a[i + 1]-} =~ ^[1-9][0-9]{0,3}$ ]] || reject "btrbk-manifest: --depth needs 1..9999"
          OUT+=(--depth "${a[i + 1]}"); ((i += 2))
        fi
        ((i == n - 1)) || reject "btrbk-manifest: only --list [--under REL] [--depth N] PATH"
      elif ((n != 2)); then reject "btrbk-manifest: only [--sample 1..100 --seed N] PATH, or --list [--under REL] [--depth N] PATH"; fi
      check_path in "${a[n - 1]}"
      OUT+=("$PATH_OUT"); KIND=single ;;
    zstd | gzip | xz | lz4) stage_compressor "${a[@]}" ;;
    mbuffer) stage_mbuffer "${a[@]:1}" ;;
    *) reject "command not allowed: ${a[0]}" ;;
  esac
  : "$sudo"
}

# ---------------------------------------------------------------------------------------------------------
[[ -n $CMD ]] || reject "no command given (interactive logins are not allowed for this key)"
((${#CMD} <= MAX_COMMAND_BYTES)) || reject "command longer than $MAX_COMMAND_BYTES bytes"
[[ $CMD != *[![:print:]]* ]] || reject "command contains a control character or a non-ASCII byte"

if [[ $CMD == btrbk-diag* ]]; then
  diag_argv "$CMD" || reject "unknown diagnostic (try 'btrbk-diag help')"
  run_diag
fi

tokenize "$CMD"
((${#WORDS[@]})) || reject "empty command"

# Split into stages and parse each.
S0=() S1=() S2=()
KINDS=()
nstages=0
stage_words=()
finish_stage() {
  ((${#stage_words[@]})) || reject "empty pipe stage"
  ((nstages < MAX_STAGES)) || reject "more than $MAX_STAGES pipe stages"
  KIND='' OUT=()
  parse_stage "${stage_words[@]}"
  case $nstages in
    0) S0=("${OUT[@]}") ;;
    1) S1=("${OUT[@]}") ;;
    2) S2=("${OUT[@]}") ;;
  esac
  KINDS+=("$KIND")
  ((nstages += 1))
  stage_words=()
}
for ((w = 0; w < ${#WORDS[@]}; w++)); do
  if ((WORD_IS_PIPE[w])); then finish_stage; else stage_words+=("${WORDS[w]}"); fi
done
finish_stage

# The shapes btrbk builds (run_cmd: decompress, stream buffer, command | command, stream buffer, compress).
shape=" ${KINDS[*]} "
case $shape in
  ' single ' | ' receive ' | ' decompress receive ' | ' buffer receive ' | ' decompress buffer receive ' | \
    ' send ' | ' send buffer ' | ' send compress ' | ' send buffer compress ') ;;
  *) reject "pipeline shape not allowed:${shape% }" ;;
esac

if ((DRY_RUN)); then
  json_argv "${S0[@]}"
  ((nstages > 1)) && json_argv "${S1[@]}"
  ((nstages > 2)) && json_argv "${S2[@]}"
  exit 0
fi

# a path that went through a component that did not exist (see MISSING above): nothing is run on it
make_dirs() { # PATH below ROOT, every component made (as mkdir -p would) and checked before the next is entered
  local rel=${1#"$ROOT"/} d=$ROOT
  while [[ -n $rel ]]; do
    d+=/${rel%%/*}
    [[ $rel == */* ]] && rel=${rel#*/} || rel=
    [[ -e $d || -L $d ]] || mkdir -- "$d" 2>/dev/null || [[ -e $d || -L $d ]] ||
      { printf "mkdir: cannot create directory '%s'\n" "$d" >&2; return 1; }
    [[ ! -L $d && -d $d ]] || reject "path goes through a symlink or a non-directory: $d"
    [[ -z $rel ]] || not_a_subvolume "$d" # (the last one may be a subvolume, as check_path allows)
  done
}
if [[ -n $MISSING ]]; then
  log_line info "accepted, answered by the gate ($MISSING does not exist):"
  case $MISSING_VERB in # (mkdir, test and readlink are single stages: the shapes allow them alone)
    mkdir) make_dirs "$PATH_OUT"; exit ;;
    test) exit 1 ;;
    readlink) printf 'readlink: %s: No such file or directory\n' "$PATH_OUT" >&2; exit 1 ;;
    *) printf "ERROR: cannot access '%s': No such file or directory\n" "$MISSING" >&2; exit 1 ;;
  esac
fi

log_line info "accepted:"
case $nstages in
  1) if [[ -z $FILTER ]]; then exec "${S0[@]}"
    elif [[ -z $DEVICE ]]; then "${S0[@]}" | "filter_$FILTER"
    else
      "${S0[@]}" 2>/dev/null | "filter_$FILTER"
      _st=("${PIPESTATUS[@]}")
      ((_st[1] == 0)) || exit "${_st[1]}"
      if ((_st[0] != 0)); then
        if [[ $FILTER == show ]]; then printf 'rejected: btrfs subvolume show: not a subvolume of the backup root %s\n' "$ROOT" >&2
        else printf 'rejected: btrfs subvolume list failed\n' >&2; fi
        exit 255
      fi
    fi ;;
  2) "${S0[@]}" | "${S1[@]}" ;;
  3) "${S0[@]}" | "${S1[@]}" | "${S2[@]}" ;;
esac
