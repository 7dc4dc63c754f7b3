"""The Textual dashboard: a front end over orders_tui.kafka.engine; no librdkafka here."""
