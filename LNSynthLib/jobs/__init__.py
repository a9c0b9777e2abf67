"""Long jobs: progress lines, cancellation, and running a job as a separate OS process."""

from LNSynthLib.jobs.progress import Progress, progress_mode
from LNSynthLib.jobs.results import emit_result, result_event, result_path
from LNSynthLib.jobs.runner import JobProcess, JobState

__all__ = ["JobProcess", "JobState", "Progress", "emit_result", "progress_mode", "result_event", "result_path"]
