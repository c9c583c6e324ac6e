# Event wiring. Instance events (spot warning, rebalance recommendation, terminate lifecycle
# action) go through an SQS queue to the interruption Lambda: the queue keeps them through Lambda
# throttling or errors, and items that fail are retried and finally dead-lettered instead of lost.
# AMI parameter changes and the schedule invoke the refresh Lambda directly.

locals {
  instance_event_patterns = {
    spot = {
      source        = ["aws.ec2"]
      "detail-type" = ["EC2 Spot Instance Interruption Warning"]
    }
    rebalance = {
      source        = ["aws.ec2"]
      "detail-type" = ["EC2 Instance Rebalance Recommendation"]
    }
    lifecycle = {
      source        = ["aws.autoscaling"]
      "detail-type" = ["EC2 Instance-terminate Lifecycle Action"]
      detail = {
        AutoScalingGroupName = [for name in keys(local.pools) : local.asg_names[name]]
        # Only ecsspot's hook: ECS managed draining completes its own.
        LifecycleHookName = ["ecsspot-drain"]
      }
    }
  }

  instance_rule_arns = [for key in keys(local.instance_event_patterns) : aws_cloudwatch_event_rule.instance[key].arn]
}

resource "aws_cloudwatch_event_rule" "instance" {
  for_each = local.instance_event_patterns

  name          = "${local.prefix}-${each.key}"
  description   = "ecsspot ${local.short_name}: ${each.value["detail-type"][0]} -> interruption queue"
  event_pattern = jsonencode(each.value)
  tags          = local.tags
}

resource "aws_cloudwatch_event_target" "instance" {
  for_each = aws_cloudwatch_event_rule.instance

  rule      = each.value.name
  target_id = "ecsspot-interruption-queue"
  arn       = aws_sqs_queue.events.arn

  # Events EventBridge cannot deliver (after its retries) are kept, not dropped.
  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${local.prefix}-events-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_sqs_queue" "events" {
  name = "${local.prefix}-events"
  # Lambda requires at least the function timeout (900 s).
  visibility_timeout_seconds = 930
  # An instance event is stale after a day: the instance is long gone.
  message_retention_seconds = 86400
  sqs_managed_sse_enabled   = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = local.tags
}

data "aws_iam_policy_document" "events_queue" {
  statement {
    sid       = "OnlyThisClustersRules"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.instance_rule_arns
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_queue.json
}

data "aws_iam_policy_document" "dead_letter_queue" {
  statement {
    sid       = "UndeliverableEventsOfThisClustersRules"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.instance_rule_arns
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.dead_letter_queue.json
}

resource "aws_lambda_event_source_mapping" "interruption" {
  event_source_arn = aws_sqs_queue.events.arn
  function_name    = aws_lambda_function.interruption.arn
  batch_size       = var.interruption_batch_size
  # No batching window: a spot warning leaves two minutes, every second of waiting counts.
  maximum_batching_window_in_seconds = 0
  # The handler returns {"batchItemFailures": [...]}: only those messages are retried.
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    # Keep the poller within the reserved concurrency (AWS's minimum here is 2).
    for_each = var.interruption_reserved_concurrency == null ? [] : (var.interruption_reserved_concurrency >= 2 ? [min(var.interruption_reserved_concurrency, 1000)] : [])
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}

resource "aws_cloudwatch_event_rule" "ami_parameter" {
  count = local.ami_parameter == null ? 0 : 1

  name        = "${local.prefix}-ami"
  description = "ecsspot ${local.short_name}: AMI parameter changed -> refresh"
  event_pattern = jsonencode({
    source        = ["aws.ssm"]
    "detail-type" = ["Parameter Store Change"]
    detail = {
      name = [local.ami_parameter]
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "ami_parameter" {
  count = local.ami_parameter == null ? 0 : 1

  rule      = aws_cloudwatch_event_rule.ami_parameter[0].name
  target_id = "ecsspot-refresh"
  arn       = aws_lambda_function.refresh.arn
}

resource "aws_lambda_permission" "ami_parameter" {
  count = local.ami_parameter == null ? 0 : 1

  statement_id  = "ecsspot-ami-parameter"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.refresh.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ami_parameter[0].arn
}

resource "aws_cloudwatch_event_rule" "refresh_tick" {
  name                = "${local.prefix}-tick"
  description         = "ecsspot ${local.short_name}: refresh tick (continues a refresh in progress)"
  schedule_expression = var.refresh_schedule
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "refresh_tick" {
  rule      = aws_cloudwatch_event_rule.refresh_tick.name
  target_id = "ecsspot-refresh"
  arn       = aws_lambda_function.refresh.arn
}

resource "aws_lambda_permission" "refresh_tick" {
  statement_id  = "ecsspot-refresh-tick"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.refresh.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.refresh_tick.arn
}
