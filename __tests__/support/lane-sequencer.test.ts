// The integration lanes (__tests__/support/lane-sequencer.cjs): every file runs in exactly one lane, and the lanes
// are about equal in time, by the durations table.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { lanes, DEFAULT_SECONDS } = require('./lane-sequencer.cjs') as {
  lanes: (paths: string[], count: number, seconds: Record<string, number>) => Array<{ total: number; paths: string[] }>;
  DEFAULT_SECONDS: number;
};
const dir = path.join(process.cwd(), '__tests__', 'integration');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts'));
const durations = JSON.parse(fs.readFileSync(path.join(dir, 'durations.json'), 'utf8')) as Record<string, number>;

test('every integration file is in exactly one of two lanes, and the lanes differ by less than the longest file', () => {
  const split = lanes(files, 2, durations);
  expect(split.flatMap((l) => l.paths).sort()).toEqual([...files].sort());
  const longest = Math.max(...files.map((f) => durations[f] ?? DEFAULT_SECONDS));
  expect(Math.abs(split[0].total - split[1].total)).toBeLessThanOrEqual(longest);
  // the same split on every machine: it depends on names and seconds only
  expect(lanes([...files].reverse(), 2, durations)).toEqual(split);
});

test('the durations table names only files that exist (a renamed file would count as the default)', () => {
  expect(Object.keys(durations).filter((f) => !files.includes(f))).toEqual([]);
  expect(files.filter((f) => durations[f] === undefined)).toEqual([]);
});
