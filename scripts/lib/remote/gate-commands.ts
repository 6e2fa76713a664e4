// The one table of the commands the tools send through the SSH gate, in btrbk's own style (its %backend_cmd_map):
// a name -> an argv (or a pipeline of argvs) with the paths marked, and gateLine() writes one as the line the gate reads.
//
// The btrfs commands are written as a btrbk 0.32 client with backend btrfs-progs-sudo writes them (`sudo -n btrfs
// ...`), so the gate (user-data/btrbk-ssh-gate.sh) accepts them; __tests__/remote/gate-commands.test.ts runs every
// entry through the real gate.
import { shellQuote } from '../../../user-data/shell.js';

/** A path argument, btrbk's `{ unsafe => PATH }`: the one kind of word that does not come from this table. */
export interface PathWord {
  readonly path: string;
}
/** A word of a command: a fixed word of the table, or a path. */
export type Word = string | PathWord;
/** One program's argv. */
export type Stage = readonly Word[];
/** A command: one stage, or several joined by pipes. */
export type GateCommand = readonly Stage[];

/** The gate's read-only diagnostics: fixed commands, nothing from the client reaches them. */
export type Diagnostic =
  'version' | 'usage' | 'device-stats' | 'mount' | 'boot-log' | 'cloud-init-log' | 'retention' | 'scrub';

const at = (path: string): PathWord => ({ path });
const SUDO = ['sudo', '-n'] as const;
/** btrbk's backend btrfs-progs-sudo: every btrfs command runs as `sudo -n btrfs ...`. */
const BTRFS = [...SUDO, 'btrfs'] as const;

/** Name -> command. */
export const GATE_COMMANDS = Object.freeze({
  /** `btrbk-diag NAME`, one of the gate's diagnostics. */
  diagnostic: (name: Diagnostic): GateCommand => [['btrbk-diag', name]],
  /** Resolves a directory on the host, as btrbk checks a target directory (system_realpath). */
  readlink: (path: string): GateCommand => [[...SUDO, 'readlink', '-v', '-e', at(path)]],
  /** Creates a directory (and its parents) below the backup root. */
  mkdir: (dir: string): GateCommand => [['mkdir', '-p', at(dir)]],
  /** Every subvolume of the volume, with received UUIDs: btrbk's own listing (btr_tree). */
  subvolumeList: (path: string): GateCommand => [
    [...BTRFS, 'subvolume', 'list', '-a', '-c', '-u', '-q', '-R', at(path)],
  ],
  /** The subvolumes directly below `dir` (-o), with received UUIDs (-R). */
  subvolumeListBelow: (dir: string): GateCommand => [[...BTRFS, 'subvolume', 'list', '-a', '-R', '-o', at(dir)]],
  subvolumeShow: (path: string): GateCommand => [[...BTRFS, 'subvolume', 'show', at(path)]],
  subvolumeDelete: (path: string, { commitAfter = false }: { commitAfter?: boolean } = {}): GateCommand => [
    [...BTRFS, 'subvolume', 'delete', ...(commitAfter ? ['--commit-after'] : []), at(path)],
  ],
  /** Sends a subvolume (incrementally against `parent`), zstd-compressed on the host when `compress` (at `level`:
   * 1 as the installed btrbk.conf's stream_compress_level; default zstd's own). */
  send: (
    path: string,
    {
      parent = null,
      compress = false,
      level = null,
    }: { parent?: string | null; compress?: boolean; level?: number | null } = {},
  ): GateCommand => [
    [...BTRFS, 'send', ...(parent ? ['-p', at(parent)] : []), at(path)],
    ...(compress ? [['zstd', '-c', ...(level ? [`-${level}`] : [])]] : []),
  ],
  /** What a backup holds (user-data/btrbk-manifest: path, type, size, mode, owner, mtime, link target, sha256 per
   * entry), all of it or the sample a seed picks (percent 1..100, seed 0..10^18-1, whole numbers). */
  manifest: (path: string, sample: { percent: number; seed: number | bigint } | null = null): GateCommand => [
    [
      'btrbk-manifest',
      ...(sample ? ['--sample', String(sample.percent), '--seed', String(sample.seed)] : []),
      at(path),
    ],
  ],
  /** Names and metadata of a backup's entries, no content read (btrbk-manifest --list): below `under` (a path inside
   * the backup, escaped as laptop/browse.ts underArg does: [A-Za-z0-9_@+.-] and %XX only), at most `depth` deep. */
  list: (path: string, { under, depth }: { under?: string; depth?: number } = {}): GateCommand => {
    if (under !== undefined && !/^([A-Za-z0-9_@+.-]|%[0-9A-F]{2})+(\/([A-Za-z0-9_@+.-]|%[0-9A-F]{2})+)*$/.test(under))
      throw new Error(`list: --under ${under} is not escaped`);
    if (depth !== undefined && !(Number.isInteger(depth) && depth >= 1 && depth <= 9999))
      throw new Error(`list: --depth ${depth} is not 1..9999`);
    return [
      [
        'btrbk-manifest',
        '--list',
        ...(under !== undefined ? ['--under', under] : []),
        ...(depth !== undefined ? ['--depth', String(depth)] : []),
        at(path),
      ],
    ];
  },
  /** The changes from `parent` to `path` without file data (btrfs send --no-data -p): backup.mjs diff and find. */
  sendNoData: (path: string, parent: string): GateCommand => [
    [...BTRFS, 'send', '--no-data', '-p', at(parent), at(path)],
  ],
  /** Receives a stream into `dir` (written `DIR/`, as btrbk does), zstd-decompressed on the host first when `decompress`. */
  receive: (dir: string, { decompress = false }: { decompress?: boolean } = {}): GateCommand => [
    ...(decompress ? [['zstd', '-d', '-c']] : []),
    [...BTRFS, 'receive', at(`${dir.replace(/\/+$/, '')}/`)],
  ],
});

/** The line the gate reads for a command: words joined by spaces, stages by ' | ', every path single-quoted as btrbk's
 * quoteshell() does. */
export function gateLine(command: GateCommand): string {
  const word = (w: Word) => (typeof w === 'string' ? w : shellQuote(w.path));
  return command.map((stage) => stage.map(word).join(' ')).join(' | ');
}
