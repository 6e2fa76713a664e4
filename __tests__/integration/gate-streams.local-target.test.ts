// Hostile send streams through the real gate (local target, real sshd, real `btrfs receive` as root), the way a
// stolen backup key would send them: `sudo -n btrfs receive --max-errors=0 DIR/` (the gate accepts that option;
// a failing command then does not stop the rest of the stream) with a crafted stream on stdin.
// `btrfs receive` appends every path of a stream to DIR/<subvolume>/ as text and follows the stream's own
// symlinks, so without confinement a stream reaches anything root can (see __tests__/support/send-stream.ts).
//
// Before the attacks: decoys in /etc, /root, /backup_volume/decoy-outside and an earlier real backup
// DIR/home.1 beside the new ones. After each stream: the decoys are unchanged (content, mode, owner, times,
// xattrs), nothing new exists outside DIR, home.1 is the same subvolume with the same files, and whatever
// landed in DIR is a read-only received subvolume directly in DIR, holding no bytes from outside. Exit codes are
// asserted only where the design refuses (one subvolume per receive, existing name).
//
// The attack streams and the state probes are exported so that the same streams can be replayed against a
// plain `btrfs receive` in a throwaway chroot (how they were validated before the gate confined them).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseSubvolumeList } from '../../scripts/lib/core/btrfs-output.js';
import { LOCAL_ENV_FILE, readConnection, type Connection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, STAGING_DIR } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { newUuid, SendStream, simpleSubvolume } from '../support/send-stream.js';
import { keySshArgs, masterConnection } from './btrbk-client-harness.js';

const TIMEOUT = 10 * 60_000;
export const MOUNT = MOUNT_POINT;
export const STAGING = STAGING_DIR;
export const DIR = `${BACKUP_ROOT}/streams-${process.pid}`;
const UP = '../'.repeat(8); // from DIR/<subvolume>: far past / (`..` at / stays at /)
const OUT = '../../../decoy-outside'; // DIR/<subvolume>/../../.. is /backup_volume
const SUDOERS_LINE = 'btrbk ALL=(ALL) NOPASSWD: ALL\n';

const tag = crypto.randomBytes(6).toString('hex');
/** Unique contents: a landed backup holding one of them read it from outside. */
export const MARK = {
  etc: `decoy-etc-${tag}`,
  root: `decoy-root-${tag}`,
  outside: `decoy-outside-${tag}`,
  home1: `earlier-backup-${tag}`,
};

/** The earlier backup: a real received subvolume with a file (with an xattr), a subdirectory and an empty dir. */
export const HOME1 = (() => {
  const uuid = newUuid();
  const stream = new SendStream()
    .subvol('home.1', uuid, 100)
    .mkfile('o257-100-0', 257)
    .rename('o257-100-0', 'data.txt')
    .write('data.txt', 0, `${MARK.home1}\n`)
    .setXattr('data.txt', 'user.keep', 'yes')
    .chmod('data.txt', 0o644)
    .mkdir('o258-100-0', 258)
    .rename('o258-100-0', 'docs')
    .chmod('docs', 0o755)
    .mkfile('o259-100-0', 259)
    .rename('o259-100-0', 'docs/note.txt')
    .write('docs/note.txt', 0, 'note\n')
    .chmod('docs/note.txt', 0o644)
    .mkdir('o260-100-0', 260)
    .rename('o260-100-0', 'empty')
    .chmod('empty', 0o755)
    .chmod('', 0o755)
    .end()
    .toBuffer();
  return { uuid, ctransid: 100, stream };
})();

/** Files and directories the attacks aim at; none may change. */
export const DECOY_FILES = [
  '/etc/btrbk-decoy',
  '/root/decoy',
  `${MOUNT}/decoy-outside/secret`,
  `${MOUNT}/decoy-outside/with-xattr`,
];
export const DECOY_DIRS = ['/etc/btrbk-decoy.d', `${MOUNT}/decoy-outside`, `${MOUNT}/decoy-outside/empty`];
/** Directories whose entries may not change (listed, not timed: other processes may touch their times). */
export const WATCHED_DIRS = ['/', '/etc', '/etc/sudoers.d', '/root', '/home/btrbk', MOUNT, BACKUP_ROOT];

export interface AttackStream {
  name: string; // the subvolume the stream creates (unique), for the report
  stream: Buffer;
  /** the design refuses this receive as a whole: non-zero exit, none of `creates` lands */
  refused?: boolean;
  /** subvolume names the stream creates in DIR; with `refused` (or a truncated stream) none may exist after */
  creates?: string[];
  /** send without --max-errors=0 (as btrbk does) */
  plain?: boolean;
}

/** A stream that starts with its own subvolume; returns the builder and the subvolume's UUID. */
function fresh(name: string) {
  const uuid = newUuid();
  return { s: new SendStream().subvol(name, uuid, 1), uuid };
}

/** Paths an attack tries to create; none may exist on the host afterwards (and cleanup removes them). */
const ATTACKED_DIRS = [
  '',
  '/etc',
  '/etc/sudoers.d',
  '/root',
  '/home/btrbk',
  MOUNT,
  BACKUP_ROOT,
  `${MOUNT}/decoy-outside`,
  `${DIR}/home.1`,
];
export const NAMED: string[] = [
  ...ATTACKED_DIRS.flatMap((d) =>
    ['pwned', 'pwned2', 'pwned-dir', 'pwned-fifo', 'pwned-dev', 'pwned-link', 'pwned-sv', 'x'].map((n) => `${d}/${n}`),
  ),
  '/etc/btrbk-decoy.moved',
  '/etc/btrbk-decoy.linked',
  '/root/decoy.moved',
  '/root/decoy.linked',
  `${MOUNT}/renamed.1`,
  `${BACKUP_ROOT}/renamed.1`,
  `${BACKUP_ROOT}/home.1`,
  `${MOUNT}/decoy-outside/secret.moved`,
  `${MOUNT}/decoy-outside/secret.linked`,
];

// ------------------------------------------------------------------------------------------------- attacks
type Builder = () => AttackStream[];

/** (a) a symlink to an absolute host path, then every command through it. */
const symlinkFile: Builder = () => {
  const targets: Array<[string, string]> = [
    ['etc', '/etc/btrbk-decoy'],
    ['root', '/root/decoy'],
    ['outside', `${MOUNT}/decoy-outside/secret`],
    ['sibling', `${DIR}/home.1/data.txt`],
    ['etc-relative', `${UP}etc/btrbk-decoy`],
  ];
  return targets.map(([label, target]) => {
    const name = `a-${label}`;
    const { s, uuid } = fresh(name);
    s.mkfile('src', 258)
      .write('src', 0, 'pwned-by-clone')
      .symlink('l', 259, target)
      .write('l', 0, 'pwned')
      .truncate('l', 2)
      .chmod('l', 0o4777)
      .chown('l', 1000, 1000)
      .setXattr('l', 'user.pwned', '1')
      .removeXattr('l', 'user.keep')
      .utimes('l', { sec: 1 })
      .clone('l', 0, 0, uuid, 1, 'src', 0)
      .link('hl', 'l')
      .rename('l', 'l2')
      .unlink('l2')
      .unlink('hl');
    return { name, stream: s.end().toBuffer() };
  });
};

/** (b) a symlink to a host directory, then create / change / move / remove entries through it. */
const symlinkDir: Builder = () => {
  // [label, symlink text, an existing entry there to attack (or '')]
  const targets: Array<[string, string, string]> = [
    ['etc', '/etc', 'btrbk-decoy'],
    ['sudoers', '/etc/sudoers.d', ''],
    ['root', '/root', 'decoy'],
    ['outside', `${MOUNT}/decoy-outside`, 'secret'],
    ['backups', BACKUP_ROOT, ''],
    ['dir', DIR, 'home.1'],
    ['sibling', `${DIR}/home.1`, 'data.txt'],
    ['rel-dir', '..', 'home.1'],
    ['rel-outside', OUT, 'secret'],
    ['rel-root', UP.slice(0, -1), 'etc/btrbk-decoy'],
  ];
  const out: AttackStream[] = [];
  for (const [label, target, e] of targets) {
    const a = fresh(`b-${label}-change`)
      .s.symlink('d', 258, target)
      .mkfile('d/pwned', 259)
      .write('d/pwned', 0, 'pwned')
      .mkdir('d/pwned-dir', 260)
      .mkfifo('d/pwned-fifo', 261)
      .mknod('d/pwned-dev', 0o20600, 0x103, 262)
      .symlink('d/pwned-link', 263, '/')
      .mkfile('d/x', 264)
      .write('d/x', 0, SUDOERS_LINE)
      .chmod('d/x', 0o440);
    if (e) {
      a.write(`d/${e}`, 0, 'pwned')
        .truncate(`d/${e}`, 2)
        .chmod(`d/${e}`, 0o4777)
        .chown(`d/${e}`, 1000, 1000)
        .setXattr(`d/${e}`, 'user.pwned', '1')
        .removeXattr(`d/${e}`, 'user.keep')
        .utimes(`d/${e}`, { sec: 1 })
        .link(`d/${e}.linked`, `d/${e}`)
        .rename(`d/${e}`, `d/${e}.moved`);
    }
    out.push({ name: `b-${label}-change`, stream: a.end().toBuffer() });
    const r = fresh(`b-${label}-remove`).s.symlink('d', 258, target);
    if (e) r.unlink(`d/${e}`).rmdir(`d/${e}`);
    r.rmdir('d/empty').rmdir('d/btrbk-decoy.d');
    out.push({ name: `b-${label}-remove`, stream: r.end().toBuffer() });
  }
  return out;
};

/** Path targets for (c) and (d): sudoers drop-in, /etc and /root decoys, outside the backup root, the sibling. */
function targetsFor(style: 'dotdot' | 'absolute') {
  return style === 'dotdot'
    ? {
        sud: `${UP}etc/sudoers.d/x`,
        etc: `${UP}etc/btrbk-decoy`,
        etcDir: `${UP}etc/btrbk-decoy.d`,
        root: `${UP}root/decoy`,
        rootDir: `${UP}root`,
        out: `${OUT}/secret`,
        outDir: OUT,
        outXattr: `${OUT}/with-xattr`,
        sib: '../home.1/data.txt',
        sibDir: '../home.1',
        dir: '..',
      }
    : {
        sud: '/etc/sudoers.d/x',
        etc: '/etc/btrbk-decoy',
        etcDir: '/etc/btrbk-decoy.d',
        root: '/root/decoy',
        rootDir: '/root',
        out: `${MOUNT}/decoy-outside/secret`,
        outDir: `${MOUNT}/decoy-outside`,
        outXattr: `${MOUNT}/decoy-outside/with-xattr`,
        sib: `${DIR}/home.1/data.txt`,
        sibDir: `${DIR}/home.1`,
        dir: DIR,
      };
}

/** (c) `..` / (d) absolute paths in every path-carrying command. */
function pathCommands(style: 'dotdot' | 'absolute'): AttackStream[] {
  const t = targetsFor(style);
  const p = style === 'dotdot' ? 'c' : 'd';
  const out: AttackStream[] = [];
  const add = (label: string, f: (s: SendStream, uuid: string) => void) => {
    const { s, uuid } = fresh(`${p}-${label}`);
    f(s, uuid);
    out.push({ name: `${p}-${label}`, stream: s.end().toBuffer() });
  };
  add('create', (s) =>
    s
      .mkfile(t.sud, 258)
      .write(t.sud, 0, SUDOERS_LINE)
      .chmod(t.sud, 0o440)
      .mkfile(`${t.outDir}/pwned`, 259)
      .mkfile(`${t.dir}/pwned`, 260)
      .mkfile(`${t.sibDir}/pwned`, 261)
      .mkdir(`${t.rootDir}/pwned-dir`, 262)
      .mkdir(`${t.outDir}/pwned-dir`, 263)
      .mkdir(`${t.dir}/pwned-dir`, 264)
      .mkdir(`${t.sibDir}/pwned-dir`, 265)
      .mknod(`${t.rootDir}/pwned-dev`, 0o20600, 0x103, 266)
      .mkfifo(`${t.outDir}/pwned-fifo`, 267)
      .symlink(`${t.sud.replace(/x$/, 'pwned-link')}`, 268, '/')
      .symlink(`${t.dir}/pwned-link`, 269, '/etc'),
  );
  add('rename-from', (s) =>
    s
      .rename(t.etc, `${t.etc}.moved`)
      .rename(t.out, `${t.out}.moved`)
      .rename(t.root, 'stolen-root')
      .rename(t.sib, 'stolen-sibling')
      .rename(t.out, 'stolen-outside'),
  );
  add('rename-to', (s) =>
    s
      .mkfile('f', 258)
      .write('f', 0, 'pwned')
      .rename('f', t.sud)
      .rename('f', t.out)
      .rename('f', `${t.outDir}/pwned`)
      .rename('f', `${t.dir}/pwned`)
      .rename('f', t.sib)
      .rename('f', `${t.sibDir}/pwned`),
  );
  add('link', (s) =>
    s
      .link(t.sud, t.etc)
      .link(`${t.outDir}/pwned`, t.out)
      .link('stolen', t.out)
      .link(`${t.sibDir}/pwned`, t.sib)
      .mkfile('f', 258)
      .link(t.sud, 'f')
      .link(`${t.outDir}/pwned2`, 'f'),
  );
  add('modify', (s) =>
    s
      .write(t.etc, 0, 'pwned')
      .write(t.out, 0, 'pwned')
      .write(t.sib, 0, 'pwned')
      .truncate(t.root, 0)
      .truncate(t.out, 1)
      .truncate(t.sib, 0)
      .chmod(t.etc, 0o4777)
      .chmod(t.outDir, 0o777)
      .chmod(t.dir, 0o777)
      .chmod(t.sib, 0o777)
      .chown(t.etc, 1000, 1000)
      .chown(t.out, 1000, 1000)
      .chown(t.dir, 1000, 1000)
      .chown(t.sibDir, 1000, 1000)
      .utimes(t.etc, { sec: 1 })
      .utimes(t.out, { sec: 1 })
      .utimes(t.dir, { sec: 1 })
      .utimes(t.sib, { sec: 1 })
      .setXattr(t.etc, 'user.pwned', '1')
      .setXattr(t.out, 'user.pwned', '1')
      .setXattr(t.dir, 'user.pwned', '1')
      .setXattr(t.sib, 'user.pwned', '1')
      .removeXattr(t.outXattr, 'user.keep')
      .removeXattr(t.sib, 'user.keep'),
  );
  add('remove', (s) =>
    s.unlink(t.root).unlink(t.out).unlink(t.sib).rmdir(t.etcDir).rmdir(`${t.outDir}/empty`).rmdir(`${t.sibDir}/empty`),
  );
  add('clone-into', (s, uuid) =>
    s
      .mkfile('src', 258)
      .write('src', 0, 'pwned-by-clone'.padEnd(4096, '!')) // one whole block: clonable over any file
      .clone(t.out, 0, 4096, uuid, 1, 'src', 0)
      .clone(t.etc, 0, 4096, uuid, 1, 'src', 0)
      .clone(t.sib, 0, 4096, uuid, 1, 'src', 0),
  );
  add('clone-from-own', (s, uuid) =>
    s
      .mkfile('leak-out', 258)
      .clone('leak-out', 0, 0, uuid, 1, t.out, 0)
      .mkfile('leak-etc', 259)
      .clone('leak-etc', 0, 0, uuid, 1, t.etc, 0),
  );
  return out;
}

/** (c) `..` everywhere, including a subvolume name of `..`, `.` and `../x` (the later commands resolve against it). */
const dotdot: Builder = () => [
  ...['..', '.', `../${DIR.split('/').pop()}/home.1`, `${UP}etc`].map((bad, i) => ({
    name: `c-subvol-${i}`,
    stream: new SendStream()
      .subvol(bad, newUuid(), 1)
      .mkfile('pwned', 258)
      .write('pwned', 0, 'pwned')
      .mkdir('pwned-dir', 259)
      .mkfile('sudoers.d/x', 260)
      .write('sudoers.d/x', 0, SUDOERS_LINE)
      .write('data.txt', 0, 'pwned')
      .end()
      .toBuffer(),
  })),
  ...pathCommands('dotdot'),
];

/**
 * (c) clone source: `..` in the clone path, resolved from the earlier backup (found by its received UUID). The
 * receive opens a clone source relative to the volume's mount, outside any chroot: this reads files of the
 * volume that are outside the backup root. Same-filesystem sources only in the first stream, so that it can
 * succeed as a whole; /etc and /root (another filesystem: EXDEV) in the second.
 */
const cloneFromSibling: Builder = () => {
  const leak = (name: string, sources: string[]) => {
    const { s } = fresh(name);
    sources.forEach((src, i) =>
      s.mkfile(`leak-${i}`, 258 + i).clone(`leak-${i}`, 0, 0, HOME1.uuid, HOME1.ctransid, src, 0),
    );
    return { name, stream: s.end().toBuffer() };
  };
  return [
    leak('c-clone-from-sibling', [`${OUT}/secret`, `${OUT}/with-xattr`]),
    leak('c-clone-from-sibling-host', [`${UP}etc/btrbk-decoy`, `${UP}root/decoy`]),
  ];
};

/** (d) absolute paths, and commands before any subvolume command (their paths are resolved against "/"). */
const absolute: Builder = () => {
  const before = (s: SendStream) =>
    s
      .mkfile('etc/sudoers.d/x', 258)
      .write('etc/sudoers.d/x', 0, SUDOERS_LINE)
      .chmod('etc/sudoers.d/x', 0o440)
      .write('etc/btrbk-decoy', 0, 'pwned')
      .mkfile('root/pwned', 259)
      .mkdir('backup_volume/pwned-dir', 260)
      .mkfile('pwned', 261)
      .mkfile('home/btrbk/pwned', 262)
      .chmod('backup_volume/decoy-outside/secret', 0o777);
  const { s: cloneAbs } = fresh('d-clone-from-sibling');
  cloneAbs
    .mkfile('leak-out', 258)
    .clone('leak-out', 0, 0, HOME1.uuid, HOME1.ctransid, `${MOUNT}/decoy-outside/secret`, 0)
    .mkfile('leak-etc', 259)
    .clone('leak-etc', 0, 0, HOME1.uuid, HOME1.ctransid, '/etc/btrbk-decoy', 0);
  const withSubvol = before(new SendStream());
  withSubvol.subvol('d-before-then-subvol', newUuid(), 1).mkfile('inside', 263);
  return [
    ...pathCommands('absolute'),
    { name: 'd-clone-from-sibling', stream: cloneAbs.end().toBuffer() },
    { name: 'd-no-subvol', stream: before(new SendStream()).end().toBuffer() },
    { name: 'd-before-then-subvol', stream: withSubvol.end().toBuffer() },
  ];
};

/** (e) streams that reach for the earlier backup beside them. */
const sibling: Builder = () => {
  const one = (name: string, f: (s: SendStream) => void): AttackStream => {
    const { s } = fresh(name);
    f(s);
    return { name, stream: s.end().toBuffer() };
  };
  const snap = new SendStream()
    .snapshot('e-snapshot-changes', newUuid(), 1, HOME1.uuid, HOME1.ctransid)
    .write('data.txt', 0, 'pwned')
    .unlink('docs/note.txt')
    .rmdir('empty')
    .chmod('data.txt', 0o777)
    .removeXattr('data.txt', 'user.keep')
    .setXattr('data.txt', 'user.pwned', '1')
    .truncate('data.txt', 3);
  return [
    one('e-rename-sibling', (s) => s.rename('../home.1', '../renamed.1')),
    one('e-move-sibling-in', (s) => s.rename('../home.1', 'moved-in')),
    one('e-into-sibling', (s) =>
      s
        .mkdir('../x', 258)
        .mkfile('../home.1/pwned', 259)
        .unlink('../home.1/data.txt')
        .rmdir('../home.1/empty')
        .rmdir('../home.1')
        .rename('../home.1/data.txt', 'stolen')
        .link('../home.1/data.txt.linked', '../home.1/data.txt')
        .chmod('../home.1', 0o777),
    ),
    one('e-self-over-sibling', (s) => s.mkfile('pwned', 258).rename('', '../home.1')),
    one('e-self-out', (s) => s.mkfile('pwned', 258).rename('', '../renamed.1')),
    { name: 'e-snapshot-changes', stream: snap.end().toBuffer() },
  ];
};

/** (f) two subvolumes in one receive, the second holding the first. Refused: exactly one subvolume. */
const twoSubvolumes: Builder = () => {
  const a = simpleSubvolume('f-a', { 'a.txt': 'a\n' }).stream;
  const b = new SendStream().subvol('f-b', newUuid(), 1).rename('../f-a', 'f-a').end().toBuffer();
  const c = simpleSubvolume('f-c', { 'c.txt': 'c\n' }).stream;
  const d = new SendStream()
    .subvol('f-d', newUuid(), 1)
    .mkfile('x', 258)
    .subvol('f-e', newUuid(), 1)
    .rename('../f-d', 'f-d')
    .end()
    .toBuffer();
  return [
    { name: 'f-nested', stream: Buffer.concat([a, b]), refused: true, creates: ['f-a', 'f-b'] },
    {
      name: 'f-side-by-side',
      stream: Buffer.concat([c, simpleSubvolume('f-c2', { 'c.txt': 'c\n' }).stream]),
      refused: true,
      creates: ['f-c', 'f-c2'],
    },
    { name: 'f-one-stream', stream: d, refused: true, creates: ['f-d', 'f-e'] },
  ];
};

/** (g) the name of the earlier backup. Refused: a receive never replaces an existing name. */
const sameName: Builder = () => [
  {
    name: 'g-subvol',
    stream: simpleSubvolume('home.1', { 'data.txt': 'pwned\n' }).stream,
    refused: true,
    plain: true,
    creates: [],
  },
  {
    name: 'g-snapshot',
    stream: new SendStream()
      .snapshot('home.1', newUuid(), 1, HOME1.uuid, HOME1.ctransid)
      .write('data.txt', 0, 'pwned')
      .end()
      .toBuffer(),
    refused: true,
    creates: [],
  },
];

/** (h) truncated streams: in a write's data, at a command boundary (no end), inside a command header. */
const truncated: Builder = () => {
  const { stream } = simpleSubvolume('h-cut', { 'big.txt': 'x'.repeat(4000) });
  const endAt = stream.length - 10; // the end command is the last 10 bytes
  // in the 4000 bytes of data; before the end command; 5 bytes into the header of the last command before it
  // (chmod of the subvolume root: 26 bytes)
  const cuts: Array<[string, number]> = [
    ['h-in-data', Math.floor(stream.length / 2)],
    ['h-no-end', endAt],
    ['h-in-header', endAt - 26 + 5],
  ];
  return cuts.map(([name, at]) => ({
    name,
    stream: Buffer.from(stream.subarray(0, at)),
    plain: true,
    creates: ['h-cut'],
  }));
};

export const ATTACKS: Record<string, Builder> = {
  a: symlinkFile,
  b: symlinkDir,
  c: dotdot,
  'c-clone': cloneFromSibling,
  d: absolute,
  e: sibling,
  f: twoSubvolumes,
  g: sameName,
  h: truncated,
};

// ------------------------------------------------------------------------------------------------- probes
export type Exec = (argv: string[], input?: string) => { status: number | null; stdout: string; stderr: string };

/** The host side: plants the decoys and says what changed. `exec` runs argv as root on the backup host. */
export class HostProbe {
  baseline = { host: '', home1: '', subvols: new Set<string>() };

  constructor(private readonly exec: Exec) {}

  run(argv: string[], input?: string): string {
    const r = this.exec(argv, input);
    if (r.status !== 0) throw new Error(`on the host: ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  sh(script: string, ...args: string[]): string {
    return this.run(['/bin/sh', '-c', script, 'sh', ...args]);
  }

  /** Decoys and the earlier backup DIR/home.1 (received as root, not through the gate). DIR must exist. */
  plant(): void {
    const script = `set -e
      printf '%s\\n' "$1" > /etc/btrbk-decoy; chmod 644 /etc/btrbk-decoy; mkdir -p /etc/btrbk-decoy.d
      printf '%s\\n' "$2" > /root/decoy; chmod 600 /root/decoy
      mkdir -p ${MOUNT}/decoy-outside/empty; printf '%s\\n' "$3" > ${MOUNT}/decoy-outside/secret; chmod 644 ${MOUNT}/decoy-outside/secret
      base64 -d | btrfs receive "$4/" 2>&1
      cp -a "$4/home.1/data.txt" ${MOUNT}/decoy-outside/with-xattr`;
    this.run(['/bin/sh', '-c', script, 'sh', MARK.etc, MARK.root, MARK.outside, DIR], HOME1.stream.toString('base64'));
  }

  /** Fingerprints of the decoys, entries of the watched directories, the named paths that exist. */
  hostState(): string {
    return this.sh(
      `nf=$1; shift; i=0
      for f in "$@"; do
        i=$((i + 1))
        if [ "$i" -le "$nf" ]; then
          if [ -e "$f" ]; then
            stat -c '%n %F %a %u:%g %s %i %h %Y %Z' -- "$f"; [ -f "$f" ] && sha256sum -- "$f"
            tar --xattrs --xattrs-include='*' --no-recursion -cf - -- "$f" 2>/dev/null | tr -c '[:print:]' '\\n' | grep -a 'SCHILY.xattr' | sed "s|^|xattr $f |"
          else echo "MISSING $f"; fi
        elif [ "$i" -le $((nf + ${WATCHED_DIRS.length})) ]; then
          echo "== $f"; ls -A -- "$f"
        else
          { [ -e "$f" ] || [ -L "$f" ]; } && echo "EXISTS $f"
        fi
      done
      [ -d ${STAGING} ] && find ${STAGING} -mindepth 1 -maxdepth 1 ! -type f -printf 'LEFT IN STAGING %p\\n'
      stat -c 'DIR %a %u:%g' ${DIR}; true`,
      String(DECOY_FILES.length + DECOY_DIRS.length),
      ...DECOY_FILES,
      ...DECOY_DIRS,
      ...WATCHED_DIRS,
      ...NAMED,
    );
  }

  /** The earlier backup: subvolume identity and flags, every entry (type, mode, owner, size, inode, times), content, xattrs. */
  home1State(): string {
    return this.sh(
      `cd "$1/home.1" 2>/dev/null || { echo "MISSING $1/home.1"; exit 0; }
      btrfs subvolume show . | grep -E '^[[:space:]]*(UUID|Parent UUID|Received UUID|Flags|Subvolume ID):'
      find . -printf '%p %y %m %U:%G %s %i %n %T@ %C@\\n' | sort
      find . -type f -exec sha256sum {} + | sort
      tar --xattrs --xattrs-include='*' -cf - . 2>/dev/null | tr -c '[:print:]' '\\n' | grep -a 'SCHILY.xattr' | sort`,
      DIR,
    );
  }

  /** All subvolumes of the volume: path (relative to the mount), read-only, received UUID. */
  subvolumes(): Array<{ path: string; ro: boolean; received: string }> {
    const parse = (out: string) => parseSubvolumeList(out).map((s) => ({ received: s.receivedUuid!, path: s.path }));
    const all = parse(this.run(['btrfs', 'subvolume', 'list', '-a', '-R', '-u', MOUNT]));
    const ro = new Set(
      parse(this.run(['btrfs', 'subvolume', 'list', '-a', '-r', '-R', '-u', MOUNT])).map((s) => s.path),
    );
    return all.map((s) => ({ ...s, ro: ro.has(s.path) }));
  }

  takeBaseline(): void {
    this.baseline = {
      host: this.hostState(),
      home1: this.home1State(),
      subvols: new Set(this.subvolumes().map((s) => s.path)),
    };
  }

  /** Everything wrong on the host now, compared with the baseline; `refused` names must not exist in DIR. */
  violations(refused: string[] = []): string[] {
    const v: string[] = [];
    const host = this.hostState();
    if (host !== this.baseline.host) v.push(`host changed:\n${diff(this.baseline.host, host)}`);
    const home1 = this.home1State();
    if (home1 !== this.baseline.home1) v.push(`earlier backup home.1 changed:\n${diff(this.baseline.home1, home1)}`);
    const rel = DIR.slice(MOUNT.length + 1);
    const landed: string[] = [];
    for (const s of this.subvolumes()) {
      if (this.baseline.subvols.has(s.path)) continue;
      const name = s.path.slice(rel.length + 1);
      if (!s.path.startsWith(`${rel}/`) || name.includes('/'))
        v.push(`new subvolume outside the receive directory: ${s.path}`);
      else if (!s.ro || s.received === '-')
        v.push(`half-received subvolume in the receive directory: ${s.path} (ro=${s.ro}, received_uuid=${s.received})`);
      else landed.push(name);
    }
    const known = new Set(
      [...this.baseline.subvols].filter((p) => p.startsWith(`${rel}/`)).map((p) => p.slice(rel.length + 1)),
    );
    const entries = this.run(['ls', '-A', DIR]).split('\n').filter(Boolean);
    for (const e of entries)
      if (!known.has(e) && !landed.includes(e)) v.push(`not a received subvolume in the receive directory: ${e}`);
    for (const n of refused) if (entries.includes(n)) v.push(`refused stream landed: ${n}`);
    // a landed backup may hold nothing read from outside it (clone sources resolved outside the receive)
    for (const n of landed.filter((l) => !this.baseline.subvols.has(`${rel}/${l}`))) {
      const hit = this.exec([
        'grep',
        '-rlaF',
        '-D',
        'skip',
        '-e',
        MARK.etc,
        '-e',
        MARK.root,
        '-e',
        MARK.outside,
        `${DIR}/${n}`,
      ]);
      if (hit.stdout.trim()) v.push(`landed backup ${n} holds bytes of a decoy outside it: ${hit.stdout.trim()}`);
    }
    for (const n of landed) this.baseline.subvols.add(`${rel}/${n}`); // accepted once, not reported again
    return v;
  }

  /** Removes the decoys, DIR and every subvolume or named path the run created (only after recordInitial). */
  cleanup(): void {
    if (!this.recorded) return;
    const rel = DIR.slice(MOUNT.length + 1);
    const created = this.subvolumes()
      .map((s) => s.path)
      .filter((p) => !this.initialSubvols.has(p) || p.startsWith(`${rel}/`));
    created.sort((x, y) => y.split('/').length - x.split('/').length);
    for (const p of created) this.exec(['btrfs', 'property', 'set', '-f', '-ts', `${MOUNT}/${p}`, 'ro', 'false']);
    for (const p of created) this.exec(['btrfs', 'subvolume', 'delete', `${MOUNT}/${p}`]);
    const stray = [...NAMED, ...DECOY_FILES, ...DECOY_DIRS].filter((n) => !this.initialNamed.has(n));
    this.exec(['rm', '-rf', '--', DIR, ...stray]);
  }

  initialSubvols = new Set<string>();
  initialNamed = new Set<string>();
  recorded = false;

  /** Before anything is planted: what exists already (cleanup leaves it alone; attacks must not create it). */
  recordInitial(): string[] {
    this.initialSubvols = new Set(this.subvolumes().map((s) => s.path));
    const out = this.sh(
      'for p in "$@"; do { [ -e "$p" ] || [ -L "$p" ]; } && echo "$p"; done; true',
      ...NAMED,
      ...DECOY_FILES,
      ...DECOY_DIRS,
    );
    const there = out.split('\n').filter(Boolean);
    this.initialNamed = new Set(there);
    this.recorded = true;
    return there;
  }
}

function diff(a: string, b: string): string {
  const A = new Set(a.split('\n'));
  const B = new Set(b.split('\n'));
  return [
    ...a
      .split('\n')
      .filter((l) => !B.has(l))
      .map((l) => `- ${l}`),
    ...b
      .split('\n')
      .filter((l) => !A.has(l))
      .map((l) => `+ ${l}`),
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------- tests
let conn: Connection;
// Every stream rides one master connection, each still its own session and forced command (as btrbk's own
// ControlMaster does): no key exchange and sshd per stream. Where the master is gone, ssh connects afresh.
let master: ReturnType<typeof masterConnection> | undefined;

function ssh(command: string, input?: Buffer, timeout = 120_000) {
  const args = [...keySshArgs(conn), ...(master?.reuse ?? []), '--', command];
  const t0 = Date.now();
  const r = spawnSync('ssh', args, { input: input ?? Buffer.alloc(0), encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    error: r.error,
    seconds: (Date.now() - t0) / 1000,
  };
}

const receive = (a: Pick<AttackStream, 'stream' | 'plain'>, timeout?: number) =>
  ssh(`sudo -n btrfs receive ${a.plain ? '' : '--max-errors=0 '}'${DIR}/'`, a.stream, timeout);

const probe = new HostProbe((argv, input) => execInTarget(argv, input === undefined ? {} : { input }));

/** Fresh decoys and earlier backup after a stream changed them, so that each stream is judged on its own. */
function replant() {
  probe.cleanup();
  const mk = ssh(`mkdir -p '${DIR}'`);
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
  probe.plant();
  probe.takeBaseline();
}

/** Sends every stream of one class; returns what went wrong on the host after each. */
function sendAll(streams: AttackStream[]): string[] {
  const problems: string[] = [];
  for (const a of streams) {
    const r = receive(a);
    const v = probe.violations(a.creates ?? (a.refused ? [a.name] : []));
    if (a.refused && r.status === 0) v.push('receive succeeded, the design refuses it');
    if (r.error) v.push(`ssh did not finish: ${r.error.message}`);
    for (const line of v) problems.push(`[${a.name}] exit ${r.status}: ${line}`);
    if (v.length) replant();
  }
  return problems;
}

function legitReceive(name: string) {
  const content = `legit ${name} ${tag}\n`;
  const { stream, uuid } = simpleSubvolume(name, { 'f.txt': content });
  const r = receive({ stream, plain: true });
  return { r, uuid, content };
}

describe('hostile send streams through the gate (local target, real sshd, root btrfs receive)', () => {
  beforeAll(() => {
    conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
    const already = probe.recordInitial();
    if (already.length) throw new Error(`paths the attacks aim at exist before the test: ${already.join(' ')}`);
    master = masterConnection(conn, path.join(os.tmpdir(), `gate-streams-mux-${process.pid}`));
    const mk = ssh(`mkdir -p '${DIR}'`);
    if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
    probe.plant();
    const first = legitReceive('legit-before'); // also creates the staging area if the receive uses one
    if (first.r.status !== 0)
      throw new Error(`a legit stream through the gate failed before the attacks: ${first.r.stderr}`);
    probe.takeBaseline();
  }, TIMEOUT);

  afterAll(() => {
    master?.close();
    if (conn) probe.cleanup();
  }, TIMEOUT);

  test('setup: decoys and the earlier backup home.1 are in place (read-only, received, xattr), a legit stream landed', () => {
    const b = probe.baseline;
    expect(b.host).toMatch(/^\/etc\/btrbk-decoy regular file 644 0:0 /m);
    expect(b.host).toMatch(/^xattr \/backup_volume\/decoy-outside\/with-xattr .*SCHILY\.xattr\.user\.keep=yes/m);
    expect(b.host).not.toMatch(/^(EXISTS|MISSING|LEFT IN STAGING) /m);
    expect(b.home1).toMatch(new RegExp(`Received UUID:\\s+${HOME1.uuid}`));
    expect(b.home1).toMatch(/Flags:\s+readonly/);
    expect(b.home1).toMatch(/SCHILY\.xattr\.user\.keep=yes/);
    expect(b.subvols.has(`${DIR.slice(MOUNT.length + 1)}/legit-before`)).toBe(true);
  });

  test.each([
    [
      'a',
      '(a) a symlink to /etc, /root, outside the backup root and into home.1, then write/truncate/chmod/chown/xattr/clone/link/rename/unlink through it',
    ],
    [
      'b',
      '(b) a symlinked directory (/etc, /etc/sudoers.d, /root, the backup root, home.1, relative ones): create, change, move, remove inside it',
    ],
    [
      'c',
      '(c) `..` in the subvolume name and in every path-carrying command (sudoers.d, /etc, /root, outside the root, ../home.1)',
    ],
    [
      'c-clone',
      "(c) clone with `..` in the source path, resolved from the earlier backup's UUID: no byte from outside lands in the new backup",
    ],
    ['d', '(d) absolute paths in every command, and commands before any subvolume (resolved against /)'],
    [
      'f',
      '(f) two subvolumes in one receive (side by side, the second holding the first) are refused and leave nothing',
    ],
    ['g', '(g) a subvolume named like the earlier backup home.1 is refused and home.1 stays the same subvolume'],
    ['h', '(h) truncated streams (in data, before the end command, in a header) leave no half-received subvolume'],
  ])(
    '%s: %s',
    (key) => {
      expect(sendAll(ATTACKS[key]!())).toEqual([]);
    },
    TIMEOUT,
  );

  test(
    '(e) rename, move in, write into, rmdir the earlier backup beside the receive dir; an incremental snapshot of it changes only its copy',
    () => {
      expect(sendAll(ATTACKS.e!())).toEqual([]);
      // the incremental one is btrbk's own shape: it lands, as a copy that holds the changes
      expect(probe.run(['cat', `${DIR}/e-snapshot-changes/data.txt`])).toBe('pwn');
    },
    TIMEOUT,
  );

  test(
    '(h) a truncated stream with --max-errors=0 does not spin: the receive ends by itself and no receive process is left',
    () => {
      const { stream } = simpleSubvolume('h-spin', { 'big.txt': 'x'.repeat(4000) });
      const r = receive({ stream: stream.subarray(0, 100) }, 60_000);
      const left = execInTarget(['pgrep', '-a', '-f', 'btrfs receive|btrbk-receive']);
      // a receive left spinning would hold the receive lock for the later tests (they run serially, so any receive
      // on the target now is this one): end exactly those processes
      for (const pid of left.stdout
        .split('\n')
        .map((l) => l.split(' ')[0])
        .filter(Boolean))
        execInTarget(['kill', '-9', pid]);
      expect({
        finished: !r.error,
        exit: r.status === 0 ? 'zero' : 'non-zero',
        within30s: r.seconds < 30,
        stderrUnder64KiB: r.stderr.length < 64 << 10,
      }).toEqual({ finished: true, exit: 'non-zero', within30s: true, stderrUnder64KiB: true });
      expect(left.stdout).toBe('');
      expect(probe.violations(['h-spin'])).toEqual([]);
    },
    TIMEOUT,
  );

  test(
    'the key still works afterwards: subvolume list through the gate, and a legit stream lands read-only with its received UUID',
    () => {
      const list = ssh(`sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT}'`);
      expect(list.status).toBe(0);
      expect(list.stdout).toContain(`received_uuid ${HOME1.uuid}`);
      const { r, uuid, content } = legitReceive('legit-after');
      expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 0 });
      const show = probe.run(['btrfs', 'subvolume', 'show', `${DIR}/legit-after`]);
      expect(show).toMatch(new RegExp(`Received UUID:\\s+${uuid}`));
      expect(show).toMatch(/Flags:\s+readonly/);
      expect(probe.run(['cat', `${DIR}/legit-after/f.txt`])).toBe(content);
      expect(probe.violations()).toEqual([]);
    },
    TIMEOUT,
  );
});
