// Restore, then carry on (docs/RESTORE.md), with real btrbk 0.32.5 clients through the SSH gate:
// laptop A backs up; it is lost; a new laptop (a second loop-device btrfs) restores the latest backup, makes it
// the live subvolume, changes 1 MiB, and backs up again - incrementally: the bytes on the wire stay near the
// size of the change instead of the whole dataset.
import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import {
  createScratchBtrfs,
  createSubvolume,
  subvolumeInfo,
  type ScratchBtrfs,
} from '../../scripts/lib/data/btrfs-scratch.js';
import { overwriteSpread, writeRandomFile } from '../../scripts/lib/bench/bench.js';
import { listBackups, makeLive, restoreBackup } from '../../scripts/lib/data/restore.js';
import { GATE_COMMANDS, gateLine } from '../../scripts/lib/remote/gate-commands.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';
import { btrbkClient, removeRemoteDir, runEach } from './btrbk-client-harness.js';
import { sameBytes } from '../support/file-bytes.js';

jest.setTimeout(15 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const REMOTE_DIR = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/restore-${process.pid}`;
const MiB = 1024 * 1024;
const DATA_MIB = 96;

let laptopA: ScratchBtrfs;
let laptopB: ScratchBtrfs;
let work: string;

const latestBackup = async () => {
  const list = (await listBackups(conn, REMOTE_DIR))
    .filter((b) => b.complete)
    .sort((a, b) => a.path.localeCompare(b.path));
  return list[list.length - 1];
};

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'restore-'));
  laptopA = await createScratchBtrfs({ sizeMiB: 1024, label: 'laptop-a' });
  laptopB = await createScratchBtrfs({ sizeMiB: 1024, label: 'laptop-b' });
  const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(REMOTE_DIR)));
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
});

afterAll(async () => {
  await runEach([
    ...removeRemoteDir(conn, REMOTE_DIR),
    () => laptopA?.destroy(),
    () => laptopB?.destroy(),
    () => fs.rmSync(work, { recursive: true, force: true }),
  ]);
});

test('restore the latest backup onto a new laptop, make it live, and continue with incremental backups', async () => {
  // laptop A: a home subvolume, backed up by btrbk
  await createSubvolume(laptopA.path('home'));
  fs.mkdirSync(laptopA.path('snaps'));
  writeRandomFile(laptopA.path('home', 'data.bin'), DATA_MIB * MiB);
  fs.mkdirSync(laptopA.path('home', 'docs'));
  for (let i = 0; i < 50; i += 1)
    fs.writeFileSync(laptopA.path('home', 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
  fs.mkdirSync(path.join(work, 'a'));
  const a = btrbkClient(conn, path.join(work, 'a'), {
    volume: laptopA.mountpoint,
    subvolume: 'home',
    targetDir: REMOTE_DIR,
  });
  const first = a.run('run');
  expect({ status: first.status, output: `${first.out}${first.err}` }).toMatchObject({ status: 0 });
  const fullBytes = a.receivedBytes();
  expect(fullBytes).toBeGreaterThan(DATA_MIB * MiB);

  // laptop A is lost. Laptop B: restore the latest backup into its snapshot directory ...
  const backup = await latestBackup();
  fs.mkdirSync(laptopB.path('snaps'));
  const restored = await restoreBackup(conn, backup.path, laptopB.path('snaps'));
  expect(path.basename(restored.path)).toBe(path.posix.basename(backup.path));
  expect(restored.bytes).toBeGreaterThan(DATA_MIB * MiB);
  // ... and make it the live subvolume (a writable snapshot of the restored one)
  const live = await makeLive(restored.path, laptopB.path('home'));
  expect(live.readonly).toBe(false);
  expect(live.parentUuid).toBe((await subvolumeInfo(restored.path)).uuid);
  await expect(makeLive(restored.path, laptopB.path('home'))).rejects.toThrow(/already exists; not replacing it/);
  expect(sameBytes(laptopB.path('home', 'data.bin'), laptopA.path('home', 'data.bin'))).toEqual({ same: true });
  expect(fs.readFileSync(laptopB.path('home', 'docs', 'note-7.txt'), 'utf8')).toBe('note 7\n'.repeat(8));

  // work goes on on laptop B: 1 MiB changes; btrbk, configured like on laptop A, backs up again
  const changed = overwriteSpread(laptopB.path('home', 'data.bin'), 1 * MiB, { seedOffset: 3 });
  fs.mkdirSync(path.join(work, 'b'));
  const b = btrbkClient(conn, path.join(work, 'b'), {
    volume: laptopB.mountpoint,
    subvolume: 'home',
    targetDir: REMOTE_DIR,
  });
  const next = b.run('-v', 'run');
  expect({ status: next.status, output: `${next.out}${next.err}` }).toMatchObject({ status: 0 });
  const wire = b.receivedBytes();
  // incremental from the restored snapshot: near the change, nowhere near the whole dataset
  expect(wire / changed).toBeLessThan(1.05);
  expect(wire).toBeLessThan(fullBytes / 20);
  expect(`${next.out}${next.err}`).toMatch(/\[send\/receive\] parent: \S*snaps\/home\.\S+/);

  // the new backup is on the target, complete, and holds laptop B's data
  const newest = await latestBackup();
  expect(newest.path).not.toBe(backup.path);
  const verify = laptopA.path('verify');
  fs.mkdirSync(verify);
  const back = await restoreBackup(conn, newest.path, verify);
  expect(sameBytes(path.join(back.path, 'data.bin'), laptopB.path('home', 'data.bin'))).toEqual({ same: true });
});

test('a restore streams compressed like a backup (zstd -1 on the host, decompressed here): on compressible data the wire carries a fraction of the stream, side by side with an uncompressed restore of the same backup, and both restore the same files', async () => {
  // log-like text: timestamps, counters and a few hundred words, as home directories hold (mail, sources, logs)
  const words = Array.from({ length: 400 }, (_, i) => `w${(i * 2654435761) % 1000003}`);
  await createSubvolume(laptopA.path('text'));
  const lines: string[] = [];
  let x = 12345;
  for (let i = 0; lines.length < 600_000; i += 1) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    lines.push(
      `2026-12-05T${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00Z host=lap${x % 7} user=${words[x % 400]} action=${words[(x >> 8) % 400]} bytes=${x % 100000} id=${x.toString(16)}`,
    );
  }
  fs.writeFileSync(laptopA.path('text', 'app.log'), `${lines.join('\n')}\n`);
  fs.mkdirSync(laptopA.path('text-snaps'));
  fs.mkdirSync(path.join(work, 't'));
  const t = btrbkClient(conn, path.join(work, 't'), {
    volume: laptopA.mountpoint,
    subvolume: 'text',
    snapshotDir: 'text-snaps',
    targetDir: REMOTE_DIR,
  });
  const r = t.run('run');
  expect({ status: r.status, output: `${r.out}${r.err}` }).toMatchObject({ status: 0 });
  const backup = (await listBackups(conn, REMOTE_DIR)).find((b) => b.complete && /\/text\.\d/.test(b.path))!;
  const into = (name: string) => {
    fs.mkdirSync(laptopB.path(name));
    return laptopB.path(name);
  };
  const plain = await restoreBackup(conn, backup.path, into('plain'), { compress: null });
  const zstd = await restoreBackup(conn, backup.path, into('zstd'));
  expect(zstd.compress).toBe('zstd');
  expect(plain.wireBytes).toBe(plain.bytes);
  expect(zstd.bytes).toBe(plain.bytes); // the same stream arrives
  expect(zstd.wireBytes / plain.wireBytes).toBeLessThan(0.4);
  expect(sameBytes(path.join(zstd.path, 'app.log'), laptopA.path('text', 'app.log'))).toEqual({ same: true });
  expect(sameBytes(path.join(plain.path, 'app.log'), laptopA.path('text', 'app.log'))).toEqual({ same: true });
  process.stderr.write(
    `[restore] one backup of ${(plain.bytes / MiB).toFixed(1)} MiB of log text restored twice: over the wire ${(plain.wireBytes / MiB).toFixed(1)} MiB uncompressed (${(plain.durationMs / 1000).toFixed(1)} s), ${(zstd.wireBytes / MiB).toFixed(1)} MiB with zstd -1 (${(zstd.durationMs / 1000).toFixed(1)} s): ${(zstd.wireBytes / plain.wireBytes).toFixed(3)} of the bytes\n`,
  );
});
