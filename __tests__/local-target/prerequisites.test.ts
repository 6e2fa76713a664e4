// Unit tests of what the local target needs on this machine (scripts/lib/local-target/prerequisites.ts).
import { missingPrerequisites } from '../../scripts/lib/local-target/prerequisites.js';

describe('local target: prerequisites', () => {
  test('without root and without btrfs it says what is missing and how to get it', () => {
    const missing = missingPrerequisites({ isRoot: false, filesystems: 'nodev\tproc\n\text4\n' });
    expect(missing.map((m) => m.what)).toEqual(
      expect.arrayContaining(['root', 'the btrfs filesystem in the kernel', 'the overlay filesystem in the kernel']),
    );
    expect(missing.find((m) => m.what === 'root')!.fix).toMatch(/sudo npx zx scripts\/local-target.mjs up/);
    expect(missing.find((m) => m.what.includes('btrfs'))!.fix).toMatch(/modprobe btrfs/);
  });

  test('on this machine (root, btrfs, debootstrap, systemd-nspawn) nothing is missing', () => {
    expect(missingPrerequisites({ isRoot: true, filesystems: '\tbtrfs\nnodev\toverlay\n' })).toEqual([]);
  });
});
