"""Local stand-ins for Slack, PagerDuty, Twilio and an SMTP server, speaking their protocols."""

from tests.fakes._server import FakeServer, RecordedRequest, ScriptedResponse
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP, ReceivedMail
from tests.fakes.twilio import FakeTwilio

__all__ = [
    "FakePagerDuty",
    "FakeSMTP",
    "FakeServer",
    "FakeSlack",
    "FakeTwilio",
    "ReceivedMail",
    "RecordedRequest",
    "ScriptedResponse",
]
