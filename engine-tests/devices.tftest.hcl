# A key per device (issue 20): the devices map renders one NAME KEY line per device, sorted by name, into the boot
# script's BTRBK_DEVICES, exactly as renderBootScript() does (the jest test writes
# tests/fixtures/boot-script-devices.expected with the literals below), and one missed-backup alarm per device
# watches the host's reports with that device's Device dimension. Without devices the user data is the single-key
# script (defaults.tftest.hcl); with devices only, the legacy key may be "".

mock_provider "aws" {
  # the real data source reads the partition from the credentials' endpoint; the mock's random string is no ARN partition
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  # the provider validates the DLM role's ARN where the policy uses it (the mock's random string is no ARN)
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/btrbk-dlm-mock"
    }
  }
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-west-1c", "us-west-1a", "us-west-1b"]
    }
  }
  # EC2 offers the instance type in two of the three zones (not in us-west-1a, the first alphabetically)
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1c", "us-west-1b"]
    }
  }
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0aaaaaaaaaaaaaaa1"
    }
  }
  mock_resource "aws_ebs_volume" {
    defaults = {
      id = "vol-0123456789abcdef0"
    }
  }
  mock_resource "aws_eip" {
    defaults = {
      public_ip     = "198.51.100.7"
      allocation_id = "eipalloc-0123456789abcdef0"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      id                          = "btrbk-host-payload-mock"
      arn                         = "arn:aws:s3:::btrbk-host-payload-mock"
      bucket_regional_domain_name = "btrbk-host-payload-mock.s3.us-west-1.amazonaws.com"
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
  devices = {
    bob            = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWHVd5gxknjqy08MpCjVa7JpmXcAjmtEgrHVwqT9UUg"
    "alice-laptop" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop"
  }
}

run "apply_with_two_devices" {
  command = apply

  assert {
    condition     = local.boot_script == file("tests/fixtures/boot-script-devices.expected")
    error_message = "the boot script with two devices differs from renderBootScript() with the same devices"
  }
  assert {
    condition     = aws_instance.backup_host.user_data_base64 == base64gzip(file("tests/fixtures/boot-script-devices.expected"))
    error_message = "the instance's user data is not gzip+base64 of the boot script rendered with the devices"
  }
  assert {
    condition     = strcontains(local.boot_script, "\nBTRBK_DEVICES='alice-laptop ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop\nbob ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWHVd5gxknjqy08MpCjVa7JpmXcAjmtEgrHVwqT9UUg'\nBTRBK_PAYLOAD_SHA256='")
    error_message = "BTRBK_DEVICES holds one NAME KEY line per device, sorted by name, before the payload's sha256"
  }
  assert {
    condition     = strcontains(local.boot_script, "\nBTRBK_SSH_PUBLIC_KEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop'\n")
    error_message = "the legacy key stays beside the devices"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.no_device_backup) == 2 && length(aws_cloudwatch_metric_alarm.no_backup_writes) == 1
    error_message = "one alarm per device, and the volume-wide alarm"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.no_device_backup["alice-laptop"].alarm_name == "btrbk-no-completed-backup-vol-0123456789abcdef0-alice-laptop" && aws_cloudwatch_metric_alarm.no_device_backup["bob"].alarm_name == "btrbk-no-completed-backup-vol-0123456789abcdef0-bob"
    error_message = "each device's alarm is named after the volume and the device"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.no_device_backup["bob"].dimensions == tomap({ VolumeId = "vol-0123456789abcdef0", Device = "bob" }) && aws_cloudwatch_metric_alarm.no_device_backup["bob"].metric_name == "CompletedBackups" && aws_cloudwatch_metric_alarm.no_device_backup["bob"].namespace == "BtrbkBackupHost"
    error_message = "a device's alarm watches the host's CompletedBackups reports with its VolumeId and Device dimensions"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.no_device_backup["bob"].evaluation_periods == 26 && aws_cloudwatch_metric_alarm.no_device_backup["bob"].treat_missing_data == "breaching" && aws_cloudwatch_metric_alarm.no_device_backup["bob"].threshold == 1
    error_message = "a device's alarm fires after backup_alarm_hours without a completed backup, missing data breaching"
  }
}

run "devices_only_without_the_legacy_key" {
  command = plan
  variables {
    ssh_public_key = ""
  }
  assert {
    condition     = strcontains(local.boot_script, "\nBTRBK_SSH_PUBLIC_KEY=''\n") && strcontains(local.boot_script, "\nBTRBK_DEVICES='alice-laptop ")
    error_message = "with devices only, the legacy key is empty and the devices' keys are there"
  }
}

run "no_device_alarms_without_the_alarm" {
  command = plan
  variables {
    backup_alarm_hours = 0
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.no_device_backup) == 0 && length(aws_cloudwatch_metric_alarm.no_backup_writes) == 0
    error_message = "backup_alarm_hours = 0: no alarm at all, per device or volume-wide"
  }
}

run "no_devices_no_device_line" {
  command = plan
  variables {
    devices = {}
  }
  assert {
    condition     = !strcontains(local.boot_script, "BTRBK_DEVICES='") && length(aws_cloudwatch_metric_alarm.no_device_backup) == 0
    error_message = "without devices: no BTRBK_DEVICES line and no device alarm"
  }
}
