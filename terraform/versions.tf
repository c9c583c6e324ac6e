terraform {
  # optional() attribute defaults in object types need 1.3.
  required_version = ">= 1.3.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # managed_draining on aws_ecs_capacity_provider arrived in 5.34.
      version = ">= 5.34.0"
    }
    external = {
      source  = "hashicorp/external"
      version = ">= 2.2.0"
    }
  }
}
