# The data volume's availability zone is chosen once, when it is created, and never moves by itself: a zone that
# appears first in the region, a changed offering of the instance type, or another instance type (the first-backup
# fast lane) changes the fresh choice (local.availability_zone) but neither the volume nor the instance, which
# stays in the volume's zone. A type EC2 does not offer in that zone, or a pinned zone other than the volume's,
# stops the plan with a message. Mock provider; each run's override_data is what EC2 would answer at that time.
# A mock provider does not model the real provider's forced replacements (a new availability_zone forces a new
# volume and a new instance), so the runs assert the planned zones themselves; the ids catch a replacement the
# stack itself would plan (replace_triggered_by). engine.test.ts runs this file without the volume's
# ignore_changes and sees the zone assertions fail.

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
      names = ["us-west-1c", "us-west-1b"]
    }
  }
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1a", "us-west-1b", "us-west-1c"]
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

run "first_deploy" {
  command = apply
  assert {
    condition     = aws_ebs_volume.backup_data.availability_zone == "us-west-1b" && aws_instance.backup_host.availability_zone == "us-west-1b"
    error_message = "the first deploy puts the volume and the instance in the first available zone that offers the type"
  }
}

run "a_new_first_zone_moves_nothing" {
  command = plan
  override_data {
    target = data.aws_availability_zones.available
    values = {
      names = ["us-west-1a", "us-west-1b", "us-west-1c"]
    }
  }
  assert {
    condition     = local.availability_zone == "us-west-1a"
    error_message = "(the test's premise) a new deployment would now choose us-west-1a"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.availability_zone == "us-west-1b" && aws_ebs_volume.backup_data.id == run.first_deploy.volume_id
    error_message = "a new first zone moved (replaced) the data volume"
  }
  assert {
    condition     = aws_instance.backup_host.availability_zone == "us-west-1b" && aws_instance.backup_host.id == run.first_deploy.instance_id
    error_message = "a new first zone moved (replaced) the instance"
  }
  assert {
    condition     = output.availability_zone == "us-west-1b"
    error_message = "the availability_zone output names the volume's zone"
  }
}

run "an_offering_change_and_the_fast_lane_move_nothing" {
  command = plan
  variables {
    instance_type = "t3a.large"
  }
  override_data {
    target = data.aws_availability_zones.available
    values = {
      names = ["us-west-1a", "us-west-1b", "us-west-1c"]
    }
  }
  override_data {
    target = data.aws_ec2_instance_type_offerings.instance_type
    values = {
      locations = ["us-west-1b", "us-west-1a"]
    }
  }
  assert {
    condition     = local.availability_zone == "us-west-1a"
    error_message = "(the test's premise) a new deployment with this type would now choose us-west-1a"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.availability_zone == "us-west-1b" && aws_ebs_volume.backup_data.id == run.first_deploy.volume_id
    error_message = "a changed offering or instance type moved (replaced) the data volume"
  }
  assert {
    condition = (aws_instance.backup_host.availability_zone == "us-west-1b" && aws_instance.backup_host.id == run.first_deploy.instance_id
    && aws_instance.backup_host.instance_type == "t3a.large")
    error_message = "the fast lane's type change moved (replaced) the instance"
  }
}

# EC2 offers the type only in a zone other than the volume's: the plan stops, naming the type, the volume's zone
# and the zones that offer it (engine.test.ts checks the message).
run "type_not_offered_in_the_deployed_zone_refused" {
  command = plan
  variables {
    instance_type = "t3a.large"
  }
  override_data {
    target = data.aws_ec2_instance_type_offerings.instance_type
    values = {
      locations = ["us-west-1a"]
    }
  }
  expect_failures = [aws_instance.backup_host]
}

run "another_pinned_zone_refused" {
  command = plan
  variables {
    availability_zone = "us-west-1c"
  }
  # the volume's postcondition: it cannot move to the zone asked for
  expect_failures = [aws_ebs_volume.backup_data]
}

run "the_volume_s_zone_may_be_pinned" {
  command = plan
  variables {
    availability_zone = "us-west-1b"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.id == run.first_deploy.volume_id && aws_instance.backup_host.id == run.first_deploy.instance_id
    error_message = "pinning availability_zone to the volume's own zone changes nothing"
  }
}
