// A real btrbk 0.32.5 client on this machine (backend_remote btrfs-progs-sudo, stream_compress zstd,
// stream_buffer_remote so the target side runs mbuffer too) backs a subvolume of a loop-device btrfs up to the
// local target through the SSH gate, full then incremental, then gets both backups back with `btrbk archive`
// (and the newest once more with a plain `ssh ... btrfs send | btrfs receive`); the restored trees match the
// source snapshots file by file (sha256 of content, mode, symlink targets, xattrs).
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSubvolumeList } from '../../scripts/lib/core/btrfs-output.js';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { createScratchBtrfs, createSubvolume } from '../../scripts/lib/data/btrfs-scratch.js';
import { GATE } from '../user-data/gate-harness.js';
import { btrbkClient, type BtrbkClient } from './btrbk-client-harness.js';

jest.setTimeout(15 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const PORT = String(conn.port);
const REMOTE_DIR = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/gate-roundtrip-${process.pid}`;

interface Scratch {
  mountpoint: string;
  path(...parts: string[]): string;
  destroy(): Promise<void>;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer; timeout?: number } = {}) {
  const r = spawnSync(cmd, args, {
    env: opts.env ?? process.env,
    input: opts.input,
    encoding: 'buffer',
    timeout: opts.timeout ?? 300_000,
    maxBuffer: 1 << 30,
  });
  return {
    status: r.status,
    stdout: r.stdout,
    out: r.stdout?.toString('utf8') ?? '',
    err: r.stderr?.toString('utf8') ?? '',
  };
}

function check(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}) {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.err}\n${r.out}`);
  return r;
}

const sshArgs = [
  '-F',
  '/dev/null',
  '-i',
  conn.keyFile,
  '-p',
  PORT,
  '-o',
  `UserKnownHostsFile=${conn.knownHostsFile}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'BatchMode=yes',
  '-o',
  'IdentitiesOnly=yes',
];
const gateSsh = (command: string, input?: Buffer) =>
  run('ssh', [...sshArgs, `${conn.user}@${conn.host}`, '--', command], { input });

/** This test's backups in a `btrfs subvolume list -a -c -u -q -R` of the target (other tests share the volume). */
function ownRemote(listing: string) {
  const dir = path.relative(MOUNT_POINT, REMOTE_DIR);
  return parseSubvolumeList(listing)
    .filter((s) => path.dirname(s.path) === dir)
    .map((s) => ({ name: path.basename(s.path), parentUuid: s.parentUuid, receivedUuid: s.receivedUuid }));
}

/** One line per entry: path, type, mode, size, sha256 of content / link target, xattrs. Sorted; hashed. */
function treeDigest(root: string): { digest: string; entries: number; bytes: number } {
  const lines: string[] = [];
  let bytes = 0;
  const xattrs = new Map<string, string[]>();
  let current = '';
  for (const l of run('getfattr', ['-R', '-h', '-d', '-m', '-', '--absolute-names', root]).out.split('\n')) {
    if (l.startsWith('# file: ')) current = l.slice(8);
    else if (l) xattrs.set(current, [...(xattrs.get(current) ?? []), l]);
  }
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const xattr = (xattrs.get(p) ?? []).join(';');
      if (st.isSymbolicLink()) lines.push(`${rel} l ${fs.readlinkSync(p)} ${xattr}`);
      else if (st.isDirectory()) {
        lines.push(`${rel} d ${mode} ${xattr}`);
        walk(p);
      } else {
        const data = fs.readFileSync(p);
        bytes += data.length;
        lines.push(
          `${rel} f ${mode} ${data.length} ${crypto.createHash('sha256').update(data).digest('hex')} ${xattr}`,
        );
      }
    }
  };
  walk(root);
  return { digest: crypto.createHash('sha256').update(lines.join('\n')).digest('hex'), entries: lines.length, bytes };
}

function writeTree(root: string, seed: string) {
  fs.mkdirSync(path.join(root, 'docs', 'deep', 'er'), { recursive: true });
  fs.writeFileSync(path.join(root, 'big.bin'), crypto.randomBytes(6 * 1024 * 1024));
  fs.writeFileSync(path.join(root, 'zeros.bin'), Buffer.alloc(4 * 1024 * 1024));
  for (let i = 0; i < 150; i += 1)
    fs.writeFileSync(
      path.join(root, 'docs', i % 3 ? 'deep' : '.', `note-${seed}-${i}.txt`),
      `note ${i} ${seed}\n`.repeat(i),
    );
  fs.writeFileSync(path.join(root, 'docs', 'deep', 'er', 'empty'), '');
  fs.symlinkSync('../big.bin', path.join(root, 'docs', 'link-to-big'));
  fs.chmodSync(path.join(root, 'docs', 'deep'), 0o750);
  check('setfattr', ['-n', 'user.backup-test', '-v', seed, path.join(root, 'big.bin')]);
}

describe('btrbk through the SSH gate: full, incremental, restore (real btrbk, real btrfs both sides)', () => {
  let scratch: Scratch;
  let restoreFs: Scratch; // a second filesystem: the "new laptop" the backups are restored to
  let work: string;
  let client: BtrbkClient;
  const sent = () => fs.readFileSync(path.join(work, 'ssh-commands.log'), 'utf8').split('\n').filter(Boolean);
  const timings: Record<string, number> = {};

  const btrbk = (...args: string[]) => {
    const t0 = Date.now();
    const r = client.run(...args);
    let key = args[0];
    for (let n = 2; key in timings; n += 1) key = `${args[0]} #${n}`;
    timings[key] = (Date.now() - t0) / 1000;
    return r;
  };

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-rt-'));
    scratch = (await createScratchBtrfs({ sizeMiB: 768, label: 'gate-roundtrip' })) as unknown as Scratch;
    await createSubvolume(scratch.path('data'));
    fs.mkdirSync(scratch.path('snaps'));
    restoreFs = (await createScratchBtrfs({ sizeMiB: 768, label: 'gate-restore' })) as unknown as Scratch;
    fs.mkdirSync(restoreFs.path('restore'));
    fs.mkdirSync(restoreFs.path('manual'));
    // btrbk runs `ssh` from PATH: the shared client harness pins the host key and logs each remote command
    client = btrbkClient(conn, work, {
      volume: scratch.mountpoint,
      targetDir: REMOTE_DIR,
      extra: ['stream_compress zstd', 'stream_buffer_remote 16m', 'archive_preserve_min all'],
    });
    const mk = gateSsh(`mkdir -p '${REMOTE_DIR}'`);
    if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.err}`);
  });

  afterAll(async () => {
    // backups on the target: deleted through the gate (an allowed command), the directory by root
    const list = gateSsh(`sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`);
    for (const name of ownRemote(list.out).map((s) => s.name)) {
      gateSsh(`sudo -n btrfs subvolume delete --commit-after '${REMOTE_DIR}/${name}'`);
    }
    execInTarget(['rmdir', REMOTE_DIR]);
    for (const f of [scratch, restoreFs]) {
      if (!f) continue;
      const subs = run('btrfs', ['subvolume', 'list', f.mountpoint]).out;
      const paths = parseSubvolumeList(subs)
        .map((s) => f.path(s.path))
        .sort((a, b) => b.length - a.length);
      if (paths.length) run('btrfs', ['subvolume', 'delete', ...paths]);
      await f.destroy();
    }
    fs.rmSync(work, { recursive: true, force: true });
    process.stderr.write(`[roundtrip] timings (s): ${JSON.stringify(timings)}\n`);
  });

  const snapshots = () => fs.readdirSync(scratch.path('snaps')).sort();
  const remoteSubvols = () => ownRemote(gateSsh(`sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`).out);

  test('full backup: btrbk run sends the first snapshot through the gate', () => {
    writeTree(scratch.path('data'), 'one');
    const r = btrbk('run');
    expect(r.err).not.toMatch(/ERROR/);
    expect(r.status).toBe(0);
    expect(snapshots()).toHaveLength(1);
    const remote = remoteSubvols();
    expect(remote.map((s) => s.name)).toEqual(snapshots());
    expect(remote[0].parentUuid).toBe('-');
    expect(remote[0].receivedUuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('incremental backup: the second snapshot goes with -p and arrives with a parent', () => {
    fs.rmSync(scratch.path('data', 'zeros.bin'));
    fs.appendFileSync(scratch.path('data', 'big.bin'), crypto.randomBytes(512 * 1024));
    writeTree(path.join(scratch.path('data'), 'second'), 'two');
    const r = btrbk('run');
    expect(r.err).not.toMatch(/ERROR/);
    expect(r.status).toBe(0);
    expect(snapshots()).toHaveLength(2);
    const remote = remoteSubvols();
    expect(remote.map((s) => s.name).sort()).toEqual(snapshots());
    expect(remote.filter((s) => s.parentUuid !== '-')).toHaveLength(1);
    const commands = sent();
    expect(
      commands.some((c) =>
        /^zstd -d -c \| mbuffer -v 1 -q -m 16m \| sudo -n btrfs receive '\/backup_volume\/backups\/selftest\/gate-roundtrip-\d+\/'$/.test(
          c,
        ),
      ),
    ).toBe(true);
  });

  test('restore with btrbk archive: both backups come back, incrementally, matching the source snapshots', () => {
    const r = btrbk('archive', `ssh://${conn.host}:${PORT}${REMOTE_DIR}`, restoreFs.path('restore'));
    expect({ status: r.status, err: r.err, out: r.out }).toEqual({
      status: 0,
      err: '',
      out: expect.stringMatching(/>>> /),
    });
    const restored = fs.readdirSync(restoreFs.path('restore')).sort();
    expect(restored).toEqual(snapshots());
    const commands = sent();
    expect(
      commands.some((c) => /^sudo -n btrfs send -p '\S+' '\S+' \| mbuffer -v 1 -q -m 16m \| zstd -c$/.test(c)),
    ).toBe(true);
    const sums: string[] = [];
    for (const name of restored) {
      const src = treeDigest(scratch.path('snaps', name));
      const back = treeDigest(restoreFs.path('restore', name));
      expect(back).toEqual(src);
      expect(src.entries).toBeGreaterThan(100);
      sums.push(`${name}: ${src.entries} entries, ${src.bytes} bytes, sha256 ${src.digest.slice(0, 16)}`);
    }
    process.stderr.write(`[roundtrip] restored and verified:\n  ${sums.join('\n  ')}\n`);
  });

  test('restore with plain ssh: btrfs send through the gate piped into a local btrfs receive', () => {
    const newest = snapshots().at(-1) as string;
    const r = gateSsh(`sudo -n btrfs send '${REMOTE_DIR}/${newest}' | zstd -c`);
    expect(r.status).toBe(0);
    const raw = check('zstd', ['-d', '-c', '-q'], { input: r.stdout }).stdout;
    check('btrfs', ['receive', restoreFs.path('manual')], { input: raw });
    expect(treeDigest(restoreFs.path('manual', newest))).toEqual(treeDigest(scratch.path('snaps', newest)));
    expect(treeDigest(scratch.path('data'))).toEqual(treeDigest(scratch.path('snaps', newest)));
  });

  test('every command btrbk sent went through the gate and was accepted; their shapes', () => {
    const commands = sent();
    const shapes = [...new Set(commands.map((c) => c.replace(/'\/backup_volume[^']*'/g, 'PATH')))].sort();
    process.stderr.write(
      `[roundtrip] ${commands.length} commands btrbk sent, ${shapes.length} shapes:\n  ${shapes.join('\n  ')}\n`,
    );
    expect(commands.length).toBeGreaterThan(10);
    for (const c of commands) {
      const dry = run('/bin/bash', ['-p', GATE, '--dry-run', '--logger', '/bin/true'], {
        env: { SSH_ORIGINAL_COMMAND: c },
      });
      expect({ c, status: dry.status, err: dry.err }).toEqual({ c, status: 0, err: '' });
    }
  });

  test('on a real btrfs the gate refuses paths through a subvolume (a received stream controls its insides)', async () => {
    const root = scratch.path('backups');
    fs.mkdirSync(root);
    await createSubvolume(path.join(root, 'sv'));
    fs.mkdirSync(path.join(root, 'sv', 'd'));
    // --allow-delete: the path rule is what is checked here (an append-only gate refuses every delete anyway)
    const gate = (command: string) =>
      run(
        '/bin/bash',
        [
          '-p',
          GATE,
          '--dry-run',
          '--logger',
          '/bin/true',
          '--allow-delete',
          '--root',
          root,
          '--mount',
          scratch.mountpoint,
        ],
        { env: { SSH_ORIGINAL_COMMAND: command } },
      );
    for (const c of [
      `mkdir -p '${root}/sv/d/x'`,
      `sudo -n btrfs receive '${root}/sv/d/'`,
      `sudo -n btrfs subvolume delete '${root}/sv/d'`,
    ]) {
      const r = gate(c);
      expect({ c, status: r.status, err: r.err }).toEqual({
        c,
        status: 255,
        err: `rejected: path goes through a subvolume: ${root}/sv\n`,
      });
    }
    expect(gate(`sudo -n btrfs subvolume delete '${root}/sv'`).status).toBe(0);
    expect(gate(`sudo -n btrfs receive '${root}/'`).status).toBe(0);
  });
});
