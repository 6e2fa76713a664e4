// Jest test sequencer for the integration project: `--shard=I/N` splits the files into N lanes of about equal
// time (each lane is its own jest run with its own local target: scripts/run-tests.mjs runs them side by side),
// by the seconds each file took (__tests__/integration/durations.json; a file not listed counts as
// DEFAULT_SECONDS). Longest first onto the lane with the least so far; ties by path, so a split is the same
// on every machine. The first lane starts FIRST_LANE_SECONDS behind: its target boots from the plain rootfs (the boot
// script installs its packages with apt, as on EC2), where the other lanes' preloaded targets are up in seconds.
const fs = require('node:fs');
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const DEFAULT_SECONDS = 30;
// measured: the first lane spent 65 and 72 s more outside its files than the others (its target's apt install) in
// two fresh-clone runs
const FIRST_LANE_SECONDS = 70;

function durations(rootDir) {
  const file = path.join(rootDir, '__tests__', 'integration', 'durations.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
}

/** Files that must share a lane (they use the same machine-wide names: the bench's scratch filesystems are found by
 * their labels bench-src and bench-dst, and a bench test checks that none is left after it). */
const TOGETHER = [/^bench(-[a-z]+)?\.local-target\.test\.ts$/];
const unitOf = (p) => {
  const i = TOGETHER.findIndex((re) => re.test(path.basename(p)));
  return i < 0 ? p : `together-${i}`;
};

/** The lanes: lists of test paths, heaviest first (files that must share a lane go together). */
function lanes(testPaths, count, seconds, firstLaneSeconds = FIRST_LANE_SECONDS) {
  const weight = (p) => seconds[path.basename(p)] ?? DEFAULT_SECONDS;
  const units = new Map();
  for (const p of [...testPaths].sort()) units.set(unitOf(p), [...(units.get(unitOf(p)) ?? []), p]);
  const total = (ps) => ps.reduce((n, p) => n + weight(p), 0);
  const sorted = [...units.values()].sort((a, b) => total(b) - total(a) || a[0].localeCompare(b[0]));
  const out = Array.from({ length: count }, (_, i) => ({
    total: i === 0 && count > 1 ? firstLaneSeconds : 0,
    paths: [],
  }));
  for (const ps of sorted) {
    const lane = out.reduce((min, l) => (l.total < min.total ? l : min), out[0]);
    lane.paths.push(...ps);
    lane.total += total(ps);
  }
  return out;
}

class LaneSequencer extends Sequencer {
  shard(tests, { shardIndex, shardCount }) {
    const rootDir = tests[0]?.context.config.rootDir ?? process.cwd();
    const mine = new Set(
      lanes(
        tests.map((t) => t.path),
        shardCount,
        durations(rootDir),
      )[shardIndex - 1].paths,
    );
    return tests.filter((t) => mine.has(t.path));
  }
}

module.exports = LaneSequencer;
module.exports.lanes = lanes;
module.exports.DEFAULT_SECONDS = DEFAULT_SECONDS;
module.exports.FIRST_LANE_SECONDS = FIRST_LANE_SECONDS;
