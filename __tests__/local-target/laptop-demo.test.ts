// Unit tests of the demo's output shaping (scripts/lib/local-target/laptop-demo.ts): a readable excerpt of a
// command's output and btrbk's summary out of a run's journal; the second device's container and the devices the
// target gets.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import {
  backupNames,
  btrbkSummary,
  deskPaths,
  DEMO_DEVICES,
  excerpt,
  missingDevices,
} from '../../scripts/lib/local-target/laptop-demo.js';
import { laptopPaths } from '../../scripts/lib/local-target/laptop.js';

describe('laptop demo: output that does not scroll away', () => {
  test('excerpt indents, drops blank lines and colour codes, and keeps the last lines with a count of the rest', () => {
    expect(excerpt('\x1b[32m✓\x1b[0m one\n\n  two  \n')).toBe('    ✓ one\n      two');
    const many = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
    const out = excerpt(many, { max: 3, indent: '' }).split('\n');
    expect(out).toEqual(['(27 earlier lines left out)', 'line 28', 'line 29', 'line 30']);
  });

  test('btrbkSummary starts at btrbk\'s "Backup Summary", or gives the tail when there is none', () => {
    const journal = [
      'Creating backup: ...',
      'noise',
      '--------------------------------------------------------------------------------',
      'Backup Summary (btrbk command line client, version 0.32.6)',
      '',
      '    Date:   Mon Nov 30 04:40:01 2026',
      'Legend:',
      '    +++  created subvolume (source snapshot)',
      '    >>>  received subvolume (incremental)',
      '--------------------------------------------------------------------------------',
      '/mnt/laptop/home',
      '+++ /mnt/laptop/.btrbk-aws-snapshots/home.20261130T0440',
      '>>> ssh://127.0.0.1:2222/backup_volume/backups/lap/home.20261130T0440',
    ].join('\n');
    const s = btrbkSummary(journal);
    expect(s.split('\n')[0]).toBe('Backup Summary (btrbk command line client, version 0.32.6)');
    expect(s).toContain('>>> ssh://127.0.0.1:2222/');
    expect(s).not.toContain('noise');
    expect(s).not.toMatch(/Legend|received subvolume|-{20}/);
    expect(s).toContain('/mnt/laptop/home\n+++ /mnt/laptop/');
    const plain = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    expect(btrbkSummary(plain).split('\n')).toHaveLength(15);
  });
});

describe('laptop demo: two devices', () => {
  test("desk is a second container beside the laptop: the laptop's name and state directory with -desk", () => {
    const laptop = laptopPaths({ ...process.env, BTRBK_LAPTOP_STATE: '/tmp/x/laptop', BTRBK_LAPTOP_NAME: 'lap' });
    const desk = deskPaths(laptop);
    expect([desk.name, desk.stateDir, desk.volumeImage]).toEqual([
      'lap-desk',
      '/tmp/x/laptop-desk',
      '/tmp/x/laptop-desk/disk.img',
    ]);
    expect(desk.rootfs).toBe(laptop.rootfs); // the same image, booted twice
  });

  test('the target gets the devices it lacks: not remembered, or without their connection file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-devices-'));
    const envFile = path.join(dir, 'local_connection.env');
    const wanted = Object.values(DEMO_DEVICES);
    expect(wanted).toEqual(['laptop', 'desk']);
    expect(missingDevices({ envFile }, wanted)).toEqual(['laptop', 'desk']);
    fs.writeFileSync(path.join(dir, 'connection-laptop.env'), '');
    expect(missingDevices({ envFile, devices: ['alpha', 'laptop', 'desk'] }, wanted)).toEqual(['desk']);
    fs.writeFileSync(path.join(dir, 'connection-desk.env'), '');
    expect(missingDevices({ envFile, devices: ['laptop', 'desk'] }, wanted)).toEqual([]);
    expect(missingDevices({ envFile, devices: ['laptop'] }, wanted)).toEqual(['desk']);
    fs.rmSync(dir, { recursive: true });
  });
});

test("backupNames: a subvolume's backups, oldest first, from list --json; none for another subvolume or an empty listing", () => {
  const json = JSON.stringify({
    targetDir: 'backups/laptop',
    subvolumes: [
      { name: 'srv', backups: [{ name: 'srv.20261205T2100', path: 'p', time: 't' }] },
      {
        name: 'home',
        backups: [
          { name: 'home.20261205T2100', path: 'p', time: 't' },
          { name: 'home.20261205T2100_1', path: 'p', time: 't' },
        ],
      },
    ],
    incomplete: [],
  });
  expect(backupNames(json, 'home')).toEqual(['home.20261205T2100', 'home.20261205T2100_1']);
  expect(backupNames(json, 'srv')).toEqual(['srv.20261205T2100']);
  expect(backupNames(json, 'var')).toEqual([]);
  expect(backupNames('{}', 'home')).toEqual([]);
});
