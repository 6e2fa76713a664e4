// The data volume's block-device write counters, read the way the tests of a quiet volume need them
// (host-identity.local-target: the host's timers, the gate's diagnostics and reads of backups write nothing;
// scrub-verify.local-target: the scrub writes no data block), with a wait short enough for a test run.
//
// What a reading must include: every write the kernel makes for what came before it. `sync -f` (syncfs) commits
// the running transaction and writes back dirty data at once; what it cannot reach is work the kernel does later on
// its own: the transaction thread's periodic commit, the btrfs-cleaner thread it wakes each interval (deleted
// subvolumes, delayed inode work, unused block groups), and async discard (the target mounts discard=async), which
// trims an emptied block group 10 s after it became empty (BTRFS_DISCARD_UNUSED_DELAY) and only then hands it to
// the cleaner, which deletes it in a transaction of its own. With the default 30 s commit interval that after-work
// lands up to a minute or more later (a scrub's, in CI), hence the old waits of 32 s, up to five times over.
//
// What the wait here does instead: for the measurement the volume is remounted with `commit=1` (withShortCommit),
// so the transaction thread commits and wakes the cleaner every second instead of every 30 s; each reading syncs and
// polls once a second until the counters have not moved for QUIET_SECONDS (untilQuiet). Why that still proves the
// claims:
//   - the counters are the block device's (/sys/block/DEV/stat): every write to the volume counts, by any path;
//   - a shorter interval can only make a write show sooner (at most it splits one commit into several); it cannot
//     hide one. A volume with nothing to commit has no transaction, so the short interval itself writes nothing:
//     the quiet window before each measurement shows 0 sectors for QUIET_SECONDS at commit=1;
//   - the longest gap between two writes of one piece of after-work is async discard's 10 s (measured here: a
//     scrub's commit, then 11 s later the deletion of the block group it replaced); 15 s of no movement covers it
//     and the cleaner's 1 s with room for a busy machine, where 32 s at commit=30 saw the cleaner run once;
//   - the commit interval is the only option changed; the boot script's options are checked with findmnt before and
//     after, and the setting it had is restored even when the test fails.
import fs from 'node:fs';
import path from 'node:path';
import { MOUNT_POINT } from '../../user-data/host-layout.js';

/** Runs argv as root inside the target; returns its stdout, throws when it fails. */
export type InTarget = (argv: string[]) => string;

/** Field 5 (writes completed) and field 7 (sectors written) of the block device's stat. */
export interface WriteCounters {
  writes: number;
  sectors: number;
}

/** The commit interval while a test measures, in seconds. */
export const SHORT_COMMIT_SECONDS = 1;
/** How long the counters must stay still before a reading counts (see above). */
export const QUIET_SECONDS = 15;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mountOptions = (run: InTarget) => run(['findmnt', '-n', '-o', 'OPTIONS', MOUNT_POINT]).trim();

/** The block device (loopN) mounted at the target's mount point. */
export function volumeDevice(run: InTarget): string {
  const source = run(['findmnt', '-n', '-o', 'SOURCE', MOUNT_POINT]).trim();
  const dev = path.basename(fs.realpathSync(source.startsWith('/dev/') ? source : `/dev/${source}`));
  expect(fs.existsSync(`/sys/block/${dev}/stat`)).toBe(true);
  return dev;
}

export function writeCounters(dev: string): WriteCounters {
  const f = fs.readFileSync(`/sys/block/${dev}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return { writes: f[4], sectors: f[6] };
}

/** Runs body with the volume remounted commit=SHORT_COMMIT_SECONDS; puts back the interval the boot script set. */
export async function withShortCommit<T>(run: InTarget, body: () => Promise<T>): Promise<T> {
  const given = mountOptions(run);
  // no commit= shown: the kernel's default (30 s), which commit=0 sets
  const interval = /(?:^|,)commit=(\d+)(?:,|$)/.exec(given)?.[1] ?? '0';
  const others = (options: string) => options.split(',').filter((o) => !o.startsWith('commit='));
  run(['mount', '-o', `remount,commit=${SHORT_COMMIT_SECONDS}`, MOUNT_POINT]);
  let done = false;
  try {
    const now = mountOptions(run);
    expect({ others: others(now), commit: now.split(',').filter((o) => o.startsWith('commit=')) }).toEqual({
      others: others(given),
      commit: [`commit=${SHORT_COMMIT_SECONDS}`],
    });
    const result = await body();
    done = true;
    return result;
  } finally {
    try {
      run(['mount', '-o', `remount,commit=${interval}`, MOUNT_POINT]);
      expect(mountOptions(run)).toBe(given);
    } catch (err) {
      if (done) throw err; // else the body's failure is the one to see (a target gone away fails both)
    }
  }
}

/** Syncs the volume and reads its counters once a second until they have not moved for QUIET_SECONDS; returns them.
 * Throws when the volume still writes after maxSeconds. */
export async function untilQuiet(
  run: InTarget,
  dev: string,
  { maxSeconds = 180 }: { maxSeconds?: number } = {},
): Promise<WriteCounters> {
  const t0 = Date.now();
  let last = writeCounters(dev);
  let since = t0;
  for (;;) {
    run(['sync', '-f', MOUNT_POINT]);
    const now = writeCounters(dev);
    if (now.writes !== last.writes || now.sectors !== last.sectors) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= QUIET_SECONDS * 1000) return now;
    if (Date.now() - t0 > maxSeconds * 1000)
      throw new Error(
        `the volume (${dev}) did not go quiet: its write counters still moved within ${QUIET_SECONDS} s after ${maxSeconds} s (now ${JSON.stringify(now)})`,
      );
    await sleep(1000);
  }
}
