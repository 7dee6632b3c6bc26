"""Pure scoring and learning code: no Kafka, no Faust."""
