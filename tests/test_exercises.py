"""The shared exercise machinery: Feedback, call_student, check_close, check_equal."""

import torch

from mmbook.exercises import (
    Feedback,
    call_student,
    ch01,
    check_close,
    check_equal,
    shape_error_hint,
)


def test_feedback_truthiness_and_rendering():
    ok, bad = Feedback(True, "fine"), Feedback(False, "shape is off <b>")
    assert ok and not bad
    assert repr(ok).startswith("Correct!") and repr(bad).startswith("Not yet:")
    assert "&lt;b&gt;" in bad._repr_html_()  # the message is escaped


def test_call_student_reports_exceptions_instead_of_raising():
    assert call_student(lambda a, b: a + b, 1, 2) == (3, None)
    got, fail = call_student(lambda: 1 / 0, name="my_fn")
    assert got is None and not fail
    assert "my_fn raised ZeroDivisionError" in fail.message


def test_check_close_says_what_is_wrong():
    ref = torch.ones(2, 3)
    assert check_close("x", ref.clone(), ref)
    shape = check_close("x", torch.ones(3, 2), ref)
    assert not shape and "shape (3, 2), expected (2, 3)" in shape.message
    value = check_close("x", ref + 1, ref)
    assert not value and "largest difference 1" in value.message
    assert check_close("x", None, ref).pending  # no answer yet: neutral, not wrong


def test_check_equal():
    assert check_equal("n", 4, 4)
    fb = check_equal("n", 5, 4)
    assert "n is not 5" in fb.message and "4" not in fb.message  # never the expected value


def test_chapter1_checkers():
    assert ch01.check_early_fusion(lambda a, b: torch.cat([a, b], dim=1))
    assert not ch01.check_early_fusion(lambda a, b: torch.cat([a, b], dim=0))  # raises inside
    assert not ch01.check_early_fusion(lambda a, b: None)
    truth = {"A": "synergy", "B": "redundancy"}
    assert ch01.check_interaction_kinds(dict(truth), truth)
    assert "look again at ['B']" in ch01.check_interaction_kinds(
        {"A": "synergy", "B": "uniqueness"}, truth).message
    assert "not labelled" in ch01.check_interaction_kinds({"A": "synergy"}, truth).message
    assert "must be one of" in ch01.check_interaction_kinds({"A": "xor", "B": "x"}, truth).message


def test_shape_error_hint_only_rewrites_shape_errors():
    _, fail = call_student(lambda x: x / x.sum(1), torch.ones(3, 2))
    assert isinstance(fail.error, RuntimeError)
    fb = shape_error_hint(fail, "use keepdim=True")
    assert not fb and "shape mistake" in fb.message and fb.message.endswith("use keepdim=True")
    _, other = call_student(lambda x: 1 / 0, torch.ones(3, 2))
    assert shape_error_hint(other, "use keepdim=True") is other  # not a shape error
    _, value = call_student(lambda x: float("x"), 1)
    assert shape_error_hint(value, "hint") is value
    _, matmul = call_student(lambda x: x @ x, torch.ones(3, 2))  # torch's message is clear
    assert shape_error_hint(matmul, "hint") is matmul
