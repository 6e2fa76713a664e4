// Engine checks of the synthesized stack with the real hashicorp/aws provider schema, offline: `validate`, and
// the engine's native `test` command with `mock_provider "aws"` (no credentials) running engine-tests/*.tftest.hcl.
// The engine is tofu when on PATH, else terraform (TERRAFORM_BINARY_NAME overrides); the provider comes from the
// machine's filesystem mirror. Without an engine or a mirror this suite FAILS (it never skips, never downloads).
import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { App } from 'cdktf';
import { BackupTargetStack, STACK_NAME } from '../../constructs/backup-target-stack.js';
import { renderBootScript, renderHostPayload } from '../../user-data/render.js';
import { payloadObjectKey } from '../../constructs/host-payload.js';
import { VARIABLES } from '../../constructs/variables.js';
import {
  parseTestOutput,
  prepareStackDir,
  type EngineResult,
  type PreparedStack,
} from '../../scripts/lib/deploy/engine.js';

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const TESTS_DIR = path.join(ROOT, 'engine-tests');
const literals = JSON.parse(fs.readFileSync(path.join(TESTS_DIR, 'fixtures/literals.json'), 'utf8')) as {
  volumeId: string;
  publicIp: string;
  sshPublicKey: string;
  adminSshPublicKey: string;
  payloadBucketDomain: string;
  devices: Record<string, string>;
};
const testFiles = fs
  .readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith('.tftest.hcl'))
  .sort();
/** Every `run "name"` block the test files declare: each must be reported as passed. */
const declaredRuns = testFiles.flatMap((f) =>
  [...fs.readFileSync(path.join(TESTS_DIR, f), 'utf8').matchAll(/^run "([^"]+)"/gm)].map((m) => `tests/${f}/${m[1]}`),
);

type Json = Record<string, any>;
// Engine runs are synchronous and slow on a busy machine: the whole suite (76 run blocks) takes about 3 CPU
// minutes, and measured 8 minutes of wall time at a load of 13 on 2 cores, past runEngine's 5-minute default.
const ENGINE_TEST_TIMEOUT_MS = 1_200_000;
jest.setTimeout(ENGINE_TEST_TIMEOUT_MS);
/** `<engine> test` with the long timeout. */
const engineTest = (stack: PreparedStack, args: string[] = []): EngineResult =>
  stack.runEngine(['test', '-no-color', ...args], { timeoutMs: ENGINE_TEST_TIMEOUT_MS });
let work: string;
let synthesized: Json;

/**
 * What the defaults test compares the stack's boot script with: the renderer's plain output for the literals; with
 * `devices`, what the devices test compares it with (one NAME KEY line per device, sorted by name).
 */
const expectedBootScript = (devices?: Record<string, string>) =>
  renderBootScript(
    {
      volumeId: literals.volumeId,
      backupSshPublicKey: literals.sshPublicKey,
      adminSshPublicKey: '',
      ...(devices && {
        devices: Object.keys(devices)
          .sort()
          .map((name) => `${name} ${devices[name]}`)
          .join('\n'),
      }),
    },
    {
      payload: 's3',
      payloadUrl: `https://${literals.payloadBucketDomain}/${payloadObjectKey(renderHostPayload().sha256)}`,
      payloadRegion: 'us-west-1',
    },
  );

/**
 * A stack directory with the (possibly changed) JSON, the test files (possibly edited: `edit` gets each file's
 * name and text) and the fixture; initialised.
 */
function stackDir(
  name: string,
  json: Json,
  fixture = expectedBootScript(),
  edit: (file: string, text: string) => string = (_file, text) => text,
): PreparedStack {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'tests/fixtures'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'cdk.tf.json'), JSON.stringify(json, null, 2));
  for (const f of testFiles)
    fs.writeFileSync(path.join(dir, 'tests', f), edit(f, fs.readFileSync(path.join(TESTS_DIR, f), 'utf8')));
  fs.writeFileSync(path.join(dir, 'tests/fixtures/boot-script.expected'), fixture);
  fs.writeFileSync(path.join(dir, 'tests/fixtures/boot-script-devices.expected'), expectedBootScript(literals.devices));
  const prepared = prepareStackDir(dir, { workDir: path.join(work, 'engine') });
  expectOk(prepared.init());
  return prepared;
}

function expectOk(r: EngineResult) {
  if (r.status !== 0) throw new Error(`${r.command} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
}

/**
 * The JSON the engine tests apply: identical to the synthesized one except that the data volume's
 * prevent_destroy is off. `terraform test` destroys what it applied when a file ends, and before Terraform 1.14
 * (hashicorp/terraform#34960, fixed by #37364) a prevent_destroy resource makes that teardown fail. The
 * 'prevent_destroy holds' test below runs the unchanged JSON and shows the engine refusing that destroy.
 */
function withoutPreventDestroy(json: Json): Json {
  const copy = structuredClone(json);
  expect(copy.resource.aws_ebs_volume.backup_data.lifecycle).toMatchObject({ prevent_destroy: true });
  delete copy.resource.aws_ebs_volume.backup_data.lifecycle.prevent_destroy;
  return copy;
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-engine-'));
  const app = new App({ outdir: path.join(work, 'cdktf.out') });
  new BackupTargetStack(app, STACK_NAME);
  app.synth();
  synthesized = JSON.parse(fs.readFileSync(path.join(work, 'cdktf.out/stacks', STACK_NAME, 'cdk.tf.json'), 'utf8'));
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('engine checks (real provider schema, mock provider, offline)', () => {
  let stack: PreparedStack;
  let suite: EngineResult;

  beforeAll(() => {
    stack = stackDir('testable', withoutPreventDestroy(synthesized));
    suite = engineTest(stack);
  });

  test('the engine and the provider mirror are found', () => {
    expect(['tofu', 'terraform']).toContain(stack.engine.name);
    expect(stack.mirror).toBeTruthy();
    expect(stack.env.TF_CLI_CONFIG_FILE).toBe(path.join(work, 'engine/engine.tfrc'));
  });

  test('validate accepts the synthesized JSON', () => {
    const r = stack.validate();
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('The configuration is valid');
    expect(r.status).toBe(0);
  });

  test('the literals in the test files agree with fixtures/literals.json', () => {
    const all = testFiles.map((f) => fs.readFileSync(path.join(TESTS_DIR, f), 'utf8')).join('\n');
    for (const value of [
      literals.volumeId,
      literals.publicIp,
      literals.sshPublicKey,
      literals.adminSshPublicKey,
      literals.payloadBucketDomain,
      ...Object.keys(literals.devices),
      ...Object.values(literals.devices),
    ]) {
      expect(all).toContain(`"${value}"`);
    }
  });

  test.each(testFiles)('%s passes, every run block reported as passed', (file) => {
    const { files, runs } = parseTestOutput(suite.stdout);
    const mine = declaredRuns.filter((r) => r.startsWith(`tests/${file}/`));
    expect(mine.length).toBeGreaterThan(0);
    expect({ file, status: files[`tests/${file}`], stderr: suite.stderr }).toEqual({
      file,
      status: 'pass',
      stderr: suite.stderr,
    });
    expect(Object.fromEntries(mine.map((r) => [r, runs[r]]))).toEqual(Object.fromEntries(mine.map((r) => [r, 'pass'])));
  });

  test('the whole suite exits 0', () => {
    expect(suite.status).toBe(0);
  });
});

/**
 * Two of bad-variables' device refusals again without expect_failures, so the engine prints their messages: a name
 * the host refuses (the variable's validation), appended to devices.tftest.hcl, and 200 devices past EC2's 16 KB
 * (the instance's size precondition, which counts the devices), appended to defaults.tftest.hcl (a refused plan
 * ends its file: the runs after it are skipped).
 */
const DEVICE_REFUSALS_SAID: Record<string, string> = {
  'devices.tftest.hcl': `
run "bad_device_name_said" {
  command = plan
  variables {
    devices = { "a..b" = "${literals.devices.bob}" }
  }
}
`,
  'defaults.tftest.hcl': `
run "too_many_devices_said" {
  command = plan
  variables {
    devices = { for i in range(200) : "device-\${i}" => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\${substr(base64sha256(tostring(i)), 0, 43)} owner-\${i}@example" }
  }
}
`,
};

describe('the engine tests can fail (negative controls)', () => {
  // One engine run for five controls (each engine run loads the provider schema): a fixture one character off,
  // the JSON without ignore_changes = [ami], the data volume without its restore_snapshot_id postcondition and
  // without availability_zone in its ignore_changes, and the zone test's refused type without its
  // expect_failures (so the engine prints the precondition's message).
  const notOffered = 'type_not_offered_in_the_deployed_zone_refused';
  let controls: EngineResult;
  beforeAll(() => {
    const good = expectedBootScript();
    const n = Math.floor(good.length / 2);
    const fixture = good.slice(0, n) + (good[n] === 'x' ? 'y' : 'x') + good.slice(n + 1);
    expect(fixture).not.toBe(good);
    const json = withoutPreventDestroy(synthesized);
    delete json.resource.aws_instance.backup_host.lifecycle.ignore_changes;
    delete json.resource.aws_ebs_volume.backup_data.lifecycle.postcondition;
    expect(json.resource.aws_ebs_volume.backup_data.lifecycle.ignore_changes).toEqual([
      'snapshot_id',
      'availability_zone',
    ]);
    json.resource.aws_ebs_volume.backup_data.lifecycle.ignore_changes = ['snapshot_id'];
    const withoutExpectedFailure = (file: string, text: string) => {
      if (file in DEVICE_REFUSALS_SAID) return `${text}\n${DEVICE_REFUSALS_SAID[file]}`;
      if (file !== 'zone-pinning.tftest.hcl') return text;
      const edited = text.replace(
        new RegExp(`(run "${notOffered}" \\{[^]*?)\\n  expect_failures = \\[aws_instance\\.backup_host\\]`),
        '$1',
      );
      expect(edited).not.toBe(text);
      return edited;
    };
    // (the bad-variables file has no part in these controls: left out, it saves most of the run's time)
    controls = engineTest(stackDir('controls', json, fixture, withoutExpectedFailure), [
      '-filter=tests/devices.tftest.hcl',
      '-filter=tests/defaults.tftest.hcl',
      '-filter=tests/ami-update.tftest.hcl',
      '-filter=tests/protection.tftest.hcl',
      '-filter=tests/zone-pinning.tftest.hcl',
    ]);
  });

  test('a boot script differing by one character fails the user-data equality assertions', () => {
    expect(controls.status).not.toBe(0);
    expect(parseTestOutput(controls.stdout).runs['tests/defaults.tftest.hcl/apply_with_defaults']).toBe('fail');
    expect(controls.stderr).toContain('differs from renderBootScript()');
    expect(controls.stderr).toContain('is not gzip+base64 of the rendered boot script');
  });

  test('device refusals say what is wrong: a bad name, and too many devices for 16 KB with their count', () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs['tests/devices.tftest.hcl/apply_with_two_devices']).toBe('pass');
    expect(runs['tests/devices.tftest.hcl/bad_device_name_said']).toBe('fail');
    expect(runs['tests/defaults.tftest.hcl/too_many_devices_said']).toBe('fail');
    const said = controls.stderr.replace(/\s+/g, ' ');
    expect(said).toContain(VARIABLES.devices.rules[0].message);
    expect(said).toContain(
      "the instance's user data would be over EC2's 16 KB (gzipped) with 200 devices: each device takes about 75 bytes of it",
    );
  });

  test('without ignore_changes = [ami], a newer image would change the instance', () => {
    expect(parseTestOutput(controls.stdout).runs['tests/ami-update.tftest.hcl/newer_ami_keeps_instance']).toBe('fail');
    expect(controls.stderr).toContain('a newer AMI replaced the instance');
  });

  test('without the postcondition, restore_snapshot_id on an existing deployment would be ignored silently', () => {
    expect(
      parseTestOutput(controls.stdout).runs[
        'tests/protection.tftest.hcl/restore_snapshot_on_existing_deployment_refused'
      ],
    ).toBe('fail');
    expect(parseTestOutput(controls.stdout).runs['tests/protection.tftest.hcl/defaults_snapshot_recycle_alarm']).toBe(
      'pass',
    );
  });

  test("without availability_zone in the volume's ignore_changes, a new first zone or type would move the volume and the instance", () => {
    const { runs } = parseTestOutput(controls.stdout);
    expect(runs['tests/zone-pinning.tftest.hcl/first_deploy']).toBe('pass');
    expect(runs['tests/zone-pinning.tftest.hcl/a_new_first_zone_moves_nothing']).toBe('fail');
    expect(runs['tests/zone-pinning.tftest.hcl/an_offering_change_and_the_fast_lane_move_nothing']).toBe('fail');
    expect(controls.stderr).toContain('a new first zone moved (replaced) the data volume');
    expect(controls.stderr).toContain('a new first zone moved (replaced) the instance');
    expect(controls.stderr).toContain("the fast lane's type change moved (replaced) the instance");
  });

  test('a type EC2 does not offer in the deployed zone is refused at plan, with the message that says what to do', () => {
    expect(parseTestOutput(controls.stdout).runs[`tests/zone-pinning.tftest.hcl/${notOffered}`]).toBe('fail');
    // (the engine wraps the message at 76 columns)
    const said = controls.stderr.replace(/\s+/g, ' ');
    expect(said).toContain('Resource precondition failed');
    expect(said).toContain(
      "instance_type t3a.large is not offered in us-west-1b, the availability zone of the data volume (a volume cannot move to another zone, so the instance must be in the volume's). Zones of us-west-1 that offer t3a.large: us-west-1a. Choose an instance_type offered in us-west-1b (aws ec2 describe-instance-type-offerings --region us-west-1 --location-type availability-zone --filters Name=location,Values=us-west-1b)",
    );
  });

  test('prevent_destroy holds: with the unchanged JSON the engine refuses to destroy the data volume', () => {
    const r = engineTest(stackDir('unchanged', synthesized), ['-filter=tests/ami-update.tftest.hcl']);
    const { runs } = parseTestOutput(r.stdout);
    expect(runs['tests/ami-update.tftest.hcl/newer_ami_keeps_instance']).toBe('pass');
    // The teardown (a destroy) is refused because of the data volume's prevent_destroy, and only for it. If an
    // engine overrides prevent_destroy during test cleanup (Terraform >= 1.14), this check must move to a plan.
    expect(r.stderr).toMatch(/Resource aws_ebs_volume\.backup_data has lifecycle\.prevent_destroy set/);
    expect(r.stderr.match(/has lifecycle\.prevent_destroy set/g)).toHaveLength(1);
    expect(r.status).not.toBe(0);
  });
});
