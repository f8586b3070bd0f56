//! A real local Apache Kafka for tests and the CLI.
