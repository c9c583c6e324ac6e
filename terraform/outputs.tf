output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
  # Services placed with a capacity provider strategy need the providers attached first.
  depends_on = [aws_ecs_cluster_capacity_providers.this]
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.this.arn
  depends_on  = [aws_ecs_cluster_capacity_providers.this]
}

output "capacity_provider_names" {
  description = "Capacity provider name per pool (<cluster>-<pool>)."
  value       = { for name, cp in aws_ecs_capacity_provider.pool : name => cp.name }
  depends_on  = [aws_ecs_cluster_capacity_providers.this]
}

output "asg_names" {
  description = "Auto Scaling group name per pool."
  value       = { for name, g in aws_autoscaling_group.pool : name => g.name }
}

output "asg_arns" {
  description = "Auto Scaling group ARN per pool."
  value       = { for name, g in aws_autoscaling_group.pool : name => g.arn }
}

output "table_name" {
  description = "DynamoDB state table (ecsspot-<cluster>)."
  value       = aws_dynamodb_table.state.name
}

output "table_arn" {
  description = "DynamoDB state table ARN."
  value       = aws_dynamodb_table.state.arn
}

output "queue_url" {
  description = "URL of the SQS queue between the instance event rules and the interruption Lambda."
  value       = aws_sqs_queue.events.url
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue (events that failed max_receive_count times or could not be delivered)."
  value       = aws_sqs_queue.dead_letter.url
}

output "interruption_function_arn" {
  description = "ARN of the interruption Lambda (ecsspot.handlers.interruption)."
  value       = aws_lambda_function.interruption.arn
}

output "refresh_function_arn" {
  description = "ARN of the refresh Lambda (ecsspot.handlers.refresh)."
  value       = aws_lambda_function.refresh.arn
}

output "launch_template_id" {
  description = "Launch template id (<cluster>-ecsspot)."
  value       = aws_launch_template.this.id
}

output "launch_template_latest_version" {
  description = "Latest launch template version, the one the Auto Scaling groups use."
  value       = aws_launch_template.this.latest_version
}

output "image_id" {
  description = "AMI the launch template uses, as resolved by `ecsspot tf ami`."
  value       = data.external.ami.result.image_id
}

output "user_data_sha256" {
  description = "SHA-256 of the rendered user data, from `ecsspot tf user-data`."
  value       = data.external.user_data.result.sha256
}
