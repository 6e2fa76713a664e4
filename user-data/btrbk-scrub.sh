#!/bin/bash
# btrbk-scrub [run [--now]|report] [--mount DIR] [--state DIR]: the host's read-only scrub of the data volume.
#
# When: btrbk-scrub.timer starts `run` hourly; it scrubs only when the last scrub is 28 days old or more (monthly)
# AND a backup arrived in the last 90 minutes (a directory of the backup root changed). The scrub's few commits (below)
# then fall in an hour that had a backup's writes anyway, so they never stand in for a missing backup in the
# missed-backup alarm, which watches the volume's writes. When backups stop, the scrub waits with them (the alarm
# fires). `run --now` (as admin) scrubs at once.
#
# run (as root): `btrfs scrub start -B -r -c 3 MOUNT`: -r reads and
# checks every block's checksum (data and metadata, every copy) and repairs nothing, -c 3 is the idle I/O class
# (backups and restores go first). Then it records the result in STATE/last-run (root-owned, 0644, written whole
# or not at all): when it started (UTC), how long it took, btrfs's exit status, `btrfs scrub status -R` (bytes
# read, errors by kind), the kernel's lines about damaged blocks (the logical address, and the subvolume id and
# file when the kernel names them) and, for each damaged address, `btrfs inspect-internal logical-resolve`: every
# file of every backup that holds the block (backups share blocks, so one bad block can hit many backups).
# Exit status: btrfs's (0 clean, 3 uncorrectable errors found, 1 the scrub could not run).
#
# Writes: the scrub itself never writes a data or metadata block (-r), but the kernel marks each block group
# read-only while it reads it, which joins a transaction: btrfs commits it (a few hundred KiB of tree roots and the
# super blocks) like any other. docs/PERFORMANCE.md has the measured figure; the missed-backup alarm must not count
# such a commit as a backup.
#
# report (the gate's `btrbk-diag scrub`, as the btrbk user, no root): the schedule, the next run and STATE/last-run.
set -u -o pipefail
export LC_ALL=C TZ=UTC PATH=/usr/sbin:/usr/bin:/sbin:/bin
MOUNT=/backup_volume STATE_DIR=/var/lib/btrbk-backup-host/scrub MODE=run
readonly SCHEDULE=monthly DUE_DAYS=28 FRESH_MINUTES=90 MAX_RESOLVE=20
NOW=0

while (($#)); do
  case $1 in
    run | report) MODE=$1 ;;
    --now) NOW=1 ;;
    --mount) MOUNT=${2-} && shift ;;
    --state) STATE_DIR=${2-} && shift ;;
    *) printf 'btrbk-scrub: unknown argument %s (usage: btrbk-scrub [run [--now]|report] [--mount DIR] [--state DIR])\n' "$1" >&2; exit 2 ;;
  esac
  shift
done
STATE=$STATE_DIR/last-run

if [[ $MODE == report ]]; then
  printf 'schedule: btrfs scrub start -B -r -c 3 %s within 90 minutes after a backup arrives, %s (btrbk-scrub.timer)\n' "$MOUNT" "$SCHEDULE"
  next=$(systemctl show -P NextElapseUSecRealtime btrbk-scrub.timer 2>/dev/null) || next=
  printf 'next: %s\n' "${next:-unknown}"
  if [[ -r $STATE ]]; then
    printf 'last run:\n'
    cat "$STATE"
  else
    printf 'last run: none (no scrub has finished on this host yet)\n'
  fi
  exit 0
fi

((EUID == 0)) || { printf 'btrbk-scrub: run needs root (the timer runs it as root)\n' >&2; exit 1; }
mountpoint -q "$MOUNT" || { printf 'btrbk-scrub: nothing is mounted at %s\n' "$MOUNT" >&2; exit 1; }
install -d -m 0755 "$STATE_DIR"
start=$(date +%s)
if ((!NOW)); then
  last=$(sed -n 's/^when=//p' "$STATE" 2>/dev/null | head -n 1)
  last=$(date -d "${last:-@0}" +%s 2>/dev/null) || last=0
  if ((start - last < DUE_DAYS * 86400)); then exit 0; fi
  if [[ -z $(find "$MOUNT/backups" -xdev -mindepth 1 -maxdepth 3 -type d -mmin -"$FRESH_MINUTES" -print -quit 2>/dev/null) ]]; then
    printf 'btrbk-scrub: due; waiting for a backup to arrive (its writes must not stand in for one)\n'
    exit 0
  fi
fi
out=$(btrfs scrub start -B -r -c 3 "$MOUNT" 2>&1)
rc=$?
end=$(date +%s)
status=$(btrfs scrub status -R "$MOUNT" 2>&1)
# the kernel's lines about damaged blocks, from this scrub only
# (journald when it has the kernel's messages, else the ring buffer since the last scrub started)
klog=$(journalctl -k -q -o short-iso --no-pager --since "@$start" 2>/dev/null | grep -E 'error at logical [0-9]+')
[[ -n $klog ]] || klog=$(dmesg 2>/dev/null | awk '/scrub: started on/ { n = 0 } { l[n++] = $0 } END { for (i = 0; i < n; i++) print l[i] }' |
  grep -E 'error at logical [0-9]+')
klog=$(tail -n 200 <<<"$klog")
{
  printf 'when=%(%FT%TZ)T\n' "$start"
  printf 'seconds=%s\nexit=%s\nmount=%s\n' "$((end - start))" "$rc" "$MOUNT"
  printf -- '--- btrfs scrub start\n%s\n' "$out"
  printf -- '--- btrfs scrub status -R\n%s\n' "$status"
  printf -- '--- kernel\n'
  [[ -z $klog ]] || printf '%s\n' "$klog"
  # the subvolumes (backups) the kernel named by id: "root ID inode ..."
  printf -- '--- subvolumes\n'
  ids=$(grep -oE ' root [0-9]+' <<<"$klog" | awk '{ print $2 }' | sort -un | tr '\n' ' ')
  [[ -z $ids ]] || btrfs subvolume list "$MOUNT" 2>&1 | awk -v ids=" $ids" 'index(ids, " " $2 " ")'
  [[ " $ids" != *" 5 "* ]] || printf 'ID 5 (the top level of the volume, outside any backup)\n'
  printf -- '--- logical-resolve\n'
  grep -oE 'error at logical [0-9]+' <<<"$klog" | awk '{ print $4 }' | sort -un | head -n "$MAX_RESOLVE" | while read -r logical; do
    btrfs inspect-internal logical-resolve "$logical" "$MOUNT" 2>&1 | head -n 50 | sed "s|^|$logical |"
  done
  :
} >"$STATE.t" && chmod 0644 "$STATE.t" && mv -f "$STATE.t" "$STATE"
errors=$(grep -E '^[[:space:]]+(read|csum|verify|super|uncorrectable)_errors: [1-9]' <<<"$status" | tr -s '\t\n ' ' ')
logger -t btrbk-scrub -p "daemon.$([[ $rc == 0 ]] && echo info || echo err)" -- \
  "scrub of $MOUNT exit $rc in $((end - start)) s${errors:+; errors:$errors}" 2>/dev/null || true
printf 'btrbk-scrub: %s exit %s in %s s%s\n' "$MOUNT" "$rc" "$((end - start))" "${errors:+; errors:$errors}"
exit "$rc"
