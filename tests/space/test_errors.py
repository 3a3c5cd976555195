"""Bad input gets a clear error that names the label path and what would be valid, never a wrong model."""

from __future__ import annotations

import pytest

from nas import space as S
from nas.errors import NasError, SpaceError


def kernel_space(kernels=(3, 5)) -> S.Space:
    def block(i):
        return S.sequential(S.conv2d(4, S.choice("kernel", list(kernels))), S.relu())

    return S.Space(S.sequential(S.repeat("blocks", [1, 2], block), S.global_avg_pool(), S.linear(2)),
                   input_shape=(1, 6, 6))


def test_space_error_is_a_nas_error():
    assert issubclass(SpaceError, NasError)


def test_unknown_label_in_an_architecture():
    with pytest.raises(SpaceError, match=r"does not have or that are inactive: \['color'\]"):
        kernel_space().validate({"blocks": 1, "blocks[0]/kernel": 3, "color": "red"})


def test_inactive_label_is_rejected_too():
    with pytest.raises(SpaceError, match=r"\['blocks\[1\]/kernel'\]"):
        kernel_space().validate({"blocks": 1, "blocks[0]/kernel": 3, "blocks[1]/kernel": 3})


def test_missing_label_names_the_decision_and_its_options():
    with pytest.raises(SpaceError, match=r"no value for decision 'blocks\[1\]/kernel' \(options \[3, 5\]\)"):
        kernel_space().validate({"blocks": 2, "blocks[0]/kernel": 3})


def test_value_not_among_the_options():
    with pytest.raises(SpaceError, match=r"'blocks\[0\]/kernel' = 7 is not among its options \[3, 5\]"):
        kernel_space().build({"blocks": 1, "blocks[0]/kernel": 7})


def test_bool_is_not_an_int_option():
    sp = S.Space(S.conv2d(S.choice("w", [1, 2]), 1), input_shape=(1, 2, 2))
    with pytest.raises(SpaceError, match=r"'w' = True is not among its options \[1, 2\]"):
        sp.validate({"w": True})


def test_label_reused_with_different_options():
    body = S.sequential(S.conv2d(S.choice("w", [4, 8]), 1), S.conv2d(S.choice("w", [4, 16]), 1))
    reused = r"label 'w' is reused with different options: \[4, 8\] and \[4, 16\]"
    with pytest.raises(SpaceError, match=reused):  # at definition, not at the first draw
        S.Space(body, input_shape=(1, 4, 4))


def test_linear_after_an_image_without_flatten():
    sp = S.Space(S.sequential(S.conv2d(8, 3), S.linear(10)), input_shape=(1, 8, 8))
    with pytest.raises(SpaceError, match=r"at 'fc': linear expects .* got shape \(8, 8, 8\); add S.flatten"):
        sp.build({})


def test_parallel_branches_that_disagree():
    sp = S.Space(S.parallel(S.conv2d(4, 3), S.conv2d(8, 3)), input_shape=(1, 8, 8))
    shapes = r"parallel\(merge='sum'\) branches give shapes \[\(4, 8, 8\), \(8, 8, 8\)\]"
    with pytest.raises(SpaceError, match=shapes):
        sp.build({})


def test_residual_that_changes_the_shape():
    sp = S.Space(S.sequential(S.conv2d(4, 3), S.residual(S.conv2d(8, 3))), input_shape=(1, 8, 8))
    with pytest.raises(SpaceError, match=r"residual needs its part to keep the shape \(4, 8, 8\)"):
        sp.build({})


@pytest.mark.parametrize("options", [[], {}])
def test_empty_choice(options):
    with pytest.raises(SpaceError, match="choice 'k' has no options"):
        S.choice("k", options)


def test_cycle_is_reported_not_looped_forever():
    @S.graph
    def g(x):
        return g(x)

    with pytest.raises(SpaceError, match="cycle"):
        S.Space(g, input_shape=(1, 2, 2)).sample(0)
    with pytest.raises(SpaceError, match="cycle"):
        S.Space(g, input_shape=(1, 2, 2)).size()


def test_a_builder_that_calls_itself_is_reported_when_the_space_is_made():
    def direct(i):
        return direct(i)

    def nested(i):
        return S.repeat("r", [1], nested)

    for builder in (direct, nested):
        with pytest.raises(SpaceError, match="a builder function calls itself"):
            S.Space(S.repeat("r", [1], builder), input_shape=(1, 2, 2))


def test_architecture_replayed_against_a_changed_space():
    old = kernel_space((3, 5)).sample(1)
    changed = kernel_space((3, 7))
    with pytest.raises(SpaceError, match=r"not among its options \[3, 7\]"):
        changed.validate({**old, "blocks[0]/kernel": 5})
    relabelled = S.Space(S.conv2d(4, S.choice("k", [3, 5])), input_shape=(1, 4, 4))
    with pytest.raises(SpaceError, match="another version of the space"):
        relabelled.validate(old)


def test_invalid_labels_and_option_types():
    with pytest.raises(SpaceError, match="invalid label 'a/b'"):
        S.choice("a/b", [1])
    with pytest.raises(SpaceError, match="cannot be stored in an architecture"):
        S.choice("k", [[3, 3]])
    with pytest.raises(SpaceError, match="lists an option twice"):
        S.choice("k", [3, 3])


def test_value_choice_used_as_a_part_and_part_used_as_an_argument():
    plain = r"choice 'k' has plain values \(\[1, 2\]\); it can only be an argument"
    with pytest.raises(SpaceError, match=plain):
        S.sequential(S.choice("k", [1, 2]))
    with pytest.raises(SpaceError, match=r"conv2d\(kernel_size=...\): got a space part"):
        S.conv2d(4, S.relu())


def test_spatial_collapse_and_bad_groups():
    with pytest.raises(SpaceError, match="shrinks the 2x2 input to nothing"):
        S.Space(S.max_pool2d(4), input_shape=(1, 2, 2)).build({})
    with pytest.raises(SpaceError, match=r"groups=2\) needs input channels \(3\)"):
        S.Space(S.conv2d(4, 3, groups=2), input_shape=(3, 4, 4)).build({})


def test_user_op_with_the_wrong_input():
    sp = S.Space(S.sequential(S.flatten(), S.op(lambda: __import__("torch").nn.Linear(5, 2))),
                 input_shape=(1, 2, 2))
    with pytest.raises(SpaceError, match=r"at 'op': op .*<lambda> does not accept input shape \(4,\)"):
        sp.build({})


def test_bad_input_shape():
    with pytest.raises(SpaceError, match="without the batch dimension"):
        S.Space(S.relu(), input_shape=(0, 3))
