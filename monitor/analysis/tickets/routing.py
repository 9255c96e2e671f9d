"""Who takes a ticket: topic -> team -> owner, and whom to escalate to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.analysis.tickets.model import (
    ACTIVE_STATUSES,
    AlertRule,
    InvalidPolicyError,
    Ticket,
)


class Strategy(StrEnum):
    """How a team hands out new tickets; see :func:`choose_owner`."""

    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


STRATEGIES = tuple(Strategy)


@dataclass(frozen=True)
class Team:
    """People who take tickets, and whom to escalate to.

    Attributes:
        name: Team name.
        members: Owners who take tickets, in round-robin order.
        strategy: ``round_robin`` or ``least_loaded`` (text is turned into
            its :class:`Strategy`).
        escalation: Contacts for escalation levels 1, 2, ...; the last one
            takes every level beyond the list.

    """

    name: str
    members: tuple[str, ...]
    strategy: Strategy = Strategy.ROUND_ROBIN
    escalation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidPolicyError(f"team {self.name!r}: unknown strategy")
        object.__setattr__(self, "strategy", Strategy(self.strategy))

    def escalation_contact(self, level: int) -> str | None:
        """Return the contact for an escalation level (1-based), if any."""
        if level < 1 or not self.escalation:
            return None
        return self.escalation[min(level, len(self.escalation)) - 1]


@dataclass(frozen=True)
class Routing:
    """Topic -> team, with a default team for topics nobody claimed.

    Attributes:
        teams: Every team by name.
        topic_teams: Team name per topic.
        default_team: Team for topics not in ``topic_teams``.

    """

    teams: Mapping[str, Team]
    topic_teams: Mapping[str, str] = field(default_factory=dict)
    default_team: str = "default"

    def team_for(self, topic: str, rule: AlertRule | None = None) -> Team:
        """Return the team for a topic (a rule's own team wins).

        A team name with no :class:`Team` behind it yields an empty team, so
        the ticket is created unassigned rather than lost.
        """
        name = (rule.team if rule else None) or self.topic_teams.get(
            topic, self.default_team
        )
        return self.teams.get(name) or Team(name=name, members=())


def choose_owner(team: Team, tickets: Iterable[Ticket]) -> str | None:
    """Pick the owner of a new ticket in a team.

    Args:
        team: The team taking the ticket.
        tickets: Known tickets (any status); only this team's are looked at.

    Returns:
        ``round_robin``: the member after the owner of the team's most
        recently opened ticket (the first member if there is none).
        ``least_loaded``: the member with the fewest active tickets, ties
        going to the earlier member. ``None`` if the team has no members.

    """
    if not team.members:
        return None
    own = [ticket for ticket in tickets if ticket.team == team.name]
    if team.strategy == Strategy.LEAST_LOADED:
        load = dict.fromkeys(team.members, 0)
        for ticket in own:
            if ticket.status in ACTIVE_STATUSES and ticket.owner in load:
                load[ticket.owner] += 1
        return min(team.members, key=lambda member: load[member])
    assigned = [t for t in own if t.owner in team.members]
    if not assigned:
        return team.members[0]
    last = max(assigned, key=lambda t: (t.opened_at, t.sequence, t.ticket_id))
    return team.members[(team.members.index(last.owner or "") + 1) % len(team.members)]
