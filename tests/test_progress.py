"""Progress while the LSTM trains: a bar on a terminal, lines with the time left on a log, nothing when quiet."""

from __future__ import annotations

from biocount.forecasters.lstm import training as lstm


def test_a_log_gets_a_line_every_twenty_seconds_with_the_time_left(capsys):
    now = [0.0]
    update = lstm._log_progress(100, clock=lambda: now[0])
    now[0] = 5.0
    update(9, 0.5, None)  # 5 s in: too soon for a line
    now[0] = 40.0
    update(19, 0.4, 0.3)  # 20 of 100 epochs in 40 s: 80 more at that pace
    now[0] = 45.0
    update(21, 0.39, 0.3)  # 5 s after the last line: none
    update(None, None, None)  # the end: nothing to add
    assert capsys.readouterr().err.splitlines() == [
        "biocount: training lstm: 20/100 epochs in 40 s, at most 160 s left (loss 0.4000)"]
    assert lstm.LOG_EVERY == 20.0


def test_quiet_says_nothing_and_a_pipe_gets_the_log_lines(capsys):
    lstm._progress(10, quiet=True)(3, 0.1, 0.1)
    assert capsys.readouterr().err == ""
    assert lstm._progress(10, quiet=False).__qualname__.startswith("_log_progress")  # stderr is not a terminal here
