"""The API's commands (its only writes), one module per aggregate: load → decide → publish → wait.

Each handler loads the state a decision needs (read models, path facts), calls the pure
decision in services/api/decide/, raises its refusal or publishes its writes with their
expected sequences (publish.py), and waits for the read models (decision 0025). The names
below are what the routes, the web app and the operator's CLI call.
"""

from __future__ import annotations

from services.api.commands.albums import (
    add_assets,
    create_album,
    delete_album,
    remove_assets,
    update_album,
)
from services.api.commands.libraries import (
    create_library,
    delete_library,
    offline_to_remove,
    remove_offline,
    request_scan,
    update_library,
    validate_library,
    visible_library,
)
from services.api.commands.publish import publish_chain
from services.api.commands.server import admin_sign_up, update_system_config
from services.api.commands.users import (
    create_api_key,
    create_user,
    delete_api_key,
    delete_user,
    login,
    logout,
    password_login,
    update_user,
)

__all__ = [
    "add_assets",
    "admin_sign_up",
    "create_album",
    "create_api_key",
    "create_library",
    "create_user",
    "delete_album",
    "delete_api_key",
    "delete_library",
    "delete_user",
    "login",
    "logout",
    "offline_to_remove",
    "password_login",
    "publish_chain",
    "remove_assets",
    "remove_offline",
    "request_scan",
    "update_album",
    "update_library",
    "update_system_config",
    "update_user",
    "validate_library",
    "visible_library",
]
