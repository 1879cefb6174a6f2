from tests.k8s.helpers import VERSIONS


def test_validation_uses_the_two_newest_shipped_versions() -> None:
    assert len(VERSIONS) == 2 and VERSIONS[0] != VERSIONS[1]
    newest, previous = (tuple(int(p) for p in v.split(".")) for v in VERSIONS)
    assert newest > previous and newest[:2] >= (1, 33)
