"""The bridge's public listener (``BRIDGE_PUBLIC_LISTEN``): the callbacks of the services that
page people (Twilio SMS and voice, Slack buttons, PagerDuty webhooks) and the e-mail
acknowledgement links. Every request is verified (signature, signed token) before it is read
for meaning, refused cleanly (401/403, nothing changed) otherwise, rate-limited, and a replay of
a signed request changes nothing."""
