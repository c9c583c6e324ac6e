# The two Lambda functions (ecsspot.handlers.interruption / .refresh), their log groups and
# least-privilege roles: the actions are the AWS calls the handlers' code paths make
# (ecsspot/interruption.py, drain.py, refresh.py, store.py; a test keeps them in step), writes
# are scoped to this cluster's resources, and "*" appears only for Describe/List calls AWS does
# not authorise per resource.

locals {
  function_names = {
    interruption = "${local.prefix}-interruption"
    refresh      = "${local.prefix}-refresh"
  }

  lambda_environment = merge(var.lambda_environment, {
    ECSSPOT_CLUSTER = var.cluster
    ECSSPOT_TABLE   = aws_dynamodb_table.state.name
  })

  ecs_arn_prefix = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
  ec2_arn_prefix = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  asg_arns       = [for name in keys(local.pools) : aws_autoscaling_group.pool[name].arn]

  # Not looked up with a data source: that would read at plan time, before a profile created in
  # the same configuration exists. The AWS console and the ECS docs name the role as the profile.
  instance_role_arn = var.instance_role_arn != null ? var.instance_role_arn : "arn:${local.partition}:iam::${local.account_id}:role/${coalesce(local.instance_profile_name, "none")}"
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# What a drain needs (both functions drain: on interruption, and old instances on refresh).
data "aws_iam_policy_document" "drain" {
  statement {
    sid = "DescribeWithoutResourceLevelPermissions"
    # These Describe/List calls support no resource-level permissions: AWS requires "*".
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "ec2:DescribeInstances",
      "ecs:ListServices",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ReadCluster"
    actions   = ["ecs:ListContainerInstances"]
    resources = [aws_ecs_cluster.this.arn]
  }

  statement {
    sid     = "ReadClusterMembers"
    actions = ["ecs:DescribeContainerInstances", "ecs:DescribeServices"]
    resources = [
      "${local.ecs_arn_prefix}:container-instance/${var.cluster}/*",
      "${local.ecs_arn_prefix}:service/${var.cluster}/*",
    ]
  }

  statement {
    sid = "ListClusterTasks"
    # A drain reads what runs on its instances task by task. ListTasks is scoped by the cluster
    # condition (its container-instance resource form has been reported not to match,
    # awsdocs/amazon-ecs-developer-guide#211).
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid       = "ReadClusterTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["${local.ecs_arn_prefix}:task/${var.cluster}/*"]
  }

  statement {
    sid       = "DrainContainerInstances"
    actions   = ["ecs:UpdateContainerInstancesState"]
    resources = ["${local.ecs_arn_prefix}:container-instance/${var.cluster}/*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid = "ManagePoolInstances"
    # Only what both functions call; refresh adds TerminateInstanceInAutoScalingGroup below.
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
      "autoscaling:SetDesiredCapacity",
    ]
    resources = local.asg_arns
  }

  # A drain deregisters an instance from the cluster's target groups: the ones listed in
  # target_groups, and the ones its services use (found at run time, so they cannot be listed
  # here: those are allowed when tagged ecsspot:cluster = <cluster>). Any other group of the
  # account stays out of reach of a compromised or confused function.
  dynamic "statement" {
    for_each = length(var.target_groups) > 0 ? [var.target_groups] : []
    content {
      sid       = "DeregisterListedTargets"
      actions   = ["elasticloadbalancing:DeregisterTargets"]
      resources = statement.value
    }
  }

  statement {
    sid       = "DeregisterTaggedTargets"
    actions   = ["elasticloadbalancing:DeregisterTargets"]
    resources = ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ecsspot:cluster"
      values   = [var.cluster]
    }
  }

  statement {
    sid = "StateTable"
    # BatchGetItem: store.get_items reads several of the table's items in one round trip.
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.state.arn]
  }
}

data "aws_iam_policy_document" "interruption" {
  source_policy_documents = [data.aws_iam_policy_document.drain.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.interruption.arn}:*"]
  }

  statement {
    sid = "ConsumeEvents"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      # The handler hands failed records back within seconds (ChangeMessageVisibilityBatch
      # needs this action; GetQueueUrl finds the queue from the record's eventSourceARN).
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.events.arn]
  }
}

data "aws_iam_policy_document" "refresh" {
  source_policy_documents = [data.aws_iam_policy_document.drain.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.refresh.arn}:*"]
  }

  statement {
    sid = "DescribeTemplates"
    # EC2 Describe calls support no resource-level permissions: AWS requires "*".
    actions   = ["ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"]
    resources = ["*"]
  }

  statement {
    sid       = "NewTemplateVersion"
    actions   = ["ec2:CreateLaunchTemplateVersion"]
    resources = [aws_launch_template.this.arn]
  }

  # A rollback sets old instances ACTIVE again and registers their running tasks' targets, which
  # the drain deregistered (ECS registers a task's targets only when it starts): the same groups.
  dynamic "statement" {
    for_each = length(var.target_groups) > 0 ? [var.target_groups] : []
    content {
      sid       = "RegisterListedTargets"
      actions   = ["elasticloadbalancing:RegisterTargets"]
      resources = statement.value
    }
  }

  statement {
    sid       = "RegisterTaggedTargets"
    actions   = ["elasticloadbalancing:RegisterTargets"]
    resources = ["arn:${local.partition}:elasticloadbalancing:${local.region}:${local.account_id}:targetgroup/*/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ecsspot:cluster"
      values   = [var.cluster]
    }
  }

  statement {
    sid = "ReconcileProtection"
    # The scheduled tick's protection reconciler (protection.on_schedule): only on the module's groups.
    actions   = ["autoscaling:SetInstanceProtection"]
    resources = local.asg_arns
  }

  statement {
    sid = "ReadScalingActivities"
    # The fallback controller's detection (failed spot launches); no resource-level permissions.
    actions   = ["autoscaling:DescribeScalingActivities"]
    resources = ["*"]
  }

  statement {
    sid = "RollPools"
    # TerminateInstanceInAutoScalingGroup: a refresh batch retires the old instances it drained,
    # and the fallback controller the on-demand surplus it drained; UpdateAutoScalingGroup: a
    # refresh's template version, and the fallback's OnDemandBaseCapacity.
    actions   = ["autoscaling:UpdateAutoScalingGroup", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = local.asg_arns
  }

  statement {
    sid = "LaunchFromTemplate"
    # Auto Scaling checks the caller may launch from the template when a group's version changes.
    actions = ["ec2:RunInstances"]
    resources = [
      aws_launch_template.this.arn,
      "${local.ec2_arn_prefix}:instance/*",
      "${local.ec2_arn_prefix}:volume/*",
      "${local.ec2_arn_prefix}:network-interface/*",
      "${local.ec2_arn_prefix}:key-pair/*",
      "${local.ec2_arn_prefix}:spot-instances-request/*",
      # Shared VPCs: subnets and security groups may belong to another account.
      "arn:${local.partition}:ec2:${local.region}:*:subnet/*",
      "arn:${local.partition}:ec2:${local.region}:*:security-group/*",
      "arn:${local.partition}:ec2:${local.region}::image/*",
    ]
    condition {
      test     = "ArnLike"
      variable = "ec2:LaunchTemplate"
      values   = [aws_launch_template.this.arn]
    }
  }

  statement {
    sid       = "TagOnLaunch"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn_prefix}:instance/*", "${local.ec2_arn_prefix}:volume/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
  }

  dynamic "statement" {
    for_each = local.ami_parameter_arn == null ? [] : [local.ami_parameter_arn]
    content {
      sid       = "ReadAmiParameter"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.instance_profile == null ? [] : [local.instance_role_arn]
    content {
      sid = "PassInstanceRole"
      # Updating a group to a template with an instance profile passes its role to EC2.
      actions   = ["iam:PassRole"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = ["ec2.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "interruption" {
  name               = "${local.prefix}-interruption"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "interruption" {
  name   = "ecsspot"
  role   = aws_iam_role.interruption.id
  policy = data.aws_iam_policy_document.interruption.json
}

resource "aws_iam_role" "refresh" {
  name               = "${local.prefix}-refresh"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "refresh" {
  name   = "ecsspot"
  role   = aws_iam_role.refresh.id
  policy = data.aws_iam_policy_document.refresh.json
}

resource "aws_cloudwatch_log_group" "interruption" {
  name              = "/aws/lambda/${local.function_names.interruption}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "refresh" {
  name              = "/aws/lambda/${local.function_names.refresh}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "interruption" {
  function_name    = local.function_names.interruption
  description      = "ecsspot ${local.short_name}: drain on spot warnings, rebalance recommendations, terminate lifecycle actions"
  role             = aws_iam_role.interruption.arn
  handler          = "ecsspot.handlers.interruption"
  runtime          = var.lambda_runtime
  filename         = var.lambda_package
  source_code_hash = filebase64sha256(var.lambda_package)
  memory_size      = var.lambda_memory_size
  # A lifecycle-hook drain may run long; a spot drain stops at its own deadline.
  timeout                        = 900
  reserved_concurrent_executions = var.interruption_reserved_concurrency

  environment {
    variables = local.lambda_environment
  }

  tags = local.tags

  # The log group first, or Lambda creates one without retention; the policy first, or the
  # first invocations fail.
  depends_on = [aws_cloudwatch_log_group.interruption, aws_iam_role_policy.interruption]
}

resource "aws_lambda_function" "refresh" {
  function_name    = local.function_names.refresh
  description      = "ecsspot ${local.short_name}: rolling AMI refresh, resumed on every tick"
  role             = aws_iam_role.refresh.arn
  handler          = "ecsspot.handlers.refresh"
  runtime          = var.lambda_runtime
  filename         = var.lambda_package
  source_code_hash = filebase64sha256(var.lambda_package)
  memory_size      = var.lambda_memory_size
  # Works until the remaining time nears a margin, saves progress; the next tick continues.
  timeout = 900

  environment {
    variables = local.lambda_environment
  }

  tags = local.tags

  depends_on = [aws_cloudwatch_log_group.refresh, aws_iam_role_policy.refresh]
}
