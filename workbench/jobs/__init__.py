"""Jobs: notebooks run headless under an access request (papermill), outliving the server.

In notebooks and jobs, this package is the client (`workbench.jobs.submit(...)`,
`workbench.jobs.log_metric(...)`), which imports no server module; the service's side lives
in `workbench.jobs.service`, `.models` and the backends.
"""

from workbench.jobs.client import Job, JobError, flush_metrics, in_job, jobs, log_metric, submit

__all__ = ["Job", "JobError", "flush_metrics", "in_job", "jobs", "log_metric", "submit"]
