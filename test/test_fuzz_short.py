"""The fuzz benchmark's short profile over real DDS against the installed sfm_node (issue 13, item 3).

Every malformed-input class of ``dro_depth.ros.fuzz_cases`` is sent at least once between valid frames;
each invariant of ``dro_depth.ros.fuzz.checks`` must hold (node alive and answering, no depth for a refused
input, no stamp twice, exact accounting per reason, bounded RSS).
"""


def test_fuzz_short_profile_keeps_every_invariant(ros_env):
    from dro_depth.ros.fuzz import checks, run_fuzz
    from dro_depth.ros.fuzz_cases import CLASSES

    out = run_fuzz('short', seed=1, timeout=60.0, pace=0.7)
    sent = out['sent']
    assert sent.sent > len(CLASSES)
    failed = [(name, measured) for name, measured, ok in checks(out, rss_growth=20.0) if not ok]
    assert not failed, f'{failed}\nnode log tail:\n{str(out["log"])[-2000:]}'
    # the storm reached the node: refusals were counted under their reasons, valid frames answered
    books = out['books']
    assert books['dropped_bad_encoding'] > 0 and books['dropped_too_large'] > 0
    assert books['dropped_bad_input'] > 0 and books['published'] > 0
