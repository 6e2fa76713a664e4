// What btrfs-progs and the kernel print, as the unit tests feed it to the parsers (scripts/lib/core/btrfs-output.ts)
// and to the modules that read it (prereqs, checks, restore).

/** /proc/self/mountinfo of a laptop: root on btrfs with relatime (the default), /home a btrfs subvolume noatime. */
export const LAPTOP_MOUNTINFO = [
  '22 1 0:21 /@ / rw,relatime shared:1 - btrfs /dev/nvme0n1p2 rw,compress=zstd:3,ssd,space_cache=v2,subvolid=256,subvol=/@',
  '23 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '40 22 0:21 /@home /home rw,noatime shared:30 - btrfs /dev/nvme0n1p2 rw,compress=zstd:3,ssd,space_cache=v2,subvolid=257,subvol=/@home',
  '41 22 259:1 / /boot/efi rw,relatime shared:31 - vfat /dev/nvme0n1p1 rw,fmask=0077,dmask=0077',
  '42 22 0:40 / /mnt/my\\040data rw,strictatime shared:32 - btrfs /dev/sdb1 rw,space_cache=v2,subvolid=5,subvol=/',
].join('\n');

/** `btrfs filesystem usage -b` (the gate's usage diagnostic) of a volume of `size` bytes with `used` used. */
export const USAGE_OUT = (size: number, used: number) => `Overall:
    Device size:\t\t ${size}
    Device allocated:\t\t 1000
    Used:\t\t\t ${used}
    Free (estimated):\t\t ${size - used}\t(min: 1)
`;

/** `btrfs device stats` (the gate's device-stats diagnostic): every counter 0 but corruption_errs = n. */
export const STATS_OUT = (n = 0) =>
  ['write_io_errs', 'read_io_errs', 'flush_io_errs', 'corruption_errs', 'generation_errs'].map((c, i) => `[/dev/nvme1n1].${c.padEnd(16)} ${i === 3 ? n : 0}`).join('\n');

/** `btrfs subvolume list -a -R -o /backup_volume/backups/laptop`: two complete backups and a half-received one. */
export const LIST_R = [
  'ID 256 gen 30 top level 5 received_uuid 0b5f0c2e-8d47-a84f-9f41-4a6c0f7e1b11 path <FS_TREE>/backups/laptop/home.20240501T0200',
  'ID 257 gen 41 top level 5 received_uuid -                                    path <FS_TREE>/backups/laptop/home.20240502T0200',
  'ID 258 gen 42 top level 5 received_uuid 7c1d2e3f-0000-4000-8000-000000000001 path <FS_TREE>/backups/laptop/sub/home.x',
  '',
].join('\n');
