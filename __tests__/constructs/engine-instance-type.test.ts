// The negative control of engine-tests/instance-type-change.tftest.hcl (the first-backup fast lane's in-place
// type change; engine.test.ts runs that file with the others): with a stack that WOULD replace the instance when
// instance_type changes (replace_triggered_by on a terraform_data holding the type), the same test file fails,
// naming the replaced instance and the moved address. Needs the engine and the provider mirror, like engine.test.ts.
import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'cdktf';
import { BackupTargetStack, STACK_NAME } from '../../constructs/backup-target-stack.js';
import { parseTestOutput, prepareStackDir } from '../../scripts/lib/deploy/engine.js';

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const FILE = 'instance-type-change.tftest.hcl';
jest.setTimeout(600_000);
let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-engine-type-'));
});
afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a stack that replaces the instance on a type change fails the in-place test (the test can fail)', () => {
  const app = new App({ outdir: path.join(work, 'cdktf.out') });
  new BackupTargetStack(app, STACK_NAME);
  app.synth();
  const json = JSON.parse(fs.readFileSync(path.join(work, 'cdktf.out/stacks', STACK_NAME, 'cdk.tf.json'), 'utf8'));
  // (terraform test destroys what it applied; before Terraform 1.14 prevent_destroy makes that fail: see engine.test.ts)
  delete json.resource.aws_ebs_volume.backup_data.lifecycle;
  json.resource.terraform_data = { ...json.resource.terraform_data, type: { input: '${var.instance_type}' } };
  json.resource.aws_instance.backup_host.lifecycle.replace_triggered_by = [
    ...(json.resource.aws_instance.backup_host.lifecycle.replace_triggered_by ?? []),
    'terraform_data.type',
  ];
  const dir = path.join(work, 'stack');
  fs.mkdirSync(path.join(dir, 'tests'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cdk.tf.json'), JSON.stringify(json, null, 2));
  fs.copyFileSync(path.join(ROOT, 'engine-tests', FILE), path.join(dir, 'tests', FILE));
  const stack = prepareStackDir(dir, { workDir: path.join(work, 'engine') });
  const init = stack.init();
  expect(init.status).toBe(0);
  const r = stack.test();
  const { runs } = parseTestOutput(r.stdout);
  expect(runs[`tests/${FILE}/chosen_type`]).toBe('pass');
  expect(runs[`tests/${FILE}/fast_lane_type`]).toBe('fail');
  expect(r.stderr).toContain('the type change replaced the instance');
  expect(r.stderr).toContain('the type change moved the Elastic IP');
  expect(r.status).not.toBe(0);
});
