variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "cluster" {
  description = "ECS cluster name."
  type        = string
  default     = "demo-api"
}

variable "vpc_id" {
  description = "VPC of the load balancer, target group and security groups."
  type        = string
}

variable "instance_subnets" {
  description = "Subnets of the container instances (private subnets with a route to the internet or VPC endpoints)."
  type        = list(string)
}

variable "alb_subnets" {
  description = "Public subnets of the load balancer (two Availability Zones at least)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate ARN. Set: HTTPS on 443 and port 80 redirects to it. Null: plain HTTP on 80."
  type        = string
  default     = null
}

variable "allowed_cidrs" {
  description = "IPv4 ranges allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "instance_profile" {
  description = "Instance profile of the container instances (needs the AmazonEC2ContainerServiceforEC2Role policy)."
  type        = string
  default     = "ecsInstanceRole"
}

variable "lambda_package" {
  description = "Path of the ecsspot Lambda zip (see terraform/README.md)."
  type        = string
}

variable "image" {
  description = "Container image serving HTTP on port 80."
  type        = string
  default     = "public.ecr.aws/nginx/nginx:stable"
}

variable "desired_count" {
  description = "Tasks of the service."
  type        = number
  default     = 4
}

variable "ecsspot_command" {
  description = "The ecsspot executable the module's hooks run."
  type        = string
  default     = "ecsspot"
}
