output "url" {
  description = "Where the service answers."
  value       = "${local.https ? "https" : "http"}://${aws_lb.web.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.web.dns_name
}

output "target_group_arn" {
  description = "Target group of the service."
  value       = aws_lb_target_group.web.arn
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.web.name
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.ecsspot.cluster_name
}

output "capacity_provider_names" {
  description = "Capacity provider per pool."
  value       = module.ecsspot.capacity_provider_names
}

output "queue_url" {
  description = "Interruption event queue."
  value       = module.ecsspot.queue_url
}

output "dead_letter_queue_url" {
  description = "Events that could not be handled; alarm on its depth."
  value       = module.ecsspot.dead_letter_queue_url
}
