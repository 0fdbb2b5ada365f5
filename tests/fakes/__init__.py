"""Local stand-ins for Slack, PagerDuty, Twilio, an SMTP server and a Web Push service, speaking
their protocols."""

from tests.fakes._server import FakeServer, RecordedRequest, ScriptedResponse
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.push import FakePushService
from tests.fakes.slack import FakeSlack, TimedSlack
from tests.fakes.smtp import FakeSMTP, ReceivedMail
from tests.fakes.twilio import FakeTwilio

__all__ = [
    "FakePagerDuty",
    "FakePushService",
    "FakeSMTP",
    "FakeServer",
    "FakeSlack",
    "FakeTwilio",
    "ReceivedMail",
    "RecordedRequest",
    "ScriptedResponse",
    "TimedSlack",
]
