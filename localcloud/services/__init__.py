"""The local cloud's services: what answers the AWS API calls on 127.0.0.1.

* :mod:`~localcloud.services.front` -- the one endpoint: moto behind a dispatcher that
  adds what moto lacks (Bedrock, the S3 Vectors data plane) and the control API;
* :mod:`~localcloud.services.vectorstore`, :mod:`~localcloud.services.metadata_filter`
  -- the S3 Vectors indexes and their query filters;
* :mod:`~localcloud.services.bedrock`, :mod:`~localcloud.services.standin_model` --
  ``InvokeModel`` with Nova's and Marengo's request shapes, answered by a stand-in model;
* :mod:`~localcloud.services.sqs` -- fauxqs, the local SQS (a Node child process);
* :mod:`~localcloud.services.s3_events` -- S3's event notifications, shaped as S3 sends
  them;
* :mod:`~localcloud.services.faults` -- injected errors and latency at the network edge;
* :mod:`~localcloud.services.errors` -- AWS-shaped error answers.
"""
