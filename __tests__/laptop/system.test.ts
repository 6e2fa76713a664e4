// What install and uninstall ask of systemd (scripts/lib/laptop/system.ts): one daemon-reload each, after the enable
// symlinks exist (so the reload loads sleep.target's new want with the changed unit files), before the timer starts.
import { UNITS } from '../../scripts/lib/laptop/layout.js';
import { disableUnits, enableUnits } from '../../scripts/lib/laptop/system.js';
import type { RunResult } from '../../scripts/lib/core/process.js';

const recorder = () => {
  const calls: string[] = [];
  const run = async (cmd: string, args: string[]): Promise<RunResult> => {
    calls.push([cmd, ...args].join(' '));
    return { status: 0, signal: null, stdout: '', stderr: '', output: '', error: null };
  };
  return { calls, run };
};

test('enableUnits: enable both without a reload each, one daemon-reload, then start the timer', async () => {
  const { calls, run } = recorder();
  const steps = await enableUnits({ run });
  expect(calls).toEqual([
    `systemctl enable --no-reload ${UNITS.timer} ${UNITS.presleep}`,
    'systemctl daemon-reload',
    `systemctl start ${UNITS.timer}`,
  ]);
  expect(steps.every((s) => s.ok)).toBe(true);
});

test('disableUnits: disable both without a reload, stop the timer and a running backup (uninstall reloads once after)', async () => {
  const { calls, run } = recorder();
  await disableUnits({ run });
  expect(calls).toEqual([
    `systemctl disable --no-reload ${UNITS.timer} ${UNITS.presleep}`,
    `systemctl stop ${UNITS.timer} ${UNITS.service}`,
  ]);
  expect(calls.filter((c) => c.includes('daemon-reload'))).toEqual([]);
});
