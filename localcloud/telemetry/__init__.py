"""What the local functions write, delivered the way Lambda and CloudWatch deliver it.

* :mod:`~localcloud.telemetry.logs` -- every log line: kept, filed, read for outcomes;
* :mod:`~localcloud.telemetry.emf` -- EMF metric values -> CloudWatch metrics;
* :mod:`~localcloud.telemetry.cloudwatch_feed` -- log lines -> CloudWatch Logs, and the
  queues' own ``AWS/SQS`` metrics.
"""
