"""On-call: who is paged for an incident (people, schedules, escalation policies, routes from
``ONCALL_CONFIG``), the escalation engine that walks a policy, and the actions people take
from wherever the page reached them (SMS reply, voice, Slack button, e-mail link, PagerDuty)."""
