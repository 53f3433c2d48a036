"""The embedded worker's events cross the pipe as typed values: each comes out as it went in."""

from __future__ import annotations

import pytest

from ltxserve.jobs import JobStatus
from ltxserve.workers.events import Generated, JobChanged, LoadFailed, Loading, Problem, Ready, decode, encode


@pytest.mark.parametrize(
    "event",
    [Loading(), LoadFailed("OSError: no weights"), Ready("w-1"), JobChanged("req-1", JobStatus.COMPLETED),
     Generated(1.25), Problem("the job store does not answer"), Problem(None)],
)
def test_every_event_comes_out_as_it_went_in(event):
    line = encode(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert decode(line) == event


def test_a_job_status_is_a_status_again_after_the_pipe():
    assert decode(encode(JobChanged("r", JobStatus.QUEUED))).status is JobStatus.QUEUED


@pytest.mark.parametrize("line", ["not json", '{"event": "unknown"}', '{"event": "ready"}', "[1, 2]"])
def test_a_line_that_is_no_event_is_refused(line):
    with pytest.raises(ValueError, match="not a worker event"):
        decode(line)
