"""Asking an outside registry before a command's transaction begins (why: ``storage.lookahead``).

A service asks here only after its own preconditions (role, identifier, purpose) held, so nobody is looked up for
a command that is then refused: a precondition that fails raises ``UserError``, and the dispatcher asks nobody.
What is asked here is audited in the transaction by the service that uses the answer, and a delivery already
handled is not asked for at all (the dispatcher checks that first).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from domain.identifiers import PersonId
from integrations.registry import Registry, RegistryUnavailable
from storage.lookahead import Answer

log = logging.getLogger(__name__)

Ahead = dict[PersonId, Answer]


async def look_up_ahead(registry: Registry, persons: Iterable[PersonId]) -> Ahead:
    """Called by the dispatcher only for a registry outside the command's transaction."""
    answers: Ahead = {}
    for person in persons:
        if person in answers:
            continue
        try:
            answers[person] = await registry.lookup(person)
        except RegistryUnavailable as exc:
            answers[person] = exc
            break  # the command fails on this one, as a batch does: the rest would only wait for the same timeout
        except Exception as exc:  # asked again in the transaction, where the command answers it as it always did
            log.warning("registry lookup ahead failed", extra={"reason": type(exc).__name__})
    return answers
