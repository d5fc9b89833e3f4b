"""The decision log's mutations, one module each; every one answers refusals in its payload's `errors`."""

from __future__ import annotations

import strawberry

from .accept_decision import AcceptDecisionPayload, accept_decision
from .deprecate_decision import DeprecateDecisionPayload, deprecate_decision
from .edit_decision import EditDecisionPayload, edit_decision
from .propose_decision import ProposeDecisionPayload, propose_decision
from .supersede_decision import SupersedeDecisionPayload, supersede_decision


@strawberry.type
class DecisionMutations:
    propose_decision: ProposeDecisionPayload = strawberry.mutation(
        resolver=propose_decision, description="Propose a new record; it gets the next number."
    )
    edit_decision: EditDecisionPayload = strawberry.mutation(
        resolver=edit_decision, description="Change the text or category of a proposed or accepted record."
    )
    accept_decision: AcceptDecisionPayload = strawberry.mutation(
        resolver=accept_decision, description="Accept a proposed record."
    )
    deprecate_decision: DeprecateDecisionPayload = strawberry.mutation(
        resolver=deprecate_decision, description="Deprecate a proposed or accepted record."
    )
    supersede_decision: SupersedeDecisionPayload = strawberry.mutation(
        resolver=supersede_decision, description="Mark an accepted record as superseded by another."
    )
