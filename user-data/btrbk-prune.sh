#!/bin/bash
# btrbk-prune [--config F] [--now EPOCH] [--listing F] [--dry-run] [report]: the host's own retention (append-only).
# btrbk 0.32 target_preserve(_min) semantics, UTC, by creation time on this host. A group keeps its newest complete
# backup and is pruned only after a newer one arrived since the last run (first seen: recorded only). --listing:
# EPOCH<TAB>complete|partial|other<TAB>PATH lines replace the btrfs scan, deletions are only printed. --dry-run:
# print the decisions (keep|delete PATH reason), change nothing.
# Devices (the registry DEVICES_FILE, written by the boot script: `device NAME KEY`, `revoked NAME`): a device's
# directory BACKUP_ROOT/NAME is a subvolume of its own, and its backups are pruned as any others while NAME is a
# device. A revoked device's backups are frozen: never pruned, until NAME is a device again or the admin thaws it
# (--thaw NAME: a marker in STATE_DIR/thawed; re-adding the device clears it, so removing it again freezes again).
# The report ends with the registry: `device NAME current|frozen|thawed`, one line per device (no keys).
# The legacy key's directories are plain directories, never devices: pruned as before.
set -u -o pipefail
export LC_ALL=C TZ=UTC PATH=/usr/sbin:/usr/bin:/sbin:/bin
CONF=/etc/btrbk-backup-host/prune.conf NOW='' LIST='' DRY=0 REP=0 SYS=0 ST=0 UN=(hour day week month year) THAW=''
DEVICES_FILE=/etc/btrbk-backup-host/devices
BACKUP_ROOT=/backup_volume/backups MOUNT=/backup_volume STAGING=/backup_volume/.btrbk-staging
STATE_DIR=/var/lib/btrbk-backup-host/prune RECEIVE_LOCK=/run/btrbk-backup-host/receive.lock
APPEND_ONLY='' RETENTION='' RETENTION_MIN='' RECEIVE_STALL_SECONDS=600 # btrbk-receive's (it reads the same file)
# Receives that hold the receive lock at every run for this long in a row are ended so that the pruning runs: a stream
# that trickles a byte now and then never stalls, and overlapping receives never let go of the lock. A week: longer
# than a first backup of 2 TB at a t3a.nano's 4 MB/s network baseline; their senders try again at their next run.
RECEIVE_HOLD_MAX_SECONDS=604800

log() { echo "$*"; ((SYS)) && logger -t btrbk-prune -- "$*"; return 0; }
csort() { # WORD... -> SORTED=(the words in sort(1)'s order: [[ < ]] compares as it does under LC_ALL=C), no fork for a few
  local w i
  SORTED=()
  if (($# > 40)); then mapfile -t SORTED < <(printf '%s\n' "$@" | sort); return; fi
  for w; do
    for ((i = ${#SORTED[@]}; i > 0; i--)); do [[ ${SORTED[i - 1]} > "$w" ]] || break; SORTED[i]=${SORTED[i - 1]}; done
    SORTED[i]=$w
  done
}
status() { # RESULT KEY=VALUE... -> STATE_DIR/last-run
  ((ST)) && { printf 'when=%(%FT%TZ)T\nresult=%s\n' "$NOW" "$1"; shift; printf '%s\n' "$@"; } >"$STATE_DIR/last-run.t" &&
    mv -f "$STATE_DIR/last-run.t" "$STATE_DIR/last-run"
}
die() { # WHAT CAUSE NEXT
  printf 'btrbk-prune: ERROR: %s\n  cause: %s\n  next: %s\n' "$@" >&2
  ((SYS)) && logger -t btrbk-prune -p err -- "ERROR: $1; cause: $2"
  status failed "error=$1: $2"
  exit 1
}
bad() { die "refusing to prune, nothing deleted: $1" "$2" "fix $CONF"; }

while (($#)); do
  case $1 in
    --config) CONF=${2-} && shift ;;
    --now) NOW=${2-} && shift ;;
    --listing) LIST=${2-} && shift ;;
    --dry-run) DRY=1 ;;
    report) REP=1 DRY=1 ;;
    --thaw) THAW=${2-} && shift ;;
    *) die "unknown argument $1" "usage: btrbk-prune [--config F] [--now EPOCH] [--listing F] [--dry-run] [report] | --thaw DEVICE" "fix it" ;;
  esac
  shift
done
[[ $NOW ]] || printf -v NOW '%(%s)T' -1
[[ $NOW =~ ^[0-9]{1,11}$ ]] || die "bad --now $NOW" "not an epoch" "fix it"
[[ $LIST || ${JOURNAL_STREAM-} ]] || ((DRY)) || SYS=1 # under systemd, stdout is the journal already

# ---- config
[[ -f $CONF && -r $CONF ]] || die "cannot read $CONF" "missing or unreadable" "re-run the boot script"
while IFS= read -r l || [[ $l ]]; do
  [[ $l =~ ^[[:space:]]*(#.*)?$ ]] && continue
  [[ $l =~ ^[[:space:]]*(APPEND_ONLY|RETENTION|RETENTION_MIN|BACKUP_ROOT|MOUNT|STAGING|STATE_DIR|RECEIVE_LOCK|RECEIVE_STALL_SECONDS|RECEIVE_HOLD_MAX_SECONDS|DEVICES_FILE)=(\'([^\']*)\'|\"([^\"]*)\"|([^\'\"]*))[[:space:]]*$ ]] ||
    bad "bad line: $l" "only KEY=value lines with known keys"
  printf -v "${BASH_REMATCH[1]}" %s "${BASH_REMATCH[3]}${BASH_REMATCH[4]}${BASH_REMATCH[5]}"
done <"$CONF"
[[ $APPEND_ONLY =~ ^(true|false)$ ]] || bad "APPEND_ONLY='$APPEND_ONLY'" "not true or false"
[[ $RECEIVE_STALL_SECONDS =~ ^[1-9][0-9]{0,5}$ ]] || bad "RECEIVE_STALL_SECONDS='$RECEIVE_STALL_SECONDS'" "not a number of seconds (1..999999)"
[[ $RECEIVE_HOLD_MAX_SECONDS =~ ^[1-9][0-9]{0,7}$ ]] || bad "RECEIVE_HOLD_MAX_SECONDS='$RECEIVE_HOLD_MAX_SECONDS'" "not a number of seconds (1..99999999)"
n='(\*|[0-9]{1,5})' r=" $RETENTION "
[[ $RETENTION == no ]] && r=' '
[[ ($RETENTION || $APPEND_ONLY == false) && $r =~ ^(\ +${n}h)?(\ +${n}d)?(\ +${n}w)?(\ +${n}m)?(\ +${n}y)?\ +$ ]] ||
  bad "RETENTION='$RETENTION'" "not [N|*]h [N|*]d [N|*]w [N|*]m [N|*]y (any, in this order) or no"
for k in 0 1 2 3 4; do N[k]=${BASH_REMATCH[k * 2 + 2]-}; done
[[ $RETENTION_MIN =~ ^(all|latest|no|[0-9]{1,5}[hdwmy])$ || $APPEND_ONLY$RETENTION_MIN == false ]] ||
  bad "RETENTION_MIN='$RETENTION_MIN'" "not all, latest, no or N{h,d,w,m,y}"
MK='' MN=0
[[ $RETENTION_MIN =~ ^([0-9]+)([hdwmy])$ ]] && MN=$((10#${BASH_REMATCH[1]})) MK=hdwmy MK=${MK%%"${BASH_REMATCH[2]}"*} MK=${#MK}
for k in BACKUP_ROOT MOUNT STAGING STATE_DIR RECEIVE_LOCK DEVICES_FILE; do
  [[ ${!k} =~ ^(/|(/[A-Za-z0-9_@+.-]+)+)$ && /${!k}/ != */./* && /${!k}/ != */../* ]] || bad "$k='${!k}'" "not a plain absolute path"
done
m=${MOUNT%/}
[[ $BACKUP_ROOT == "$m"/?* && $STAGING == "$m"/?* && $STAGING/ != "$BACKUP_ROOT"/* && $BACKUP_ROOT/ != "$STAGING"/* ]] ||
  bad "BACKUP_ROOT, STAGING" "not both below MOUNT and apart"

# ---- devices: current (device) and revoked ones; a revoked one not thawed is frozen
declare -A CUR=() ROOTS=() FROZEN=() NFROZEN=()
if [[ -r $DEVICES_FILE ]]; then
  while read -r k d _; do
    [[ $d =~ ^[a-z0-9][a-z0-9._-]{0,62}$ && $d != *..* ]] || continue
    case $k in device) CUR[$d]=1 ROOTS[$d]=1 ;; revoked) ROOTS[$d]=1 ;; esac
  done <"$DEVICES_FILE"
fi
if [[ $THAW ]]; then
  [[ $THAW =~ ^[a-z0-9][a-z0-9._-]{0,62}$ && $THAW != *..* ]] || die "--thaw '$THAW' is not a device name" "" "give the name of a revoked device (btrbk-prune report lists the frozen ones)"
  [[ ${ROOTS[$THAW]-} && ! ${CUR[$THAW]-} ]] || die "$THAW is not a revoked device" "$DEVICES_FILE lists it as a current device, or not at all" "nothing to thaw"
  { mkdir -p "$STATE_DIR/thawed" && : >"$STATE_DIR/thawed/$THAW"; } || die "cannot write $STATE_DIR/thawed/$THAW" "see above" "check $STATE_DIR"
  log "thawed device $THAW: its backups in $BACKUP_ROOT/$THAW are pruned by the policy from the next run (re-adding it as a device freezes it again when it is removed)"
  exit 0
fi
for d in "${!ROOTS[@]}"; do
  if [[ ${CUR[$d]-} ]]; then ((DRY)) || [[ ! -e $STATE_DIR/thawed/$d && ! -L $STATE_DIR/thawed/$d ]] || rm -f -- "$STATE_DIR/thawed/$d"
  elif [[ ! -e $STATE_DIR/thawed/$d ]]; then FROZEN[$d]=1; fi
done

# ---- guards: a read-write mount, no receive running (receives hold RECEIVE_LOCK shared)
if ((!DRY)); then
  { [[ -d $STATE_DIR && -d ${RECEIVE_LOCK%/*} ]] || mkdir -p "$STATE_DIR" "${RECEIVE_LOCK%/*}"; } && ST=1
  # MOUNT is a plain path (no octal escapes in the mount table); the last line is the mount on top, as the kernel
  # stacks them. Not found there (a symlink, say): findmnt resolves it, as before.
  o=''
  while read -r _ k _ x _; do [[ $k == "$MOUNT" ]] && o=$x; done </proc/self/mounts
  [[ $o ]] || o=$(findmnt -no OPTIONS --mountpoint "$MOUNT") || die "$MOUNT is not mounted, nothing deleted" "volume not attached or mounted" "see findmnt, the boot log"
  [[ ,$o, == *,ro,* ]] && die "$MOUNT is read-only, nothing deleted" "btrfs may have hit an error" "see dmesg, btrfs device stats $MOUNT"
  exec {L}>>"$RECEIVE_LOCK" || die "cannot open $RECEIVE_LOCK" "see above" "check it"
  # since when the lock was held at every run (this run's clock: --now): receives that held it that long are ended
  HELD=$STATE_DIR/receives-held-since
  if ! flock -n "$L"; then
    since=$(cat -- "$HELD" 2>/dev/null)
    [[ $since =~ ^[0-9]{1,11}$ && $since -le $NOW ]] || { since=$NOW && echo "$NOW" >"$HELD"; }
    ((NOW - since >= RECEIVE_HOLD_MAX_SECONDS)) || { log "a receive is running: nothing done this run"; exit 0; }
    # the gate every receive passes on its way to the lock (btrbk-receive), closed until this run ends: no new receive
    # takes the lock while the running ones are ended
    { exec {G}>>"${RECEIVE_LOCK%/*}/prune-gate.lock" && flock -w 60 "$G"; } ||
      die "receives held $RECEIVE_LOCK for $((NOW - since)) s, and the gate to it could not be closed, nothing deleted" "see above" "retried next run"
    ended=()
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      # every process that holds the lock file open (a receive and its btrfs receive), this one and its own children
      # (which inherit L) left out
      mapfile -t pids < <(find /proc/[0-9]*/fd -lname "$RECEIVE_LOCK" 2>/dev/null | cut -d/ -f3 | sort -u)
      for p in "${pids[@]}"; do
        [[ $p == "$$" || $(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null) == "$$" ]] && continue
        kill -TERM "$p" 2>/dev/null && ended+=("$p")
      done
      flock -w 5 "$L" && break
    done
    flock -n "$L" ||
      die "receives held $RECEIVE_LOCK for $((NOW - since)) s and did not end, nothing deleted" "processes that hold it ignore SIGTERM" "see lslocks; retried next run"
    log "receives held the receive lock at every run for $((NOW - since)) s (RECEIVE_HOLD_MAX_SECONDS=$RECEIVE_HOLD_MAX_SECONDS): ended them (${#ended[@]} process(es)); their senders try again at their next run"
  fi
  rm -f -- "$HELD"
fi

# ---- executor
ND=0 NK=0 FAIL=0 DL=() P=() T=() S=()
declare -A BADG=() GI=() SEEN=() NEW=()
act() { # keep|delete PATH REASON [EPOCH GROUP] (no GROUP: a staging dir)
  if ((REP)); then printf '%(%FT%TZ)T %s %s %s\n' "${4-0}" "${1/delete/goes}" "$2" "$3"
  elif [[ $1 == keep ]]; then NK=$((NK + 1)); ((DRY)) || [[ $LIST ]] && echo "keep $2 $3"
  else
    log "delete $2 $3"
    if ((DRY)) || [[ $LIST ]] || if [[ ${5-} ]]; then sub_del "$2"; else stg_del "$2"; fi; then
      ND=$((ND + 1)) DL+=("deleted=$2")
    else log "ERROR: could not delete $2 (see above), retried next run"; FAIL=1 BADG[${5:-staging}]=1; fi
  fi
}
sub_del() { # PATH: a backup the policy chose. The kernel refuses to delete a subvolume while a btrfs send reads it
  # (as the source, -p or -c), and a key's client that stops reading would keep it for as long as its session lasts:
  # such sends are ended (their command line names PATH), then it is deleted
  local p x a n=0 err
  err=$(btrfs subvolume delete "$1" 2>&1 >/dev/null) && return 0
  for p in /proc/[0-9]*; do
    a=()
    { mapfile -d '' -t a <"$p/cmdline"; } 2>/dev/null
    [[ ${a[0]-} == */btrfs && ${a[1]-} == send ]] || continue
    for x in "${a[@]:2}"; do
      if [[ ${x%/} == "$1" ]]; then kill -TERM "${p#/proc/}" 2>/dev/null && n=$((n + 1)); break; fi
    done
  done
  ((n)) || { printf '%s\n' "$err" >&2; return 1; }
  log "ended $n btrfs send(s) that held $1 against its delete"
  for x in 1 2 3 4 5 6 7 8 9 10; do
    btrfs subvolume delete "$1" >/dev/null 2>&1 && return 0
    sleep 1
  done
  btrfs subvolume delete "$1" >/dev/null
}
stg_del() { # DIR: its subvolumes (made writable, for nested ones), deepest first, then the rest
  local s l=()
  while IFS= read -r -d '' s; do l+=("$s"); done < <(find "$1" -depth -type d -inum 256 -print0)
  for s in "${l[@]}"; do btrfs property set -f -ts "$s" ro false >/dev/null; done
  for s in "${l[@]}"; do btrfs subvolume delete "$s" >/dev/null || return 1; done
  rm -rf --one-file-system -- "$1"
}
# every receive holds RECEIVE_LOCK: what is in staging now was left by one that was killed
((REP)) || for d in "$STAGING"/rcv.*; do
  [[ -L $d || ! -d $d ]] || act delete "$d" "staging leftover"
done
# and so are the error files and FIFOs next to the lock (btrbk-receive removes its own, unless it was killed with -9)
if ((!REP && !DRY)); then
  n=0
  for f in "${RECEIVE_LOCK%/*}"/receive-err.*; do [[ -L $f || ! -e $f ]] || { rm -f -- "$f" && n=$((n + 1)); }; done
  ((n == 0)) || log "removed $n error file(s) of killed receives from ${RECEIVE_LOCK%/*}"
fi

# ---- backups: EPOCH<TAB>STATE<TAB>PATH from the listing, or each subvolume below BACKUP_ROOT (not descending)
epoch() { # TIME -> E: what `date -d TIME +%s` says; btrfs's own UTC form (TZ=UTC here) without a fork
  local y m d
  if [[ $1 =~ ^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])\ ([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])\ [+-]0000$ ]]; then
    y=${BASH_REMATCH[1]} m=$((10#${BASH_REMATCH[2]})) d=$((10#${BASH_REMATCH[3]}))
    if ((d <= (m == 2 ? 28 + (y % 4 == 0 && (y % 100 || y % 400 == 0)) : 30 + (m + m / 8) % 2))); then
      y=$((y - (m <= 2))) d=$(((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1)) # H. Hinnant's days_from_civil
      E=$((((y / 400) * 146097 + y % 400 * 365 + y % 400 / 4 - y % 400 / 100 + d - 719468) * 86400 +
        10#${BASH_REMATCH[4]} * 3600 + 10#${BASH_REMATCH[5]} * 60 + 10#${BASH_REMATCH[6]}))
      return 0
    fi
  fi
  E=$(date -d "$1" +%s)
}
scan() {
  local p l t f cr re fl E
  while IFS= read -r -d '' p; do
    [[ $p == *[$'\t\n']* ]] && continue
    cr='' re='' fl='' t=$(btrfs subvolume show "$p") # its lines, as they come (read would take them byte by byte)
    while [[ $t ]]; do
      l=${t%%$'\n'*} t=${t:${#l}+1}
      [[ $l =~ ^[[:space:]]*(Cr|Re|Fl)(eation\ time|ceived\ UUID|ags):[[:space:]]*(.*)$ ]] && printf -v "${BASH_REMATCH[1],}" %s "${BASH_REMATCH[3]}"
    done
    if [[ $cr && $re && $fl ]] && epoch "$cr" && t=$E; then
      f=other # writable: half-received (the kernel refuses to delete one holding subvolumes)
      if [[ $fl != *readonly* ]]; then f=partial; elif [[ $re != - ]]; then f=complete; fi
      printf '%s\t%s\t%s\n' "$t" "$f" "$p"
    else log "ignoring $p: no btrfs subvolume show" >&2; fi # (not into the listing)
  done < <([[ -d $BACKUP_ROOT ]] && find "$BACKUP_ROOT" -mindepth 1 -type d -inum 256 -print0 -prune |
    while IFS= read -r -d '' p; do # a device's directory: its backups, not itself
      if [[ ${p%/*} == "$BACKUP_ROOT" && ${ROOTS[${p##*/}]-} ]]; then find "$p" -mindepth 1 -type d -inum 256 -print0 -prune
      else printf '%s\0' "$p"; fi
    done)
}
by_time() { sort -t $'\t' -k1,1n -k3,3 "$@"; }
if [[ $LIST ]]; then src=$(by_time -- "$LIST") || die "cannot read $LIST" "see above" "fix it"; else src=$(scan); src=$(by_time <<<"$src"); fi
# Each line's fields as `IFS=$'\t' read -r t s p` takes them (runs of tabs separate, at the ends they go; a fourth
# field: p is the rest of the line), split by IFS (not globbed): read takes a pipe one byte at a time, and bash
# compiles a regex each time it meets one, so they only check what globs cannot.
tb=$'\t' rx="^$tb*([^$tb]*)$tb*([^$tb]*)$tb*(.*[^$tb])?$tb*\$"
set -f
IFS=$'\n'
# shellcheck disable=SC2206 # split by IFS on purpose, globbing is off
L=($src)
IFS=$tb
# shellcheck disable=SC2206
for l in "${L[@]}"; do
  f=($l)
  if ((${#f[@]} <= 3)); then t=${f[0]-} s=${f[1]-} p=${f[2]-}
  else
    t=$l s='' p=''
    [[ $l =~ $rx ]] && t=${BASH_REMATCH[1]} s=${BASH_REMATCH[2]} p=${BASH_REMATCH[3]}
  fi
  [[ $t$s$p ]] || continue
  [[ $t && ${#t} -le 11 && $t != *[!0-9]* && ($s == complete || $s == partial || $s == other) && $p == "$BACKUP_ROOT"/?* ]] ||
    die "bad listing line: $t $s $p, nothing deleted" "not EPOCH<TAB>complete|partial|other<TAB>PATH in BACKUP_ROOT" "fix it"
  # btrbk's timestamp (.YYYYMMDD[THHMM[SS][Z|+HHMM]][_N]) goes: after the last dot, with something before it
  b=${p##*/} i=${#P[@]} x=${b##*.}
  [[ $b == ?*.* && $x == [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]* && $x =~ ^[0-9]{8}(T[0-9]{4}([0-9]{2})?(Z|[+-][0-9]{4})?)?(_[0-9]+)?$ ]] &&
    b="${b%.*}.*"
  P[i]=$p T[i]=$t S[i]=$s GI[${p%/*}/$b]+=" $i"
done
IFS=$' \t\n'
set +f
[[ -f $STATE_DIR/seen ]] && while IFS=$'\t' read -r t g; do [[ $t =~ ^[0-9]+$ ]] && SEEN[$g]=$t; done <"$STATE_DIR/seen"

per() { # EPOCH [now] -> R=(hour day week month year) numbers as btrbk counts them
  local d=$(($1 / 86400)) y m x
  printf -v y '%(%Y %m %d)T' "$1"
  x=${y##* } m=${y#* } m=${m% *} y=${y%% *}
  m=$((10#$y * 12 + 10#$m - 1))
  [[ ${2-} ]] || ((10#$x > (d + 4) % 7)) || m=$((m - 1)) # before the month's first Sunday: previous month
  R=($(($1 / 3600)) "$d" $(((d + 4) / 7)) "$m" $((m / 12)))
}
per "$NOW" now
NR=("${R[@]}")
((REP)) && printf "policy: APPEND_ONLY=%s RETENTION='%s' RETENTION_MIN=%s (btrbk semantics, UTC, host clock)\nlast run:\n%s\n" \
  "$APPEND_ONLY" "$RETENTION" "$RETENTION_MIN" "$(cat "$STATE_DIR/last-run" 2>/dev/null || echo never)"

# ---- plan, per group
csort "${!GI[@]}"
for g in "${SORTED[@]}"; do
  ((REP)) && echo "group $g"
  d=${g#"$BACKUP_ROOT"/} d=${d%%/*}
  if [[ $g == "$BACKUP_ROOT"/*/* && ${FROZEN[$d]-} ]]; then # a revoked device: nothing goes, its clock stops
    for i in ${GI[$g]-}; do
      act keep "${P[i]}" "frozen: device $d was revoked (btrbk-prune --thaw $d)" "${T[i]}"
      NFROZEN[$d]=$((${NFROZEN[$d]-0} + 1))
    done
    continue
  fi
  C=()
  for i in ${GI[$g]-}; do
    case ${S[i]} in
      complete) C+=("$i") ;;
      partial) act delete "${P[i]}" half-received "${T[i]}" "$g" ;;
      *) act keep "${P[i]}" "not a received backup" "${T[i]}" ;;
    esac
  done
  ((${#C[@]})) || continue
  new=${C[-1]} due=0
  t=${T[new]} NEW[$g]=${T[new]}
  ((t > ${SEEN[$g]-t})) && due=1
  declare -A F=()
  for i in "${C[@]}"; do
    r=''
    if [[ $APPEND_ONLY == false ]]; then r="APPEND_ONLY=false: the client prunes"
    else
      per "${T[i]}"
      [[ $RETENTION_MIN == all || $MK && $((NR[MK] - R[MK])) -le MN ]] && r="RETENTION_MIN=$RETENTION_MIN"
      for k in 0 1 2 3 4; do # the first (oldest) in each period, counted back from the current one (0)
        n=${N[k]:-0} x=$((NR[k] - R[k]))
        [[ $n == '*' ]] || n=$((10#$n))
        [[ $n == 0 || ${F[$k.$x]-} ]] && continue
        F[$k.$x]=1
        [[ $n == '*' ]] || ((x <= n)) && r="first of its ${UN[k]}, $x ago"
      done
      ((T[i] > NOW)) && r="created after now"
      [[ $r ]] || ((due)) || r="will go at the next prune after a new backup arrives"
    fi
    ((i == new)) && r="newest complete backup"
    if [[ $r ]]; then act keep "${P[i]}" "$r" "${T[i]}"; else act delete "${P[i]}" "not kept by RETENTION" "${T[i]}" "$g"; fi
  done
  unset F
done
FZ=()
csort "${!FROZEN[@]}"
for d in "${SORTED[@]}"; do FZ+=("frozen=$d:${NFROZEN[$d]-0}"); done
if ((REP)); then
  for d in "${SORTED[@]}"; do echo "frozen device $d: ${NFROZEN[$d]-0} backups kept, it was revoked (sudo btrbk-prune --thaw $d releases them; so does $d a device again)"; done
  # the registry, for the admin's view of the devices (check-volume): current, or revoked and frozen or thawed
  csort "${!ROOTS[@]}"
  for d in "${SORTED[@]}"; do
    s=current
    [[ ${CUR[$d]-} ]] || { s=thawed; [[ ${FROZEN[$d]-} ]] && s=frozen; }
    echo "device $d $s"
  done
  exit 0
fi

# ---- remember each group's newest (after a failed deletion, the old mark: retried next run)
if ((!DRY)); then
  for g in "${!NEW[@]}"; do
    t=${NEW[$g]}
    [[ ${BADG[$g]-} ]] && t=${SEEN[$g]-}
    [[ $t ]] && printf '%s\t%s\n' "$t" "$g"
  done >"$STATE_DIR/seen.t" && mv -f "$STATE_DIR/seen.t" "$STATE_DIR/seen"
fi
log "done: deleted $ND, kept $NK, groups ${#NEW[@]}, failed $FAIL${FZ[*]:+, ${FZ[*]} (revoked devices: nothing pruned)}"
r=ok
((FAIL)) && r=failed
status "$r" "deleted_count=$ND" "kept_count=$NK" "groups=${#NEW[@]}" "${FZ[@]}" "${DL[@]}"
exit "$FAIL"
