"""The Kafka side: every librdkafka client is created and used here, one thread each."""
