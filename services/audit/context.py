"""What the audit routes reach: the shared adapters and the consumer's and signer's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.audit.handlers import AuditDeps
from services.common.context import AppContext, context_of


@dataclass(kw_only=True)
class AuditContext(AppContext):
    """The shared adapters plus the tree cache, the signer and the appended counter."""

    deps: AuditDeps


get_audit_ctx = context_of(AuditContext)
AuditCtx = Annotated[AuditContext, Depends(get_audit_ctx)]
