"""DeciderSpec: given events, when a command, then events (or an error) — for pure deciders."""

from __future__ import annotations

from typing import Any

import pytest

from authpi.contracts.base import Event


class DeciderSpec:
    def __init__(self, decider: Any) -> None:
        self.decider = decider
        self._given: list[Event] = []
        self._command: Any = None

    def given(self, *events: Event) -> DeciderSpec:
        self._given = list(events)
        return self

    def when(self, command: Any) -> DeciderSpec:
        self._command = command
        return self

    def state(self) -> Any:
        state = self.decider.INITIAL
        for event in self._given:
            state = self.decider.evolve(state, event)
        return state

    def then(self, *expected: Event) -> None:
        assert self.decider.decide(self._command, self.state()) == list(expected)

    def raises(self, error: type[BaseException]) -> BaseException:
        with pytest.raises(error) as caught:
            self.decider.decide(self._command, self.state())
        return caught.value
