// runChecks and expandChecks (the interface troubleshoot and setup use) with injected fakes.
import { checkReportJson, formatCheckReport, summaryLine } from '../../scripts/lib/core/report.js';
import { CHECKS, expandChecks, runChecks } from '../../scripts/lib/diagnose/checks.js';
import { conn, healthy, fakes } from '../support/diagnose-fakes.js';

describe('runChecks (the interface setup uses)', () => {
  it('expands check-all in a fixed order and refuses unknown names', () => {
    expect(expandChecks(['check-all'])).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
    expect(expandChecks(['check-logs', 'ssh', 'check-logs'])).toEqual(['check-ssh', 'check-logs']);
    expect(() => expandChecks(['check-disk'])).toThrow(/unknown check "check-disk"/);
    expect(Object.keys(CHECKS)).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
  });

  it('returns [{check, results: [{name, ok, detail, cause, next}]}] and opens one SSH session for all checks', async () => {
    const f = fakes();
    const out = await runChecks(
      conn({ instanceId: 'local-target' }),
      ['check-ssh', 'check-volume', 'check-aws', 'check-logs'],
      f.deps,
    );
    expect(out.map((c) => c.check)).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
    for (const c of out)
      for (const r of c.results)
        expect(Object.keys(r)).toEqual(expect.arrayContaining(['name', 'ok', 'detail', 'cause', 'next']));
    expect(f.connects()).toBe(1);
    expect(out[2].results).toEqual([
      expect.objectContaining({ ok: true, skipped: true, detail: expect.stringMatching(/not applicable/) }),
    ]);
    const json = checkReportJson(out);
    expect(json).toMatchObject({ ok: true, failed: 0, skipped: 1 });
    expect(summaryLine(out.flatMap((c) => c.results))).toMatch(/^\d+ passed, 0 failed, 1 not applicable$/);
  });

  it('the report prints cause and next under a failure, and the closing line', async () => {
    const out = await runChecks(
      conn(),
      ['check-ssh'],
      fakes(healthy(), { probe: async () => ({ ok: false, code: 'ECONNREFUSED', ms: 1 }) }).deps,
    );
    const text = formatCheckReport(out);
    expect(text).toMatch(/ {2}FAIL {2}TCP 203\.0\.113\.7:22 reachable/);
    expect(text).toMatch(/cause: connection refused/);
    expect(text).toMatch(/next: {2}read the boot log/);
    expect(text.trim().split('\n').at(-1)).toBe('2 passed, 1 failed');
  });
});
