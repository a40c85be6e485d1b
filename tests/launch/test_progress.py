"""The console progress view."""

from __future__ import annotations

import io

from launch.impala.progress import ProgressView, format_duration


def test_line_shows_steps_rate_eta_return_success_and_loss() -> None:
    view = ProgressView(total_steps=1000, stream=io.StringIO(), interactive=False, width=10)
    line = view.render(step=250, steps_per_second=50.0, recent_return=3.14159, recent_success=0.625, loss=1.5)
    assert line.startswith("[###.......]") or line.startswith("[##........]")
    for part in ("25.0%", "250/1,000 steps", "50 sps", "ETA 15s", "return 3.14", "success 62%", "loss 1.5"):
        assert part in line


def test_plain_lines_when_not_a_terminal_and_redraw_on_a_terminal() -> None:
    plain = io.StringIO()
    view = ProgressView(100, stream=plain, interactive=False)
    view.update(10, 5.0)
    view.message("actor 0 died")
    view.update(20, 5.0)
    assert plain.getvalue().count("\n") == 3 and "\r" not in plain.getvalue()
    terminal = io.StringIO()
    view = ProgressView(100, stream=terminal, interactive=True)
    view.update(10, 5.0)
    view.update(20, 5.0)
    view.message("note")
    view.close()
    text = terminal.getvalue()
    assert text.count("\r") == 2 and text.endswith("note\n") and "ETA ?" not in text


def test_unknown_rate_and_durations() -> None:
    assert "ETA ?" in ProgressView(10, stream=io.StringIO()).render(0, 0.0, None, None, None)
    overshot = ProgressView(1_000, stream=io.StringIO()).render(1_280, 50.0, None, None, None)
    assert "100.0%" in overshot and "ETA 0s" in overshot  # the last batch passed the budget
    assert [format_duration(value) for value in (5, 281, 3725, float("inf"))] == ["5s", "4m41s", "1h02m", "?"]


def test_a_time_limit_caps_the_eta() -> None:
    view = ProgressView(1_000_000, stream=io.StringIO())
    clocked = view.render(100_000, 1_000.0, None, None, None, time_left_s=125.0)
    assert "ETA 2m05s (time limit)" in clocked  # 900 s of steps left, but 125 s of time
    stepped = view.render(990_000, 1_000.0, None, None, None, time_left_s=125.0)
    assert "ETA 10s" in stepped and "time limit" not in stepped
    assert "ETA 0s (time limit)" in view.render(100_000, 1_000.0, None, None, None, time_left_s=-0.5)
