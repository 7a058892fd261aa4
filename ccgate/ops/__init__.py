"""Operations: log files, the access log, the audit log, Prometheus metrics."""
