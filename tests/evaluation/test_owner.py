"""The owner's pipeline: student names are checked before anything is trained."""

import pytest

from faceleaks.errors import ConfigError
from faceleaks.evaluation.owner import STUDENTS, build_students


def test_an_unknown_student_name_is_refused_before_training():
    with pytest.raises(ConfigError, match="unknown student.*nope"):
        build_students(None, None, None, shadow=False, prefix="victim", names=("nope",))
    assert STUDENTS == ("lfw-identity", "utk-age")
