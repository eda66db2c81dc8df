"""Which projects a user belongs to: the config says, and unix groups answer for users it does not list.

Local mode runs jobs as host users the config may not name; for them a project
is one whose unix group they are in, which is what membership means on the
cluster's nodes too.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd

from orchestrator.cluster.config import Config

log = logging.getLogger(__name__)

__all__ = ["projects_of", "user_name"]


def projects_of(config: Config, user: str) -> list[str]:
    """The user's projects, default project first."""
    try:
        return list(config.user(user).projects)
    except KeyError:
        pass
    try:
        pw = pwd.getpwnam(user)
        groups = {grp.getgrgid(g).gr_name for g in os.getgrouplist(user, pw.pw_gid)}
    except (KeyError, OSError):
        return []
    return [p.name for p in config.projects if p.name in groups]


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
