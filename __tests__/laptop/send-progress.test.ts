// run's live progress of btrbk's sends (scripts/lib/laptop/send-progress.ts): found from /proc (a fake tree here,
// then a real pipeline whose first process has the argv of `btrfs send`), with the ETA of a full send of known size.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  activeSends,
  descendants,
  formatSendSummary,
  parentPid,
  sendArgsOf,
  snapshotBase,
  watchSends,
  type SendSummary,
} from '../../scripts/lib/laptop/send-progress.js';
import type { ProgressLine } from '../../scripts/lib/remote/transfer.js';

let proc: string;
beforeEach(() => {
  proc = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-proc-'));
});
afterEach(() => fs.rmSync(proc, { recursive: true, force: true }));

/** A process of the fake /proc: its stat (with an awkward name), argv, fd 0 and 1 and its read count. */
function fakeProcess(
  pid: number,
  ppid: number,
  argv: string[],
  { stdin, stdout, rchar }: { stdin?: string; stdout?: string; rchar?: number } = {},
) {
  const dir = path.join(proc, String(pid));
  fs.mkdirSync(path.join(dir, 'fd'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${path.basename(argv[0])} (x) y) S ${ppid} ${pid} ${pid} 0 -1`);
  fs.writeFileSync(path.join(dir, 'cmdline'), `${argv.join('\0')}\0`);
  if (stdin) fs.symlinkSync(stdin, path.join(dir, 'fd', '0'));
  if (stdout) fs.symlinkSync(stdout, path.join(dir, 'fd', '1'));
  if (rchar !== undefined) fs.writeFileSync(path.join(dir, 'io'), `rchar: ${rchar}\nwchar: 0\n`);
}
const setRchar = (pid: number, n: number) =>
  fs.writeFileSync(path.join(proc, String(pid), 'io'), `rchar: ${n}\nwchar: 0\n`);

/** btrbk (100) runs `btrfs send SNAP | zstd -c | ssh ...` through sh; another btrfs send (200) is not btrbk's. */
function btrbkPipeline({ incremental = false, rchar = 0 } = {}) {
  fakeProcess(100, 1, ['/usr/bin/perl', '/usr/bin/btrbk', '-c', '/etc/btrbk/btrbk-aws.conf', 'run']);
  fakeProcess(101, 100, [
    'sh',
    '-c',
    `btrfs send ${incremental ? "-p '/mnt/.snaps/home.20261129T0700' " : ''}'/mnt/.snaps/home.20261130T0732' | zstd -c -1 | ssh -q btrbk-aws-target 'zstd -d -q | sudo -n btrfs receive '\\''/b/'\\'''`,
  ]);
  fakeProcess(
    102,
    101,
    [
      'btrfs',
      'send',
      ...(incremental ? ['-p', '/mnt/.snaps/home.20261129T0700'] : []),
      '/mnt/.snaps/home.20261130T0732',
    ],
    { stdin: '/dev/null', stdout: 'pipe:[555]' },
  );
  fakeProcess(103, 101, ['zstd', '-c', '-1'], { stdin: 'pipe:[555]', stdout: 'pipe:[556]', rchar });
  fakeProcess(104, 101, ['ssh', 'btrbk-aws-target', 'btrfs receive ...'], {
    stdin: 'pipe:[556]',
    stdout: 'socket:[9]',
    rchar: 99,
  });
  fakeProcess(200, 1, ['btrfs', 'send', '/elsewhere/snap'], { stdout: 'pipe:[777]' });
}

/** A ProgressLine that records what it was asked to show. */
function recordingLine() {
  const shown: Array<{
    label: string;
    bytes: number;
    total: number | null | undefined;
    eta: number | null | undefined;
  }> = [];
  const line: ProgressLine = {
    show: (label, p) => {
      shown.push({ label, bytes: p.bytes, total: p.total, eta: p.eta });
    },
    clear: () => {},
  };
  return { line, shown };
}

describe('reading the pipeline from /proc', () => {
  test('the parent pid survives a command name with spaces and parentheses', () => {
    expect(parentPid('42 (we (ird) name) S 7 42 42 0 -1')).toBe(7);
  });

  test("descendants are found through the shell, and nothing outside btrbk: from parent pids, or the kernel's children lists", () => {
    btrbkPipeline();
    expect(descendants(100, proc).sort()).toEqual([101, 102, 103, 104]);
    expect(descendants(999, proc)).toEqual([]);
    const children = (pid: number, list: number[]) => {
      fs.mkdirSync(path.join(proc, String(pid), 'task', String(pid)), { recursive: true });
      fs.writeFileSync(
        path.join(proc, String(pid), 'task', String(pid), 'children'),
        list.map((p) => `${p} `).join(''),
      );
    };
    children(100, [101]);
    children(101, [102, 103]); // 104 left out: the lists are what is read now
    expect(descendants(100, proc).sort()).toEqual([101, 102, 103]);
  });

  test('the send, its reader (the process on the other end of its stdout pipe) and the bytes it read', () => {
    btrbkPipeline({ rchar: 4096 });
    expect(activeSends(100, proc)).toEqual([
      { sendPid: 102, snapshot: '/mnt/.snaps/home.20261130T0732', incremental: false, readerPid: 103, bytes: 4096 },
    ]);
    fs.rmSync(path.join(proc, '103', 'io'));
    expect(activeSends(100, proc)[0]).toMatchObject({ readerPid: 103, bytes: null });
  });

  test("btrbk's snapshot names: the name before the timestamp", () => {
    expect(snapshotBase('/mnt/.snaps/home.20261130T0732')).toBe('home');
    expect(snapshotBase('srv.data.20261130T073213+0000')).toBe('srv.data');
    expect(snapshotBase('home.20261130_1')).toBe('home');
    expect(snapshotBase('home.20261130')).toBe('home');
  });
});

describe('watchSends', () => {
  test('a full send of known size: bytes against the total and an ETA; its closing line counts what the reader read last', () => {
    btrbkPipeline({ rchar: 0 });
    let t = 0;
    const { line, shown } = recordingLine();
    const done: SendSummary[] = [];
    const w = watchSends({
      root: 100,
      fullSizes: new Map([['home', 100 * 2 ** 20]]),
      intervalMs: 60_000,
      line,
      done: (s) => done.push(s),
      procRoot: proc,
      now: () => t,
    });
    try {
      w.poll();
      t = 1000;
      setRchar(103, 10 * 2 ** 20);
      w.poll();
      expect(shown.at(-1)).toMatchObject({ label: 'home.20261130T0732', bytes: 10 * 2 ** 20, total: 100 * 2 ** 20 });
      expect(shown.at(-1)!.eta).toBeCloseTo(9, 5); // 90 MiB left at 10 MiB/s
      // the send ends between two polls; zstd and ssh still finish the stream: its pipeline shell is still there
      t = 2000;
      setRchar(103, 20 * 2 ** 20);
      fs.rmSync(path.join(proc, '102'), { recursive: true });
      w.poll();
      expect(done).toEqual([]);
      // the far end has it all: the shell ends
      fs.rmSync(path.join(proc, '101'), { recursive: true });
      w.poll();
      expect(done).toEqual([
        { snapshot: '/mnt/.snaps/home.20261130T0732', incremental: false, bytes: 20 * 2 ** 20, seconds: 2 },
      ]);
      expect(formatSendSummary(done[0])).toBe('home.20261130T0732: 20.0 MiB sent in 0:02, 10.0 MiB/s (full send)');
    } finally {
      void w.stop();
    }
    expect(done).toHaveLength(1);
  });

  test('a send too short for the poll to see: its pipeline shell is seen, and its stream is counted again exactly (same snapshot and parent) for the closing line', async () => {
    btrbkPipeline({ incremental: true });
    fs.rmSync(path.join(proc, '102'), { recursive: true }); // btrfs send: already gone at the first poll
    fs.rmSync(path.join(proc, '103'), { recursive: true }); // zstd too
    let t = 0;
    const done: SendSummary[] = [];
    const counted: string[][] = [];
    const w = watchSends({
      root: 100,
      intervalMs: 60_000,
      line: recordingLine().line,
      done: (s) => done.push(s),
      procRoot: proc,
      now: () => t,
      countStream: async (args) => {
        counted.push(args);
        return 1234;
      },
    });
    w.poll();
    t = 300;
    fs.rmSync(path.join(proc, '101'), { recursive: true });
    w.poll();
    await w.stop();
    expect(counted).toEqual([['-p', '/mnt/.snaps/home.20261129T0700', '/mnt/.snaps/home.20261130T0732']]);
    expect(done).toEqual([
      { snapshot: '/mnt/.snaps/home.20261130T0732', incremental: true, bytes: 1234, seconds: 0.3 },
    ]);
    expect(formatSendSummary(done[0])).toMatch(/^home\.20261130T0732: 1\.2 KiB sent in 0:00/);
  });

  test("btrbk's send command read from its pipeline shell: quoted paths, clone sources, the rest of the pipeline left out", () => {
    expect(
      sendArgsOf(
        "btrfs send -p '/mnt/a b/home.1' -c '/mnt/x'\\''y/c' '/mnt/a b/home.2' | zstd -c -1 | ssh h 'btrfs receive /t/'",
      ),
    ).toEqual(['-p', '/mnt/a b/home.1', '-c', "/mnt/x'y/c", '/mnt/a b/home.2']);
    expect(sendArgsOf("/usr/bin/btrfs send '/s/home.2'")).toEqual(['/s/home.2']);
    expect(sendArgsOf("btrfs receive '/t/'")).toBeNull();
    expect(sendArgsOf("zstd -d | btrfs send '/s'")).toBeNull();
  });

  test('an incremental: bytes and rate, no total and no ETA (its size is not known in advance); a small one is counted again exactly when it ends', async () => {
    btrbkPipeline({ incremental: true, rchar: 0 });
    let t = 0;
    const { line, shown } = recordingLine();
    const done: SendSummary[] = [];
    const counted: string[][] = [];
    const w = watchSends({
      countStream: async (args) => {
        counted.push(args);
        return 2048;
      },
      root: 100,
      fullSizes: new Map([['home', 100]]),
      intervalMs: 60_000,
      line,
      done: (s) => done.push(s),
      procRoot: proc,
      now: () => t,
    });
    w.poll();
    t = 500;
    setRchar(103, 2048 + 5000); // the stream and the ELF headers zstd's loader read
    w.poll();
    await w.stop();
    expect(shown.at(-1)).toMatchObject({ bytes: 7048, total: null, eta: null });
    // small: counted again exactly for its closing line
    expect(counted).toEqual([['-p', '/mnt/.snaps/home.20261129T0700', '/mnt/.snaps/home.20261130T0732']]);
    expect(done).toEqual([
      { snapshot: '/mnt/.snaps/home.20261130T0732', incremental: true, bytes: 2048, seconds: 0.5 },
    ]);
  });
});

test('a real pipeline: a process with the argv of `btrfs send` writing 3 MiB into `cat`, read from the real /proc', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'send-progress-'));
  try {
    // `exec -a btrfs sh send SNAP` gives argv btrfs, send, SNAP: sh runs the file `send`, which writes the stream
    fs.writeFileSync(path.join(dir, 'send'), 'head -c 3145728 /dev/zero; sleep 2\n');
    const child = spawn('bash', ['-c', 'exec -a btrfs sh send /snaps/home.20261130T0732 | cat > /dev/null'], {
      cwd: dir,
      stdio: 'ignore',
    });
    const done: SendSummary[] = [];
    const { line, shown } = recordingLine();
    const w = watchSends({
      root: child.pid!,
      fullSizes: new Map([['home', 3 * 2 ** 20]]),
      intervalMs: 100,
      line,
      done: (s) => done.push(s),
    });
    await new Promise((resolve) => child.on('exit', resolve));
    await w.stop();
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.at(-1)).toMatchObject({ label: 'home.20261130T0732', total: 3 * 2 ** 20 });
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ snapshot: '/snaps/home.20261130T0732', incremental: false });
    // cat's read count: the stream, and the few KiB the loader read of its libraries
    expect(done[0].bytes).toBeGreaterThanOrEqual(3 * 2 ** 20);
    expect(done[0].bytes).toBeLessThan(3 * 2 ** 20 + 64 * 1024);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
