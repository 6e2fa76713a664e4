// `backup.mjs run`'s live progress of btrbk's sends: bytes, rate and, for a full send whose size is known in
// advance (first-sends.ts), the ETA. btrbk's own --progress (mbuffer) shows bytes and rate only, and only on a
// terminal; this reads the running pipeline from /proc instead, so it works in a log too and adds the ETA.
//
// How: btrbk runs each transfer as one shell pipeline, `btrfs send [-p PARENT] SNAPSHOT | zstd | ssh ...` (or
// mbuffer, or ssh directly, after the send). Among btrbk's descendants, a process whose argv is `btrfs send ...`
// is a send; the process whose stdin is the pipe the send writes to (the same `pipe:[inode]`) reads the stream,
// and its read count (/proc/PID/io rchar) is the number of stream bytes sent so far, before compression: what the
// full-send size from `btrfs filesystem du` estimates. Reading another process's io and fds needs root: run does.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { ProgressTracker, progressLine, type ProgressLine } from '../remote/transfer.js';
import { readText } from '../core/files.js';
import { humanBytes, humanDuration, humanRate } from '../core/units.js';

/** One running `btrfs send` below the watched process. */
export interface ActiveSend {
  sendPid: number;
  /** The snapshot being sent (the send's last argument). */
  snapshot: string;
  /** Whether it sends against a parent (-p): an incremental. */
  incremental: boolean;
  /** The process reading the send's stdout; null until it is found. */
  readerPid: number | null;
  /** Stream bytes the reader has read; null when they cannot be read. */
  bytes: number | null;
}

const readLink = (p: string): string | null => {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
};

/** The parent pid from /proc/PID/stat (the command name may hold spaces and parentheses: read after the last ')'). */
export function parentPid(stat: string): number | null {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(rest[1]);
  return Number.isInteger(ppid) ? ppid : null;
}

/** Every process below `root` (not root itself), from /proc: through the kernel's children lists where it keeps
 * them (CONFIG_PROC_CHILDREN: a few reads per poll), else from every process's parent pid. */
export function descendants(root: number, procRoot = '/proc'): number[] {
  const listed = (pid: number): number[] | null => {
    const t = readText(path.join(procRoot, String(pid), 'task', String(pid), 'children'));
    return t === null ? null : t.split(' ').filter(Boolean).map(Number);
  };
  const childrenOf = listed(root) !== null ? (pid: number) => listed(pid) ?? [] : byParent(procRoot);
  const out: number[] = [];
  const queue = childrenOf(root);
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...childrenOf(pid));
  }
  return out;
}

/** The children of each process, from every process's parent pid (one scan of /proc). */
function byParent(procRoot: string): (pid: number) => number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(procRoot);
  } catch {
    return () => [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readText(path.join(procRoot, e, 'stat'));
    const ppid = stat ? parentPid(stat) : null;
    if (ppid === null) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  return (pid) => [...(children.get(pid) ?? [])];
}

/** A process's read count (/proc/PID/io rchar), or null when it cannot be read (gone, not allowed). */
function readChars(pid: number, procRoot: string): number | null {
  const io = readText(path.join(procRoot, String(pid), 'io'));
  const n = io ? Number(/^rchar: (\d+)$/m.exec(io)?.[1] ?? NaN) : NaN;
  return Number.isFinite(n) ? n : null;
}

/** The `btrfs send` processes below `root`, each with its stream reader and the bytes read so far. */
export function activeSends(root: number, procRoot = '/proc', pids = descendants(root, procRoot)): ActiveSend[] {
  const argv = (pid: number) =>
    (readText(path.join(procRoot, String(pid), 'cmdline')) ?? '').split('\0').filter(Boolean);
  const sends: ActiveSend[] = [];
  for (const pid of pids) {
    const a = argv(pid);
    if (a.length < 3 || path.posix.basename(a[0]) !== 'btrfs' || a[1] !== 'send') continue;
    const out = readLink(path.join(procRoot, String(pid), 'fd', '1'));
    const reader = out?.startsWith('pipe:')
      ? (pids.find((p) => p !== pid && readLink(path.join(procRoot, String(p), 'fd', '0')) === out) ?? null)
      : null;
    sends.push({
      sendPid: pid,
      snapshot: a[a.length - 1],
      incremental: a.includes('-p'),
      readerPid: reader,
      bytes: reader === null ? null : readChars(reader, procRoot),
    });
  }
  return sends;
}

/**
 * The arguments of the `btrfs send` a pipeline shell runs (btrbk's `sh -c "btrfs send [-p P] [-c C]... 'SNAP' | zstd
 * ... | ssh ..."`: its words up to the first `|`, single quotes as btrbk writes them), without `btrfs send`; null
 * when the command is not a btrfs send.
 */
export function sendArgsOf(command: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i];
    if (ch === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return null;
      word = (word ?? '') + command.slice(i + 1, end);
      i = end;
    } else if (ch === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else if (ch === '|' || ch === ';' || ch === '&') {
      break;
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + ch;
  }
  if (word !== null) words.push(word);
  if (words.length < 3 || path.posix.basename(words[0]) !== 'btrfs' || words[1] !== 'send') return null;
  return words.slice(2);
}

/** One pipeline shell below `root` that runs a btrfs send (it lives until the far end has received everything). */
export interface SendPipeline {
  shellPid: number;
  snapshot: string;
  incremental: boolean;
  /** The send's arguments (without `btrfs send`): what counts its stream again, exactly. */
  args: string[];
}

/** The shells below `root` running `btrfs send ... | ...`: they outlive a send too short for a poll to see. */
export function sendPipelines(root: number, procRoot = '/proc', pids = descendants(root, procRoot)): SendPipeline[] {
  const out: SendPipeline[] = [];
  for (const pid of pids) {
    const a = (readText(path.join(procRoot, String(pid), 'cmdline')) ?? '').split('\0').filter(Boolean);
    if (a.length < 3 || !/^(ba|da)?sh$/.test(path.posix.basename(a[0])) || a[1] !== '-c') continue;
    const args = sendArgsOf(a[2]);
    if (args) out.push({ shellPid: pid, snapshot: args[args.length - 1], incremental: args.includes('-p'), args });
  }
  return out;
}

/**
 * The exact size of a send's stream, counted again after it ended: `btrfs send -q ARGS` (the same snapshot, parent
 * and clone sources give the same stream) read to the end. For a send too short for the poll to see its reader:
 * it moved little, so counting it again costs little. null when it cannot be counted.
 */
export function countSendStream(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    let n = 0;
    const p = spawn('btrfs', ['send', '-q', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    p.stdout.on('data', (d: Buffer) => (n += d.length));
    p.on('error', () => resolve(null));
    p.on('close', (code) => resolve(code === 0 ? n : null));
  });
}

/** What one finished send moved, for its closing line. */
export interface SendSummary {
  snapshot: string;
  incremental: boolean;
  bytes: number;
  seconds: number;
}

/** "home.20261130T0732: 4.0 GiB sent in 6:02 (11.3 MiB/s), full send" */
export function formatSendSummary(s: SendSummary): string {
  const rate = s.seconds > 0 ? `, ${humanRate(s.bytes / s.seconds)}` : '';
  return `${path.posix.basename(s.snapshot)}: ${humanBytes(s.bytes)} sent in ${humanDuration(s.seconds)}${rate} (${s.incremental ? 'incremental' : 'full send'})`;
}

export interface WatchOptions {
  /** The btrbk process. */
  root: number;
  /** Expected stream bytes of a full send, by the snapshot's name before its timestamp (btrbk's snapshot_name:
   * the subvolume's last path component): what `btrfs filesystem du` said. */
  fullSizes?: ReadonlyMap<string, number>;
  /** How often /proc is read (default 20 ms: a few small reads of the kernel's children lists each time). */
  intervalMs?: number;
  /** Counts a send's stream again when the poll never saw its reader (default countSendStream). */
  countStream?: (args: string[]) => Promise<number | null>;
  line?: ProgressLine;
  /** Where the closing line of each send goes. */
  done?: (summary: SendSummary) => void;
  procRoot?: string;
  now?: () => number;
}

/** The snapshot's name without btrbk's timestamp suffix ("home.20261130T0732" -> "home"). */
export const snapshotBase = (snapshot: string): string =>
  path.posix.basename(snapshot).replace(/\.\d{8}(T\d{4,6}([+-]\d{4})?)?(_\d+)?$/, '');

/** A send whose reader counted less than this is counted again exactly when it ends (re-reading it costs little). */
export const RECOUNT_BELOW = 16 * 1024 * 1024;

/**
 * Polls btrbk's sends until stop() is called; shows a progress line for the one running (with an ETA when it is a
 * full send of known size) and a closing line for each that ended. A send is followed by its btrfs send process (its
 * reader's count) and by the pipeline shell around it, which lives until the far end has received everything: a
 * send that ends between two polls still has its shell seen, and its stream is then counted again exactly
 * (`countStream`). stop() resolves once every closing line is out.
 */
export function watchSends({
  root,
  fullSizes = new Map(),
  intervalMs = 20,
  line = progressLine({ indent: '  ', everyMs: 10_000, afterMs: 2_000 }),
  done = (s) => process.stderr.write(`  ${formatSendSummary(s)}\n`),
  procRoot = '/proc',
  now = () => Date.now(),
  countStream = countSendStream,
}: WatchOptions): { stop: () => Promise<void>; poll: () => void } {
  interface Followed {
    snapshot: string;
    incremental: boolean;
    readerPid: number | null;
    /** The reader's count was read at least once. */
    counted: boolean;
    args: string[] | null;
    tracker: ProgressTracker;
    started: number;
  }
  const running = new Map<string, Followed>();
  const pending: Promise<void>[] = [];
  const finish = (key: string) => {
    const r = running.get(key)!;
    running.delete(key);
    // the send ended between two polls: its reader (compressing, sending the rest) may still say the last count
    const last = r.readerPid === null ? null : readChars(r.readerPid, procRoot);
    if (last !== null) {
      r.counted = true;
      if (last > r.tracker.bytes) r.tracker.add(last - r.tracker.bytes);
    }
    line.clear();
    const summary = (bytes: number): SendSummary => ({
      snapshot: r.snapshot,
      incremental: r.incremental,
      bytes,
      seconds: (now() - r.started) / 1000,
    });
    if (!r.args || (r.counted && r.tracker.bytes >= RECOUNT_BELOW)) {
      done(summary(r.tracker.bytes));
      return;
    }
    // never seen with its reader, or small: count its stream again, exactly (the reader's count holds the few KiB
    // its loader read of its libraries too, which is most of a small incremental's figure)
    const at = summary(0);
    pending.push(countStream(r.args).then((n) => done({ ...at, bytes: n ?? r.tracker.bytes })));
  };
  const poll = () => {
    const pids = descendants(root, procRoot);
    const sends = activeSends(root, procRoot, pids);
    const shells = sendPipelines(root, procRoot, pids);
    const seen = new Set([...sends.map((s) => s.snapshot), ...shells.map((s) => s.snapshot)]);
    for (const key of [...running.keys()]) if (!seen.has(key)) finish(key);
    const follow = (snapshot: string, incremental: boolean): Followed => {
      let r = running.get(snapshot);
      if (!r) {
        const total = incremental ? null : (fullSizes.get(snapshotBase(snapshot)) ?? null);
        r = {
          snapshot,
          incremental,
          readerPid: null,
          counted: false,
          args: null,
          tracker: new ProgressTracker({ total, now }),
          started: now(),
        };
        running.set(snapshot, r);
      }
      return r;
    };
    for (const p of shells) follow(p.snapshot, p.incremental).args = p.args;
    for (const s of sends) {
      const r = follow(s.snapshot, s.incremental);
      if (r.readerPid === null) r.readerPid = s.readerPid;
      if (s.bytes !== null) {
        r.counted = true;
        if (s.bytes > r.tracker.bytes) r.tracker.add(s.bytes - r.tracker.bytes);
      }
      line.show(path.posix.basename(s.snapshot), r.tracker.snapshot());
    }
  };
  const timer = setInterval(poll, intervalMs);
  timer.unref?.();
  return {
    poll,
    stop: async () => {
      clearInterval(timer);
      for (const key of [...running.keys()]) finish(key);
      await Promise.all(pending);
    },
  };
}
