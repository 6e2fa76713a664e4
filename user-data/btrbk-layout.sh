#!/bin/bash
# btrbk-layout MOUNT ROOT [LOCK] [DEVICE...]: the backup root ROOT becomes a subvolume of its own, the only one a send
# stream of the (legacy) backup key may take snapshot and clone sources from (btrbk-receive gives it to btrfs receive as
# -m); so does each device's directory ROOT/DEVICE, the -m of that device's key. The boot script runs it (as root, from
# the host payload; it is not installed) after the volume is mounted. It prints one line on stdout for each change,
# its notes and errors on stderr. It never deletes or replaces a backup.
# btrbk-layout --roots MOUNT ROOT: prints the name of every device directory below ROOT (current or revoked): a
# subvolume this script made, writable and without a received UUID (a backup is neither).
#
# A blank volume: ROOT is created as a subvolume. A volume from an earlier boot script, where ROOT is a plain
# directory of the top level: a new subvolume MOUNT/.btrbk-layout-new is made (MOUNT/.btrbk-layout-new.DEVICE for a
# device: a plain directory ROOT/DEVICE, e.g. the one a legacy key's btrbk made for the machine, is moved the same way), everything in ROOT is moved into it
# (backups are renamed, never copied or re-sent: each keeps its received UUID, read-only flag and data; directories
# are made anew with their owner and mode; anything else is moved by mv), then the emptied ROOT is removed and the
# new subvolume renamed to ROOT. A run cut short (a reboot) is finished by the next one. The receive lock is held
# throughout, so no receive or prune runs meanwhile. A read-only subvolume cannot change its parent directory, and
# btrfs-progs clears the received UUID when it makes one writable, so the read-only flag is flipped with the
# SUBVOL_SETFLAGS ioctl itself (as btrbk-receive does) for each move, and the received UUID is checked afterwards.
set -u -o pipefail
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 022
ROOTS=0
[[ ${1-} == --roots ]] && ROOTS=1 && shift
readonly M=${1:-} R=${2:-} LOCK=${3:-/run/btrbk-backup-host/receive.lock} ME=btrbk-layout ROOTS
readonly N=$M/.btrbk-layout-new DEVICE_RE='^[a-z0-9][a-z0-9._-]{0,62}$'
DEVICES=("${@:4}")
fail() { printf '%s: ERROR: %s\n  cause: %s\n  next:  %s\n' "$ME" "$1" "$2" "$3" >&2; exit 1; }
sv() { [[ -d $1 && ! -L $1 && $(stat -c %i -- "$1") == 256 ]]; }
ruuid() { btrfs subvolume show -- "$1" 2>/dev/null | awk -F':[ \t]*' '$1 ~ /^[ \t]*Received UUID$/ { print $2 }'; }
set_ro() {
  perl -e 'open(my $f, "<", $ARGV[0]) or die "$!\n"; my $v = pack("Q", 0); ioctl($f, 0x80089419, $v) or die "$!\n";
    my $fl = unpack("Q", $v); ioctl($f, 0x4008941a, pack("Q", $ARGV[1] ? ($fl | 2) : ($fl & ~2))) or die "$!\n"' -- "$1" "$2"
}

# move SRC DST: every entry of the directory SRC into the directory DST
move() {
  local e n u ro
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [[ -e $e || -L $e ]] || continue
    n=$2/${e##*/}
    if sv "$e"; then
      u=$(ruuid "$e") ro=$(btrfs property get -ts "$e" ro)
      [[ $ro != ro=true ]] || set_ro "$e" 0 || return 1
      { mv -n -T -- "$e" "$n" && [[ ! -e $e ]]; } || { printf 'could not move %s\n' "$e" >&2; return 1; }
      [[ $ro != ro=true ]] || set_ro "$n" 1 || return 1
      [[ $(ruuid "$n") == "$u" ]] || { printf '%s: received UUID %s became %s\n' "$n" "$u" "$(ruuid "$n")" >&2; return 1; }
    elif [[ -d $e && ! -L $e ]]; then
      [[ -d $n ]] || { mkdir -- "$n" && chown --reference="$e" -- "$n" && chmod --reference="$e" -- "$n"; } || return 1
      move "$e" "$n" && rmdir -- "$e" || return 1
    else
      { mv -n -T -- "$e" "$n" && [[ ! -e $e && ! -L $e ]]; } || { printf 'could not move %s\n' "$e" >&2; return 1; }
    fi
  done
}

# convert DIR NEW WHAT: the plain directory DIR (or nothing) becomes a subvolume of its own, through the new subvolume NEW
# (a run cut short is finished from N). Prints one line when it changed something.
convert() {
  local dir=$1 new=$2 what=$3 n
  sv "$dir" && [[ ! -e $new ]] && return 0
  [[ ! -L $dir && ! -L $new ]] || fail "$dir or $new is a symlink" "something other than the boot script made it" "remove the link and run the boot script again"
  if [[ ! -e $dir && ! -e $new ]]; then
    btrfs subvolume create -- "$dir" >/dev/null || fail "cannot create the subvolume $dir" "the volume is read-only or full" "check: findmnt $M; btrfs filesystem usage $M"
    echo "created $what $dir as a subvolume"
    return 0
  fi
  if [[ -d $new ]] && sv "$new"; then
    # a run cut short: a backup it moved may still be writable (its received UUID is kept by the ioctl flip)
    while IFS= read -r -d '' e; do
      u=$(ruuid "$e")
      [[ $u == - || -z $u || $(btrfs property get -ts "$e" ro) == ro=true ]] || set_ro "$e" 1 || fail "cannot make $e read-only again" "see above" "check: btrfs subvolume show $e"
    done < <(find "$new" -mindepth 1 -type d -inum 256 -print0)
  else
    btrfs subvolume create -- "$new" >/dev/null || fail "cannot create the subvolume $new" "the volume is read-only or full" "check: findmnt $M; btrfs filesystem usage $M"
    if [[ -d $dir ]]; then
      { chown --reference="$dir" -- "$new" && chmod --reference="$dir" -- "$new"; } || fail "cannot set the owner and mode of $new" "" "check: ls -ld $dir $new"
    fi
  fi
  if [[ -d $dir ]] && ! sv "$dir"; then
    n=$(find "$dir" -mindepth 1 -type d -inum 256 -prune -print | wc -l)
    move "$dir" "$new" || fail "could not move everything from $dir into the new subvolume; nothing was deleted" "see the line above" \
      "fix it and run the boot script again (it goes on where it stopped; the backups are in $dir and $new)"
    rmdir -- "$dir" || fail "$dir is not empty after the move" "see: ls -la $dir" "move what is left into $new by hand, then run the boot script again"
  else
    n=0
  fi
  { mv -n -T -- "$new" "$dir" && [[ ! -e $new ]]; } || fail "cannot rename $new to $dir" "see above" "run the boot script again"
  echo "$what $dir is now a subvolume of its own ($n backups moved, each with its received UUID)"
}

# a device's directory, made by this script: a subvolume directly below ROOT, writable, with no received UUID (a backup
# is read-only with one; the backup key can make neither a subvolume of that kind nor anything but plain directories)
device_root() { sv "$1" && [[ $(ruuid "$1") == - && $(btrfs property get -ts "$1" ro) == ro=false ]]; }
device_roots() { # the names of every device directory below ROOT, current or revoked
  local e
  for e in "$R"/* "$R"/.[!.]*; do
    [[ ${e##*/} =~ $DEVICE_RE ]] && device_root "$e" && printf '%s\n' "${e##*/}"
  done
  return 0
}

[[ $M == /* && $R == "$M"/* && ${R#"$M"/} != */* && -d $M ]] || fail "usage: $ME MOUNT ROOT [LOCK] [DEVICE...] | --roots MOUNT ROOT" "called with '$M' '$R'" "a bug in the boot script"
if ((ROOTS)); then device_roots; exit 0; fi
for d in "${DEVICES[@]}"; do
  [[ $d =~ $DEVICE_RE && $d != *..* && $d != selftest ]] || fail "not a device name: '$d'" "" "a bug in the boot script (it checks the names)"
done
# device directories a cut-short run left half made, whether or not the device is still listed
for e in "$M"/.btrbk-layout-new.*; do [[ -e $e ]] && DEVICES+=("${e#"$M"/.btrbk-layout-new.}"); done
todo=0
sv "$R" && [[ ! -e $N ]] || todo=1
for d in "${DEVICES[@]}"; do device_root "$R/$d" && [[ ! -e $M/.btrbk-layout-new.$d ]] || todo=1; done
((todo)) || exit 0
{ mkdir -p -- "${LOCK%/*}" && exec 8>>"$LOCK" && flock -w 600 8; } ||
  fail "cannot hold $LOCK" "a receive or a prune holds it for over 10 minutes" "run the boot script again"
convert "$R" "$N" "the backup root"
for d in "${DEVICES[@]}"; do
  if [[ -e $R/$d || -L $R/$d ]] && ! [[ -d $R/$d && ! -L $R/$d ]]; then
    fail "$R/$d is not a directory" "something other than a backup tool made it" "choose another device name, or move it away as the admin"
  fi
  if sv "$R/$d" && ! device_root "$R/$d"; then
    fail "$R/$d is a backup (a received subvolume), not a device's directory" "a backup in the backup root has the device's name" "choose another device name"
  fi
  convert "$R/$d" "$M/.btrbk-layout-new.$d" "device $d's directory"
done
