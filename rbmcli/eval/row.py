"""One result of `rbm evaluate`: a metric's name and value, the protocol details, and seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    metric: str
    value: float
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)
