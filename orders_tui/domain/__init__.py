"""Domain logic: plain Python, no Kafka and no Textual imports, so it is fast to test."""
