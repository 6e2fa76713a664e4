#!/bin/bash -p
# btrbk-receive: the only way a send stream reaches `btrfs receive` on the backup host. The SSH gate runs it as
# root through sudo (sudoers allows exactly `btrbk-receive [-v] [--max-errors=0] DIR` with DIR in the backup root).
#
# A send stream is client input: its paths may hold `..`, absolute names or symlinks it made itself. So the
# stream never sees the backup root. It is received with `btrfs receive --chroot` into a fresh, empty staging
# directory of its own (MOUNT/.btrbk-staging/rcv.*: root-only, outside the backup root), and only then, when
# exactly one complete subvolume came out of it (read-only, with a received UUID, holding no other subvolume, a
# plain name), that subvolume is renamed into DIR, never over an existing name. btrbk finds the new backup where
# it asked for it. Anything else: the staging directory is removed whole, and the exit status is non-zero.
# btrfs receive looks up the clone sources and parents a stream names by UUID on the whole filesystem, then opens
# them (and a path the stream may stuff with `..` or lead through its own symlinks) from its -m directory, outside
# the chroot. -m is the backup root, a subvolume of its own: btrfs receive refuses every source that is not
# inside it ("not reachable from inside the root subvol"), so the top level and the host's state (host key,
# staging) can never be a snapshot or clone source, whatever UUID a stream names. And it runs in a mount namespace
# of its own where the volume is mounted only at a root-only directory, with everything at its top level but the
# backup root and the staging area covered by an empty mount, and no procfs (/proc/1/root is the host's own /,
# where the volume is mounted with nothing covered), so no `..` in a clone path reaches them either.
# The stream passes through btrbk-stream-check on its way to btrfs receive: btrfs receive creates the stream's
# subvolume as soon as it reads its name, and that name is shown raw by every key's `btrfs subvolume list` while the
# receive lasts, so a name that is not plain (a newline forged whole lines of other devices' lists) is refused before
# btrfs receive sees it; so is a second subvolume, a command before the first, or anything after the end command.
# Once btrfs receive has made the subvolume, the check binds it on itself in the receive's namespace before it
# passes another command: a mount point cannot be renamed, so the subvolume keeps the name that was checked.
# A stream that stops sending would hold the receive lock (and so the host's pruning) for ever: a receive that
# reads and writes nothing for RECEIVE_STALL_SECONDS (prune.conf; default 600) is ended, and nothing is kept. One
# that trickles a byte now and then, or receives that overlap, are ended by the pruning once they held the lock at
# each of its runs for RECEIVE_HOLD_MAX_SECONDS (a week; btrbk-prune).
# A completed backup into backups/DEVICE/ is reported by btrbk-heartbeat (the missed-backup alarm's signal).
# A device's key (--device NAME, put there by the gate from the host's registry): DIR must be in backups/NAME, a
# subvolume of its own, which is then the -m: a stream's snapshot and clone sources can only be that device's backups
# (btrfs receive checks the source's path against -m's at a `/` boundary: backups/a never admits backups/ab); and
# in the mount namespace every other entry of the backup root is covered too, so no `..` in a clone path reaches
# another device's backups. In it, the staging area holds this receive's own directory and nothing else.
#
#   btrbk-receive [--device NAME] [-v] [--max-errors=0] DIR
#                                               the stream on stdin; DIR is the directory btrbk receives into
#                                               (--max-errors=0 is accepted for btrbk's compat option and not
#                                               passed on: btrfs receive would spin forever on a cut stream)
# What a receive killed on the host leaves in staging is removed by btrbk-prune (hourly, while no receive runs).
# Test options (before the others; sudoers never lets the btrbk user pass them): --root DIR --mount DIR
# --staging DIR --lock-dir DIR --config FILE --registry FILE.
set -u -o pipefail
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 077

ROOT=/backup_volume/backups
MOUNT=/backup_volume
STAGING=
LOCK_DIR=/run/btrbk-backup-host
CONF=/etc/btrbk-backup-host/prune.conf
REGISTRY=/etc/btrbk-backup-host/devices
DEVICE=
readonly HEARTBEAT=/usr/local/sbin/btrbk-heartbeat
readonly STREAM_CHECK=/usr/local/sbin/btrbk-stream-check
readonly BTRFS=/usr/bin/btrfs
readonly NAME_RE='^[A-Za-z0-9_@+-][A-Za-z0-9_@+.-]*$'
readonly SAFE_PATH_RE='^(/[A-Za-z0-9_@+.-]+)+$'

say() { printf 'btrbk-receive: %s\n' "$*" >&2; logger -t btrbk-receive -p daemon.notice -- "$*" </dev/null >/dev/null 2>&1 || true; }
fail() { say "$*"; exit 1; }

while (($#)); do
  case $1 in
    --root | --mount | --staging | --lock-dir | --config | --registry)
      (($# >= 2)) || fail "$1 needs a value"
      case $1 in --root) ROOT=$2 ;; --mount) MOUNT=$2 ;; --staging) STAGING=$2 ;; --lock-dir) LOCK_DIR=$2 ;; --config) CONF=$2 ;; --registry) REGISTRY=$2 ;; esac
      shift 2 ;;
    *) break ;;
  esac
done
STAGING=${STAGING:-$MOUNT/.btrbk-staging}
readonly ROOT MOUNT STAGING LOCK_DIR VIEW=$LOCK_DIR/view
[[ $STAGING == "$MOUNT/${STAGING##*/}" && $ROOT == "$MOUNT"/* && $STAGING != "$ROOT" && $STAGING != "$ROOT"/* ]] ||
  fail "--root must be below --mount, and --staging at the top of --mount, outside --root"

is_subvolume() { [[ $(stat -c %i -- "$1" 2>/dev/null) == 256 ]]; }

# Removes DIR and everything in it: subvolumes (made writable first, a received one is read-only) deepest first,
# then the rest. rm and find never follow the symlinks a stream may have left.
purge() {
  local dir=$1 sub
  [[ -d $dir && ! -L $dir ]] || { rm -f -- "$dir"; return 0; }
  while IFS= read -r -d '' sub; do
    "$BTRFS" property set -f -ts "$sub" ro false >/dev/null 2>&1 || "$BTRFS" property set -ts "$sub" ro false >/dev/null 2>&1 || true
  done < <(find "$dir" -mindepth 1 -type d -inum 256 -print0 2>/dev/null)
  while IFS= read -r -d '' sub; do
    "$BTRFS" subvolume delete --commit-after "$sub" >/dev/null 2>&1 || say "could not delete subvolume $sub"
  done < <(find "$dir" -depth -mindepth 1 -type d -inum 256 -print0 2>/dev/null)
  rm -rf --one-file-system -- "$dir"
}

staging_dir() {
  [[ -d $MOUNT && $(findmnt -n -o TARGET --target "$ROOT" 2>/dev/null || echo none) == "$MOUNT" ]] ||
    fail "the data volume is not mounted at $MOUNT (receive refused; check 'btrbk-diag mount')"
  if [[ ! -d $STAGING ]]; then mkdir -m 0700 -- "$STAGING" || fail "cannot create $STAGING"; fi
  [[ ! -L $STAGING && $(stat -c '%u %a' -- "$STAGING") == '0 700' ]] || fail "$STAGING is not a root-only directory"
  [[ -d $LOCK_DIR ]] || mkdir -m 0755 -- "$LOCK_DIR" || fail "cannot create $LOCK_DIR"
  [[ -d $VIEW ]] || mkdir -m 0700 -- "$VIEW" || fail "cannot create $VIEW"
}

# ---- receive
# the device names the host made a directory for (current: `device`, or revoked), from the boot script's registry
declare -A registered=() current=()
if [[ -r $REGISTRY ]]; then
  while read -r kind name _; do
    case $kind in device) registered[$name]=1 current[$name]=1 ;; revoked) registered[$name]=1 ;; esac
  done <"$REGISTRY"
fi
if [[ ${1-} == --device ]]; then
  DEVICE=${2-}
  [[ $DEVICE =~ ^[a-z0-9][a-z0-9._-]{0,62}$ && $DEVICE != *..* ]] || fail "not a device name: $DEVICE"
  [[ -n ${current[$DEVICE]-} ]] || fail "device $DEVICE is not registered on this host (revoked?): receive refused"
  shift 2
fi
readonly DEVICE DROOT=$ROOT${DEVICE:+/$DEVICE}
opts=()
while [[ ${1-} == -v || ${1-} == --max-errors=0 ]]; do [[ $1 == -v ]] && opts+=(-v); shift; done
(($# == 1)) || fail "usage: btrbk-receive [--device NAME] [-v] [--max-errors=0] DIR (stream on stdin)"
target=${1%/}
[[ $target =~ $SAFE_PATH_RE && /$target/ != */./* && /$target/ != */../* ]] || fail "not a plain absolute path: $1"
[[ $target == "$DROOT" || $target == "$DROOT"/* ]] || fail "not inside the backup root $DROOT: $1"
root_rel=${ROOT#"$MOUNT"/}
root_top=${root_rel%%/*}
is_subvolume "$ROOT" ||
  fail "the backup root $ROOT is not a subvolume of its own (a volume from an older boot script): receive refused; run the boot script again, its layout step moves the backups"
[[ -z $DEVICE ]] || is_subvolume "$DROOT" ||
  fail "device $DEVICE's directory $DROOT is not a subvolume of its own: receive refused; run the boot script again"
[[ $(realpath -e -- "$target" 2>/dev/null) == "$target" && -d $target ]] || fail "not an existing directory (or it goes through a symlink): $1"
p=$target
while [[ $p != "$DROOT" ]]; do
  # (a device's directory is a subvolume the host made: the legacy key receives into it too)
  if is_subvolume "$p" && ! [[ -z $DEVICE && ${p%/*} == "$ROOT" && -n ${registered[${p##*/}]-} ]]; then
    fail "$1 is, or is inside, a subvolume: backups are received into plain directories"
  fi
  p=${p%/*}
done

staging_dir
# the gate on the way to the lock: the host's pruning closes it while it ends receives that held the lock at each of
# its runs for RECEIVE_HOLD_MAX_SECONDS (btrbk-prune), so that none takes the lock meanwhile
exec {gate}>>"$LOCK_DIR/prune-gate.lock"
flock -s -w 600 "$gate" || fail "the host's pruning is ending receives that held it off for too long; try again in a minute"
exec {shared}>>"$LOCK_DIR/receive.lock"
flock -s -w 600 "$shared" || fail "the host's pruning holds $LOCK_DIR/receive.lock; try again in a minute"
exec {gate}>&-
work=$(mktemp -d "$STAGING/rcv.XXXXXXXX") || fail "cannot create a staging directory in $STAGING"
done_ok=0 rpid='' wpid='' apid='' cpid='' errs=''
cleanup() {
  [[ -z $wpid ]] || kill "$wpid" 2>/dev/null
  [[ -z $rpid ]] || { kill -TERM "$rpid" 2>/dev/null && wait "$rpid"; }
  [[ -z $cpid ]] || { kill -TERM "$cpid" 2>/dev/null; wait "$cpid"; }
  [[ -z $apid ]] || { kill "$apid" 2>/dev/null; wait "$apid"; }
  [[ -z $errs ]] || rm -f -- "$errs" "$errs.fifo" "$errs.stream" "$errs.check"
  ((done_ok)) || purge "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'say "ended by SIGTERM (the host shutting down, or its pruning ending receives that held it off for RECEIVE_HOLD_MAX_SECONDS); nothing was kept"; exit 143' TERM

stall=$(sed -n 's/^RECEIVE_STALL_SECONDS=\([0-9]\{1,6\}\)$/\1/p' "$CONF" 2>/dev/null | tail -n 1)
((${stall:-0} > 0)) || stall=600

# btrfs receive's messages are read before the client sees them: a clone whose source is outside -m is skipped
# with an ERROR that names the source's path on the host, and the receive still exits 0 (measured on btrfs-progs
# 6.2; upstream's process_clone still does it). Any ERROR fails the receive; that one is said without the path.
# They go through a FIFO to an awk that keeps at most 64 KiB and the first 100 ERROR lines in a file on /run (a
# stream of a million skipped clones must not fill the host's memory).
{ errs=$(mktemp "$LOCK_DIR/receive-err.XXXXXXXX") && mkfifo -m 0600 -- "$errs.fifo" "$errs.stream"; } || fail "cannot create a file in $LOCK_DIR"
awk 'n < 65536 { print; n += length($0) + 1; next } /^ERROR/ && e++ < 100 { print }' <"$errs.fifo" >"$errs" {shared}>&- &
apid=$!
# The stream is checked on its way (btrbk-stream-check, started below: its one line of why, when it refuses, goes to
# $errs.check); the receive reads what the check passed on, from the FIFO $errs.stream (opened by each side's own
# job: the receive's open waits for the check's).
[[ -x $STREAM_CHECK ]] || fail "$STREAM_CHECK is missing: run the boot script again"
exec {in}<&0
# A mount namespace of its own: the volume bound at VIEW, its own mount gone, every top-level entry but the
# backup root and the staging area covered, and the staging area but for its own directory; for a device, every entry
# of the backup root but the device's directory too (the script is fixed text, never client text; its arguments are
# the paths checked above). -m: the backup root's subvolume, or the device's, the only place sources may come from.
# shellcheck disable=SC2016
unshare --mount --propagation private -- /bin/bash -p -c '
  mount --bind -- "$1" "$2" && umount -l -- "$1" || exit 70
  shopt -s nullglob dotglob
  cover() {
    if [[ -d $1 && ! -L $1 ]]; then mount -t tmpfs -o ro,size=4k,mode=000 none "$1" || exit 70
    elif [[ -f $1 && ! -L $1 ]]; then mount --bind /dev/null "$1" || exit 70; fi
  }
  for e in "$2"/*; do
    case ${e##*/} in "$3" | "$4") continue ;; esac
    cover "$e"
  done
  if [[ -n $6 ]]; then for e in "$2/$5"/*; do [[ ${e##*/} == "$6" ]] || cover "$e"; done; fi
  # the staging area: a read-only tmpfs over it, with only the directory of this receive bound in again (from a
  # descriptor opened before; mount must not resolve the path, which the tmpfs now covers), so that the directory of
  # no other receive is reachable from here, neither those that exist now nor those made later (a review read the
  # files of a receive that started later, by its name, through a clone path)
  exec {own}<"$2/$4/$7" || exit 70
  mount -t tmpfs -o size=4k,mode=700 none "$2/$4" && mkdir -m 0700 -- "$2/$4/$7" &&
    mount --no-canonicalize --bind -- "/proc/self/fd/$own" "$2/$4/$7" || exit 70
  exec {own}<&-
  mount -o remount,ro,size=4k,mode=700 none "$2/$4" || exit 70
  # no procfs in here: /proc/PID/root and /proc/PID/cwd of every process outside this namespace (PID 1: the root
  # of the host) lead to the usual mount of the volume, where nothing is covered, and a clone path climbs to them
  # with `..`. Innermost first (a procfs mounted inside /proc, as in a container); btrfs receive -m needs no /proc.
  mapfile -t procs < <(findmnt -rn -t proc -o TARGET | tac) || exit 70
  for e in "${procs[@]}"; do umount -l -- "$e" || exit 70; done
  [[ ! -e /proc/1 && ! -e /proc/self ]] || exit 70
  shift 7; exec "$@"' _ "$MOUNT" "$VIEW" "$root_top" "${STAGING##*/}" "$root_rel" "$DEVICE" "${work##*/}" \
  "$BTRFS" receive -m "$VIEW/${DROOT#"$MOUNT"/}" --chroot "${opts[@]}" "$VIEW/${work#"$MOUNT"/}" <"$errs.stream" 2>"$errs.fifo" {in}<&- &
rpid=$!
# (the check bind-mounts the subvolume the stream makes on itself in the receive's namespace, so no later command can
# rename it: see btrbk-stream-check)
"$STREAM_CHECK" --receiver "$rpid" --dir "$work" --view "$VIEW/${work#"$MOUNT"/}" <&"$in" >"$errs.stream" 2>"$errs.check" {in}<&- {shared}>&- &
cpid=$!
exec {in}<&- 0</dev/null
# The watchdog: the receive's read and write counters (/proc/PID/io) must move within $stall seconds.
(
  exec {shared}>&- # only the receive holds the lock
  last='' idle=0 step=$((stall < 10 ? 1 : 5))
  # (its sleep holds none of the session's descriptors: sshd would wait for it before ending the client's command)
  while sleep "$step" >/dev/null 2>&1; do
    io=$(awk '$1 == "rchar:" || $1 == "wchar:" { s += $2 } END { print s }' "/proc/$rpid/io" 2>/dev/null) && [[ -n $io ]] || exit 0
    if [[ $io == "$last" ]]; then idle=$((idle + step)); else idle=0 last=$io; fi
    if ((idle >= stall)); then
      say "the receive into $target read and wrote nothing for $stall s (RECEIVE_STALL_SECONDS: no data arrived, or the stream made it wait): it was ended"
      kill -TERM "$rpid" 2>/dev/null
      exit 0
    fi
  done
) &
wpid=$!
wait "$rpid"
rc=$?
rpid=''
kill "$wpid" 2>/dev/null
# a receive that ended on its own read the stream to its end, so the check has ended (or is ending: a second at
# most); one that failed may leave the check waiting for the client
if ((rc == 0)); then
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
fi
kill -TERM "$cpid" 2>/dev/null
wait "$cpid"
crc=$?
cpid=''
wait "$apid"
apid=''
if ((crc == 3 || crc == 5)); then # refused; or the subvolume could not be kept from a rename
  fail "$(head -c 1024 -- "$errs.check")"
elif ((crc != 0 && rc == 0)); then
  fail "the stream check failed (exit $crc): $(head -c 1024 -- "$errs.check"); nothing was kept"
fi
# A source the key may not reach is said exactly as a source that does not exist, and only the first ERROR is said: a
# refused clone is skipped and the receive goes on (one line per clone), a missing one ends it (one line), so any
# other wording or count would tell a stream which UUIDs exist outside its reach.
refused=0
while IFS= read -r line; do
  case $line in
    *'not reachable from inside the root subvol'*) line='ERROR: cannot find parent subvolume' ;;
    *'unreachable from'*) line='ERROR: clone: did not find source subvol' ;;
    # a clone path that leads out of the backups: one answer whether it names a directory, a file of another
    # filesystem or nothing, so that it cannot probe which paths the host has
    'ERROR: cannot open '* | 'ERROR: failed to clone extents to '*)
      line='ERROR: clone: cannot clone from the path the stream names (not a file in these backups)' ;;
    'Chroot to '*) continue ;; # the staging directory's name is the host's, not the client's
  esac
  if [[ $line == ERROR:* ]]; then
    ((refused++ == 0)) || continue
  fi
  printf '%s\n' "$line" >&2
done <"$errs"
rm -f -- "$errs" "$errs.fifo" "$errs.stream" "$errs.check"
((rc != 0 || refused == 0)) || rc=1
((rc != 70)) || fail "cannot set up the receive's mount namespace (unshare, mount --bind $ROOT)"
((rc == 0)) || fail "btrfs receive failed (exit $rc): the stream is incomplete or was refused; nothing was kept"

shopt -s nullglob dotglob
entries=("$work"/*)
((${#entries[@]} == 1)) || fail "the stream made ${#entries[@]} entries instead of one subvolume; nothing was kept"
sub=${entries[0]}
name=${sub##*/}
if ! [[ $name =~ $NAME_RE && -d $sub && ! -L $sub ]] || ! is_subvolume "$sub"; then fail "the stream did not make one subvolume with a plain name; nothing was kept"; fi
show=$("$BTRFS" subvolume show -- "$sub" 2>&1) || fail "btrfs subvolume show failed on the received subvolume: $show"
ruuid=$(awk -F':[ \t]*' '$1 ~ /^[ \t]*Received UUID$/ { print $2 }' <<<"$show")
flags=$(awk -F':[ \t]*' '$1 ~ /^[ \t]*Flags$/ { print $2 }' <<<"$show")
[[ -n $ruuid && $ruuid != - && $flags == *readonly* ]] || fail "$name was not received completely (no received UUID or not read-only); nothing was kept"
nested=$("$BTRFS" subvolume list -o -- "$sub" 2>&1) || fail "btrfs subvolume list failed on the received subvolume: $nested"
[[ -z $nested ]] || fail "$name holds another subvolume; nothing was kept"
[[ ! -e $target/$name && ! -L $target/$name ]] || fail "a backup named $name already exists in $target: it is never replaced; nothing was kept"
# A read-only subvolume cannot change its parent directory (the kernel wants write access to it), and btrfs-progs
# clears the received UUID when it makes a received subvolume writable. So the flag is flipped with the ioctl
# itself (perl-base is on every Debian and Ubuntu), which keeps the received UUID, for the one rename.
set_ro() {
  perl -e 'open(my $f, "<", $ARGV[0]) or die "$!\n"; my $v = pack("Q", 0); ioctl($f, 0x80089419, $v) or die "$!\n";
    my $fl = unpack("Q", $v); ioctl($f, 0x4008941a, pack("Q", $ARGV[1] ? ($fl | 2) : ($fl & ~2))) or die "$!\n"' -- "$1" "$2"
}
set_ro "$sub" 0 || fail "could not make $name writable for the move into $target; nothing was kept"
mv -n -T -- "$sub" "$target/$name" 2>/dev/null
if [[ -e $sub ]]; then fail "could not move $name into $target (did another receive make the same name?); nothing was kept"; fi
done_ok=1
if ! set_ro "$target/$name" 1 || [[ $("$BTRFS" subvolume show -- "$target/$name" 2>&1) != *"Received UUID:"*"$ruuid"* ]]; then
  "$BTRFS" subvolume delete --commit-after "$target/$name" >/dev/null 2>&1
  fail "$target/$name did not keep its read-only flag and received UUID after the move; it was deleted"
fi
rmdir -- "$work"
say "received $target/$name (received UUID $ruuid)"
# a completed backup of a device (a device key's NAME; for the legacy key, the first directory below the root; not the
# tools' selftest scratch area) is reported for the missed-backup alarm: detached, without the lock, never failing
# the receive
device=${target#"$ROOT"}
device=${device#/}
if [[ -n $DEVICE ]]; then
  device=${target#"$DROOT"}
  device=${device#/}
  device=${device%%/*}
  [[ $device == selftest ]] || device=$DEVICE
fi
device=${device%%/*}
if [[ -n $device && $device != selftest && -x $HEARTBEAT ]]; then
  setsid "$HEARTBEAT" "$device" </dev/null >/dev/null 2>&1 {shared}>&- &
fi
