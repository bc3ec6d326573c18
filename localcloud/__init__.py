"""The local cloud: the whole pipeline on one machine, no AWS account.

* :mod:`localcloud.cloud` -- ``LocalCloud.start(cfg)``: moto (S3, S3 Vectors, CloudWatch,
  CloudFormation) behind a front server that adds ``QueryVectors`` and a stand-in Bedrock
  model, fauxqs for SQS, the stack's resources, and the local Lambda runtime.
* :mod:`localcloud.sqs` -- ``start_sqs()``: just the fast local SQS.
* :mod:`localcloud.demo` / ``python -m localcloud`` -- ``make demo`` / ``make local``.

Submodules are imported on demand: importing this package pulls in nothing heavy.
"""
