// The parsers of what btrfs-progs and the kernel print (scripts/lib/core/btrfs-output.ts), on the texts they print.
import {
  atimeMode,
  mountFor,
  parseDeviceStats,
  parseMountEntry,
  parseMountinfo,
  parseScrubKernelErrors,
  parseScrubStatusRaw,
  parseSize,
  parseSubvolumeList,
  parseSubvolumeListR,
  parseSubvolumeShow,
  parseUsage,
} from '../../scripts/lib/core/btrfs-output.js';
import { toMiB } from '../../scripts/lib/data/btrfs-scratch.js';
import {
  LAPTOP_MOUNTINFO,
  LIST_R,
  SCRUB_KERNEL_LOG,
  SCRUB_STATUS_CLEAN,
  SCRUB_STATUS_CORRUPT,
  STATS_OUT,
  USAGE_OUT,
} from '../support/btrfs-samples.js';

describe('sizes', () => {
  test('as btrfs prints them and as a person gives them, in bytes; null when not a size', () => {
    expect(parseSize('1.50GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('300.00MiB')).toBe(300 * 2 ** 20);
    expect(parseSize('16.00KiB')).toBe(16 * 1024);
    expect(parseSize('2G')).toBe(2 * 2 ** 30);
    expect(parseSize('512m')).toBe(512 * 2 ** 20);
    expect(parseSize('1 TB')).toBe(2 ** 40);
    expect(parseSize('100B')).toBe(100);
    expect(parseSize(' 1073741824 ')).toBe(2 ** 30);
    expect(parseSize('2', 2 ** 20)).toBe(2 * 2 ** 20);
    for (const bad of ['lots', '', '1.2.3G', '2X', '-1G', 'G']) expect(parseSize(bad)).toBeNull();
  });

  test("the scratch btrfs's sizes: a bare number is MiB, the rest rounded up to whole MiB", () => {
    expect(toMiB(512)).toBe(512);
    expect(toMiB('512')).toBe(512);
    expect(toMiB('2G')).toBe(2048);
    expect(toMiB('1.5GiB')).toBe(1536);
    expect(toMiB('300K')).toBe(1);
    expect(() => toMiB('lots')).toThrow(/not a size/);
  });
});

describe('btrfs subvolume show and list', () => {
  test('reads btrfs subvolume show', () => {
    const text = `roundtrip.1
\tName: \t\t\troundtrip.1
\tUUID: \t\t\t0a6e2f4b-1111-4c3d-9e8f-000000000001
\tParent UUID: \t\t-
\tReceived UUID: \t\t5b1c7d9e-2222-4a5b-8c9d-000000000002
\tFlags: \t\t\treadonly
`;
    expect(parseSubvolumeShow(text)).toEqual({
      uuid: '0a6e2f4b-1111-4c3d-9e8f-000000000001',
      parentUuid: '-',
      receivedUuid: '5b1c7d9e-2222-4a5b-8c9d-000000000002',
      readonly: true,
    });
    expect(parseSubvolumeShow('home\n\tUUID: \t\t\tu-1\n\tFlags: \t\t\t-\n')).toEqual({
      uuid: 'u-1',
      parentUuid: null,
      receivedUuid: null,
      readonly: false,
    });
  });

  test('reads every field of a `btrfs subvolume list` line, with and without -a', () => {
    const text = [
      'ID 256 gen 9 cgen 9 top level 5 parent_uuid - received_uuid 4b1e-0001 uuid 1 path <FS_TREE>/backups/a',
      'ID 257 gen 12 top level 256 path snaps/home.1',
      'ERROR: not a btrfs path',
    ].join('\n');
    expect(parseSubvolumeList(text)).toEqual([
      {
        id: 256,
        gen: 9,
        cgen: 9,
        topLevel: 5,
        parentUuid: '-',
        receivedUuid: '4b1e-0001',
        uuid: '1',
        path: 'backups/a',
      },
      { id: 257, gen: 12, topLevel: 256, path: 'snaps/home.1' },
    ]);
  });

  test('parses `btrfs subvolume list -a -R -o` into absolute paths with completeness', () => {
    expect(parseSubvolumeListR(LIST_R)).toEqual([
      {
        path: '/backup_volume/backups/laptop/home.20240501T0200',
        receivedUuid: '0b5f0c2e-8d47-a84f-9f41-4a6c0f7e1b11',
        complete: true,
      },
      { path: '/backup_volume/backups/laptop/home.20240502T0200', receivedUuid: '-', complete: false },
      {
        path: '/backup_volume/backups/laptop/sub/home.x',
        receivedUuid: '7c1d2e3f-0000-4000-8000-000000000001',
        complete: true,
      },
    ]);
    expect(parseSubvolumeListR('ID 256 gen 30 top level 5 received_uuid - path backups/x', '/mnt')).toEqual([
      { path: '/mnt/backups/x', receivedUuid: '-', complete: false },
    ]);
  });
});

describe('mount tables, usage, device stats', () => {
  const mounts = parseMountinfo(LAPTOP_MOUNTINFO);

  test('parses mount points (with escapes), options and the filesystem type', () => {
    expect(mounts.map((m) => [m.mountPoint, m.fstype, atimeMode(m)])).toEqual([
      ['/', 'btrfs', 'relatime'],
      ['/proc', 'proc', 'relatime'],
      ['/home', 'btrfs', 'noatime'],
      ['/boot/efi', 'vfat', 'relatime'],
      ['/mnt/my data', 'btrfs', 'strictatime'],
    ]);
    expect(mountFor('/home/me/docs', mounts)?.mountPoint).toBe('/home');
    expect(mountFor('/homework', mounts)?.mountPoint).toBe('/');
    expect(mounts[2]).toMatchObject({
      root: '/@home',
      source: '/dev/nvme0n1p2',
      superOptions: expect.arrayContaining(['subvol=/@home']),
    });
  });

  test('parses findmnt, mountinfo and /proc/mounts lines; usage in bytes and df form; device stats', () => {
    expect(parseMountEntry('/backup_volume /dev/loop0 btrfs rw,relatime')).toMatchObject({
      source: '/dev/loop0',
      fstype: 'btrfs',
    });
    expect(
      parseMountEntry('36 25 0:33 / /backup_volume rw,noatime shared:1 - btrfs /dev/nvme1n1 rw,compress=zstd:1'),
    ).toMatchObject({ fstype: 'btrfs', source: '/dev/nvme1n1' });
    expect(parseMountEntry('/dev/sdb /backup_volume xfs rw 0 0')).toMatchObject({ fstype: 'xfs' });
    expect(parseMountEntry('/ /dev/sda1 ext4 rw')).toBeNull();
    expect(parseUsage(USAGE_OUT(1000, 250))).toEqual({ size: 1000, used: 250, free: 750, percent: 25 });
    expect(
      parseUsage('Filesystem 1B-blocks Used Available Use% Mounted on\n/dev/x 1000 900 100 90% /backup_volume'),
    ).toMatchObject({ percent: 90 });
    // DUP metadata and reserves: the device size is never reachable; "full" is used of used + free
    expect(
      parseUsage(USAGE_OUT(2000, 900).replace(/Free \(estimated\):\t\t \d+/, 'Free (estimated):\t\t 100')),
    ).toMatchObject({ size: 2000, used: 900, free: 100, percent: 90 });
    expect(parseDeviceStats(STATS_OUT(2))).toHaveLength(5);
    expect(parseDeviceStats(STATS_OUT(2)).find((s) => s.value)).toEqual({
      device: '/dev/nvme1n1',
      counter: 'corruption_errs',
      value: 2,
    });
  });

  test('mountinfo lines in the mount diagnostic: per-mount and superblock options together', () => {
    expect(
      parseMountEntry(
        '36 25 0:33 / /backup_volume rw,noatime shared:1 master:2 - btrfs /dev/nvme1n1 rw,compress=zstd:1',
      ),
    ).toEqual({ source: '/dev/nvme1n1', fstype: 'btrfs', options: 'rw,noatime,rw,compress=zstd:1' });
  });

  test('usage without -b: sizes with units', () => {
    const text =
      'Overall:\n    Device size:\t\t   2.00GiB\n    Used:\t\t\t 512.00MiB\n    Free (estimated):\t\t   1.50GiB\t(min: 1.00GiB)\n';
    expect(parseUsage(text)).toEqual({ size: 2 * 2 ** 30, used: 512 * 2 ** 20, free: 1.5 * 2 ** 30, percent: 25 });
  });
});

describe('scrub', () => {
  test('btrfs scrub status -R: status, duration, bytes read and every counter', () => {
    const clean = parseScrubStatusRaw(SCRUB_STATUS_CLEAN);
    expect(clean).toMatchObject({
      uuid: '1e6d8207-8c58-49d7-890e-d03136b544aa',
      status: 'finished',
      durationSeconds: 0,
      bytesScrubbed: 20971520 + 360448,
    });
    expect(clean.counters).toMatchObject({
      csum_errors: 0,
      uncorrectable_errors: 0,
      read_errors: 0,
      last_physical: 126877696,
    });
    const bad = parseScrubStatusRaw(SCRUB_STATUS_CORRUPT);
    expect(bad).toMatchObject({ status: 'finished', durationSeconds: 3723 });
    expect(bad.counters).toMatchObject({ csum_errors: 2, uncorrectable_errors: 2, corrected_errors: 0 });
  });

  test('a resumed, a running scrub and "no stats available"', () => {
    const resumed = SCRUB_STATUS_CLEAN.replace('Scrub started:', 'Scrub resumed:').replace('finished', 'running');
    expect(parseScrubStatusRaw(resumed)).toMatchObject({ status: 'running', bytesScrubbed: 21331968 });
    expect(parseScrubStatusRaw('UUID:             1e6d8207\n\tno stats available\n')).toEqual({
      uuid: '1e6d8207',
      status: null,
      durationSeconds: null,
      counters: {},
      bytesScrubbed: 0,
    });
  });

  test('kernel log: the logical address, and the subvolume and file when the kernel names them (both formats)', () => {
    expect(parseScrubKernelErrors(SCRUB_KERNEL_LOG)).toEqual([
      { kind: 'unable to fixup (regular)', logical: 64356352, root: null, inode: null, path: null },
      { kind: 'checksum', logical: 64356352, root: 5, inode: 257, path: 'a' },
      { kind: 'checksum', logical: 30425088, root: 258, inode: 1042, path: 'docs/a b.txt' },
    ]);
    expect(parseScrubKernelErrors('BTRFS info (device loop3): scrub: started on devid 1')).toEqual([]);
  });
});
