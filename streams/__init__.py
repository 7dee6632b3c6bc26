"""The Faust app, agents, tables, Kafka I/O and the command line."""
