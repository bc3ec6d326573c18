"""The local Lambda runtime: execution environments, the SQS event source, async invokes.

* :mod:`~localcloud.lambdas.pool` -- warm execution environments of one function;
* :mod:`~localcloud.lambdas.worker` -- one environment (the child process);
* :mod:`~localcloud.lambdas.event_source` -- the FIFO queue's event source mapping;
* :mod:`~localcloud.lambdas.async_invoke` -- S3's asynchronous invocations of the router;
* :mod:`~localcloud.lambdas.runtime` -- both functions wired to the local cloud.

Import nothing here: the worker child imports this package with only the Lambda's
dependencies.
"""
