"""Long jobs: progress lines, cancellation, and running a job as a separate OS process."""

from LNSynthLib.jobs.progress import Progress, progress_mode
from LNSynthLib.jobs.runner import JobProcess, JobState

__all__ = ["JobProcess", "JobState", "Progress", "progress_mode"]
