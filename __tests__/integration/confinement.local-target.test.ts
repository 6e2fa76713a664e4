// A stolen backup key reaches nothing but backups (issue 17), over real SSH to the local target (real sshd, real
// btrfs receive as root, real btrbk 0.32.5):
//  - the gate tells the key no UUID, generation or path of the top level or of the host's state;
//  - a stream whose snapshot or clone source is, by UUID, the top level, a subvolume outside the backup root or a
//    receive still in staging is refused and leaves nothing (the same streams aimed at a backup land: the control);
//  - whatever `btrfs send` through the gate returns arrived through a receive; the host key is in none of it;
//  - a receive that stops sending ends within RECEIVE_STALL_SECONDS, and the host's prune runs after it;
//  - a volume laid out by the previous boot script (a plain backups/ directory) boots into the new layout with
//    every backup, its received UUID and the host key intact, and btrbk carries on incrementally;
//  - what a key holder's garbage does to the host's retention: the guarantee README states, with a moving clock.
// Before this change the first attack worked: the top level's UUID from `subvolume show`, one `snapshot` command,
// and `btrfs send` of the "backup" returned /backup_volume/.host-identity/ssh_host_ed25519_key.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import {
  BACKUP_ROOT,
  HOST_IDENTITY_DIR,
  MOUNT_POINT,
  PRUNE_CONF,
  PRUNE_PATH,
  STAGING_DIR,
} from '../../user-data/host-layout.js';
import { execInTarget, rerunBootScript } from '../../scripts/lib/local-target/local-target.js';
import { createScratchBtrfs, createSubvolume, type ScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';
import { newUuid, SendStream, simpleSubvolume } from '../support/send-stream.js';
import { btrbkClient, keySshArgs, masterConnection, runEach, waitUntil } from './btrbk-client-harness.js';

jest.setTimeout(10 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const tag = crypto.randomBytes(4).toString('hex');
const DIR = `${BACKUP_ROOT}/confine-${tag}`;
// whole blocks, so that a clone of it is a real extent clone (small files sit inline in the metadata)
const SECRET = `secret-outside-${tag}\n`.repeat(512);
const HOST_KEY = `${HOST_IDENTITY_DIR}/ssh_host_ed25519_key`;

// The key's commands ride one master connection (each still its own session and forced command): a fresh key exchange
// per command cost a loaded machine seconds, and those seconds are what 'returns at once' measures. Where the master is
// gone, ssh connects afresh.
let master: ReturnType<typeof masterConnection> | undefined;
function ssh(command: string, input?: Buffer, timeout = 120_000) {
  const r = spawnSync('ssh', [...keySshArgs(conn), ...(master?.reuse ?? []), '--', command], {
    input: input ?? Buffer.alloc(0),
    timeout,
    maxBuffer: 256 << 20,
  });
  return {
    status: r.status,
    stdout: r.stdout ?? Buffer.alloc(0),
    stderr: (r.stderr ?? Buffer.alloc(0)).toString('utf8'),
  };
}
/** argv as root on the backup host; stdout, or a thrown error. */
function root(argv: string[], input?: string): string {
  const r = execInTarget(argv, input === undefined ? {} : { input });
  if (r.status !== 0) throw new Error(`on the host: ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const rootSh = (script: string, ...args: string[]) => root(['/bin/bash', '-c', script, 'bash', ...args]);
const field = (show: string, name: string) => new RegExp(`^\\s*${name}:\\s*(\\S+)`, 'm').exec(show)?.[1] ?? '';
const subvolumesIn = (dir: string) =>
  rootSh('find "$1" -mindepth 1 -maxdepth 1 -type d -inum 256 -printf "%f\\n" | sort', dir).split('\n').filter(Boolean);
const stagingEntries = () => rootSh('ls -A "$1"', STAGING_DIR).split('\n').filter(Boolean);

const pick = (r: { status: number | null; stderr: string }) => ({ status: r.status, stderr: r.stderr });
const topUuid = () => field(root(['btrfs', 'subvolume', 'show', MOUNT_POINT]), 'UUID');

/** A snapshot of the source, and a clone of its file `file` into a new subvolume: the two ways a stream names a source. */
function sourceStreams(label: string, sourceUuid: string, ctransid: number, file: string) {
  const snapshot = new SendStream().snapshot(`snap-${label}`, newUuid(), 1, sourceUuid, ctransid).end().toBuffer();
  const clone = new SendStream()
    .subvol(`clone-${label}`, newUuid(), 1)
    .mkfile('leak', 258)
    .clone('leak', 0, SECRET.length, sourceUuid, ctransid, file, 0)
    .end()
    .toBuffer();
  return { snapshot: { name: `snap-${label}`, stream: snapshot }, clone: { name: `clone-${label}`, stream: clone } };
}

beforeAll(() => {
  master = masterConnection(conn, path.join(os.tmpdir(), `confine-mux-${tag}`));
  const mk = ssh(`mkdir -p '${DIR}'`);
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
});

afterAll(async () => {
  await runEach([
    () => master?.close(),
    () =>
      rootSh(
        `for s in $(find "$1" -depth -mindepth 1 -type d -inum 256); do btrfs property set -f -ts "$s" ro false; btrfs subvolume delete -c "$s"; done >/dev/null; rm -rf "$1"`,
        DIR,
      ),
  ]);
});

describe('the gate tells the key nothing outside the backup root', () => {
  test('no UUID, generation or path of the top level or the host state in show, list or the diagnostics', () => {
    // host state that must stay invisible: a subvolume outside the backup root, a receive in staging
    rootSh(
      'btrfs subvolume create "$1" >/dev/null; mkdir -p "$2"; btrfs subvolume create "$2/inflight" >/dev/null',
      `${MOUNT_POINT}/.outside-${tag}`,
      `${STAGING_DIR}/rcv.test${tag}`,
    );
    try {
      const secrets = [
        topUuid(),
        field(root(['btrfs', 'subvolume', 'show', `${MOUNT_POINT}/.outside-${tag}`]), 'UUID'),
        field(root(['btrfs', 'subvolume', 'show', `${STAGING_DIR}/rcv.test${tag}/inflight`]), 'UUID'),
        `.outside-${tag}`,
        `rcv.test${tag}`,
        '.host-identity',
      ];
      expect(secrets[0]).toMatch(/^[0-9a-f-]{36}$/);
      const commands = [
        `sudo -n btrfs subvolume show '${MOUNT_POINT}'`,
        `sudo -n btrfs subvolume show --rootid=5 '${MOUNT_POINT}'`,
        `sudo -n btrfs subvolume show '${BACKUP_ROOT}'`,
        `sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`,
        `sudo -n btrfs subvolume list -a -r '${MOUNT_POINT}'`,
        `sudo -n btrfs subvolume list -o '${BACKUP_ROOT}'`,
        `sudo -n btrfs subvolume list -d '${MOUNT_POINT}'`,
        'btrbk-diag usage',
        'btrbk-diag mount',
        'btrbk-diag retention',
        'btrbk-diag version',
        ...Array.from({ length: 12 }, (_, i) => `sudo -n btrfs subvolume show --rootid=${256 + i} '${MOUNT_POINT}'`),
      ];
      for (const command of commands) {
        const r = ssh(command);
        const said = `${r.stdout.toString('utf8')}${r.stderr}`;
        for (const s of secrets)
          expect({ command, leaks: said.includes(s) ? s : null }).toEqual({ command, leaks: null });
      }
      const top = ssh(`sudo -n btrfs subvolume show --rootid=5 '${MOUNT_POINT}'`).stdout.toString('utf8');
      expect(top).toMatch(/^\/\n\tName: \t\t\t<FS_TREE>\n\tUUID: \t\t\t-\n/);
    } finally {
      rootSh(
        'btrfs subvolume delete "$1" "$2/inflight" >/dev/null; rmdir "$2"',
        `${MOUNT_POINT}/.outside-${tag}`,
        `${STAGING_DIR}/rcv.test${tag}`,
      );
    }
  });
});

describe('a stream takes snapshot and clone sources only from the backup root', () => {
  test('the top level, a subvolume outside the backup root and a receive in staging, named by UUID, are refused and leave nothing; a backup is not (control)', () => {
    // sources as real as they come: received subvolumes (a clone names its source by received UUID, and btrfs
    // receive 6.2 looks clone sources up by received UUID only), one outside the backup root, one still in staging
    const outside = `${MOUNT_POINT}/.outside-${tag}`;
    const inflight = `${STAGING_DIR}/rcv.test${tag}`;
    const out = simpleSubvolume('out', { secret: SECRET });
    const stg = simpleSubvolume('inflight', { secret: SECRET });
    rootSh('mkdir -p "$1" "$2"; printf %s "$3" > "$4/.secret-$5"', outside, inflight, SECRET, MOUNT_POINT, tag);
    root(['/bin/bash', '-c', 'base64 -d | btrfs receive "$1/"', 'bash', outside], out.stream.toString('base64'));
    root(['/bin/bash', '-c', 'base64 -d | btrfs receive "$1/"', 'bash', inflight], stg.stream.toString('base64'));
    // a real backup in the root, received through the gate: the control
    const home = simpleSubvolume('home.1', { secret: SECRET });
    expect(ssh(`sudo -n btrfs receive '${DIR}/'`, home.stream).status).toBe(0);
    // what is in /run and staging before these streams (a receive killed with -9 by an earlier file on this target
    // leaves its own until the host's next prune): the streams must add nothing to it
    const errFiles = () => rootSh('ls -A /run/btrbk-backup-host | grep receive-err || true').trim();
    const errsBefore = errFiles();
    const stagingBefore = stagingEntries();
    try {
      expect(root(['cat', `${outside}/out/secret`])).toBe(SECRET);
      // a source out of reach is said as one that does not exist: the words btrfs receive uses for a UUID it cannot
      // find, one ERROR line
      const NOT_FOUND = /ERROR: (cannot find parent subvolume|clone: did not find source subvol)\n/;
      const targets: Array<[string, string, number, string, RegExp]> = [
        // the top level has no received UUID: a snapshot finds it by its own UUID (a clone, on btrfs-progs 6.2, not at all)
        ['top', topUuid(), 1, `.secret-${tag}`, NOT_FOUND],
        ['outside', out.uuid, 10, 'secret', NOT_FOUND],
        ['staging', stg.uuid, 10, 'secret', NOT_FOUND],
        // no such subvolume anywhere: what a refusal must look like
        ['nowhere', newUuid(), 10, 'secret', NOT_FOUND],
      ];
      const landed: string[] = [];
      const said: Record<string, string> = {};
      for (const [label, uuid, ctransid, file, why] of targets) {
        expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
        const { snapshot, clone } = sourceStreams(label, uuid, ctransid, file);
        for (const a of [snapshot, clone]) {
          const r = ssh(`sudo -n btrfs receive '${DIR}/'`, a.stream);
          if (r.status === 0) landed.push(a.name);
          said[a.name] = r.stderr.replaceAll(label, 'LABEL');
          // and the refusal names nothing of the host's: not the source's path, not the staging directory
          expect({
            stream: a.name,
            leaks: [`.outside-${tag}`, `rcv.test${tag}`, '.btrbk-staging', uuid].filter((x) => r.stderr.includes(x)),
          }).toEqual({ stream: a.name, leaks: [] });
          expect({ stream: a.name, said: why.test(r.stderr) ? 'refused: not in the backup root' : r.stderr }).toEqual({
            stream: a.name,
            said: 'refused: not in the backup root',
          });
        }
      }
      expect(landed).toEqual([]);
      // a subvolume out of reach cannot be told from one that does not exist: the same words, the same lines
      for (const kind of ['snap', 'clone'])
        for (const label of ['outside', 'staging'])
          expect({ stream: `${kind}-${label}`, said: said[`${kind}-${label}`] }).toEqual({
            stream: `${kind}-${label}`,
            said: said[`${kind}-nowhere`],
          });
      // btrfs receive skips an out-of-root clone with an error and goes on: 20,000 of them make 20,000 error lines,
      // which btrbk-receive keeps bounded (64 KiB and 100 ERROR lines) and leaves nothing of in /run
      const many = new SendStream().subvol('clone-many', newUuid(), 1).mkfile('leak', 258);
      for (let i = 0; i < 20_000; i += 1) many.clone('leak', 0, 4096, out.uuid, 10, 'secret', 0);
      const flood = ssh(`sudo -n btrfs receive '${DIR}/'`, many.end().toBuffer());
      expect({
        status: flood.status === 0 ? 'zero' : 'non-zero',
        stderrUnder80KiB: flood.stderr.length < 80 << 10,
      }).toEqual({ status: 'non-zero', stderrUnder80KiB: true });
      // one ERROR line, as for a single clone of a source that does not exist (a missing one ends the receive)
      expect(flood.stderr.match(/^ERROR: .*$/gm)).toEqual(['ERROR: clone: did not find source subvol']);
      expect(errFiles()).toBe(errsBefore);
      expect(subvolumesIn(DIR)).toEqual(['home.1']);
      expect(stagingEntries()).toEqual(stagingBefore);
      // the control: the same two streams aimed at the backup in the root land, with its data
      const ctl = sourceStreams('backup', home.uuid, 10, 'secret');
      for (const a of [ctl.snapshot, ctl.clone])
        expect({ stream: a.name, ...pick(ssh(`sudo -n btrfs receive '${DIR}/'`, a.stream)) }).toMatchObject({
          stream: a.name,
          status: 0,
        });
      expect(root(['cat', `${DIR}/snap-backup/secret`, `${DIR}/clone-backup/leak`])).toBe(`${SECRET}${SECRET}`);
    } finally {
      rootSh(
        'btrfs property set -f -ts "$1/out" ro false; btrfs property set -f -ts "$2/inflight" ro false; btrfs subvolume delete "$1/out" "$2/inflight" >/dev/null; rmdir "$1" "$2"; rm -f "$3/.secret-$4"',
        outside,
        inflight,
        MOUNT_POINT,
        tag,
      );
    }
  });

  test('btrfs send through the gate returns only what arrived through a receive, and never the host key', () => {
    const key = root(['cat', HOST_KEY]);
    const keyBody = key
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('');
    expect(keyBody.length).toBeGreaterThan(100);
    const listed = ssh(`sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`)
      .stdout.toString('utf8')
      .split('\n')
      .filter(Boolean);
    const rel = BACKUP_ROOT.slice(MOUNT_POINT.length + 1);
    const backups = listed
      .map((l) => /received_uuid (\S+) .* path (?:<FS_TREE>\/)?(\S+)$/.exec(l)!)
      .filter((m) => m[2] !== rel);
    expect(backups.length).toBeGreaterThan(0);
    for (const [, receivedUuid, p] of backups) {
      expect({ p, arrivedThroughAReceive: receivedUuid !== '-' }).toEqual({ p, arrivedThroughAReceive: true });
      const sent = ssh(`sudo -n btrfs send '${MOUNT_POINT}/${p}'`);
      expect({ p, status: sent.status }).toEqual({ p, status: 0 });
      const bytes = sent.stdout.toString('latin1');
      expect({ p, hostKey: bytes.includes(keyBody.slice(0, 64)) || bytes.includes('OPENSSH PRIVATE KEY') }).toEqual({
        p,
        hostKey: false,
      });
    }
    // the backup root itself is not a backup: no send of it
    expect(ssh(`sudo -n btrfs send '${BACKUP_ROOT}'`).status).toBe(255);
  });
});

/** A receive through the key kept open (its stream is fed by the caller), with prune.conf given `settings` for it;
 * restore() puts prune.conf back and ends the session. */
function openReceive(name: string, settings: string) {
  const conf = root(['cat', PRUNE_CONF]);
  rootSh('printf "%s" "$2" >> "$1"', PRUNE_CONF, settings);
  const { stream } = simpleSubvolume(name, { 'f.txt': 'x'.repeat(32 << 10) });
  const child = spawn('ssh', [...keySshArgs(conn), '--', `sudo -n btrfs receive '${DIR}/'`], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const session = { child, stream, stderr: '', closed: false };
  child.stderr.on('data', (d) => (session.stderr += d));
  child.on('close', () => (session.closed = true));
  child.stdin.on('error', () => {}); // (the host may end the session under it)
  const restore = () => {
    child.kill('SIGKILL');
    root(['/bin/bash', '-c', 'cat > "$1"', 'bash', PRUNE_CONF], conf);
  };
  return { session, restore };
}

/** The host's own prune confined to SERIES (its own root and state dir), with the default policy: run(now) runs it
 * with that clock. */
function seriesPrune(series: string) {
  const state = rootSh('mktemp -d').trim();
  const conf = `${state}/prune.conf`;
  rootSh(
    `printf '%s\\n' APPEND_ONLY=true "RETENTION='48h 14d 8w 12m'" RETENTION_MIN=1d "BACKUP_ROOT=$2" MOUNT=${MOUNT_POINT} STAGING=${STAGING_DIR}/none "STATE_DIR=$3" > "$1"`,
    conf,
    series,
    state,
  );
  return { state, run: (now: number) => execInTarget([PRUNE_PATH, '--config', conf, '--now', String(now)]) };
}

describe('a receive that stalls ends', () => {
  test('a receive that does not stall returns at once: the watchdog keeps none of the session open', () => {
    // (its sleep held the session's stderr: sshd then waited up to 5 s after every receive)
    const seconds: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const t0 = Date.now();
      expect(
        ssh(`sudo -n btrfs receive '${DIR}/'`, simpleSubvolume(`quick-${i}`, { 'f.txt': 'q' }).stream).status,
      ).toBe(0);
      seconds.push((Date.now() - t0) / 1000);
    }
    expect({ seconds, slowest: Math.max(...seconds) < 4 }).toMatchObject({ slowest: true });
  });

  test('no data for RECEIVE_STALL_SECONDS: the receive is ended, staging is clean, and the next prune runs', async () => {
    const stagingBefore = stagingEntries(); // (what a receive killed with -9 by an earlier file left: the prune's)
    const { session, restore } = openReceive(`stall-${tag}`, 'RECEIVE_STALL_SECONDS=6\n');
    try {
      session.child.stdin.write(session.stream.subarray(0, 2000)); // a start, then nothing more, and the connection stays open
      const t0 = Date.now();
      await waitUntil(
        () => execInTarget(['pgrep', '-f', '^/usr/bin/btrfs receive']).status === 0,
        30_000,
        'the receive to start',
      );
      await waitUntil(
        () => execInTarget(['pgrep', '-f', 'btrbk-receive|^/usr/bin/btrfs receive']).status !== 0,
        60_000,
        'the stalled receive to end',
      );
      const seconds = (Date.now() - t0) / 1000;
      expect(seconds).toBeGreaterThanOrEqual(5);
      expect(seconds).toBeLessThan(6 + 5 + 10); // the bound, the watchdog's 5 s step, and slack for a loaded machine
      expect(stagingEntries()).toEqual(stagingBefore);
      expect(subvolumesIn(DIR)).not.toContain(`stall-${tag}`);
      expect(root(['journalctl', '-q', '-t', 'btrbk-receive', '--since', '-2min', '-o', 'cat'])).toMatch(
        /read and wrote nothing for 6 s \(RECEIVE_STALL_SECONDS: no data arrived, or the stream made it wait\)/,
      );
      // the lock is free: the host's prune runs (it says so when a receive holds the lock)
      const prune = execInTarget([PRUNE_PATH]);
      expect({ status: prune.status, out: prune.stdout, err: prune.stderr }).toMatchObject({ status: 0 });
      expect(prune.stdout).not.toMatch(/a receive is running/);
      expect(prune.stdout).toMatch(/^done: deleted \d+, kept/m);
      // the session ends on its own once the receive has: its last words reach this side before ssh exits (killing
      // it as soon as the host was done lost them on a loaded machine)
      await waitUntil(() => session.closed, 30_000, 'the ssh session to end (its stderr read to the end)');
    } finally {
      restore();
    }
    expect(session.stderr).toMatch(/btrbk-receive: btrfs receive failed/);
  });

  test('a stream that trickles a byte a second never stalls and held the pruning off; the pruning ends it once it held the lock at each run for RECEIVE_HOLD_MAX_SECONDS, then runs, and the next receive lands', async () => {
    const stagingBefore = stagingEntries();
    const { session, restore } = openReceive(`trickle-${tag}`, 'RECEIVE_STALL_SECONDS=6\nRECEIVE_HOLD_MAX_SECONDS=5\n');
    const { child, stream } = session;
    let sent = 2000;
    const trickle = setInterval(() => {
      if (!session.closed && sent < stream.length) child.stdin.write(stream.subarray(sent, (sent += 1)));
    }, 1000);
    const receiving = () => execInTarget(['pgrep', '-f', 'btrbk-receive|^/usr/bin/btrfs receive']).status === 0;
    const prune = () => {
      const r = execInTarget([PRUNE_PATH]);
      expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
      return r.stdout;
    };
    try {
      child.stdin.write(stream.subarray(0, sent));
      await waitUntil(
        () => execInTarget(['pgrep', '-f', '^/usr/bin/btrfs receive']).status === 0,
        30_000,
        'the receive to start',
      );
      // the attack: past the stall bound it is still receiving, and the pruning does nothing while it does
      await new Promise((r) => setTimeout(r, 9000));
      expect(receiving()).toBe(true);
      expect(prune()).toBe('a receive is running: nothing done this run\n');
      await new Promise((r) => setTimeout(r, 6000));
      expect(receiving()).toBe(true);
      // the next run: it held the lock at each run for 5 s or more, so it is ended and the pruning runs
      const out = prune();
      expect(out).toMatch(
        /^receives held the receive lock at every run for \d+ s \(RECEIVE_HOLD_MAX_SECONDS=5\): ended them \([1-9]\d* process\(es\)\)/,
      );
      expect(out).toMatch(/^done: deleted \d+, kept/m);
      await waitUntil(() => !receiving(), 30_000, 'the trickling receive to end');
      expect(stagingEntries()).toEqual(stagingBefore);
      expect(subvolumesIn(DIR)).not.toContain(`trickle-${tag}`);
      await waitUntil(() => session.closed, 30_000, 'the ssh session to end');
      // the gate is open again: the next receive lands
      expect(
        ssh(`sudo -n btrfs receive '${DIR}/'`, simpleSubvolume(`after-trickle-${tag}`, { 'f.txt': 'a' }).stream).status,
      ).toBe(0);
      expect(subvolumesIn(DIR)).toContain(`after-trickle-${tag}`);
    } finally {
      clearInterval(trickle);
      restore();
    }
    expect(session.stderr).toMatch(
      /btrbk-receive: ended by SIGTERM \(the host shutting down, or its pruning ending receives/,
    );
  });
});

describe('what a key holder can do to the retention (the guarantee README states)', () => {
  // The policy (48h 14d 8w 12m, min 1d) counts from each backup's arrival on the host: it keeps the first backup
  // of each hour for 48 hours, of each day for 14 days, of each week for 8 weeks, of each month for 12 months, and
  // the newest. A series is pruned only after a newer backup arrived since the last prune. A key holder's backups
  // always arrive later, so they never displace an earlier backup from its period: all they do is make the
  // schedule run (a series nothing arrives in is never pruned).
  test('garbage sent after the theft: each earlier backup stays exactly as long as the schedule keeps it, counted from its arrival', async () => {
    const series = `${DIR}/retention`;
    expect(ssh(`mkdir -p '${series}'`).status).toBe(0);
    const send = (n: string, files: Record<string, string> = { 'f.txt': n }) =>
      expect(ssh(`sudo -n btrfs receive '${series}/'`, simpleSubvolume(n, files).stream).status).toBe(0);
    const names = ['home.20261101T0100', 'home.20261101T0200', 'home.20261101T0300'];
    for (const n of names) send(n);
    // the host's own prune, confined to this series (its own root and state), with the default policy
    const { state, run } = seriesPrune(series);
    const prune = (now: number) => {
      const r = run(now);
      expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
      return subvolumesIn(series);
    };
    const earlier = (left: string[]) => left.filter((n) => names.includes(n));
    const epochOf = (n: string) =>
      Number(
        rootSh(
          'date -d "$(btrfs subvolume show "$1" | sed -n "s/^[[:space:]]*Creation time:[[:space:]]*//p")" +%s',
          `${series}/${n}`,
        ).trim(),
      );
    const t = Object.fromEntries(names.map((n) => [n, epochOf(n)]));
    const t0 = Math.max(...Object.values(t));
    let g = 0;
    let sentAt = 0;
    const garbage = async () => {
      // the thief sends one more backup into the series (an empty one), in a later second than the one before: the
      // prune counts arrivals in seconds, and one in the same second is not newer than what it last saw
      await new Promise((r) => setTimeout(r, Math.max(0, (Math.floor(sentAt / 1000) + 1) * 1000 - Date.now())));
      g += 1;
      const n = `home.202612${String(g).padStart(2, '0')}T0000`;
      send(n, {});
      sentAt = Date.now();
      return n;
    };
    try {
      // the owner's laptop is stolen: nothing arrives, nothing is pruned, however late the prune runs
      expect(prune(t0)).toEqual(names);
      expect(prune(t0 + 30 * 86400)).toEqual(names);
      // the thief sends garbage into the series before every prune: the schedule runs
      let newest = await garbage();
      expect(earlier(prune(t0 + 3600))).toEqual(names); // everything younger than a day stays
      newest = await garbage();
      // three days after: the first backup of each UTC day they arrived on stays (14d); the rest went
      const day = (e: number) => Math.floor(e / 86400);
      const firstOfDay = names.filter((n, i) => names.findIndex((m) => day(t[m]) === day(t[n])) === i);
      let left = prune(t0 + 3 * 86400);
      expect(earlier(left)).toEqual(firstOfDay);
      expect(left).toContain(newest); // the newest complete backup always stays (after a theft, the thief's)
      newest = await garbage();
      expect(earlier(prune(t[names[0]] + 13 * 86400))).toContain(names[0]); // first of its day: 14 days
      newest = await garbage();
      expect(earlier(prune(t[names[0]] + 200 * 86400))).toContain(names[0]); // first of its month: 12 months
      newest = await garbage();
      left = prune(t[names[0]] + 430 * 86400); // 14 months on: the schedule is done with it
      expect(earlier(left)).toEqual([]);
      expect(left).toContain(newest);
    } finally {
      rootSh('rm -rf "$1"', state);
    }
  });
});

describe('a send the client stops reading', () => {
  test('holds its backup against the delete the policy chose (the kernel refuses to delete a subvolume during a send); the prune ends the send and deletes it', async () => {
    const series = `${DIR}/pinned`;
    expect(ssh(`mkdir -p '${series}'`).status).toBe(0);
    const send = (n: string, files: Record<string, string>) =>
      expect(ssh(`sudo -n btrfs receive '${series}/'`, simpleSubvolume(n, files).stream).status).toBe(0);
    // big enough that a send of it blocks once ssh's window and the pipes are full (12 MiB, in 48 KiB writes)
    const big = new SendStream().subvol('home.20261101T0100', newUuid(), 1).mkfile('big.bin', 257);
    const data = crypto.randomBytes(12 << 20);
    for (let off = 0; off < data.length; off += 48 << 10)
      big.write('big.bin', off, data.subarray(off, off + (48 << 10)));
    big.chmod('big.bin', 0o644).chmod('', 0o755).end();
    expect(ssh(`sudo -n btrfs receive '${series}/'`, big.toBuffer()).status).toBe(0);
    send('home.20261101T0200', { 'f.txt': 'b' });
    const { state, run: prune } = seriesPrune(series);
    const now = Math.floor(Date.now() / 1000);
    expect(prune(now).status).toBe(0); // first seen: recorded only
    await new Promise((r) => setTimeout(r, 1100));
    send('home.20261101T0300', { 'f.txt': 'c' }); // newer: the next run prunes the series
    const reader = spawn('ssh', [...keySshArgs(conn), '--', `sudo -n btrfs send '${series}/home.20261101T0100'`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      await new Promise<void>((resolve) =>
        reader.stdout.once('data', () => {
          reader.stdout.pause(); // and never reads on
          resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 2000));
      expect(execInTarget(['pgrep', '-f', '^/usr/bin/btrfs send']).status).toBe(0);
      // two years later: the policy deletes the two older backups; the one being sent is held by its send
      const r = prune(now + 2 * 365 * 86400);
      expect({ status: r.status, err: r.stderr }).toEqual({ status: 0, err: '' });
      expect(r.stdout).toMatch(/^ended 1 btrfs send\(s\) that held \S+\/home\.20261101T0100 against its delete$/m);
      expect(r.stdout).toMatch(/^done: deleted 2, kept /m);
      expect(subvolumesIn(series)).toEqual(['home.20261101T0300']);
    } finally {
      reader.kill('SIGKILL');
      rootSh('rm -rf "$1"', state);
    }
  });
});

describe('a volume laid out by the previous boot script', () => {
  let laptop: ScratchBtrfs;
  let work: string;
  afterAll(async () => {
    await runEach([() => laptop?.destroy(), () => work && fs.rmSync(work, { recursive: true, force: true })]);
  });

  test('boots into the new layout with every backup, its received UUID and the host key intact; btrbk carries on incrementally', async () => {
    // backups made by btrbk through the gate
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'layout-'));
    laptop = await createScratchBtrfs({ sizeMiB: 512, label: 'layout' });
    await createSubvolume(laptop.path('home'));
    fs.mkdirSync(laptop.path('snaps'));
    fs.writeFileSync(laptop.path('home', 'big.bin'), crypto.randomBytes(8 << 20));
    const client = btrbkClient(conn, work, {
      volume: laptop.mountpoint,
      subvolume: 'home',
      targetDir: `${DIR}/layout`,
    });
    expect(ssh(`mkdir -p '${DIR}/layout'`).status).toBe(0);
    const first = client.run('run');
    expect({ status: first.status, out: first.out + first.err }).toMatchObject({ status: 0 });
    const snapshotOf = () =>
      rootSh(
        'cd "$1" && for s in $(find . -mindepth 1 -type d -inum 256 | sort); do printf "%s %s %s %s\\n" "$s" "$(btrfs subvolume show "$s" | sed -n "s/^[[:space:]]*\\(Received UUID\\|Subvolume ID\\|Flags\\):[[:space:]]*//p" | tr "\\n" " ")" "$(stat -c %U:%G:%a "$s")" "$(find "$s" -type f -exec md5sum {} + 2>/dev/null | sort | md5sum | cut -c1-12)"; done',
        BACKUP_ROOT,
      );
    const before = snapshotOf();
    expect(before).toMatch(/layout\/home\.\S+ [0-9a-f-]{36} \d+ readonly/);
    const keyBefore = root(['sha256sum', HOST_KEY]);
    const ownerBefore = root(['stat', '-c', '%U:%G %a', BACKUP_ROOT]);

    // the previous boot script's layout: backups/ a plain directory of the top level, the backups in it as they were
    // (each moved with its read-only flag flipped by the ioctl, which keeps the received UUID)
    const flip = `perl -e 'open(my $f, "<", $ARGV[0]) or die; my $v = pack("Q", 0); ioctl($f, 0x80089419, $v) or die; my $fl = unpack("Q", $v); ioctl($f, 0x4008941a, pack("Q", $ARGV[1] ? ($fl | 2) : ($fl & ~2))) or die' --`;
    rootSh(
      `set -e; exec 8>>/run/btrbk-backup-host/receive.lock; flock 8
      old="$1.plain"; mkdir "$old"; chown --reference="$1" "$old"; chmod --reference="$1" "$old"
      cd "$1"
      find . -mindepth 1 -type d -inum 256 -prune -o -type d -printf "%P\\n" | while read -r d; do mkdir -p "$old/$d"; chown --reference="$d" "$old/$d"; chmod --reference="$d" "$old/$d"; done
      for s in $(find . -mindepth 1 -type d -inum 256 -prune -printf "%P\\n"); do ro=$(btrfs property get -ts "$s" ro); [ "$ro" != ro=true ] || ${flip} "$s" 0; mv -T "$s" "$old/$s"; [ "$ro" != ro=true ] || ${flip} "$old/$s" 1; done
      cd /; btrfs subvolume delete "$1" >/dev/null; mv -T "$old" "$1"`,
      BACKUP_ROOT,
    );
    expect(rootSh('stat -c %i "$1"', BACKUP_ROOT).trim()).not.toBe('256');
    // the old layout is what the attack used: the gate's -m was the top level then; now the receive refuses
    // to run until the boot script has moved the backups
    const refused = ssh(`sudo -n btrfs receive '${DIR}/'`, simpleSubvolume(`early-${tag}`, {}).stream);
    expect(refused.stderr).toMatch(/the backup root .* is not a subvolume of its own/);

    const boot = await rerunBootScript();
    expect({ status: boot.status, tail: boot.output.split('\n').slice(-5).join('\n') }).toMatchObject({ status: 0 });
    expect(boot.output).toMatch(
      /\[layout\]: changed: the backup root \/backup_volume\/backups is now a subvolume of its own \(\d+ backups moved, each with its received UUID\)/,
    );
    expect(rootSh('stat -c %i "$1"', BACKUP_ROOT).trim()).toBe('256');
    expect(snapshotOf()).toBe(before);
    expect(root(['sha256sum', HOST_KEY])).toBe(keyBefore);
    expect(root(['stat', '-c', '%U:%G %a', BACKUP_ROOT])).toBe(ownerBefore);
    expect(rootSh('ls -A "$1"', MOUNT_POINT)).not.toMatch(/\.btrbk-layout-new/);
    // a second run changes nothing
    expect((await rerunBootScript()).output).not.toMatch(/\[layout\]: changed/);

    // btrbk carries on: the next backup is incremental (a small change, a small stream, with the old backup as parent)
    fs.writeFileSync(laptop.path('home', 'small.txt'), 'one more line\n');
    await new Promise((r) => setTimeout(r, 1100)); // btrbk's long-iso names have seconds
    const second = client.run('run');
    expect({ status: second.status, out: second.out + second.err }).toMatchObject({ status: 0 });
    expect(client.receivedBytes()).toBeLessThan(1 << 20);
    const shows = rootSh(
      'for s in "$1"/home.*; do btrfs subvolume show "$s" | grep -E "^\\s*(Parent UUID|Received UUID):"; done',
      `${DIR}/layout`,
    );
    expect(shows.match(/Parent UUID:\s+[0-9a-f-]{36}/g)?.length).toBe(1);
  });
});
