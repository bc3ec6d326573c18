"""The local cloud: the whole pipeline on one machine, no AWS account.

* :mod:`localcloud.cloud` -- ``LocalCloud.start(cfg)``: the services, the stack's
  resources and the local Lambda runtime; :mod:`localcloud.observe` reads its state.
* :mod:`localcloud.services` -- what answers the API calls: the front server (moto, the
  S3 Vectors data plane, the stand-in Bedrock model), fauxqs for SQS, S3 events, faults.
* :mod:`localcloud.lambdas` -- the Lambda runtime: execution environments, the SQS event
  source mapping, asynchronous invocations.
* :mod:`localcloud.provision` -- creating what the stack creates, from the core's facts.
* :mod:`localcloud.telemetry` -- logs, EMF metrics and queue metrics into CloudWatch.
* :mod:`localcloud.accounting` -- every object ends in exactly one known state.
* :mod:`localcloud.demo` / ``python -m localcloud`` -- ``make demo`` / ``make local``.

Submodules are imported on demand: importing this package pulls in nothing heavy.
"""
