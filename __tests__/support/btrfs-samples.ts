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
  ['write_io_errs', 'read_io_errs', 'flush_io_errs', 'corruption_errs', 'generation_errs']
    .map((c, i) => `[/dev/nvme1n1].${c.padEnd(16)} ${i === 3 ? n : 0}`)
    .join('\n');

/** `btrfs subvolume list -a -R -o /backup_volume/backups/laptop`: two complete backups and a half-received one. */
export const LIST_R = [
  'ID 256 gen 30 top level 5 received_uuid 0b5f0c2e-8d47-a84f-9f41-4a6c0f7e1b11 path <FS_TREE>/backups/laptop/home.20240501T0200',
  'ID 257 gen 41 top level 5 received_uuid -                                    path <FS_TREE>/backups/laptop/home.20240502T0200',
  'ID 258 gen 42 top level 5 received_uuid 7c1d2e3f-0000-4000-8000-000000000001 path <FS_TREE>/backups/laptop/sub/home.x',
  '',
].join('\n');

/** `btrfs scrub status -R` (btrfs-progs 6.2, Debian 12) after a clean read-only scrub of a loop-device volume. */
export const SCRUB_STATUS_CLEAN = `UUID:             1e6d8207-8c58-49d7-890e-d03136b544aa
Scrub started:    Mon Nov 30 04:18:41 2026
Status:           finished
Duration:         0:00:00
\tdata_extents_scrubbed: 320
\ttree_extents_scrubbed: 22
\tdata_bytes_scrubbed: 20971520
\ttree_bytes_scrubbed: 360448
\tread_errors: 0
\tcsum_errors: 0
\tverify_errors: 0
\tno_csum: 0
\tcsum_discards: 0
\tsuper_errors: 0
\tmalloc_errors: 0
\tuncorrectable_errors: 0
\tunverified_errors: 0
\tcorrected_errors: 0
\tlast_physical: 126877696
`;

/** The same volume after two data blocks of one file were overwritten on the device (single data profile: no copy to
 * repair from), `btrfs scrub status -R` of the read-only scrub that found them. */
export const SCRUB_STATUS_CORRUPT = SCRUB_STATUS_CLEAN.replace('0:00:00', '1:02:03')
  .replace('csum_errors: 0', 'csum_errors: 2')
  .replace('uncorrectable_errors: 0', 'uncorrectable_errors: 2');

/** The kernel's lines for that scrub (Linux 6.18 dmesg), and one in the older comma format (Linux 6.1/6.8). */
export const SCRUB_KERNEL_LOG = `[ 9376.385153] BTRFS info (device loop3): scrub: started on devid 1
[ 9376.421303] BTRFS error (device loop3): scrub: unable to fixup (regular) error at logical 64356352 on dev /dev/loop3 physical 106299392
[ 9376.422092] BTRFS warning (device loop3): scrub: checksum error at logical 64356352 on dev /dev/loop3, physical 106299392 root 5 inode 257 offset 393216 length 4096 links 1 (path: a)
[ 9376.422104] BTRFS error (device loop3): bdev /dev/loop3 errs: wr 0, rd 0, flush 0, corrupt 1, gen 0
[ 9376.443806] BTRFS info (device loop3): scrub: finished on devid 1 with status: 0
Nov 30 04:21:56 host kernel: BTRFS warning (device nvme1n1): checksum error at logical 30425088 on dev /dev/nvme1n1, physical 39862272, root 258, inode 1042, offset 0, length 4096, links 1 (path: docs/a b.txt)
`;
