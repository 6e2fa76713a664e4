# A newer Ubuntu image appearing must not replace the instance. In the real provider a changed `ami` forces a
# new instance; with ignore_changes = [ami] the planned ami stays the first image, so nothing is replaced. (A
# mock provider does not model forced replacement, so the test asserts the ami attribute, and the ids.)

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
      names = ["us-west-1a", "us-west-1c"]
    }
  }
  # EC2's offerings of the instance type by zone (the same for every type unless a run overrides them)
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1a", "us-west-1c"]
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
}

run "first_apply" {
  command = apply
  override_data {
    target = data.aws_ami.ubuntu
    values = {
      id = "ami-0000000000000old0"
    }
  }
  assert {
    condition     = aws_instance.backup_host.ami == "ami-0000000000000old0"
    error_message = "the first apply uses the image the lookup returns"
  }
}

run "newer_ami_keeps_instance" {
  command = apply
  override_data {
    target = data.aws_ami.ubuntu
    values = {
      id = "ami-0000000000000new0"
    }
  }
  assert {
    condition     = data.aws_ami.ubuntu.id == "ami-0000000000000new0"
    error_message = "the lookup now returns the newer image"
  }
  assert {
    condition     = aws_instance.backup_host.id == run.first_apply.instance_id && aws_instance.backup_host.ami == "ami-0000000000000old0"
    error_message = "a newer AMI replaced the instance"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.id == run.first_apply.volume_id
    error_message = "the data volume changed"
  }
}
