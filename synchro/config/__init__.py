"""synchro.config: a node's settings (model), their file (store), secrets and admin password.

The names most callers need are re-exported here; the parsers the GUI and CLI share live in
``synchro.config.store`` (``parse_time``, ``parse_duration``, ``parse_minutes``...).
"""

from synchro.config.model import (
    Config,
    ConflictPolicy,
    DatabaseSettings,
    EmailSettings,
    HQSettings,
    MailSecurity,
    Role,
    SiteAccount,
    SiteSettings,
    TableRule,
)
from synchro.config.store import (
    check_config,
    config_from_dict,
    config_to_dict,
    load_config,
    resolve_connection,
    save_config,
)

__all__ = [
    "Config",
    "ConflictPolicy",
    "DatabaseSettings",
    "EmailSettings",
    "HQSettings",
    "MailSecurity",
    "Role",
    "SiteAccount",
    "SiteSettings",
    "TableRule",
    "check_config",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "resolve_connection",
    "save_config",
]
