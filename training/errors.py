"""The project's one exception type for problems a user can fix.

Its message is one line that names the problem and says what to do;
``launch.py`` prints it as it is, without a traceback. Anything else that
escapes is a bug in rnnopt and keeps its traceback.
"""


class RunError(Exception):
  """A problem with the user's input, files or machine, not with rnnopt:
  a changed config on rerun, a workdir in use or unwritable, a data file
  that is missing or not the original, an interrupted run."""


class Interrupted(RunError):
  """The run was stopped by Ctrl-C or SIGTERM after saving its checkpoint:
  whatever runs it (a sweep, a reproduce command) stops too."""
