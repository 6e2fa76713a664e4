#!/bin/bash
# btrbk-host-identity DIR [ETC]: the host's SSH identity lives on the data volume, so that a replaced instance (a
# changed boot script, a new image: a new root disk with new host keys) answers with the key every laptop pinned.
# The boot script runs it (as root, from the host payload; it is not installed) right after the volume is mounted,
# before the sshd step; it prints one line on stdout when it changed something (the boot script then reloads sshd),
# its notes and errors on stderr.
#
#   DIR  where the identity is kept: MOUNT/.host-identity, at the volume's top, NOT under the backup root, so the
#        gate can never name it, and btrbk-receive's private mount namespace covers it (with every other top-level
#        entry but the backup root and the staging area) so no crafted clone or stream can read it.
#        Kept root-only: the directory 0700, the key 0600 (its .pub 0644).
#   ETC  where sshd reads its host key (default /etc/ssh); the sshd drop-in offers exactly one host key:
#        ETC/ssh_host_ed25519_key.
#
# A kept key: copied into ETC when ETC holds another one (a new instance). No kept key (a blank volume, or a volume
# from before this script existed): the key sshd has now is saved, so an existing host keeps the key its laptops
# pinned; when sshd has none, one is made. A kept key that is not a readable ed25519 key stops the boot loudly: it
# is never replaced by a new one behind the person's back (every laptop would have to re-pin it).
# The volume is mounted noexec,nosuid,nodev: nothing here is executed from it, the key files are only read and
# copied. Writes go to a temporary name and are renamed into place, then synced (a crash leaves the old or new key).
set -u -o pipefail
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 077

DIR=${1:-}
ETC=${2:-/etc/ssh}
readonly KEY=ssh_host_ed25519_key ME=btrbk-host-identity

note() { printf '%s: %s\n' "$ME" "$*" >&2; }
fail() { printf '%s: ERROR: %s\n  cause: %s\n  next:  %s\n' "$ME" "$1" "$2" "$3" >&2; exit 1; }

[[ $DIR == /* && -d ${DIR%/*}/ && -d $ETC ]] || fail "usage: $ME DIR [ETC]" "called with '$DIR' '$ETC'" "a bug in the boot script"
# the owner the files must have: root on the host (a test runs this as its own user)
OWNER=$(id -u):$(id -g)

# FILE's public key line (type and base64 only), or nothing when FILE is not a readable private key
public_of() { ssh-keygen -y -f "$1" </dev/null 2>/dev/null | awk 'NR == 1 { print $1, $2 }'; }
fingerprint_of() { ssh-keygen -l -f /dev/stdin <<<"$1" 2>/dev/null | awk '{ print $2 }'; }

# copy SRC DEST MODE: DEST gets SRC's bytes through a temporary name in its own directory, never half-written
copy() {
  local tmp
  tmp=$(mktemp "${2%/*}/.${2##*/}.XXXXXX") || fail "cannot write in ${2%/*}" "the filesystem is read-only or full" "check: findmnt ${2%/*}; df -h ${2%/*}"
  if ! { cat -- "$1" >"$tmp" && chmod "$3" "$tmp" && chown "$OWNER" "$tmp" && mv -f -- "$tmp" "$2"; }; then
    rm -f -- "$tmp"
    fail "cannot write $2" "the filesystem is read-only or full" "check: findmnt ${2%/*}; df -h ${2%/*}"
  fi
}

# ---- the directory: made once, root-only
[[ ! -L $DIR ]] || fail "$DIR is a symlink" "something other than this host's boot script made it" "remove the link (rm $DIR) and run the boot script again"
if [[ ! -d $DIR ]]; then
  mkdir -m 0700 -- "$DIR" || fail "cannot create $DIR" "the data volume is not mounted read-write" "check: findmnt ${DIR%/*}"
fi
[[ $(stat -c '%u:%g %a' -- "$DIR") == "$OWNER 700" ]] || { chown "$OWNER" -- "$DIR" && chmod 0700 -- "$DIR"; } ||
  fail "cannot make $DIR root-only (0700)" "" "check: ls -ld $DIR"

kept=$DIR/$KEY live=$ETC/$KEY
if [[ -e $kept || -L $kept ]]; then
  # ---- a kept identity: it is the host's key
  # (root-only first: ssh-keygen refuses to read a private key others can read)
  [[ -L $kept || ! -f $kept || $(stat -c '%u:%g %a' -- "$kept") == "$OWNER 600" ]] || { chown "$OWNER" -- "$kept" && chmod 0600 -- "$kept"; } ||
    fail "cannot make $kept root-only (0600)" "" "check: ls -l $kept"
  pub=$(public_of "$kept")
  [[ -f $kept && ! -L $kept && $pub == "ssh-ed25519 "* ]] ||
    fail "the kept SSH host key $kept is not a readable ed25519 private key; the host's identity was NOT replaced" \
      "the file was damaged or changed by hand" \
      "restore it from a snapshot of the volume; or, for a new identity on purpose: mv $kept $kept.broken, run the boot script again, then re-pin on every laptop (setup checks the new key against the console)"
  [[ -f $kept.pub && $(awk 'NR == 1 { print $1, $2 }' "$kept.pub") == "$pub" ]] || copy <(printf '%s root@btrbk-backup-host\n' "$pub") "$kept.pub" 0644
  if cmp -s -- "$kept" "$live" && [[ $(public_of "$live") == "$pub" && -f $live.pub && $(awk 'NR == 1 { print $1, $2 }' "$live.pub") == "$pub" ]]; then
    note "sshd already has the kept host key $(fingerprint_of "$pub")"
    exit 0
  fi
  copy "$kept" "$live" 0600
  copy "$kept.pub" "$live.pub" 0644
  echo "restored the SSH host key kept in $DIR ($(fingerprint_of "$pub")): a replaced instance answers with the pinned key"
  exit 0
fi

# ---- no kept identity (a blank volume, or one from before this script): keep the key sshd has now
made=""
if [[ -z $(public_of "$live") ]]; then
  [[ ! -e $live ]] || fail "$live is not a readable key and no identity is kept in $DIR" "the image's host key was damaged" "remove $live and run the boot script again (a new key is made and kept)"
  ssh-keygen -q -t ed25519 -N '' -C root@btrbk-backup-host -f "$live" </dev/null >/dev/null || fail "ssh-keygen could not make a host key in $ETC" "" "run: ssh-keygen -A"
  made="made a new SSH host key and "
fi
pub=$(public_of "$live")
[[ $pub == "ssh-ed25519 "* ]] || fail "$live is not an ed25519 key" "the image's host key is of another type" "remove $live and run the boot script again"
[[ -f $live.pub && $(awk 'NR == 1 { print $1, $2 }' "$live.pub") == "$pub" ]] || copy <(printf '%s root@btrbk-backup-host\n' "$pub") "$live.pub" 0644
copy "$live.pub" "$kept.pub" 0644
copy "$live" "$kept" 0600
sync -f "$kept" 2>/dev/null || sync
echo "${made}kept the SSH host key in $DIR ($(fingerprint_of "$pub")): a replaced instance answers with it"
