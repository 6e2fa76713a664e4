import { OperatorError } from '../../scripts/lib/core/errors.js';
import {
  ProgressTracker,
  byteCounter,
  formatProgress,
  humanBytes,
  humanDuration,
  progressLine,
  runPipeline,
} from '../../scripts/lib/remote/transfer.js';

describe('transfer: figures', () => {
  it('formats bytes, rates and durations', () => {
    expect(humanBytes(512)).toBe('512 B');
    expect(humanBytes(1536)).toBe('1.5 KiB');
    expect(humanBytes(300 * 1024 * 1024)).toBe('300 MiB');
    expect(humanDuration(65)).toBe('1:05');
    expect(humanDuration(3723)).toBe('1:02:03');
  });

  it('tracks the rate over a sliding window and an ETA when the size is known', () => {
    let t = 0;
    const p = new ProgressTracker({ total: 100 * 1024 * 1024, windowMs: 2000, now: () => t });
    for (let i = 0; i < 10; i += 1) {
      t += 1000;
      p.add(5 * 1024 * 1024);
    }
    const s = p.snapshot();
    expect(s.bytes).toBe(50 * 1024 * 1024);
    expect(s.rate).toBeCloseTo(5 * 1024 * 1024, -3);
    expect(s.eta).toBeCloseTo(10, 0);
    expect(s.fraction).toBeCloseTo(0.5);
    expect(formatProgress(s)).toBe('50.0 MiB of 100 MiB (50%)  5.0 MiB/s  ETA 0:10');
    // slower now: the window follows
    for (let i = 0; i < 4; i += 1) {
      t += 1000;
      p.add(1024 * 1024);
    }
    expect(p.snapshot().rate).toBeCloseTo(1024 * 1024, -3);
  });

  it('without a size there is no ETA', () => {
    let t = 0;
    const p = new ProgressTracker({ now: () => t });
    t = 1000;
    p.add(2048);
    expect(p.snapshot().eta).toBeNull();
    expect(formatProgress(p.snapshot())).toBe('2.0 KiB  2.0 KiB/s');
  });

  it('the progress line: redrawn in place on a terminal, cleared before other output', () => {
    let out = '';
    const stream = { isTTY: true, write: (s: string) => (out += s) } as unknown as NodeJS.WritableStream;
    const line = progressLine({ stream, indent: '  ' });
    line.clear(); // nothing drawn yet: nothing to clear
    line.show('full send', { bytes: 2048, rate: 1024, elapsedMs: 2000 });
    line.show('full send', { bytes: 4096, rate: 2048, elapsedMs: 3000 });
    line.clear();
    line.clear();
    expect(out).toBe('\r\x1b[K  full send: 2.0 KiB  1.0 KiB/s\r\x1b[K  full send: 4.0 KiB  2.0 KiB/s\r\x1b[K');
  });

  it('the progress line off a terminal: plain lines, at most one per interval, the last one always', () => {
    const lines: string[] = [];
    let t = 10_000;
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream;
    const line = progressLine({ stream, indent: '   ', everyMs: 5000, afterMs: 2000, now: () => t });
    const at = (ms: number, bytes: number) => ({ bytes, rate: 1024, elapsedMs: ms });
    line.show('a', at(1000, 1024)); // too early
    t += 2000;
    line.show('a', at(3000, 2048));
    t += 1000;
    line.show('a', at(4000, 3072)); // within 5 s of the last line
    line.show('a', at(4500, 4096), { final: true });
    line.clear();
    expect(lines).toEqual(['   a: 2.0 KiB  1.0 KiB/s\n', '   a: 4.0 KiB  1.0 KiB/s\n']);
  });

  it('a byte counter passes data through unchanged and counts it', async () => {
    let n = 0;
    const c = byteCounter((k) => (n += k));
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.write(Buffer.from('hello '));
    c.end(Buffer.from('world'));
    await new Promise((r) => c.on('end', r));
    expect(Buffer.concat(chunks).toString()).toBe('hello world');
    expect(n).toBe(11);
  });
});

describe('transfer: pipelines of real processes', () => {
  const MiB = 1024 * 1024;

  it('counts every byte on every link and reports progress with an ETA', async () => {
    const seen: any[] = [];
    const r = await runPipeline(
      [
        { label: 'source', cmd: 'head', args: ['-c', String(8 * MiB), '/dev/zero'] },
        { label: 'gzip', cmd: 'gzip', args: ['-1', '-c'] },
        { label: 'sink', cmd: 'sh', args: ['-c', 'wc -c >&2'] },
      ],
      { total: 8 * MiB, progressLink: 0, progressIntervalMs: 0, onProgress: (p) => seen.push(p) },
    );
    expect(r.ok).toBe(true);
    expect(r.links[0]).toEqual({ from: 'source', to: 'gzip', bytes: 8 * MiB });
    expect(r.links[1].bytes).toBeGreaterThan(0);
    expect(r.links[1].bytes).toBeLessThan(MiB);
    expect(Number(r.stages[2].stderr)).toBe(r.links[1].bytes);
    expect(r.bytes).toBe(8 * MiB);
    const last = seen.at(-1);
    expect(last).toMatchObject({ done: true, bytes: 8 * MiB, total: 8 * MiB, fraction: 1 });
    expect(seen.length).toBeGreaterThan(1);
  });

  it('names the stage that failed for its own reason, not the one it took along', async () => {
    const p = runPipeline([
      { label: 'btrfs send', cmd: 'head', args: ['-c', String(64 * MiB), '/dev/zero'] },
      {
        label: 'ssh → btrfs receive',
        cmd: 'sh',
        args: ['-c', 'head -c 1000 >/dev/null; echo "ERROR: receive failed: No space left on device" >&2; exit 1'],
      },
    ]);
    await expect(p).rejects.toBeInstanceOf(OperatorError);
    await p.catch((e: any) => {
      expect(e.what).toBe('the backup target is full: the transfer failed at "ssh → btrfs receive"');
      expect(e.likelyCause).toBe('the receiving filesystem is full');
      expect(e.next).toMatch(/target_preserve.*ebs_volume_size/);
      expect(e.result.stages[1].code).toBe(1);
    });
  });

  it('does not blame btrfs send for its normal "At subvol" line', async () => {
    const p = runPipeline([
      { label: 'btrfs send', cmd: 'sh', args: ['-c', 'echo "At subvol /mnt/snap.2" >&2; head -c 10000000 /dev/zero'] },
      {
        label: 'ssh → btrfs receive',
        cmd: 'sh',
        args: ['-c', 'head -c 100 >/dev/null; echo "ERROR: cannot find parent subvolume" >&2; exit 1'],
      },
    ]);
    await expect(p).rejects.toMatchObject({
      what: 'the transfer failed at "ssh → btrfs receive"',
      likelyCause: 'ERROR: cannot find parent subvolume',
    });
  });

  it('says when the gate refused the command', async () => {
    const p = runPipeline([
      { label: 'btrfs send', cmd: 'printf', args: ['data'] },
      {
        label: 'ssh → btrfs receive',
        cmd: 'sh',
        args: ['-c', 'echo "rejected: path outside the backup root /backup_volume/backups: /etc" >&2; exit 255'],
      },
    ]);
    await expect(p).rejects.toMatchObject({
      likelyCause: expect.stringMatching(/SSH gate refused/),
      details: expect.stringContaining('exit 255'),
    });
  });

  it('reports a program that cannot be started', async () => {
    const p = runPipeline([
      { label: 'src', cmd: 'printf', args: ['x'] },
      { label: 'missing', cmd: '/nonexistent/program', args: [] },
    ]);
    await expect(p).rejects.toMatchObject({ likelyCause: expect.stringMatching(/a program is missing: .*ENOENT/) });
  });

  it('an abort signal stops a running transfer', async () => {
    const ac = new AbortController();
    const p = runPipeline(
      [
        { label: 'src', cmd: 'cat', args: ['/dev/zero'] },
        { label: 'sink', cmd: 'cat', args: [] },
      ],
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 200);
    await expect(p).rejects.toMatchObject({ what: 'the transfer was interrupted' });
  });
});
