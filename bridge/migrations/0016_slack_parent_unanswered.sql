-- Slack's parent message posted without an answer: chat.postMessage timed out, the connection
-- dropped or Slack answered 5xx, so the message may be in the channel. Until the parent is known
-- (channel, ts), unanswered_since is when that first happened: before posting again the channel's
-- recent history in Slack is searched for the message carrying the incident's metadata
-- (event_type passiton_incident), which is adopted instead of posting a second parent.
ALTER TABLE slack_messages ADD COLUMN IF NOT EXISTS unanswered_since TIMESTAMPTZ;
