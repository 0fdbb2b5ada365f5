"""The bridge's public listener: the callbacks of third parties (Slack's buttons, Twilio, PagerDuty,
e-mail links), each verifying its sender before acting."""
