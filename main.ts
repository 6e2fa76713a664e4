// The CDKTF app: reads no secrets, builds the stack, synthesizes. Keys, CIDRs and the region are Terraform
// variables, given at plan/apply time (see README "Deploy").
import { App } from 'cdktf';
import { BackupTargetStack, STACK_NAME } from './constructs/backup-target-stack.js';

const app = new App();
new BackupTargetStack(app, STACK_NAME);
app.synth();
