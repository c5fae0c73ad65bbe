"""amqtt topic plugin: a device publishes only under ``devices/<own id>/uplink/``
and subscribes only under ``devices/<own id>/downlink/`` (rules in ``acl/rules.yaml``).

Every refused publish or subscribe is counted for the device (persisted to
``devices.acl_denials``) and logged with its device id. amqtt answers a
refused SUBSCRIBE with return code 0x80 in the SUBACK and silently drops a
refused PUBLISH (still acknowledging it at QoS 1, so the device learns nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amqtt.broker import BrokerContext
from amqtt.contexts import Action
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from qris_soundbox.core.devices.acl import AclRules
from qris_soundbox.plugins._platform import platform_of_broker_context

log = logging.getLogger("qris_soundbox.broker.acl")


class DeviceTopicAclPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        rules_file: str | None = None
        """ACL rules file (absolute, or relative to the working directory); default: the packaged acl/rules.yaml."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self.rules = AclRules.load(self.config.rules_file)
        platform = platform_of_broker_context(context)
        # The process's one counter: the broker counts a refused dialect message there too.
        self.denials = platform.acl_denials
        self.metrics = platform.metrics

    async def close(self) -> None:
        await self.denials.close()

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        username = session.username if session is not None else None
        if topic is None or action is None:
            return False
        if self.rules.allows(action.value, username, topic):
            return True
        if action is not Action.RECEIVE and username:
            # RECEIVE is the broker's own fan-out check, not something the device asked for.
            self.denials.count(username)
            self.metrics.acl_denials.labels(action.value).inc()
            log.warning(
                "topic access refused", extra={"device_id": username, "action": action.value, "topic": topic[:256]}
            )
        return False
