#!/bin/bash
# btrbk-layout MOUNT ROOT: the backup root ROOT becomes a subvolume of its own, the only one a send stream may take
# snapshot and clone sources from (btrbk-receive gives it to btrfs receive as -m). The boot script runs it (as root,
# from the host payload; it is not installed) after the volume is mounted. It prints one line on stdout when it
# changed something, its notes and errors on stderr.
#
# A blank volume: ROOT is created as a subvolume. A volume from an earlier boot script, where ROOT is a plain
# directory of the top level: a new subvolume MOUNT/.btrbk-layout-new is made, everything in ROOT is moved into it
# (backups are renamed, never copied or re-sent: each keeps its received UUID, read-only flag and data; directories
# are made anew with their owner and mode; anything else is moved by mv), then the emptied ROOT is removed and the
# new subvolume renamed to ROOT. A run cut short (a reboot) is finished by the next one. The receive lock is held
# throughout, so no receive or prune runs meanwhile. A read-only subvolume cannot change its parent directory, and
# btrfs-progs clears the received UUID when it makes one writable, so the read-only flag is flipped with the
# SUBVOL_SETFLAGS ioctl itself (as btrbk-receive does) for each move, and the received UUID is checked afterwards.
set -u -o pipefail
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 022
readonly M=${1:-} R=${2:-} LOCK=${3:-/run/btrbk-backup-host/receive.lock} ME=btrbk-layout
readonly N=$M/.btrbk-layout-new
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

[[ $M == /* && $R == "$M"/* && ${R#"$M"/} != */* && -d $M ]] || fail "usage: $ME MOUNT ROOT" "called with '$M' '$R'" "a bug in the boot script"
sv "$R" && [[ ! -e $N ]] && exit 0
{ mkdir -p -- "${LOCK%/*}" && exec 8>>"$LOCK" && flock -w 600 8; } ||
  fail "cannot hold $LOCK" "a receive or a prune holds it for over 10 minutes" "run the boot script again"
if [[ ! -e $R && ! -e $N ]]; then
  btrfs subvolume create -- "$R" >/dev/null || fail "cannot create the subvolume $R" "the volume is read-only or full" "check: findmnt $M; btrfs filesystem usage $M"
  echo "created the backup root $R as a subvolume"
  exit 0
fi
[[ ! -L $R && ! -L $N ]] || fail "$R or $N is a symlink" "something other than the boot script made it" "remove the link and run the boot script again"
if [[ -d $N ]] && sv "$N"; then
  # a run cut short: a backup it moved may still be writable (its received UUID is kept by the ioctl flip)
  while IFS= read -r -d '' e; do
    u=$(ruuid "$e")
    [[ $u == - || -z $u || $(btrfs property get -ts "$e" ro) == ro=true ]] || set_ro "$e" 1 || fail "cannot make $e read-only again" "see above" "check: btrfs subvolume show $e"
  done < <(find "$N" -mindepth 1 -type d -inum 256 -print0)
else
  btrfs subvolume create -- "$N" >/dev/null || fail "cannot create the subvolume $N" "the volume is read-only or full" "check: findmnt $M; btrfs filesystem usage $M"
  { chown --reference="$R" -- "$N" && chmod --reference="$R" -- "$N"; } || fail "cannot set the owner and mode of $N" "" "check: ls -ld $R $N"
fi
if [[ -d $R ]] && ! sv "$R"; then
  n=$(find "$R" -mindepth 1 -type d -inum 256 -prune -print | wc -l)
  move "$R" "$N" || fail "could not move everything from $R into the new subvolume; nothing was deleted" "see the line above" \
    "fix it and run the boot script again (it goes on where it stopped; the backups are in $R and $N)"
  rmdir -- "$R" || fail "$R is not empty after the move" "see: ls -la $R" "move what is left into $N by hand, then run the boot script again"
else
  n=0
fi
{ mv -n -T -- "$N" "$R" && [[ ! -e $N ]]; } || fail "cannot rename $N to $R" "see above" "run the boot script again"
echo "the backup root $R is now a subvolume of its own ($n backups moved, each with its received UUID)"
