"""Events owned by the directory service, one module per aggregate group. Type names are the
spec's catalogue (platform.md 6.3). Add a module's union to DirectoryEvent below."""

from __future__ import annotations

from authpi.contracts.directory.accounts import *  # noqa: F403
from authpi.contracts.directory.accounts import AccountEvent, ApiKeyEvent
from authpi.contracts.directory.clients import *  # noqa: F403
from authpi.contracts.directory.clients import ClientEvent
from authpi.contracts.directory.domains import *  # noqa: F403
from authpi.contracts.directory.domains import AccountDomainEvent
from authpi.contracts.directory.issuers import *  # noqa: F403
from authpi.contracts.directory.issuers import IssuerEvent
from authpi.contracts.directory.notes import *  # noqa: F403
from authpi.contracts.directory.notes import NoteEvent
from authpi.contracts.directory.organizations import *  # noqa: F403
from authpi.contracts.directory.organizations import OrganizationEvent
from authpi.contracts.directory.tokens import *  # noqa: F403
from authpi.contracts.directory.tokens import PersonalTokenEvent
from authpi.contracts.directory.users import *  # noqa: F403
from authpi.contracts.directory.users import UserEvent

DirectoryEvent = (
    AccountEvent
    | AccountDomainEvent
    | ApiKeyEvent
    | UserEvent
    | IssuerEvent
    | ClientEvent
    | OrganizationEvent
    | PersonalTokenEvent
    | NoteEvent
)
