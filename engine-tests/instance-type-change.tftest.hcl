# The first-backup fast lane (setup.mjs --first-backup, issue 12) changes instance_type to a larger type and
# back. That must be an in-place update: the same instance, data volume and Elastic IP, and the same user data
# (so the boot script does not run on a new machine and the host key stays). The real provider updates
# instance_type in place with a stop and start (its docs: "Updates to this field will trigger a stop/start of the
# EC2 instance"); a mock provider does not model the provider's own forced replacements, so what this shows is
# that nothing in the stack (replace_triggered_by, user data that names the type, a volume or address keyed on
# it) turns the change into a replacement: the mock gives every new resource a new random id.
# A change of architecture (t3a <-> t4g) is the other way round: another image, so the instance is replaced (the
# real provider would otherwise stop it and fail to change its type in place), and the volume and address stay.

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
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0aaaaaaaaaaaaaaa1"
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
}

run "chosen_type" {
  command = apply
  assert {
    condition     = aws_instance.backup_host.instance_type == "t3a.nano"
    error_message = "the first apply uses the default type"
  }
}

run "fast_lane_type" {
  command = apply
  variables {
    instance_type = "t3a.large"
  }
  assert {
    condition     = aws_instance.backup_host.instance_type == "t3a.large"
    error_message = "the fast lane's type is applied"
  }
  assert {
    condition     = aws_instance.backup_host.id == run.chosen_type.instance_id
    error_message = "the type change replaced the instance"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.id == run.chosen_type.volume_id && aws_volume_attachment.backup_data.volume_id == run.chosen_type.volume_id
    error_message = "the type change replaced or re-attached the data volume"
  }
  assert {
    condition     = aws_eip.backup_host.public_ip == run.chosen_type.public_ip && aws_eip_association.backup_host.instance_id == run.chosen_type.instance_id
    error_message = "the type change moved the Elastic IP"
  }
  assert {
    condition     = aws_instance.backup_host.user_data_base64 == base64gzip(local.boot_script) && !strcontains(local.boot_script, "t3a.large") && !strcontains(local.boot_script, "t3a.nano")
    error_message = "the user data names the instance type (a type change would change it: a new instance)"
  }
}

run "back_to_chosen_type" {
  command = apply
  assert {
    condition     = aws_instance.backup_host.instance_type == "t3a.nano" && aws_instance.backup_host.id == run.chosen_type.instance_id
    error_message = "going back is in place too"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.id == run.chosen_type.volume_id && aws_eip.backup_host.public_ip == run.chosen_type.public_ip
    error_message = "going back kept the volume and the address"
  }
}

run "other_architecture_replaces_the_instance" {
  command = apply
  variables {
    instance_type = "t4g.small"
  }
  assert {
    condition     = aws_instance.backup_host.instance_type == "t4g.small" && local.ami_architecture == "arm64"
    error_message = "the Graviton type is applied with an arm64 image"
  }
  assert {
    condition     = aws_instance.backup_host.id != run.back_to_chosen_type.instance_id
    error_message = "an architecture change must replace the instance (an in-place change of type cannot change the image)"
  }
  assert {
    condition = (aws_ebs_volume.backup_data.id == run.chosen_type.volume_id && aws_eip.backup_host.public_ip == run.chosen_type.public_ip
      && aws_eip_association.backup_host.instance_id == aws_instance.backup_host.id && aws_volume_attachment.backup_data.instance_id == aws_instance.backup_host.id)
    error_message = "the replaced instance has the same data volume and address"
  }
}
